"""Whole ingests of bad inputs: each fails naming where, and publishes nothing."""

from __future__ import annotations

import json
import os
import pathlib

import pytest

from genomenode.errors import (
    ClinicalDataError,
    DatasetDescriptionError,
    IngestError,
    InputError,
    VcfError,
)
from genomenode.ingest.pipeline import ingest
from tests.conftest import write_dataset_yaml, write_vcf

SAMPLES = ("S1", "S2", "S3")
# write_vcf writes fileformat, two contigs, FORMAT=GT, then the #CHROM line; with no
# extra header lines the first record is on line 6.
FIRST_RECORD_LINE = 6


@pytest.fixture(autouse=True)
def _close_database(node):
    """Close the node's pooled database connections after each test.

    The ``node`` fixture leaves them open; on PostgreSQL, psycopg then warns
    (ResourceWarning, an error here) when they are garbage-collected, in whichever
    later test that happens.
    """
    yield
    node.engine.dispose()


def record(contig: str, position: int, ref: str = "A", alt: str = "G") -> str:
    return f"{contig}\t{position}\t.\t{ref}\t{alt}\t.\tPASS\t.\tGT\t0/1\t1/1\t0/0"


GOOD_RECORDS = [record("1", 100), record("1", 200, "C", "T"), record("2", 50)]


def write_individuals(path: pathlib.Path, ids=SAMPLES, **fields) -> pathlib.Path:
    path.write_text(
        json.dumps(
            [
                {"id": sample, "sex": {"id": "NCIT:C20197", "label": "male"}, **fields}
                for sample in ids
            ]
        )
    )
    return path


def inputs(tmp_path: pathlib.Path, records=GOOD_RECORDS, **vcf_options) -> pathlib.Path:
    """A directory with cohort.vcf.gz (S1-S3) and individuals.json (S1-S3)."""
    directory = tmp_path / "inputs"
    directory.mkdir()
    write_vcf(directory / "cohort.vcf.gz", records, **vcf_options)
    write_individuals(directory / "individuals.json")
    return directory


def assert_nothing_published(node, dataset_id: str) -> None:
    assert node.published() == []
    assert (node.datasets_dir / dataset_id).exists() is False


def failure(node, dataset_yaml: pathlib.Path, error_class) -> InputError:
    """The ingest fails with ``error_class``, naming its file; nothing is published."""
    with pytest.raises(error_class) as caught:
        ingest(node, dataset_yaml)
    error = caught.value
    assert error.status == 400
    assert error.path is not None
    assert str(error).startswith(error.path)
    return error


def assert_names(error: InputError, path: pathlib.Path, line=None, field=None):
    assert error.path == str(path.resolve())
    assert error.line == line
    assert error.field == field
    if line is not None:
        assert f"line {line}" in str(error)
    if field is not None:
        assert f"field {field!r}" in str(error)


def test_truncated_bgzip(node, tmp_path):
    directory = inputs(tmp_path)
    vcf = directory / "cohort.vcf.gz"
    data = vcf.read_bytes()
    vcf.write_bytes(data[: len(data) - 30])
    dataset_yaml = write_dataset_yaml(directory, id="truncated")

    error = failure(node, dataset_yaml, VcfError)

    assert_names(error, vcf)
    assert "truncated BGZF file" in str(error)
    assert_nothing_published(node, "truncated")


def test_unsorted_records_without_an_index(node, tmp_path):
    directory = inputs(
        tmp_path,
        [record("1", 100), record("1", 300), record("1", 200), record("1", 150)],
        index=False,
    )
    dataset_yaml = write_dataset_yaml(directory, id="unsorted")

    error = failure(node, dataset_yaml, VcfError)

    assert_names(
        error, directory / "cohort.vcf.gz", line=FIRST_RECORD_LINE + 2, field="POS"
    )
    assert "records are not sorted" in str(error)
    assert "1:200 comes after 1:300" in str(error)
    assert_nothing_published(node, "unsorted")
    # The operator's directory is not written to.
    assert sorted(path.name for path in directory.iterdir()) == [
        "cohort.vcf.gz",
        "dataset.yaml",
        "individuals.json",
    ]


