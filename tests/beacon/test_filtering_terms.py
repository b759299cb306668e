"""Filtering terms derived from the ingested data, valid against the Beacon schema."""

from __future__ import annotations

import json
import shutil

import pytest

from genomenode.beacon.filtering_terms import filtering_terms
from genomenode.beacon.schemas import validate
from genomenode.ingest.pipeline import ingest
from genomenode.node import init_node
from tests.beacon.test_filters import _write_big_dataset
from tests.conftest import CINECA_INDIVIDUALS, CINECA_VCF, write_dataset_yaml

CINECA_RECORDS: list[dict] = json.loads(CINECA_INDIVIDUALS.read_text())


def _response(terms: list[dict], resources: list[dict]) -> dict:
    return {
        "meta": {
            "beaconId": "org.example.genomenode",
            "apiVersion": "v2.0.0",
            "returnedSchemas": [],
        },
        "response": {"filteringTerms": terms, "resources": resources},
    }


@pytest.fixture(scope="module")
def cineca_node(tmp_path_factory):
    """A SQLite node with the CINECA dataset ingested once for this module."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GENOMENODE_WORKER_PROCESSES", "0")
        tmp = tmp_path_factory.mktemp("terms")
        directory = tmp / "cineca"
        directory.mkdir()
        shutil.copy(CINECA_VCF, directory / "cohort.vcf.gz")
        shutil.copy(CINECA_INDIVIDUALS, directory / "individuals.json")
        with init_node(tmp / "node", node_id="t", country="FI") as node:
            ingest(node, write_dataset_yaml(directory, id="cineca-1kg"))
            yield node


def test_cineca_terms_are_the_data_and_valid(cineca_node):
    with cineca_node.session() as session:
        terms, resources = filtering_terms(session, ["cineca-1kg", "not-published"])
    validate(_response(terms, resources), "beaconFilteringTermsResponse")

    expected = set()
    for record in CINECA_RECORDS:
        for key in ("sex", "ethnicity", "geographicOrigin"):
            if key in record:
                expected.add(record[key]["id"])
        expected |= {d["diseaseCode"]["id"] for d in record.get("diseases", [])}
        expected |= {m["assayCode"]["id"] for m in record["measures"]}
    ontology_terms = {t["id"]: t for t in terms if t["type"] == "ontologyTerm"}
    assert set(ontology_terms) == expected
    assert ontology_terms["ICD10:F3181"]["label"]
    assert ontology_terms["NCIT:C20197"]["label"] == "male"
    alphanumeric = {t["id"]: t for t in terms if t["type"] == "alphanumeric"}
    assert set(alphanumeric) == {
        "LOINC:35925-4",
        "LOINC:3141-9",
        "LOINC:8308-9",
        "sex",
        "ethnicity",
        "geographicOrigin",
    }  # no ages or countries of birth in the CINECA data
    assert alphanumeric["sex"]["values"] == ["female", "male"]
    assert all(t["scopes"] == ["individual"] for t in terms)
    assert not [t for t in terms if t["type"] == "custom"]
    assert [r["nameSpacePrefix"] for r in resources] == [
        "GAZ",
        "ICD10",
        "LOINC",
        "NCIT",
    ]


def test_no_published_datasets_no_terms(cineca_node):
    with cineca_node.session() as session:
        terms, resources = filtering_terms(session, ["not-published"])
        assert filtering_terms(session, []) == ([], [])
    assert (terms, resources) == ([], [])
    validate(_response(terms, resources), "beaconFilteringTermsResponse")


def test_hpo_terms_age_and_both_databases(node):
    _write_big_dataset(node, "big", 20)
    with node.session() as session:
        terms, resources = filtering_terms(session, ["big"])
    validate(_response(terms, resources), "beaconFilteringTermsResponse")
    by_id = {(t["type"], t["id"]): t for t in terms}
    assert by_id[("ontologyTerm", "HP:0001677")]["label"] == "f"  # the data's label
    assert ("alphanumeric", "age") in by_id
    assert "values" not in by_id[("alphanumeric", "age")]
    assert ("alphanumeric", "countryOfBirth") not in by_id
    hp = next(r for r in resources if r["nameSpacePrefix"] == "HP")
    assert hp["version"] == "2025-11-24" and hp["id"] == "hp"
