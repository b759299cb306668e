"""dataset.yaml: a valid description parses; each mistake names the file and field."""

from __future__ import annotations

import pathlib

import pysam
import pytest

from genomenode.dataset import (
    SECURITY_LEVELS,
    AlignmentSource,
    ClinicalSource,
    DataUseTerm,
    read_dataset_description,
)
from genomenode.errors import DatasetDescriptionError, InputError
from tests.conftest import write_dataset_yaml


@pytest.fixture
def directory(tmp_path) -> pathlib.Path:
    """A directory with the input files the default dataset.yaml names."""
    directory = tmp_path / "inputs"
    directory.mkdir()
    # read_dataset_description checks that inputs exist, not what is in them.
    (directory / "cohort.vcf.gz").write_bytes(b"")
    (directory / "individuals.json").write_text("[]")
    return directory


def failure(path: pathlib.Path) -> DatasetDescriptionError:
    """The error reading ``path`` raises; it always names the file."""
    with pytest.raises(DatasetDescriptionError) as caught:
        read_dataset_description(path)
    error = caught.value
    assert isinstance(error, InputError)
    assert error.status == 400
    assert error.path == str(path.resolve())
    assert str(path.resolve()) in str(error)
    return error


def assert_field(error: DatasetDescriptionError, field: str) -> None:
    assert error.field == field
    assert repr(field) in str(error)


def test_valid_description_parses(directory):
    (directory / "genes.bed").write_text("")
    path = write_dataset_yaml(
        directory,
        id="cohort-1.v2_final",
        data_use=[
            {"id": "DUO:0000007", "disease": "ICD10:E10"},
            {"id": "DUO:0000016"},
            "DUO:0000019",
        ],
        missing_clinical="allow",
        genes="genes.bed",
    )

    description = read_dataset_description(path)

    assert description.source == path.resolve()
    assert description.source.is_absolute()
    assert description.id == "cohort-1.v2_final"
    assert description.name == "Test dataset"
    assert description.description == "A dataset for tests"
    assert description.country == "FI"
    assert description.contact_name == "Test"
    assert description.contact_email == "test@example.org"
    assert description.security_level == "CONTROLLED"
    assert description.assembly == "GRCh37"
    assert description.missing_clinical == "allow"
    assert description.data_use == (
        DataUseTerm(
            "DUO:0000007", "disease specific research", "permission", "ICD10:E10"
        ),
        DataUseTerm("DUO:0000016", "genetic studies only", "modifier"),
        DataUseTerm("DUO:0000019", "publication required", "modifier"),
    )
    assert description.genotypes == ((directory / "cohort.vcf.gz").resolve(),)
    assert all(path.is_absolute() for path in description.genotypes)
    assert description.clinical == ClinicalSource(
        format="beacon-individuals",
        path=(directory / "individuals.json").resolve(),
    )
    assert description.clinical.path.is_absolute()
    assert description.genes == (directory / "genes.bed").resolve()
    assert description.genes.is_absolute()
    assert description.document["id"] == "cohort-1.v2_final"


def test_defaults(directory):
    description = read_dataset_description(
        write_dataset_yaml(directory, format_version=None)
    )

    assert description.missing_clinical == "error"
    assert description.genes is None
    assert description.clinical.list_separator == ";"
    assert description.clinical.columns == {}


def test_relative_paths_resolve_against_the_yaml_not_the_cwd(directory, monkeypatch):
    path = write_dataset_yaml(directory)
    monkeypatch.chdir(directory.parent)

    description = read_dataset_description(pathlib.Path("inputs") / "dataset.yaml")

    assert description.source == path.resolve()
    assert description.genotypes[0] == (directory / "cohort.vcf.gz").resolve()


