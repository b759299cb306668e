"""Clinical readers: Phenopackets v2, Beacon v2 individuals and CSV, errors."""

from __future__ import annotations

import collections
import json
import pathlib

import pytest

from genomenode.dataset import ClinicalSource
from genomenode.errors import ClinicalDataError
from genomenode.ingest.clinical import read_clinical, read_records, write_records
from genomenode.ingest.workers import run_tasks
from tests.conftest import CINECA_INDIVIDUALS

MALE = ("NCIT:C20197", "male")
FEMALE = ("NCIT:C16576", "female")
OTHER = ("NCIT:C45908", "intersex")
UNKNOWN = ("NCIT:C17998", "unknown")


def read(clinical_format: str, path: pathlib.Path, **options) -> list:
    return list(
        read_clinical(ClinicalSource(format=clinical_format, path=path, **options))
    )


def failure(clinical_format: str, path: pathlib.Path, **options) -> ClinicalDataError:
    with pytest.raises(ClinicalDataError) as caught:
        read(clinical_format, path, **options)
    return caught.value


def assert_names(error: ClinicalDataError, path: pathlib.Path, line=None, field=None):
    """The error and its message name the file, line and field."""
    assert error.path == str(path)
    assert error.line == line
    assert error.field == field
    text = str(error)
    assert text.startswith(str(path))
    if line is not None:
        assert f"line {line}" in text
    if field is not None:
        assert repr(field) in text


# --- Phenopackets v2 --------------------------------------------------------------


def phenopacket(subject_id: str, **subject) -> dict:
    """A minimal valid Phenopacket v2 document."""
    return {
        "id": f"packet-{subject_id}",
        "subject": {"id": subject_id, **subject},
        "metaData": {
            "created": "2024-01-01T00:00:00Z",
            "createdBy": "tests",
            "phenopacketSchemaVersion": "2.0",
        },
    }


def full_phenopacket() -> dict:
    packet = phenopacket(
        "P1", sex="FEMALE", timeAtLastEncounter={"age": {"iso8601duration": "P45Y"}}
    )
    packet["phenotypicFeatures"] = [
        {"type": {"id": "HP:0001250", "label": "Seizure"}},
        {"type": {"id": "HP:0000365", "label": "Hearing impairment"}, "excluded": True},
    ]
    packet["diseases"] = [
        {"term": {"id": "MONDO:0005015", "label": "diabetes mellitus"}},
        {"term": {"id": "MONDO:0005044", "label": "hypertension"}, "excluded": True},
    ]
    packet["measurements"] = [
        {
            "assay": {"id": "LOINC:35925-4", "label": "BMI"},
            "value": {
                "quantity": {
                    "unit": {"id": "NCIT:C49671", "label": "kg/m2"},
                    "value": 31.5,
                }
            },
        }
    ]
    return packet


def write_packets(directory: pathlib.Path, packets: dict[str, dict]) -> pathlib.Path:
    directory.mkdir()
    for name, packet in packets.items():
        (directory / name).write_text(json.dumps(packet, indent=2))
    return directory


def write_jsonl(path: pathlib.Path, documents: list) -> pathlib.Path:
    path.write_text(
        "".join(
            (doc if isinstance(doc, str) else json.dumps(doc)) + "\n"
            for doc in documents
        )
    )
    return path


