"""A VCF Zarr genotype input (``genotypes: [{path: cohort.vcz}]``).

The same simulated tree sequence written as a VCF (``genomenode simulate``) and
straight to VCF Zarr (``genomenode simulate --vcz``, bio2zarr's tskit
converter) and both ingested: the stores hold the same calls and counts, and
the Beacon answers the same counts and frequencies for every variant.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pysam
import pytest
import yaml
import zarr
from click.testing import CliRunner
from fastapi.testclient import TestClient

from genomenode.app import create_app
from genomenode.cli import cli
from genomenode.dataset import read_dataset_description
from genomenode.errors import DatasetDescriptionError, VcfError
from genomenode.ingest import pipeline
from genomenode.ingest.pipeline import ingest
from genomenode.ingest.vcz import rechunk_sites
from genomenode.simulate import simulate_cohort
from genomenode.store.genotypes import STATISTICS
from genomenode.store.node import init_node

from ..conftest import in_process_workers, write_dataset_yaml

COHORT = {"samples": 120, "seed": 11, "length": 60_000, "security_level": "PUBLIC"}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A node with the cohort ingested from its VCF and from its VCF Zarr."""
    directory = tmp_path_factory.mktemp("vcz")
    from_vcf = simulate_cohort(directory / "vcf", dataset_id="from-vcf", **COHORT)
    from_vcz = simulate_cohort(
        directory / "vcz", dataset_id="from-vcz", vcz=True, **COHORT
    )
    for cohort in (from_vcf, from_vcz):
        document = yaml.safe_load(cohort.dataset_yaml.read_text())
        document["beacon"] = {"anonymous": "record"}
        cohort.dataset_yaml.write_text(yaml.safe_dump(document))
    node = init_node(directory / "node", node_id="fi-node", country="FI")
    with in_process_workers():
        ingest(node, from_vcf.dataset_yaml)
        result = ingest(node, from_vcz.dataset_yaml)
    yield node, from_vcf, from_vcz, result
    node.close()


def _store(node, dataset_id):
    return zarr.open_group(node.datasets_dir / dataset_id / "genotypes.vcz", mode="r")


def test_simulated_vcz_has_the_vcf_records(pair):
    _node, from_vcf, from_vcz, _result = pair
    root = zarr.open_group(from_vcz.vcf_path, mode="r")
    with pysam.VariantFile(str(from_vcf.vcf_path)) as vcf:
        samples = list(vcf.header.samples)
        records = [
            (
                record.pos,
                record.ref,
                record.alts[0],
                [s["GT"] for s in record.samples.values()],
            )
            for record in vcf
        ]
    assert [str(sample) for sample in root["sample_id"][:]] == samples
    assert root["variant_position"][:].tolist() == [pos for pos, *_ in records]
    alleles = root["variant_allele"][:].astype(object).tolist()
    assert alleles == [[ref, alt] for _, ref, alt, _ in records]
    calls = root["call_genotype"][:]
    assert calls.tolist() == [[list(gt) for gt in gts] for *_, gts in records]
    assert from_vcz.num_variants == from_vcf.num_variants == len(records)


def test_ingested_stores_are_equal(pair):
    node, _from_vcf, _from_vcz, result = pair
    assert result.status == "published"
    assert result.num_samples == COHORT["samples"]
    plain, imported = _store(node, "from-vcf"), _store(node, "from-vcz")
    for name in (
        *STATISTICS,
        "call_genotype",
        "call_genotype_by_variant",
        "variant_position",
        "variant_contig",
    ):
        np.testing.assert_array_equal(imported[name][:], plain[name][:], err_msg=name)
        assert imported[name].chunks == plain[name].chunks, name
    for name in ("variant_allele", "sample_id", "contig_id"):
        assert (
            imported[name][:].astype(object).tolist()
            == plain[name][:].astype(object).tolist()
        ), name
    # What a VCF has and a tskit VCF Zarr has not: FORMAT DP/GQ, INFO, filters.
    assert "call_DP" in plain and "call_DP" not in imported