def test_csv_clinical_source_with_column_mapping(directory):
    (directory / "clinical.csv").write_text("sample,gender\n")
    path = write_dataset_yaml(
        directory,
        clinical={
            "format": "csv",
            "path": "clinical.csv",
            "columns": {"id": "sample", "sex": "gender"},
            "list_separator": "|",
        },
    )

    clinical = read_dataset_description(path).clinical

    assert clinical.format == "csv"
    assert clinical.path == (directory / "clinical.csv").resolve()
    assert dict(clinical.columns) == {"id": "sample", "sex": "gender"}
    assert clinical.list_separator == "|"


@pytest.mark.parametrize(
    "field",
    [
        "id",
        "name",
        "description",
        "country",
        "security_level",
        "assembly",
        "data_use",
        "genotypes",
        "contact",
    ],
)
def test_missing_required_field(directory, field):
    error = failure(write_dataset_yaml(directory, **{field: None}))

    assert_field(error, field)
    assert "required" in error.message


def test_no_clinical_is_a_genotypes_only_dataset(directory):
    description = read_dataset_description(write_dataset_yaml(directory, clinical=None))

    assert description.clinical is None
    assert description.missing_clinical == "allow"


def test_no_clinical_with_missing_clinical_error_is_refused(directory):
    error = failure(
        write_dataset_yaml(directory, clinical=None, missing_clinical="error")
    )

    assert_field(error, "clinical")
    assert "missing_clinical" in error.message


def test_clinical_still_defaults_to_every_sample_needing_a_record(directory):
    assert read_dataset_description(write_dataset_yaml(directory)).missing_clinical == (
        "error"
    )


@pytest.mark.parametrize("field", ["name", "email"])
def test_missing_contact_field(directory, field):
    contact = {"name": "Test", "email": "test@example.org"}
    del contact[field]

    error = failure(write_dataset_yaml(directory, contact=contact))

    assert_field(error, f"contact.{field}")
    assert "required" in error.message


def test_empty_required_field(directory):
    error = failure(write_dataset_yaml(directory, name=""))

    assert_field(error, "name")


def test_invalid_contact_email(directory):
    path = write_dataset_yaml(directory, contact={"name": "T", "email": "nobody"})

    error = failure(path)

    assert_field(error, "contact.email")
    assert "'nobody'" in str(error)


@pytest.mark.parametrize(
    "dataset_id", ["has space", "slash/id", "-leading-dash", "x" * 65, "é"]
)
def test_bad_id_characters(directory, dataset_id):
    error = failure(write_dataset_yaml(directory, id=dataset_id))

    assert_field(error, "id")
    assert repr(dataset_id) in str(error)


@pytest.mark.parametrize("country", ["fi", "Fi", "FIN", "F", "F1"])
def test_country_must_be_upper_case_alpha_2(directory, country):
    error = failure(write_dataset_yaml(directory, country=country))

    assert_field(error, "country")
    assert repr(country) in str(error)
    assert "ISO 3166-1 alpha-2" in str(error)


def test_unknown_security_level_lists_the_valid_ones(directory):
    error = failure(write_dataset_yaml(directory, security_level="SECRET"))

    assert_field(error, "security_level")
    assert "'SECRET'" in str(error)
    for level in SECURITY_LEVELS:
        assert level in str(error)
    assert set(SECURITY_LEVELS) == {"PUBLIC", "REGISTERED", "CONTROLLED"}


def test_security_level_is_case_sensitive(directory):
    error = failure(write_dataset_yaml(directory, security_level="public"))

    assert_field(error, "security_level")


def test_invalid_duo_code(directory):
    path = write_dataset_yaml(
        directory, data_use=[{"id": "DUO:0000042"}, {"id": "DUO:9999999"}]
    )

    error = failure(path)

    assert_field(error, "data_use[1].id")
    assert "invalid DUO code 'DUO:9999999'" in str(error)


@pytest.mark.parametrize("disease", [None, "", "diabetes", "FOO:123"])
def test_disease_specific_research_needs_a_disease(directory, disease):
    entry = {"id": "DUO:0000007"}
    if disease is not None:
        entry["disease"] = disease

    error = failure(write_dataset_yaml(directory, data_use=[entry]))

    assert_field(error, "data_use[0].disease")
    assert "DUO:0000007" in str(error)
    assert "disease term" in str(error)