def test_phenopackets_directory(tmp_path):
    directory = write_packets(
        tmp_path / "packets",
        {
            "b.json": phenopacket("P2", sex="MALE"),
            "a.json": full_phenopacket(),
            "notes.txt": {"ignored": True},
        },
    )

    records = read("phenopackets", directory)

    assert [record.id for record in records] == ["P1", "P2"]  # file name order
    first, second = records
    assert (first.sex_id, first.sex_label) == FEMALE
    assert first.age_years == 45.0
    assert first.phenotypic_features == [
        ("HP:0001250", "Seizure", False),
        ("HP:0000365", "Hearing impairment", True),
    ]
    assert first.diseases == [("MONDO:0005015", "diabetes mellitus")]  # not excluded
    assert first.measures == [
        ("LOINC:35925-4", "BMI", 31.5, "NCIT:C49671", "kg/m2"),
    ]
    assert first.record == {
        "id": "P1",
        "sex": {"id": "NCIT:C16576", "label": "female"},
        "phenotypicFeatures": [
            {"featureType": {"id": "HP:0001250", "label": "Seizure"}},
            {
                "featureType": {"id": "HP:0000365", "label": "Hearing impairment"},
                "excluded": True,
            },
        ],
        "diseases": [
            {"diseaseCode": {"id": "MONDO:0005015", "label": "diabetes mellitus"}}
        ],
        "measures": [
            {
                "assayCode": {"id": "LOINC:35925-4", "label": "BMI"},
                "measurementValue": {
                    "value": 31.5,
                    "unit": {"id": "NCIT:C49671", "label": "kg/m2"},
                },
            }
        ],
    }
    assert (second.sex_id, second.sex_label) == MALE
    assert second.age_years is None
    assert second.diseases == []


def _many_packets(directory: pathlib.Path, count: int, **broken: dict) -> pathlib.Path:
    """``count`` packets, one full one in every ten; ``broken`` replaces some."""
    packets = {
        f"p{index:05d}.json": full_phenopacket() | {"id": f"packet-{index}"}
        if index % 10 == 0
        else phenopacket(f"P{index}", sex="MALE" if index % 2 else "FEMALE")
        for index in range(count)
    }
    for index, packet in enumerate(packets.values()):
        if index % 10 == 0:
            packet["subject"]["id"] = f"P{index}"
    packets.update(broken)
    return write_packets(directory, packets)


def _in_two_workers(function, arguments):
    return run_tasks(function, arguments, worker_processes=2, advance=lambda: None)


def test_phenopackets_parsed_in_worker_processes_read_the_same(tmp_path):
    """A large directory parsed in chunks by worker processes (as validate does)
    gives the records of a plain read, in the same order."""
    directory = _many_packets(tmp_path / "packets", 1_150)
    source = ClinicalSource(format="phenopackets", path=directory)

    chunks = []

    def counted(function, arguments):
        chunks.append(len(arguments))
        return _in_two_workers(function, arguments)

    parallel = list(read_clinical(source, map_chunks=counted))

    assert chunks == [3]  # 1,150 files in tasks of 500
    assert parallel == read("phenopackets", directory)
    assert [record.id for record in parallel][:3] == ["P0", "P1", "P2"]


def test_phenopackets_parsed_in_workers_report_the_first_error(tmp_path):
    """Errors in two chunks: the earlier file's, with its file and field, as a
    plain read reports it."""
    bad_later = phenopacket("P900")
    bad_later["subject"]["favouriteColour"] = "blue"
    bad_earlier = phenopacket("")
    directory = _many_packets(
        tmp_path / "packets",
        1_150,
        **{"p00900.json": bad_later, "p00620.json": bad_earlier},
    )
    source = ClinicalSource(format="phenopackets", path=directory)

    with pytest.raises(ClinicalDataError) as caught:
        list(read_clinical(source, map_chunks=_in_two_workers))

    expected = failure("phenopackets", directory)
    assert_names(caught.value, directory / "p00620.json", field="subject.id")
    assert str(caught.value) == str(expected)


def test_phenopacket_with_an_unknown_field_names_the_file(tmp_path):
    packet = phenopacket("P2")
    packet["subject"]["favouriteColour"] = "blue"
    directory = write_packets(
        tmp_path / "packets", {"a.json": phenopacket("P1"), "b.json": packet}
    )

    error = failure("phenopackets", directory)

    assert_names(error, directory / "b.json")
    assert "not a valid Phenopacket v2" in str(error)
    assert "favouriteColour" in str(error)


def test_phenopacket_with_a_wrong_type_names_the_file(tmp_path):
    directory = write_packets(
        tmp_path / "packets", {"a.json": phenopacket("P1", sex="BOTH")}
    )

    error = failure("phenopackets", directory)

    assert_names(error, directory / "a.json")
    assert "not a valid Phenopacket v2" in str(error)