def test_contig_again_without_an_index(node, tmp_path):
    directory = inputs(
        tmp_path, [record("1", 100), record("2", 50), record("1", 200)], index=False
    )
    dataset_yaml = write_dataset_yaml(directory, id="unsorted")

    error = failure(node, dataset_yaml, VcfError)

    assert_names(
        error, directory / "cohort.vcf.gz", line=FIRST_RECORD_LINE + 2, field="CHROM"
    )
    assert "contig '1' appears again" in str(error)
    assert_nothing_published(node, "unsorted")


def write_with_stale_index(directory: pathlib.Path, records: list[str]) -> None:
    """An unsorted VCF beside an index the operator made before it changed.

    tabix cannot index unsorted records, so a supplied index can only be one that
    no longer matches; it is newer than the VCF, so genomenode uses it.
    """
    vcf = directory / "cohort.vcf.gz"
    fields = [line.split("\t") for line in records]
    in_order = sorted(fields, key=lambda columns: (columns[0], int(columns[1])))
    write_vcf(vcf, ["\t".join(columns) for columns in in_order])
    write_vcf(vcf, records, index=False)
    index = directory / "cohort.vcf.gz.csi"
    assert index.exists()
    vcf_mtime = vcf.stat().st_mtime_ns
    os.utime(index, ns=(vcf_mtime + 10**9, vcf_mtime + 10**9))


@pytest.mark.parametrize(
    ("records", "field", "words"),
    [
        (
            [record("1", 100), record("1", 300), record("1", 200), record("2", 5)],
            "POS",
            "position 200 comes after 300",
        ),
        (
            [record("1", 100), record("2", 50), record("1", 200)],
            "CHROM",
            "contig '1' appears again",
        ),
    ],
    ids=["positions", "contig-again"],
)
def test_unsorted_records_with_a_supplied_index(node, tmp_path, records, field, words):
    directory = inputs(tmp_path)
    write_with_stale_index(directory, records)
    dataset_yaml = write_dataset_yaml(directory, id="unsorted")

    error = failure(node, dataset_yaml, VcfError)

    assert_names(
        error, directory / "cohort.vcf.gz", line=FIRST_RECORD_LINE + 2, field=field
    )
    assert "records are not sorted" in str(error)
    assert words in str(error)
    assert_nothing_published(node, "unsorted")


def test_undeclared_contig(node, tmp_path):
    directory = inputs(tmp_path, [record("1", 100), record("2", 50), record("3", 10)])
    dataset_yaml = write_dataset_yaml(directory, id="undeclared")

    error = failure(node, dataset_yaml, VcfError)

    assert_names(
        error, directory / "cohort.vcf.gz", line=FIRST_RECORD_LINE + 2, field="CHROM"
    )
    assert "contig '3' is not declared in the header" in str(error)
    assert_nothing_published(node, "undeclared")


def test_malformed_header_line(node, tmp_path):
    directory = inputs(
        tmp_path,
        extra_header=('##INFO=<ID=DP,Number=1,Description="Depth">',),
    )
    dataset_yaml = write_dataset_yaml(directory, id="bad-header")

    error = failure(node, dataset_yaml, VcfError)

    assert_names(error, directory / "cohort.vcf.gz", line=5, field="INFO")
    assert "Type= is missing" in str(error)
    assert_nothing_published(node, "bad-header")


def test_header_line_without_closing_bracket(node, tmp_path):
    directory = inputs(
        tmp_path,
        extra_header=('##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth"',),
    )
    dataset_yaml = write_dataset_yaml(directory, id="bad-header")

    error = failure(node, dataset_yaml, VcfError)

    assert_names(error, directory / "cohort.vcf.gz", line=5)
    assert "malformed header line" in str(error)
    assert_nothing_published(node, "bad-header")


def test_duplicate_sample_ids(node, tmp_path):
    directory = inputs(tmp_path, samples=["S1", "S2", "S1"])
    dataset_yaml = write_dataset_yaml(directory, id="duplicates")

    error = failure(node, dataset_yaml, VcfError)

    assert_names(error, directory / "cohort.vcf.gz", line=5, field="#CHROM")
    assert "duplicate sample id 'S1'" in str(error)
    assert_nothing_published(node, "duplicates")


def test_genotyped_sample_missing_from_clinical_data(node, tmp_path):
    directory = inputs(tmp_path)
    write_individuals(directory / "individuals.json", ids=("S1", "S3"))
    dataset_yaml = write_dataset_yaml(directory, id="missing")

    error = failure(node, dataset_yaml, ClinicalDataError)

    assert_names(error, directory / "individuals.json")
    assert "1 genotyped sample(s) have no clinical record: 'S2'" in str(error)
    assert "missing_clinical: allow" in str(error)
    assert_nothing_published(node, "missing")