def test_originals_keep_the_vcz_as_one_archive(pair):
    node, *_ = pair
    manifest = node.dataset_manifest("from-vcz")
    roles = {item["role"]: item for item in manifest["files"]}
    assert roles["genotypes-vcz"]["original_name"] == "from-vcz.vcz.tar"
    assert "genotypes" not in roles and "genotypes-index" not in roles


def _record(client, dataset_id, variant_id):
    response = client.get(
        f"/api/g_variants/{variant_id}",
        params={"requestedGranularity": "record"},
    )
    assert response.status_code == 200, response.text
    sets = [
        item
        for item in response.json()["response"]["resultSets"]
        if item["id"] == dataset_id
    ]
    (result_set,) = sets
    (record,) = result_set["results"]
    return record["frequencyInPopulations"][0]["frequencies"]


def test_beacon_answers_the_same(pair):
    node, _from_vcf, from_vcz, _result = pair
    root = zarr.open_group(from_vcz.vcf_path, mode="r")
    positions = root["variant_position"][:]
    alleles = root["variant_allele"][:].astype(object)
    rows = np.random.default_rng(1).choice(len(positions), size=12, replace=False)
    with TestClient(create_app(node, disclosure_enabled=False)) as client:
        for row in rows.tolist():
            variant_id = f"1-{positions[row]}-{alleles[row][0]}-{alleles[row][1]}"
            assert _record(client, "from-vcz", variant_id) == _record(
                client, "from-vcf", variant_id
            )
        response = client.post(
            "/api/g_variants",
            json={
                "query": {
                    "requestedGranularity": "record",
                    "requestParameters": {
                        "referenceName": "1",
                        "start": [0],
                        "end": [COHORT["length"] + 1],
                    },
                    "pagination": {"limit": 1},
                },
            },
        )
    assert response.status_code == 200, response.text
    counts = {
        item["id"]: item["resultsCount"]
        for item in response.json()["response"]["resultSets"]
    }
    assert counts == {"from-vcf": len(positions), "from-vcz": len(positions)}


def test_simulate_command_writes_a_vcz(tmp_path):
    output = CliRunner().invoke(
        cli,
        [
            "simulate",
            str(tmp_path / "cohort"),
            "--samples",
            "20",
            "--length",
            "20000",
            "--vcz",
            "--json",
        ],
    )
    assert output.exit_code == 0, output.output
    summary = json.loads(output.output)
    assert summary["vcf"].endswith(".vcz")
    assert zarr.open_group(summary["vcf"], mode="r")["call_genotype"].shape[1] == 20


def test_a_vcz_without_calls_names_the_array(tmp_path, pair):
    _node, _from_vcf, from_vcz, _result = pair
    broken = tmp_path / "broken.vcz"
    shutil.copytree(from_vcz.vcf_path, broken)
    shutil.rmtree(broken / "call_genotype")
    shutil.copytree(from_vcz.phenopackets_dir, tmp_path / "phenopackets")
    dataset_yaml = write_dataset_yaml(
        tmp_path,
        id="broken",
        genotypes=[{"path": broken.name}],
        clinical={"format": "phenopackets", "path": "phenopackets"},
    )
    with (
        init_node(tmp_path / "node", node_id="n", country="FI") as node,
        pytest.raises(VcfError, match="call_genotype is missing") as raised,
    ):
        ingest(node, dataset_yaml)
    assert str(broken) in str(raised.value)


def test_a_vcz_must_be_a_directory(tmp_path):
    (tmp_path / "cohort.vcz").write_text("not a directory")
    dataset_yaml = write_dataset_yaml(
        tmp_path, genotypes=[{"path": "cohort.vcz"}], clinical=None
    )
    with pytest.raises(DatasetDescriptionError, match="a VCF Zarr is a directory"):
        read_dataset_description(dataset_yaml)