def test_phenopackets_directory_without_json_files(tmp_path):
    directory = tmp_path / "packets"
    directory.mkdir()
    (directory / "readme.txt").write_text("nothing here")

    error = failure("phenopackets", directory)

    assert_names(error, directory)
    assert "no *.json files" in str(error)


def test_phenopackets_jsonl(tmp_path):
    path = write_jsonl(
        tmp_path / "packets.jsonl",
        [phenopacket("P1", sex="MALE"), "", phenopacket("P2", sex="FEMALE")],
    )

    records = read("phenopackets", path)

    assert [(record.id, record.sex_label) for record in records] == [
        ("P1", "male"),
        ("P2", "female"),
    ]


def test_phenopackets_jsonl_error_names_the_line(tmp_path):
    bad = phenopacket("P3")
    bad["unknownTopLevel"] = 1
    # Line 2 is blank: it is skipped, but still counted.
    path = write_jsonl(
        tmp_path / "packets.jsonl", [phenopacket("P1"), "", phenopacket("P2"), bad]
    )

    error = failure("phenopackets", path)

    assert_names(error, path, line=4)
    assert "unknownTopLevel" in str(error)


def test_phenopackets_jsonl_invalid_json_names_the_line(tmp_path):
    path = write_jsonl(tmp_path / "packets.jsonl", [phenopacket("P1"), "{not json"])

    error = failure("phenopackets", path)

    assert_names(error, path, line=2)


def test_phenopacket_unknown_ontology_prefix(tmp_path):
    packet = phenopacket("P2")
    packet["phenotypicFeatures"] = [
        {"type": {"id": "HP:0001250"}},
        {"type": {"id": "FOO:123", "label": "foo"}},
    ]
    path = write_jsonl(tmp_path / "packets.jsonl", [phenopacket("P1"), packet])

    error = failure("phenopackets", path)

    assert_names(error, path, line=2, field="phenotypicFeatures[1].type.id")
    assert "unknown ontology prefix 'FOO'" in str(error)
    assert "subject P2" in str(error)


def test_phenopacket_disease_that_is_not_a_term(tmp_path):
    packet = phenopacket("P1")
    packet["diseases"] = [{"term": {"id": "diabetes"}}]
    path = write_jsonl(tmp_path / "packets.jsonl", [packet])

    error = failure("phenopackets", path)

    assert_names(error, path, line=1, field="diseases[0].term.id")
    assert "not a PREFIX:CODE term" in str(error)


def test_phenopacket_without_subject_id(tmp_path):
    packet = phenopacket("P1")
    del packet["subject"]["id"]
    path = write_jsonl(tmp_path / "packets.jsonl", [packet])

    error = failure("phenopackets", path)

    assert_names(error, path, line=1, field="subject.id")


@pytest.mark.parametrize(
    ("duration", "years"),
    [
        ("P45Y", 45.0),
        ("P1Y6M", 1.5),
        ("P6M", 0.5),
        ("P2Y3M", 2.25),
        ("P0Y", 0.0),
        ("P2W", round(14 / 365.25, 4)),
        ("P1Y10D", round(1 + 10 / 365.25, 4)),
    ],
)
def test_phenopacket_iso8601_age(tmp_path, duration, years):
    packet = phenopacket(
        "P1", timeAtLastEncounter={"age": {"iso8601duration": duration}}
    )
    path = write_jsonl(tmp_path / "packets.jsonl", [packet])

    (record,) = read("phenopackets", path)

    assert record.age_years == pytest.approx(years)


@pytest.mark.parametrize("duration", ["45", "P", "45Y", "P45", "PT5H", "P1M2Y"])
def test_phenopacket_invalid_iso8601_age(tmp_path, duration):
    packet = phenopacket(
        "P1", timeAtLastEncounter={"age": {"iso8601duration": duration}}
    )
    path = write_jsonl(tmp_path / "packets.jsonl", [packet])

    error = failure("phenopackets", path)

    assert_names(
        error, path, line=1, field="subject.timeAtLastEncounter.age.iso8601duration"
    )
    assert repr(duration) in str(error)


