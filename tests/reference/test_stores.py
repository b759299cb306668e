"""QC and the reference build read the store through the node, wherever it is:
a node whose store is sealed (``encrypt_at_rest``) and a node whose sealed store
is in an S3 bucket (a real ``moto.server`` process) give the same QC results,
reference counts and allele frequencies as a plain local node.

The QC results and the reference of the object-store and sealed nodes are
objects of the node's storage (sealed on a sealed node), never local files: the
Beacon's and ``/reference``'s answers are the plain node's all the same, and no
sample id of the QC results can be read from a sealed node's objects.

The plain node reads the same VCF Zarr bytes the old path-based code read, so
it anchors the comparison; the other two could not be opened at all before
(zarr would have read sealed bytes, or a local directory that does not exist).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient

from genomenode.app import create_app
from genomenode.qc.flags import load_flags, load_report
from genomenode.qc.run import run_qc
from genomenode.reference.build import build_reference
from genomenode.reference.store import reference_location
from genomenode.store.compute import allele_frequencies
from genomenode.store.genotype_rows import GenotypeSource
from genomenode.store.node import open_node
from genomenode.store.published import PublishedDatasets

from ..conftest import write_small_cohort
from ..scale.moto_server import BUCKET, ingested_node, s3_in_environment

DATASET = "small"
_ARRAYS = (
    "allele_count",
    "allele_count_hom",
    "allele_count_het",
    "allele_count_hemi",
    "allele_number",
    "variant_pass",
)


@pytest.fixture(scope="module")
def s3():
    with s3_in_environment() as service:
        yield service


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cohort")
    cohort = write_small_cohort(
        directory / "cohort", num_samples=60, num_variants=300, seed=5
    )
    # Records for anyone: the Beacon's and /reference's frequencies are released
    # and can be compared.
    description = yaml.safe_load(cohort.read_text())
    description |= {"security_level": "PUBLIC", "beacon": {"anonymous": "record"}}
    cohort.write_text(yaml.safe_dump(description))
    return cohort


@pytest.fixture(scope="module")
def nodes(tmp_path_factory, s3, cohort):
    directory = tmp_path_factory.mktemp("stores")
    made = {
        "plain": ingested_node(directory / "plain", [cohort], sealed=False),
        "sealed": ingested_node(directory / "sealed", [cohort], sealed=True),
        "s3": ingested_node(
            directory / "s3",
            [cohort],
            sealed=True,
            storage=f"s3://{BUCKET}/stores-node",
            endpoint=s3.endpoint,
        ),
        "s3plain": ingested_node(
            directory / "s3plain",
            [cohort],
            sealed=False,
            storage=f"s3://{BUCKET}/plain-node",
            endpoint=s3.endpoint,
        ),
    }
    for node in made.values():
        run_qc(node, DATASET)
        build_reference(node)
    yield made
    for node in made.values():
        node.close()


def test_the_other_stores_are_not_plain_directories(nodes):
    for name in ("sealed", "s3"):
        node = nodes[name]
        manifest = node.dataset_manifest(DATASET)
        source = GenotypeSource.of(
            node, DATASET, manifest["fingerprint"], manifest["genotypes"]["path"]
        )
        assert source.node_dir and not source.path, name
        assert source.open().reads_copy
    assert nodes["s3"].remote and not nodes["sealed"].remote


@pytest.mark.parametrize("name", ["sealed", "s3", "s3plain"])
def test_qc_results_equal_the_plain_node(nodes, name):
    plain, other = (
        load_report(nodes["plain"], DATASET),
        load_report(nodes[name], DATASET),
    )
    assert other["summary"] == plain["summary"]
    assert other["samples"] == plain["samples"]
    assert other["related_pairs"] == plain["related_pairs"]
    expected, got = (
        load_flags(nodes["plain"], DATASET),
        load_flags(nodes[name], DATASET),
    )
    assert expected is not None and got is not None
    assert np.array_equal(got.sample_pass, expected.sample_pass)
    assert np.array_equal(got.variant_pass, expected.variant_pass)


@pytest.mark.parametrize("name", ["sealed", "s3", "s3plain"])
def test_reference_counts_equal_the_plain_node(nodes, name):
    def store(node):
        fingerprint = node.dataset_manifest(DATASET)["fingerprint"]
        found = reference_location(node, DATASET, fingerprint)
        assert found is not None
        return found[1]()

    plain, other = store(nodes["plain"]), store(nodes[name])
    assert other.populations == plain.populations
    assert other.population_samples == plain.population_samples
    assert plain.qc and other.qc
    expected = plain.block(0, plain.num_variants)
    got = other.block(0, other.num_variants)
    for array in _ARRAYS:
        assert np.array_equal(got[array], expected[array]), array
    assert expected["allele_number"].sum() > 0


@pytest.mark.parametrize("name", ["sealed", "s3"])
def test_allele_frequencies_equal_the_plain_node(nodes, name):
    expected = allele_frequencies(nodes["plain"], DATASET)
    assert np.array_equal(allele_frequencies(nodes[name], DATASET), expected)
    assert 0 < expected.mean() < 1


def _local_files(node) -> list[str]:
    return sorted(
        str(path.relative_to(node.config.node_dir))
        for path in node.config.node_dir.rglob("*")
    )


def test_the_plain_node_keeps_its_directories(nodes):
    """The embedded default is unchanged: ``qc/`` and ``reference.zarr`` beside
    the dataset, no switch object (what existing nodes hold and still load)."""
    dataset = nodes["plain"].datasets_dir / DATASET
    assert sorted(path.name for path in (dataset / "qc").iterdir()) == [
        "qc.json",
        "summary.json",
        "variants.npz",
    ]
    assert (dataset / "reference.zarr" / "zarr.json").is_file()
    assert not (dataset / "reference").exists()


@pytest.mark.parametrize("name", ["s3", "s3plain"])
def test_an_s3_node_keeps_no_derived_results_locally(nodes, name):
    node = nodes[name]
    local = _local_files(node)
    assert not [
        path
        for path in local
        if "qc" in path.split("/") or "reference" in path or path.endswith(".npz")
    ], local
    keys = node.objects.listing(node.dataset_prefix(DATASET, _fingerprint(node)))
    for kind in ("qc", "reference"):
        assert any(key.endswith(f"/{kind}/current.json") for key in keys), kind
    assert any(key.endswith("/qc.json") for key in keys)
    assert any("/reference/" in key and key.endswith("/zarr.json") for key in keys)


def _fingerprint(node) -> str:
    return str(node.dataset_manifest(DATASET)["fingerprint"])


def _variant_ids(node) -> list[str]:
    handle = PublishedDatasets(node).get(DATASET)
    root = handle.store.root
    contigs = [str(name) for name in root["contig_id"][:]]
    ids = []
    for row in (0, 7, 151, 299):
        alleles = handle.store.alleles(row, row + 1)[0]
        position = int(handle.store.positions(row, row + 1)[0])
        contig = contigs[int(root["variant_contig"][row])]
        ids.append(f"{contig}-{position}-{alleles[0]}-{alleles[1]}")
    return ids


def _answers(node) -> dict[str, object]:
    answers: dict[str, object] = {}
    app = create_app(node, disclosure_enabled=False)
    with TestClient(app) as client:
        index = client.get("/reference")
        assert index.status_code == 200, index.text
        answers["index"] = index.json()
        for variant in _variant_ids(node):
            reference = client.get(f"/reference/variants/{variant}")
            assert reference.status_code == 200, reference.text
            answers[f"reference {variant}"] = reference.json()
            beacon = client.get(
                f"/api/g_variants/{variant}",
                params={"requestedGranularity": "record"},
            ).json()
            (result,) = beacon["response"]["resultSets"][0]["results"]
            answers[f"beacon {variant}"] = result["frequencyInPopulations"]
    return answers


def _without_times(value):
    if isinstance(value, dict):
        return {
            key: _without_times(item)
            for key, item in value.items()
            if key not in ("builtAt", "built_at", "created")
        }
    if isinstance(value, list):
        return [_without_times(item) for item in value]
    return value


@pytest.mark.parametrize("name", ["sealed", "s3", "s3plain"])
def test_beacon_and_reference_answers_equal_the_plain_node(nodes, name):
    expected = _answers(nodes["plain"])
    assert any(
        item["alleleFrequency"] > 0
        for key, populations in expected.items()
        if key.startswith("beacon")
        for population in populations
        for item in population["frequencies"]
    )
    assert _without_times(_answers(nodes[name])) == _without_times(expected)


def _sample_patterns(node) -> list[bytes]:
    report = load_report(node, DATASET)
    assert report is not None
    return [json.dumps(sample["id"]).encode() for sample in report["samples"]]


@pytest.mark.parametrize("name", ["sealed", "s3"])
def test_a_sealed_node_stores_no_sample_id_of_its_qc_in_plaintext(nodes, name):
    node = nodes[name]
    patterns = _sample_patterns(node)
    assert len(patterns) == 60
    # The scan finds them where they are plaintext: the plain node's QC results
    # and an unsealed S3 node's objects.
    plain_report = (
        nodes["plain"].datasets_dir / DATASET / "qc" / "qc.json"
    ).read_bytes()
    assert all(pattern in plain_report for pattern in patterns)
    unsealed = nodes["s3plain"].objects
    assert any(
        patterns[0] in unsealed.read(key) for key in unsealed.listing("datasets")
    )
    keys = node.objects.listing("datasets")
    assert any(key.endswith("/qc.json") for key in keys)
    for key in keys:
        data = node.objects.read(key)
        found = [pattern for pattern in patterns if pattern in data]
        assert not found, (key, found[:3])
    # Nor any local file but the database (docs/encryption-at-rest.md: the
    # database's personal data are protected by the database's own means).
    for path in node.config.node_dir.rglob("*"):
        if path.is_file() and not path.name.startswith("genomenode.db"):
            data = path.read_bytes()
            assert not [p for p in patterns if p in data], path


def test_a_new_qc_run_switches_versions_and_keeps_the_one_before(nodes):
    node = nodes["s3"]
    base = f"{node.dataset_prefix(DATASET, _fingerprint(node))}/qc"

    def versions() -> set[str]:
        return {
            key[len(base) + 1 :].split("/")[0]
            for key in node.objects.listing(base)
            if key != f"{base}/current.json"
        }

    def current() -> str:
        return json.loads(node.objects.read(f"{base}/current.json"))["version"]

    first = current()
    before = load_report(node, DATASET)
    run_qc(node, DATASET)
    second = current()
    assert second != first and versions() == {first, second}
    run_qc(node, DATASET)
    third = current()
    assert versions() == {second, third}
    after = load_report(node, DATASET)
    assert after["samples"] == before["samples"]
    # Objects written without the switch (a run killed before it) are not read.
    node.objects.write(f"{base}/zz-unfinished/qc.json", b"{}")
    assert load_report(node, DATASET)["samples"] == before["samples"]
    run_qc(node, DATASET)  # ... and the next run deletes them
    assert versions() == {third, current()}


def test_turning_encryption_on_seals_the_next_run_and_drops_the_plain_one(
    tmp_path, nodes, cohort
):
    node = ingested_node(tmp_path / "node", [cohort], sealed=False)
    run_qc(node, DATASET)
    build_reference(node)
    dataset = node.datasets_dir / DATASET
    assert (dataset / "qc" / "qc.json").is_file()
    node.close()
    os.environ["GENOMENODE_ENCRYPT_AT_REST"] = "true"
    try:
        sealed = open_node(tmp_path / "node")
        # Until the next run, the plain results are what is read.
        assert (
            load_report(sealed, DATASET)["samples"]
            == (load_report(nodes["plain"], DATASET)["samples"])
        )
        run_qc(sealed, DATASET)
        build_reference(sealed)
        assert {path.name for path in (dataset / "qc").iterdir()} == {
            "current.json",
            json.loads((dataset / "qc" / "current.json").read_text())["version"],
        }
        assert not (dataset / "reference.zarr").exists()
        for path in (dataset / "qc").rglob("*"):
            assert path.stat().st_mode & 0o077 == 0, path  # owner only
        patterns = _sample_patterns(sealed)
        for path in dataset.rglob("*"):
            if path.is_file():
                assert not [p for p in patterns if p in path.read_bytes()], path
        expected = load_flags(nodes["plain"], DATASET)
        got = load_flags(sealed, DATASET)
        assert np.array_equal(got.sample_pass, expected.sample_pass)
        assert _without_times(_answers(sealed)) == _without_times(
            _answers(nodes["plain"])
        )
        sealed.close()
    finally:
        os.environ.pop("GENOMENODE_ENCRYPT_AT_REST")