def test_missing_clinical_allowed(node, tmp_path):
    directory = inputs(tmp_path)
    write_individuals(directory / "individuals.json", ids=("S1", "S3"))
    dataset_yaml = write_dataset_yaml(directory, id="missing", missing_clinical="allow")

    result = ingest(node, dataset_yaml)

    assert result.status == "published"
    assert result.num_samples == 3
    assert result.num_individuals == 3
    assert result.num_variants == len(GOOD_RECORDS)
    assert [dataset.id for dataset in node.published()] == ["missing"]
    assert (node.datasets_dir / "missing" / "dataset.json").exists()


def test_unknown_ontology_prefix_in_clinical_data(node, tmp_path):
    directory = inputs(tmp_path)
    write_individuals(
        directory / "individuals.json",
        diseases=[{"diseaseCode": {"id": "FOO:123", "label": "foo"}}],
    )
    dataset_yaml = write_dataset_yaml(directory, id="bad-clinical")

    error = failure(node, dataset_yaml, ClinicalDataError)

    assert_names(
        error, directory / "individuals.json", field="diseases[0].diseaseCode.id"
    )
    assert "record [0] (individual S1)" in str(error)
    assert_nothing_published(node, "bad-clinical")


def test_invalid_duo_code(node, tmp_path):
    directory = inputs(tmp_path, index=False)
    dataset_yaml = write_dataset_yaml(
        directory, id="bad-duo", data_use=[{"id": "DUO:9999999"}]
    )

    error = failure(node, dataset_yaml, DatasetDescriptionError)

    assert_names(error, dataset_yaml, field="data_use[0].id")
    assert "invalid DUO code 'DUO:9999999'" in str(error)
    assert_nothing_published(node, "bad-duo")


def test_unknown_security_level(node, tmp_path):
    directory = inputs(tmp_path, index=False)
    dataset_yaml = write_dataset_yaml(directory, id="secret", security_level="SECRET")

    error = failure(node, dataset_yaml, DatasetDescriptionError)

    assert_names(error, dataset_yaml, field="security_level")
    assert "'SECRET'" in str(error)
    assert "PUBLIC, REGISTERED, CONTROLLED" in str(error)
    assert_nothing_published(node, "secret")


def test_published_id_with_different_content(node, tmp_path):
    directory = inputs(tmp_path)
    dataset_yaml = write_dataset_yaml(directory, id="cohort")
    first = ingest(node, dataset_yaml)
    assert first.status == "published"
    manifest = node.datasets_dir / "cohort" / "dataset.json"
    manifest_before = manifest.read_bytes()
    (row_before,) = node.published()

    write_vcf(directory / "cohort.vcf.gz", [*GOOD_RECORDS, record("2", 60)])
    with pytest.raises(IngestError) as caught:
        ingest(node, dataset_yaml)

    error = caught.value
    assert error.status == 409
    assert "dataset 'cohort' is already published with different content" in str(error)
    assert "cohort-v2" in str(error)
    (row_after,) = node.published()
    assert row_after.id == "cohort"
    assert row_after.fingerprint == row_before.fingerprint
    assert row_after.num_variants == first.num_variants == len(GOOD_RECORDS)
    assert manifest.read_bytes() == manifest_before
    assert sorted(path.name for path in node.datasets_dir.iterdir()) == ["cohort"]


def test_reingesting_identical_inputs_is_unchanged(node, tmp_path):
    directory = inputs(tmp_path)
    dataset_yaml = write_dataset_yaml(directory, id="cohort")
    first = ingest(node, dataset_yaml)
    manifest = node.datasets_dir / "cohort" / "dataset.json"
    manifest_before = manifest.read_bytes()

    again = ingest(node, dataset_yaml)

    assert first.status == "published"
    assert again.status == "unchanged"
    assert again.dataset_id == "cohort"
    assert (again.num_individuals, again.num_samples, again.num_variants) == (
        first.num_individuals,
        first.num_samples,
        first.num_variants,
    )
    assert [dataset.id for dataset in node.published()] == ["cohort"]
    assert manifest.read_bytes() == manifest_before