@pytest.mark.parametrize(
    ("sex", "expected"),
    [
        ("MALE", MALE),
        ("FEMALE", FEMALE),
        ("OTHER_SEX", OTHER),
        ("UNKNOWN_SEX", UNKNOWN),
        (None, UNKNOWN),
    ],
)
def test_phenopacket_sex(tmp_path, sex, expected):
    packet = phenopacket("P1") if sex is None else phenopacket("P1", sex=sex)
    path = write_jsonl(tmp_path / "packets.jsonl", [packet])

    (record,) = read("phenopackets", path)

    assert (record.sex_id, record.sex_label) == expected
    assert record.record["sex"] == {"id": expected[0], "label": expected[1]}


# --- Beacon v2 individuals --------------------------------------------------------


def individual(individual_id: str, sex_id: str = "NCIT:C20197", **fields) -> dict:
    return {"id": individual_id, "sex": {"id": sex_id, "label": "x"}, **fields}


def write_json(path: pathlib.Path, document) -> pathlib.Path:
    path.write_text(json.dumps(document, indent=2))
    return path


def test_beacon_individuals_list(tmp_path):
    path = write_json(
        tmp_path / "individuals.json",
        [
            individual(
                "S1",
                diseases=[{"diseaseCode": {"id": "ICD10:E10", "label": "T1D"}}],
                phenotypicFeatures=[
                    {"featureType": {"id": "HP:0001250", "label": "Seizure"}},
                    {"featureType": {"id": "HP:0000365"}, "excluded": True},
                ],
                measures=[
                    {
                        "assayCode": {"id": "LOINC:35925-4", "label": "BMI"},
                        "measurementValue": {
                            "value": 31,
                            "unit": {"id": "NCIT:C49671", "label": "kg/m2"},
                        },
                    },
                    {"assayCode": {"id": "LOINC:3141-9", "label": "Weight"}},
                ],
                ethnicity={"id": "NCIT:C42331", "label": "African"},
                geographicOrigin={"id": "GAZ:00002638", "label": "Northern Ireland"},
                treatments=[{"treatmentCode": {"id": "NCIT:C1", "label": "t"}}],
            ),
            individual("S2", "NCIT:C16576"),
        ],
    )

    first, second = read("beacon-individuals", path)

    assert first.id == "S1"
    assert (first.sex_id, first.sex_label) == MALE
    assert first.diseases == [("ICD10:E10", "T1D")]
    assert first.phenotypic_features == [
        ("HP:0001250", "Seizure", False),
        ("HP:0000365", "HP:0000365", True),  # no label: the id stands in
    ]
    assert first.measures == [
        ("LOINC:35925-4", "BMI", 31.0, "NCIT:C49671", "kg/m2"),
        ("LOINC:3141-9", "Weight", None, None, None),
    ]
    assert first.ethnicity == ("NCIT:C42331", "African")
    assert first.geographic_origin == ("GAZ:00002638", "Northern Ireland")
    assert first.record["geographicOrigin"] == {
        "id": "GAZ:00002638",
        "label": "Northern Ireland",
    }
    assert first.record["treatments"] == [
        {"treatmentCode": {"id": "NCIT:C1", "label": "t"}}
    ]
    assert first.age_years is None
    assert second.id == "S2"
    assert (second.sex_id, second.sex_label) == FEMALE
    assert second.ethnicity is None
    assert second.diseases == []


@pytest.mark.parametrize(
    ("sex_id", "expected"),
    [
        ("NCIT:C20197", MALE),
        ("NCIT:C16576", FEMALE),
        ("NCIT:C45908", OTHER),
        ("NCIT:C17998", UNKNOWN),
    ],
)
def test_beacon_sex(tmp_path, sex_id, expected):
    path = write_json(tmp_path / "individuals.json", [individual("S1", sex_id)])

    (record,) = read("beacon-individuals", path)

    assert (record.sex_id, record.sex_label) == expected


def test_beacon_unknown_sex_term(tmp_path):
    path = write_json(
        tmp_path / "individuals.json",
        [individual("S1"), individual("S2", "NCIT:C99999")],
    )

    error = failure("beacon-individuals", path)

    assert_names(error, path, field="sex.id")
    assert "record [1] (individual S2)" in str(error)
    assert "'NCIT:C99999'" in str(error)