def test_modifier_takes_no_disease(directory):
    path = write_dataset_yaml(
        directory,
        data_use=[
            {"id": "DUO:0000042"},
            {"id": "DUO:0000016", "disease": "ICD10:E10"},
        ],
    )

    error = failure(path)

    assert_field(error, "data_use[1].disease")
    assert "DUO:0000016 takes no disease" in str(error)


def test_general_permission_takes_no_disease(directory):
    path = write_dataset_yaml(
        directory, data_use=[{"id": "DUO:0000042", "disease": "ICD10:E10"}]
    )

    error = failure(path)

    assert_field(error, "data_use[0].disease")


def test_no_permission_code(directory):
    path = write_dataset_yaml(
        directory, data_use=[{"id": "DUO:0000016"}, {"id": "DUO:0000019"}]
    )

    error = failure(path)

    assert_field(error, "data_use")
    assert "exactly one data use permission" in str(error)
    assert "found none" in str(error)


def test_two_permission_codes(directory):
    path = write_dataset_yaml(
        directory, data_use=[{"id": "DUO:0000042"}, {"id": "DUO:0000006"}]
    )

    error = failure(path)

    assert_field(error, "data_use")
    assert "exactly one data use permission" in str(error)
    assert "DUO:0000042" in str(error)
    assert "DUO:0000006" in str(error)


def test_empty_data_use(directory):
    error = failure(write_dataset_yaml(directory, data_use=[]))

    assert_field(error, "data_use")


def test_unknown_data_use_key(directory):
    path = write_dataset_yaml(
        directory, data_use=[{"id": "DUO:0000042", "until": "2030"}]
    )

    error = failure(path)

    assert_field(error, "data_use[0]")
    assert "until" in str(error)


def test_genotype_path_that_does_not_exist(directory):
    path = write_dataset_yaml(directory, genotypes=[{"path": "missing.vcf.gz"}])

    error = failure(path)

    assert_field(error, "genotypes[0].path")
    assert "'missing.vcf.gz' does not exist" in str(error)
    assert str(directory.resolve() / "missing.vcf.gz") in str(error)


def test_genotype_path_that_is_a_directory(directory):
    (directory / "calls.vcf.gz").mkdir()
    path = write_dataset_yaml(directory, genotypes=[{"path": "calls.vcf.gz"}])

    error = failure(path)

    assert_field(error, "genotypes[0].path")
    assert "is a directory" in str(error)


def test_clinical_path_that_does_not_exist(directory):
    path = write_dataset_yaml(
        directory, clinical={"format": "phenopackets", "path": "packets"}
    )

    error = failure(path)

    assert_field(error, "clinical.path")
    assert "'packets' does not exist" in str(error)


def test_phenopackets_directory_is_accepted(directory):
    (directory / "packets").mkdir()
    path = write_dataset_yaml(
        directory, clinical={"format": "phenopackets", "path": "packets"}
    )

    clinical = read_dataset_description(path).clinical

    assert clinical.format == "phenopackets"
    assert clinical.path == (directory / "packets").resolve()


def test_unknown_clinical_format(directory):
    path = write_dataset_yaml(
        directory, clinical={"format": "excel", "path": "individuals.json"}
    )

    error = failure(path)

    assert_field(error, "clinical.format")
    assert "'excel'" in str(error)
    for known in ("phenopackets", "beacon-individuals", "csv"):
        assert known in str(error)


@pytest.mark.parametrize("columns", [None, {"sex": "gender"}, ["id", "sex"]])
def test_csv_clinical_without_column_mapping(directory, columns):
    (directory / "clinical.csv").write_text("id,sex\n")
    clinical = {"format": "csv", "path": "clinical.csv"}
    if columns is not None:
        clinical["columns"] = columns

    error = failure(write_dataset_yaml(directory, clinical=clinical))

    assert_field(error, "clinical.columns")
    assert "column mapping" in str(error)