@pytest.mark.parametrize("dataset_id", ["from-vcz", "from-vcf"])
def test_calls_take_the_lowered_chunks_and_sites_do_not(
    tmp_path, pair, monkeypatch, dataset_id
):
    """A large cohort's calls are chunked short for bounded memory; per-variant
    arrays keep ``variants_chunk_size`` (one chunk per Beacon lookup), from a
    VCF Zarr and from a VCF alike, and the store's values stay those of an
    ingest at the usual chunks."""
    node, from_vcf, from_vcz, _result = pair
    cohort = from_vcz if dataset_id == "from-vcz" else from_vcf
    # As if the cohort were ~1,000 times larger: 100-variant chunks of calls.
    monkeypatch.setattr(pipeline, "_ENCODE_BUFFER_BYTES", COHORT["samples"] * 3 * 100)
    with init_node(tmp_path / "node", node_id="n", country="FI") as small:
        with in_process_workers():
            ingest(small, cohort.dataset_yaml)
        root = _store(small, dataset_id)
        plain = _store(node, dataset_id)
        assert root["call_genotype"].chunks[0] == 100
        assert root["call_genotype_by_variant"].chunks[0] == 50
        per_variant = [
            name
            for name in root.array_keys()
            if root[name].attrs.get("_ARRAY_DIMENSIONS", [""])[0] == "variants"
            and "samples" not in root[name].attrs["_ARRAY_DIMENSIONS"]
        ]
        assert {"variant_position", "variant_allele", *STATISTICS} <= set(per_variant)
        for name in per_variant:
            assert root[name].chunks[0] == small.config.variants_chunk_size, name
        assert sorted(root.array_keys()) == sorted(plain.array_keys())
        for name in root.array_keys():
            np.testing.assert_array_equal(root[name][:], plain[name][:], err_msg=name)


def _rewrite(group, name, values, attrs, length):
    """``name`` in ``group`` as ``values`` in chunks of ``length`` variants."""
    text = values.dtype.kind in "OTU"
    array = group.create_array(
        name,
        shape=values.shape,
        chunks=(length, *values.shape[1:]),
        dtype=str if text else values.dtype,
        overwrite=True,
    )
    array.attrs.update(attrs)
    array[:] = values.astype(object) if text else values


def test_rechunking_the_sites_resumes_where_a_kill_left_it(tmp_path, pair):
    """Killed between moving an array's original aside and moving its copy in,
    or in the middle of a copy: the next run ends with the same arrays."""
    node, *_ = pair
    plain = _store(node, "from-vcf")
    names = ("variant_position", "variant_id")
    expected = {name: plain[name][:] for name in names}
    assert len(expected["variant_id"]) > 10
    vcz = tmp_path / "genotypes.vcz"
    shutil.copytree(node.datasets_dir / "from-vcf" / "genotypes.vcz", vcz)
    root = zarr.open_group(vcz, mode="r+")
    for name in names:  # as encode writes them for a large cohort: short chunks
        _rewrite(root, name, expected[name], dict(plain[name].attrs), 10)
    beside = tmp_path / "genotypes.vcz.rechunk"
    copies = zarr.open_group(beside, mode="w", zarr_format=2)
    # variant_position: its copy complete, the original moved aside, then killed.
    _rewrite(
        copies,
        "variant_position",
        expected["variant_position"],
        dict(plain["variant_position"].attrs),
        10_000,
    )
    os.rename(vcz / "variant_position", beside / "variant_position.old")
    # variant_id: its copy cut short, the original still in place.
    (beside / "variant_id").mkdir()
    (beside / "variant_id" / "0").write_bytes(b"cut")

    assert rechunk_sites(vcz, 10_000) == ["variant_id"]
    assert not beside.exists()
    root = zarr.open_group(vcz, mode="r")
    for name in names:
        assert root[name].chunks == (10_000,), name
        np.testing.assert_array_equal(root[name][:], expected[name], err_msg=name)
    assert root["call_genotype"].chunks == plain["call_genotype"].chunks
    assert rechunk_sites(vcz, 10_000) == []  # done: nothing left to do