def test_beacon_missing_sex(tmp_path):
    path = write_json(tmp_path / "individuals.json", [{"id": "S1"}])

    error = failure("beacon-individuals", path)

    assert_names(error, path, field="sex")
    assert "record [0] (individual S1)" in str(error)


def test_beacon_unknown_ontology_prefix_names_record_and_field(tmp_path):
    path = write_json(
        tmp_path / "individuals.json",
        [
            individual("S1"),
            individual("S2"),
            individual(
                "S3",
                diseases=[
                    {"diseaseCode": {"id": "FOO:123", "label": "foo"}},
                ],
            ),
        ],
    )

    error = failure("beacon-individuals", path)

    assert_names(error, path, field="diseases[0].diseaseCode.id")
    assert "record [2] (individual S3)" in str(error)
    assert "unknown ontology prefix 'FOO' in 'FOO:123'" in str(error)


def test_beacon_disease_code_that_is_not_a_term(tmp_path):
    path = write_json(
        tmp_path / "individuals.json",
        [individual("S1", diseases=[{"diseaseCode": "ICD10:E10"}])],
    )

    error = failure("beacon-individuals", path)

    assert_names(error, path, field="diseases[0].diseaseCode")
    assert "record [0] (individual S1)" in str(error)


def test_beacon_measure_value_must_be_a_number(tmp_path):
    measure = {
        "assayCode": {"id": "LOINC:35925-4", "label": "BMI"},
        "measurementValue": {"value": "thirty"},
    }
    path = write_json(
        tmp_path / "individuals.json",
        [individual("S1"), individual("S2", measures=[measure])],
    )

    error = failure("beacon-individuals", path)

    assert_names(error, path, field="measures[0].measurementValue.value")
    assert "record [1] (individual S2)" in str(error)


def test_beacon_individual_without_id(tmp_path):
    path = write_json(
        tmp_path / "individuals.json",
        [individual("S1"), {"sex": {"id": "NCIT:C20197"}}],
    )

    error = failure("beacon-individuals", path)

    assert_names(error, path, field="id")
    assert "record [1]" in str(error)


def test_beacon_not_a_list(tmp_path):
    path = write_json(tmp_path / "individuals.json", {"individuals": []})

    error = failure("beacon-individuals", path)

    assert_names(error, path)
    assert "expected a JSON list" in str(error)


def test_beacon_invalid_json_names_the_line(tmp_path):
    path = tmp_path / "individuals.json"
    path.write_text('[\n  {"id": "S1"},\n  {"id": "S2",}\n]\n')

    error = failure("beacon-individuals", path)

    assert_names(error, path, line=3)
    assert "not valid JSON" in str(error)


def test_beacon_jsonl_names_the_line(tmp_path):
    path = write_jsonl(
        tmp_path / "individuals.jsonl",
        [
            individual("S1"),
            individual("S2", "NCIT:C16576"),
            individual("S3", ethnicity={"id": "FOO:1", "label": "x"}),
        ],
    )

    error = failure("beacon-individuals", path)

    assert_names(error, path, line=3, field="ethnicity.id")
    assert "individual S3" in str(error)

    path.write_text("\n".join(path.read_text().splitlines()[:2]) + "\n")
    records = read("beacon-individuals", path)
    assert [(record.id, record.sex_label) for record in records] == [
        ("S1", "male"),
        ("S2", "female"),
    ]


# --- CSV ------------------------------------------------------------------------

COLUMNS = {
    "id": "sample_id",
    "sex": "gender",
    "age": "age_years",
    "country_of_birth": "birth_country",
    "phenotypes": "hpo",
    "diseases": "icd10",
    "ethnicity": "ancestry",
}


