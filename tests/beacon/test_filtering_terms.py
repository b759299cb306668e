"""Filtering terms derived from the ingested data, valid against the Beacon schema."""

from __future__ import annotations

import json
import shutil

import pytest
from sqlalchemy import update

from genomenode.beacon.filtering_terms import filtering_terms
from genomenode.beacon.filters import individuals_matching, naive_individuals_matching
from genomenode.beacon.requests import parse_get
from genomenode.beacon.schemas import validate
from genomenode.ingest.pipeline import ingest
from genomenode.store.models import Individual
from genomenode.store.node import init_node
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
    custom = {t["id"]: t for t in terms if t["type"] == "custom"}
    assert set(custom) == {
        f"{key}:{record[key]['label']}"
        for record in CINECA_RECORDS
        for key in ("sex", "ethnicity", "geographicOrigin")
        if key in record
    }
    assert len(custom) == 2 + 20 + 5  # NCIT:C67109 alone carries ten labels
    assert custom["ethnicity:Any other Asian background"]["label"] == (
        "Ethnicity: Any other Asian background"
    )
    assert custom["sex:female"] == {
        "type": "custom",
        "id": "sex:female",
        "label": "Sex: female",
        "scopes": ["individual"],
    }
    assert [r["nameSpacePrefix"] for r in resources] == [
        "GAZ",
        "ICD10",
        "LOINC",
        "NCIT",
    ]


def test_every_listed_custom_term_matches_what_it_names(cineca_node):
    with cineca_node.session() as session:
        terms, _ = filtering_terms(session, ["cineca-1kg"])
        custom = [t["id"] for t in terms if t["type"] == "custom"]
        for term_id in custom:
            field, _, label = term_id.partition(":")
            expected = {
                r["id"]
                for r in CINECA_RECORDS
                if r.get(field, {}).get("label") == label
            }
            (parsed,) = parse_get({"filters": term_id}).filters
            assert parsed.kind == ("custom" if " " in label else "ontology")
            found = individuals_matching(
                session, "cineca-1kg", (parsed,), entry_type="individuals"
            )
            assert found == expected and expected, term_id
            assert naive_individuals_matching(CINECA_RECORDS, (parsed,)) == expected


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
    custom = sorted(term_id for kind, term_id in by_id if kind == "custom")
    assert custom == ["sex:female", "sex:male"]
    hp = next(r for r in resources if r["nameSpacePrefix"] == "HP")
    assert hp["version"] == "2025-11-24" and hp["id"] == "hp"


def test_custom_terms_are_listed_once_per_compared_value(node):
    # Spellings that a custom term does not tell apart are one term; each matches.
    _write_big_dataset(node, "big", 8)
    countries = ["FI", "fi", "SE", None, "FI", "EE", None, "se"]
    origins = ["South Asian", "south_asian", None, "Wales", None, None, "x", None]
    with node.session() as session, session.begin():
        for index, (country, origin) in enumerate(zip(countries, origins, strict=True)):
            session.execute(
                update(Individual)
                .where(Individual.dataset_id == "big", Individual.id == f"I{index:05d}")
                .values(country_of_birth=country, geographic_origin_label=origin)
            )
    with node.session() as session:
        terms, resources = filtering_terms(session, ["big"])
        validate(_response(terms, resources), "beaconFilteringTermsResponse")
        custom = [t["id"] for t in terms if t["type"] == "custom"]
        assert custom == [
            "countryOfBirth:EE",
            "countryOfBirth:FI",
            "countryOfBirth:SE",
            "geographicOrigin:South Asian",
            "geographicOrigin:Wales",
            "geographicOrigin:x",
            "sex:female",
            "sex:male",
        ]
        asked = [*custom, "geographicOrigin:South_Asian", "countryOfBirth:NO"]
        by_term = {
            term_id: individuals_matching(
                session,
                "big",
                parse_get({"filters": term_id}).filters,
                entry_type="individuals",
            )
            for term_id in asked
        }
    assert all(by_term[term_id] for term_id in custom)
    assert by_term["countryOfBirth:FI"] == {"I00000", "I00001", "I00004"}
    assert by_term["countryOfBirth:SE"] == {"I00002", "I00007"}
    assert by_term["geographicOrigin:South Asian"] == {"I00000", "I00001"}
    assert by_term["geographicOrigin:South_Asian"] == {"I00000", "I00001"}
    assert by_term["countryOfBirth:NO"] == frozenset()