def test_csv_clinical_with_unknown_column_key(directory):
    (directory / "clinical.csv").write_text("id,height\n")
    clinical = {
        "format": "csv",
        "path": "clinical.csv",
        "columns": {"id": "id", "height": "height"},
    }

    error = failure(write_dataset_yaml(directory, clinical=clinical))

    assert_field(error, "clinical.columns.height")


def test_unknown_missing_clinical_policy(directory):
    error = failure(write_dataset_yaml(directory, missing_clinical="ignore"))

    assert_field(error, "missing_clinical")
    assert "'ignore'" in str(error)


def test_invalid_yaml_reports_the_line(directory):
    path = directory / "dataset.yaml"
    path.write_text("format_version: 1\nid: test\nname: a: b\ndescription: x\n")

    error = failure(path)

    assert error.line == 3
    assert error.field is None
    assert f"{path.resolve()}, line 3: not valid YAML" in str(error)


def test_yaml_that_is_not_a_mapping(directory):
    path = directory / "dataset.yaml"
    path.write_text("- id: test\n")

    error = failure(path)

    assert "expected a YAML mapping" in str(error)


def test_missing_file(directory):
    path = directory / "nowhere.yaml"

    error = failure(path)

    assert "cannot read" in str(error)


@pytest.mark.parametrize("version", [2, 0, "1"])
def test_unsupported_format_version(directory, version):
    error = failure(write_dataset_yaml(directory, format_version=version))

    assert_field(error, "format_version")
    assert f"{version!r} is not supported" in str(error)


def test_beacon_granularity_defaults_are_filled_into_the_document(directory):
    description = read_dataset_description(write_dataset_yaml(directory))

    expected = {"anonymous": "boolean", "registered": "count", "granted": "record"}
    assert dict(description.beacon_granularity) == expected
    assert description.document["beacon"] == expected


def test_beacon_granularity_partial_block_is_filled_upwards(directory):
    # A missing level is never below the one under it: registered becomes record.
    path = write_dataset_yaml(directory, beacon={"anonymous": "record"})

    description = read_dataset_description(path)

    assert dict(description.beacon_granularity) == {
        "anonymous": "record",
        "registered": "record",
        "granted": "record",
    }
    assert description.document["beacon"] == description.beacon_granularity


def test_beacon_granularity_above_the_security_level_is_allowed(directory):
    path = write_dataset_yaml(
        directory,
        security_level="CONTROLLED",
        beacon={"anonymous": "count", "registered": "record", "granted": "record"},
    )

    description = read_dataset_description(path)

    assert description.beacon_granularity["anonymous"] == "count"


@pytest.mark.parametrize(
    ("block", "field", "message"),
    [
        ("everything", "beacon", "must be a mapping"),
        ({"anonymous": "records"}, "beacon.anonymous", "boolean, count, record"),
        ({"anonymous": True}, "beacon.anonymous", "use one of"),
        ({"public": "count"}, "beacon.public", "unknown access level"),
        (
            {"anonymous": "count", "registered": "boolean"},
            "beacon.registered",
            "must not see less",
        ),
        ({"registered": "record", "granted": "count"}, "beacon.granted", "less"),
    ],
)
def test_bad_beacon_block_names_the_field(directory, block, field, message):
    error = failure(write_dataset_yaml(directory, beacon=block))

    assert_field(error, field)
    assert message in str(error)


def test_dac_members_are_kept_in_the_document(directory):
    path = write_dataset_yaml(
        directory, dac={"members": [" dac-carol ", "dac-dan", "dac-carol"]}
    )

    description = read_dataset_description(path)

    assert description.dac_members == ("dac-carol", "dac-dan")
    assert description.document["dac"] == {"members": ["dac-carol", "dac-dan"]}


def test_no_dac_block(directory):
    description = read_dataset_description(write_dataset_yaml(directory))

    assert description.dac_members == ()
    assert "dac" not in description.document