def write_csv(path: pathlib.Path, *rows: str) -> pathlib.Path:
    header = "sample_id,gender,age_years,birth_country,hpo,icd10,ancestry,notes"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_csv_with_column_mapping_and_lists(tmp_path):
    path = write_csv(
        tmp_path / "clinical.csv",
        "S1,M,45,fi,HP:0001250;HP:0000365,ICD10:E10 ; ICD10:I25.1,NCIT:C42331,x",
        "S2,female,,,,,,",
        "S3,,3.5,SE,HP:0001250,,,",
    )

    first, second, third = read("csv", path, columns=COLUMNS)

    assert first.id == "S1"
    assert (first.sex_id, first.sex_label) == MALE
    assert first.age_years == 45.0
    assert first.country_of_birth == "FI"
    assert first.phenotypic_features == [
        ("HP:0001250", "HP:0001250", False),
        ("HP:0000365", "HP:0000365", False),
    ]
    assert first.diseases == [
        ("ICD10:E10", "ICD10:E10"),
        ("ICD10:I25.1", "ICD10:I25.1"),
    ]
    assert first.ethnicity == ("NCIT:C42331", "NCIT:C42331")
    assert first.record["ethnicity"] == {"id": "NCIT:C42331", "label": "NCIT:C42331"}
    assert [entry["diseaseCode"]["id"] for entry in first.record["diseases"]] == [
        "ICD10:E10",
        "ICD10:I25.1",
    ]
    assert (second.sex_id, second.sex_label) == FEMALE
    assert second.age_years is None
    assert second.country_of_birth is None
    assert second.diseases == second.phenotypic_features == []
    assert second.ethnicity is None
    assert (third.sex_id, third.sex_label) == UNKNOWN
    assert third.age_years == 3.5


def test_csv_custom_list_separator(tmp_path):
    path = write_csv(tmp_path / "clinical.csv", "S1,F,,,,ICD10:E10|MONDO:0005044,,")

    (record,) = read("csv", path, columns=COLUMNS, list_separator="|")

    assert record.diseases == [
        ("ICD10:E10", "ICD10:E10"),
        ("MONDO:0005044", "MONDO:0005044"),
    ]


def test_csv_with_only_an_id_column(tmp_path):
    path = write_csv(tmp_path / "clinical.csv", "S1,M,45,FI,,,,")

    (record,) = read("csv", path, columns={"id": "sample_id"})

    assert record.id == "S1"
    assert (record.sex_id, record.sex_label) == UNKNOWN
    assert record.age_years is None


@pytest.mark.parametrize(
    ("sex", "expected"),
    [
        ("M", MALE),
        ("m", MALE),
        ("male", MALE),
        ("Male", MALE),
        ("NCIT:C20197", MALE),
        ("F", FEMALE),
        ("female", FEMALE),
        ("NCIT:C16576", FEMALE),
        ("other", OTHER),
        ("intersex", OTHER),
        ("", UNKNOWN),
        ("U", UNKNOWN),
        ("unknown", UNKNOWN),
    ],
)
def test_csv_sex(tmp_path, sex, expected):
    path = write_csv(tmp_path / "clinical.csv", f"S1,{sex},,,,,,")

    (record,) = read("csv", path, columns=COLUMNS)

    assert (record.sex_id, record.sex_label) == expected


def test_csv_unknown_sex_names_the_line(tmp_path):
    path = write_csv(tmp_path / "clinical.csv", "S1,M,,,,,,", "S2,X,,,,,,")

    error = failure("csv", path, columns=COLUMNS)

    assert_names(error, path, line=3, field="gender")
    assert "unknown sex 'X'" in str(error)


def test_csv_unknown_ontology_prefix_names_the_line(tmp_path):
    path = write_csv(
        tmp_path / "clinical.csv",
        "S1,M,,,,ICD10:E10,,",
        "S2,F,,,,ICD10:E10;FOO:123,,",
    )

    error = failure("csv", path, columns=COLUMNS)

    assert error.path == str(path)
    assert error.line == 3
    assert error.field is not None
    assert error.field.startswith("icd10")
    assert f"{path}, line 3, field {error.field!r}" in str(error)
    assert "unknown ontology prefix 'FOO'" in str(error)


def test_csv_age_must_be_a_number(tmp_path):
    path = write_csv(
        tmp_path / "clinical.csv", "S1,M,45,,,,,", "S2,M,50,,,,,", "S3,M,P45Y,,,,,"
    )

    error = failure("csv", path, columns=COLUMNS)

    assert_names(error, path, line=4, field="age_years")


