"""Exports: the VCF passes bcftools and its INFO equals the node's /reference
answer and its Beacon frequencyInPopulations; the Parquet has the GDI mini-node
columns and types (the sample in the shared reference data) and the same numbers."""

from __future__ import annotations

import subprocess

import pyarrow.parquet as pq
import pysam
import pytest
from fastapi.testclient import TestClient

from genomenode.app import create_app, disclosure_of
from genomenode.reference.export import PARQUET_COLUMNS, export_reference, info_suffix

# Common variants of the 1000 Genomes slice; the second site is multi-allelic.
VARIANTS = ["1-10177-A-AC", "1-15274-A-G", "1-15274-A-T", "X-732913-C-A"]
GDI_SAMPLE = (
    "/work/shared/reference-data/gdi-mini-node/data/GDI-DS-20251201001/GRCh37/"
    "allele-freq-chr3.4.parquet"
)


@pytest.fixture(scope="module")
def exported(reference_node, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    control = disclosure_of(reference_node.node, 5)
    vcf = export_reference(
        reference_node.node, fmt="vcf", out=out / "goe-fi.vcf.gz", control=control
    )
    parquet = export_reference(
        reference_node.node, fmt="parquet", out=out / "goe-fi.parquet", control=control
    )
    return vcf, parquet


@pytest.fixture(scope="module")
def client(reference_node):
    with TestClient(create_app(reference_node.node)) as test_client:
        yield test_client


def _vcf_record(path, variant_id):
    contig, position, reference, alternate = variant_id.rsplit("-", 3)
    with pysam.VariantFile(str(path)) as vcf:
        for record in vcf.fetch(contig, int(position) - 1, int(position)):
            if record.ref == reference and record.alts == (alternate,):
                return record
    raise AssertionError(f"{variant_id} not exported")


def test_vcf_passes_bcftools_view(exported):
    vcf, _ = exported
    path = vcf.paths[0]
    body = subprocess.run(
        ["bcftools", "view", "-H", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert len(body.splitlines()) == vcf.num_records > 1_500
    assert vcf.datasets == ["kg", "kgx"]
    # Indexed: a region query answers.
    region = subprocess.run(
        ["bcftools", "view", "-H", "-r", "1:15274", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert len(region.splitlines()) == 2  # the multi-allelic site, split


@pytest.mark.parametrize("variant_id", VARIANTS)
def test_vcf_info_equals_the_reference_and_the_beacon(exported, client, variant_id):
    vcf, _ = exported
    record = _vcf_record(vcf.paths[0], variant_id)
    answer = client.get(f"/reference/variants/{variant_id}").json()
    assert answer["exists"]
    (dataset,) = answer["datasets"]
    beacon = client.get(
        f"/api/g_variants/{variant_id}", params={"requestedGranularity": "record"}
    ).json()
    (result,) = beacon["response"]["resultSets"][0]["results"]
    frequencies = {
        item["population"]: item
        for item in result["frequencyInPopulations"][0]["frequencies"]
    }
    assert set(frequencies) == {item["population"] for item in dataset["populations"]}
    for item in dataset["populations"]:
        suffix = info_suffix(item["population"])
        assert record.info[f"AC{suffix}"] == (item["alleleCount"],)
        assert record.info[f"AN{suffix}"] == item["alleleNumber"]
        assert record.info[f"AF{suffix}"][0] == pytest.approx(
            item["alleleFrequency"], rel=1e-5
        )
        assert record.info[f"nhomalt{suffix}"] == (item["nhomalt"],)
        assert record.info[f"AC_het{suffix}"] == (item["alleleCountHeterozygous"],)
        assert record.info[f"AC_hemi{suffix}"] == (item["alleleCountHemizygous"],)
        same = frequencies[item["population"]]
        for key in (
            "alleleCount",
            "alleleNumber",
            "alleleCountHomozygous",
            "alleleCountHeterozygous",
            "alleleCountHemizygous",
        ):
            assert same[key] == item[key], (item["population"], key)
    assert record.info["faf95"][0] == pytest.approx(
        dataset["populations"][0]["faf95"], rel=1e-5
    )
    assert record.info["grpmax"] == ("fi",)


def test_parquet_has_the_gdi_columns_and_the_same_numbers(exported, client):
    _, parquet = exported
    assert len(parquet.paths) == 2  # one file per chromosome, as GDI keeps them
    assert [path.name for path in parquet.paths] == [
        "goe-fi.chr1.parquet",
        "goe-fi.chrX.parquet",
    ]
    table = pq.read_table(parquet.paths[0])
    assert tuple(table.column_names) == PARQUET_COLUMNS
    assert (
        table.schema.remove_metadata() == pq.read_schema(GDI_SAMPLE).remove_metadata()
    )
    assert table.schema.metadata[b"genomenode:contig"] == b"1"
    rows = table.to_pylist()
    answer = client.get("/reference/variants/1-15274-A-T").json()
    expected = {
        item["population"]: item for item in answer["datasets"][0]["populations"]
    }
    found = {
        row["POPULATION"]: row
        for row in rows
        if (row["POS"], row["REF"], row["ALT"]) == (15274, "A", "T")
    }
    assert set(found) == set(expected)
    for name, row in found.items():
        assert row["VT"] == "SNP"
        assert (row["AC"], row["AN"], row["AC_HOM"], row["AC_HET"], row["AC_HEMI"]) == (
            expected[name]["alleleCount"],
            expected[name]["alleleNumber"],
            expected[name]["alleleCountHomozygous"],
            expected[name]["alleleCountHeterozygous"],
            expected[name]["alleleCountHemizygous"],
        )
        assert row["AF"] == pytest.approx(expected[name]["alleleFrequency"])