@pytest.mark.parametrize(
    ("block", "field", "message"),
    [
        (["dac-carol"], "dac", "must be a mapping"),
        ({}, "dac.members", "is required"),
        ({"members": "dac-carol"}, "dac.members", "a list"),
        ({"members": ["dac-carol", ""]}, "dac.members[1]", "non-empty subject"),
        ({"members": [7]}, "dac.members[0]", "non-empty subject"),
        ({"members": [], "chair": "x"}, "dac.chair", "unknown key"),
    ],
)
def test_bad_dac_block_names_the_field(directory, block, field, message):
    error = failure(write_dataset_yaml(directory, dac=block))

    assert_field(error, field)
    assert message in str(error)


def write_alignment_files(directory: pathlib.Path) -> None:
    """reads.bam with reads.bam.bai, lane.bam with lane.bai, reads.cram, a FASTA."""
    header = {"SQ": [{"SN": "1", "LN": 1000}], "RG": [{"ID": "a", "SM": "S1"}]}
    for name in ("reads.bam", "lane.bam"):
        with pysam.AlignmentFile(str(directory / name), "wb", header=header):
            pass
    (directory / "reads.bam.bai").write_bytes(b"BAI\x01")
    (directory / "lane.bai").write_bytes(b"BAI\x01")
    (directory / "reads.cram").write_bytes(b"CRAM\x03\x01" + bytes(20))
    (directory / "ref.fa").write_text(">1\nACGT\n")


def test_alignments_parse(directory):
    write_alignment_files(directory)
    path = write_dataset_yaml(
        directory,
        alignments=[
            {"path": "reads.bam", "sample": "S1"},
            "lane.bam",
            {"path": "reads.cram", "reference": "ref.fa"},
        ],
    )

    description = read_dataset_description(path)

    assert description.alignments == (
        AlignmentSource(
            path=directory.resolve() / "reads.bam",
            format="BAM",
            index=directory.resolve() / "reads.bam.bai",
            sample="S1",
        ),
        AlignmentSource(
            path=directory.resolve() / "lane.bam",
            format="BAM",
            index=directory.resolve() / "lane.bai",
        ),
        AlignmentSource(
            path=directory.resolve() / "reads.cram",
            format="CRAM",
            reference=directory.resolve() / "ref.fa",
        ),
    )


def test_no_alignments(directory):
    assert read_dataset_description(write_dataset_yaml(directory)).alignments == ()


@pytest.mark.parametrize(
    ("alignments", "field", "message"),
    [
        ({"path": "reads.bam"}, "alignments", "must be a list"),
        ([7], "alignments[0]", "must be a mapping"),
        ([{"sample": "S1"}], "alignments[0].path", "must be a path"),
        ([{"path": "missing.bam"}], "alignments[0].path", "does not exist"),
        (
            ["reads.bam", {"path": "ref.fa"}],
            "alignments[1].path",
            "not a BAM or CRAM file",
        ),
        (
            ["reads.bam", {"path": "cohort.vcf.gz"}],
            "alignments[1].path",
            "not a BAM or CRAM file",
        ),
        (["reads.bam", "reads.bam"], "alignments[1].path", "listed twice"),
        ([{"path": "reads.bam", "bai": "x"}], "alignments[0]", "unknown keys"),
        ([{"path": "reads.bam", "sample": ""}], "alignments[0].sample", "required"),
        (
            [{"path": "reads.bam", "reference": "ref.fa"}],
            "alignments[0].reference",
            "only a CRAM",
        ),
        (
            [{"path": "reads.cram", "reference": "missing.fa"}],
            "alignments[0].reference",
            "does not exist",
        ),
    ],
)
def test_bad_alignments_name_the_field(directory, alignments, field, message):
    write_alignment_files(directory)
    # A BGZF VCF: gzip with the BGZF extra field, but not BAM inside.
    pysam.tabix_compress(
        str(directory / "ref.fa"), str(directory / "cohort.vcf.gz"), force=True
    )

    error = failure(write_dataset_yaml(directory, alignments=alignments))

    assert_field(error, field)
    assert message in str(error)