def test_csv_bad_country(tmp_path):
    path = write_csv(tmp_path / "clinical.csv", "S1,M,,FIN,,,,")

    error = failure("csv", path, columns=COLUMNS)

    assert_names(error, path, line=2, field="birth_country")


def test_csv_empty_id(tmp_path):
    path = write_csv(tmp_path / "clinical.csv", "S1,M,,,,,,", " ,M,,,,,,")

    error = failure("csv", path, columns=COLUMNS)

    assert_names(error, path, line=3, field="sample_id")


def test_csv_short_row_names_the_line(tmp_path):
    # A row with fewer cells than the header: csv.DictReader fills the missing
    # cells with None; the reader must report the line, not crash.
    path = write_csv(tmp_path / "clinical.csv", "S1,M,,,,,,", "S2")

    error = failure("csv", path, columns=COLUMNS)

    assert error.path == str(path)
    assert error.line == 3
    assert f"{path}, line 3" in str(error)


def test_csv_mapped_column_missing_from_header(tmp_path):
    path = write_csv(tmp_path / "clinical.csv", "S1,M,,,,,,")

    error = failure("csv", path, columns={"id": "sample_id", "sex": "sex"})

    assert_names(error, path, line=1)
    assert "['sex']" in str(error)


# --- The real CINECA individuals ---------------------------------------------------


def test_cineca_individuals_match_a_naive_count():
    raw = json.loads(CINECA_INDIVIDUALS.read_text())
    naive_sex = collections.Counter(person["sex"]["label"] for person in raw)
    naive_e10 = sum(
        any(d["diseaseCode"]["id"] == "ICD10:E10" for d in person.get("diseases", []))
        for person in raw
    )
    naive_bmi = sum(
        any(
            m["assayCode"]["id"] == "LOINC:35925-4"
            and m["measurementValue"]["value"] > 30
            for m in person.get("measures", [])
        )
        for person in raw
    )

    records = list(
        read_clinical(
            ClinicalSource(format="beacon-individuals", path=CINECA_INDIVIDUALS)
        )
    )

    assert len(raw) == 2504
    assert len(records) == 2504
    assert [record.id for record in records] == [person["id"] for person in raw]
    sex = collections.Counter(record.sex_label for record in records)
    assert sex == naive_sex
    assert sex["male"] + sex["female"] == 2504
    assert sex["male"] > 1000
    assert sex["female"] > 1000
    e10 = sum(
        any(term == "ICD10:E10" for term, _ in record.diseases) for record in records
    )
    assert e10 == naive_e10
    assert e10 > 0
    bmi = sum(
        any(
            assay == "LOINC:35925-4" and value is not None and value > 30
            for assay, _, value, _, _ in record.measures
        )
        for record in records
    )
    assert bmi == naive_bmi
    assert 0 < bmi < 2504


def test_records_kept_by_validate_read_back_as_parsed(tmp_path):
    """The metadata step loads what validate kept (write_records) instead of
    parsing the inputs again: the records must be the same, every field."""
    packets = write_packets(
        tmp_path / "packets",
        {"a.json": full_phenopacket(), "b.json": phenopacket("P2", sex="MALE")},
    )
    for clinical_format, path in (
        ("phenopackets", packets),
        ("beacon-individuals", CINECA_INDIVIDUALS),
    ):
        source = ClinicalSource(format=clinical_format, path=path)
        kept = tmp_path / f"{clinical_format}.jsonl"
        passed = list(write_records(read_clinical(source), kept))
        assert passed == read(clinical_format, path)
        assert list(read_records(kept)) == passed
        assert len(passed) >= 2


def test_records_are_kept_only_once_all_were_read(tmp_path):
    bad = phenopacket("P2")
    bad["subject"]["id"] = ""
    packets = write_packets(
        tmp_path / "packets", {"a.json": phenopacket("P1"), "b.json": bad}
    )
    kept = tmp_path / "kept.jsonl"
    source = ClinicalSource(format="phenopackets", path=packets)
    with pytest.raises(ClinicalDataError):
        list(write_records(read_clinical(source), kept))
    assert not kept.exists()
