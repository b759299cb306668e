"""The Beacon framework documents, checked against the official v2.1.1 schemas."""

from __future__ import annotations

import copy
import datetime as dt
import re

import pytest

import genomenode
from genomenode.beacon import entry_types
from genomenode.beacon.entry_types import (
    ENTRY_TYPES,
    ENTRY_TYPES_BY_ENDPOINT,
    FILTERING_TERMS_PATHS,
    NESTED,
)
from genomenode.beacon.framework import (
    BeaconIdentity,
    DatasetSummary,
    configuration_response,
    entry_types_response,
    error_response,
    identity_from_node,
    info_response,
    informational_meta,
    map_response,
    service_info_response,
)
from genomenode.beacon.schemas import (
    BASE_URI,
    SCHEMA_PATHS,
    BeaconValidationError,
    schema_uri,
    validate,
)
from genomenode.config import NodeConfig
from genomenode.errors import ConfigError
from genomenode.store.node import Node

BASE_URL = "https://fi.node.example/api"
UTC = dt.UTC


@pytest.fixture
def identity() -> BeaconIdentity:
    return BeaconIdentity.for_node(
        "fi-node",
        "FI",
        BASE_URL,
        environment="test",
        contact_email="beacon@fi.node.example",
        documentation_url="https://fi.node.example/docs",
    )


@pytest.fixture
def datasets() -> list[DatasetSummary]:
    return [
        DatasetSummary(
            id="fi-cohort-1",
            name="Finnish cohort",
            description="Synthetic genomes",
            security_level="CONTROLLED",
            created_at=dt.datetime(2024, 3, 1, 9, 30, tzinfo=UTC),
            published_at=dt.datetime(2024, 3, 2, 10, 0, tzinfo=UTC),
            num_individuals=2504,
            num_variants=1042,
        ),
        DatasetSummary(
            id="fi-open",
            name="Open allele frequencies",
            description="",
            security_level="PUBLIC",
            # As SQLite returns it: naive, but stored as UTC.
            created_at=dt.datetime(2023, 12, 31, 23, 0),
            published_at=None,
            num_individuals=0,
            num_variants=10,
        ),
    ]


def all_responses(identity, datasets):
    return {
        "beaconInfoResponse": info_response(identity, datasets),
        "ga4gh-service-info-1-0-0-schema": service_info_response(identity),
        "beaconConfigurationResponse": configuration_response(
            identity, ["CONTROLLED", "PUBLIC"]
        ),
        "beaconMapResponse": map_response(identity),
        "beaconEntryTypesResponse": entry_types_response(identity),
        "beaconErrorResponse": error_response(identity, 400, "start is missing"),
    }


SCHEMA_NAMES = [
    "beaconInfoResponse",
    "ga4gh-service-info-1-0-0-schema",
    "beaconConfigurationResponse",
    "beaconMapResponse",
    "beaconEntryTypesResponse",
    "beaconErrorResponse",
]


@pytest.mark.parametrize("schema", SCHEMA_NAMES)
def test_response_is_valid(identity, datasets, schema):
    validate(all_responses(identity, datasets)[schema], schema)


@pytest.mark.parametrize("schema", SCHEMA_NAMES)
def test_minimal_identity_and_no_datasets_are_valid(schema):
    identity = BeaconIdentity.for_node("x", "SE", "http://localhost:8000/api")
    validate(all_responses(identity, [])[schema], schema)


@pytest.mark.parametrize(
    ("schema", "path", "value"),
    [
        ("beaconInfoResponse", ("response", "environment"), "production"),
        ("beaconInfoResponse", ("meta", "beaconId"), 17),
        ("ga4gh-service-info-1-0-0-schema", ("type", "artifact"), None),
        (
            "beaconConfigurationResponse",
            ("response", "maturityAttributes", "productionStatus"),
            "prod",
        ),
        ("beaconMapResponse", ("response", "endpointSets"), {}),
        ("beaconEntryTypesResponse", ("response", "entryTypes", "run", "id"), None),
        ("beaconErrorResponse", ("error", "errorCode"), "400"),
    ],
)
def test_broken_response_fails_validation(identity, datasets, schema, path, value):
    # The validity tests above mean something only if these same checks can fail.
    document = copy.deepcopy(all_responses(identity, datasets)[schema])
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    if value is None:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    with pytest.raises(BeaconValidationError):
        validate(document, schema)


def test_meta_names_the_beacon_and_version(identity, datasets):
    for name, document in all_responses(identity, datasets).items():
        if name.startswith("ga4gh"):
            continue
        assert document["meta"]["beaconId"] == "org.genomenode.fi-node"
        assert document["meta"]["apiVersion"] == "v2.1.1"


def test_api_version_has_the_schema_format():
    # beaconCommonComponents: a GitHub-style "v"-prefixed semantic version.
    assert re.fullmatch(r"v\d+\.\d+\.\d+", entry_types.API_VERSION)


def test_informational_meta_is_reusable_for_result_responses(identity):
    individual = ENTRY_TYPES["individual"]
    meta = informational_meta(identity, [individual.returned_schema()])
    meta |= {
        "returnedGranularity": "count",
        "receivedRequestSummary": {
            "apiVersion": "v2.1.1",
            "requestedSchemas": [individual.returned_schema()],
            "pagination": {"skip": 0, "limit": 10},
            "requestedGranularity": "count",
        },
    }
    document = {
        "meta": meta,
        "responseSummary": {"exists": True, "numTotalResults": 3},
    }
    validate(document, "beaconCountResponse")
    assert meta["returnedSchemas"] == [
        {"entityType": "individual", "schema": "beacon-individual-v2.1.1"}
    ]


def test_info_lists_datasets_and_dates(identity, datasets):
    response = info_response(identity, datasets)["response"]
    assert [d["id"] for d in response["datasets"]] == ["fi-cohort-1", "fi-open"]
    for document in response["datasets"]:
        validate(document, "datasets")
    assert response["createDateTime"] == "2023-12-31T23:00:00Z"
    assert response["updateDateTime"] == "2024-03-02T10:00:00Z"
    assert response["datasets"][1]["updateDateTime"] == "2023-12-31T23:00:00Z"
    assert response["datasets"][0]["info"]["numIndividuals"] == 2504
    assert response["organization"]["contactUrl"] == "mailto:beacon@fi.node.example"
    assert response["version"] == genomenode.__version__
    assert "createDateTime" not in info_response(identity, [])["response"]


def test_service_info_required_fields(identity):
    document = service_info_response(identity)
    assert document["id"] == identity.beacon_id
    assert document["type"] == {
        "group": "org.ga4gh",
        "artifact": "beacon",
        "version": "2.1.1",
    }
    assert document["organization"]["name"] == identity.organisation_name
    assert document["organization"]["url"].startswith("https://")
    assert document["contactUrl"] == "mailto:beacon@fi.node.example"
    assert document["environment"] == "test"
    assert document["version"] == genomenode.__version__


@pytest.mark.parametrize(
    ("environment", "status"), [("prod", "PROD"), ("test", "TEST"), ("dev", "DEV")]
)
def test_configuration_maturity(environment, status):
    identity = BeaconIdentity.for_node(
        "fi-node", "FI", BASE_URL, environment=environment
    )
    response = configuration_response(identity, ["PUBLIC"])["response"]
    assert response["maturityAttributes"]["productionStatus"] == status
    assert response["securityAttributes"]["defaultGranularity"] == "boolean"


def test_configuration_security_levels_present_in_order(identity):
    levels = configuration_response(identity, ["controlled", "PUBLIC", "PUBLIC"])[
        "response"
    ]["securityAttributes"]["securityLevels"]
    assert levels == ["PUBLIC", "CONTROLLED"]
    with pytest.raises(ValueError, match="SECRET"):
        configuration_response(identity, ["SECRET"])


def test_entry_types_are_the_seven_of_the_default_model():
    assert sorted(ENTRY_TYPES) == [
        "analysis",
        "biosample",
        "cohort",
        "dataset",
        "genomicVariant",
        "individual",
        "run",
    ]
    assert sorted(ENTRY_TYPES_BY_ENDPOINT) == sorted(NESTED)
    assert {e.id: e.set_type for e in ENTRY_TYPES.values() if e.set_type} == {
        "cohort": "cohort",
        "dataset": "dataset",
    }


def test_entry_type_schemas_are_the_official_model_schemas():
    for entry in ENTRY_TYPES.values():
        folder = entry.schema_folder
        assert entry.schema_url == (
            f"{BASE_URI}models/json/beacon-v2-default-model/{folder}/defaultSchema.json"
        )
        # Every model schema is vendored, genomicVariations only dereferenced (its
        # VRS references leave the repository), so compare with the known names.
        assert folder in SCHEMA_PATHS
        if folder != "genomicVariations":
            assert schema_uri(folder) == entry.schema_url


def test_nested_endpoints_are_entry_endpoints():
    for endpoint, nested in NESTED.items():
        assert endpoint in ENTRY_TYPES_BY_ENDPOINT
        assert nested, endpoint
        assert len(set(nested)) == len(nested)
        for child in nested:
            assert child in ENTRY_TYPES_BY_ENDPOINT, (endpoint, child)
            assert child != endpoint
    for endpoint in FILTERING_TERMS_PATHS:
        assert endpoint in ENTRY_TYPES_BY_ENDPOINT
    assert NESTED["individuals"] == ("g_variants", "biosamples")
    assert NESTED["cohorts"] == ("individuals",)


def test_collections_are_collections_of_served_entry_types():
    for entry in ENTRY_TYPES.values():
        assert bool(entry.collection_of) == (entry.set_type is not None), entry.id
        for member in entry.collection_of:
            assert member in ENTRY_TYPES


def test_map_urls_are_absolute_under_the_base_url(identity):
    endpoint_sets = map_response(identity)["response"]["endpointSets"]
    assert set(endpoint_sets) == set(ENTRY_TYPES)
    for entry_id, endpoint_set in endpoint_sets.items():
        entry = ENTRY_TYPES[entry_id]
        assert endpoint_set["entryType"] == entry_id
        assert endpoint_set["rootUrl"] == f"{BASE_URL}/{entry.endpoint}"
        assert endpoint_set["singleEntryUrl"] == f"{BASE_URL}/{entry.endpoint}/{{id}}"
        assert endpoint_set["filteringTermsUrl"].startswith(BASE_URL + "/")
        urls = [endpoint_set["rootUrl"], endpoint_set["singleEntryUrl"]]
        urls += [e["url"] for e in endpoint_set["endpoints"].values()]
        for url in urls:
            assert url.startswith(BASE_URL + "/"), url
            assert "//" not in url.removeprefix("https://"), url


def test_map_nested_endpoints_follow_nested(identity):
    endpoint_sets = map_response(identity)["response"]["endpointSets"]
    for endpoint, nested in NESTED.items():
        entry = ENTRY_TYPES_BY_ENDPOINT[endpoint]
        endpoints = endpoint_sets[entry.id]["endpoints"]
        assert {(e["returnedEntryType"], e["url"]) for e in endpoints.values()} == {
            (
                ENTRY_TYPES_BY_ENDPOINT[child].id,
                f"{BASE_URL}/{endpoint}/{{id}}/{child}",
            )
            for child in nested
        }
    assert endpoint_sets["individual"]["filteringTermsUrl"] == (
        f"{BASE_URL}/individuals/filtering_terms"
    )
    assert endpoint_sets["dataset"]["filteringTermsUrl"] == (
        f"{BASE_URL}/datasets/{{id}}/filtering_terms"
    )
    assert endpoint_sets["run"]["filteringTermsUrl"] == f"{BASE_URL}/filtering_terms"


def test_entry_type_ids_agree_across_documents(identity):
    configured = configuration_response(identity, ["PUBLIC"])["response"]
    listed = entry_types_response(identity)["response"]["entryTypes"]
    mapped = map_response(identity)["response"]["endpointSets"]
    assert set(configured["entryTypes"]) == set(listed) == set(mapped)
    assert configured["entryTypes"] == listed
    for key, definition in listed.items():
        assert definition["id"] == key
        assert definition["partOfSpecification"] == "Beacon v2.1.1"
        for member in definition.get("aCollectionOf", []):
            assert member["id"] in listed
    for endpoint_set in mapped.values():
        for nested in endpoint_set["endpoints"].values():
            assert nested["returnedEntryType"] in listed


def test_error_response(identity):
    document = error_response(identity, 404, "no dataset 'x'")
    assert document["error"] == {"errorCode": 404, "errorMessage": "no dataset 'x'"}
    summary = {
        "apiVersion": "v2.1.1",
        "requestedSchemas": [],
        "pagination": {"skip": 0, "limit": 10},
        "requestedGranularity": "record",
    }
    document = error_response(identity, 400, "bad", received_request_summary=summary)
    validate(document, "beaconErrorResponse")
    assert document["meta"]["receivedRequestSummary"] == summary


def test_identity_from_node(tmp_path):
    node = Node(NodeConfig(tmp_path, {"node_id": "se-node", "country": "SE"}))
    identity = identity_from_node(
        node,
        "https://se.example/beacon/api/",
        environment="prod",
        organisation_name="Example University",
        welcome_url="https://se.example/",
    )
    assert identity.beacon_id == "org.genomenode.se-node"
    assert identity.base_url == "https://se.example/beacon/api"
    assert identity.country == "SE"
    assert identity.organisation_name == "Example University"
    assert identity.organisation_id == "se-node"
    assert identity.organisation_url == "https://se.example/"
    assert identity.api_version == "v2.1.1"
    assert identity.version == genomenode.__version__
    assert identity.production_status == "PROD"


def test_identity_defaults(identity):
    assert identity.welcome_url == BASE_URL
    assert identity.organisation_url == BASE_URL
    assert identity.url("/info") == f"{BASE_URL}/info"


@pytest.mark.parametrize(
    ("node_id", "base_url", "environment", "message"),
    [
        ("", BASE_URL, "dev", "node_id"),
        ("fi-node", "/api", "dev", "absolute"),
        ("fi-node", BASE_URL, "staging", "environment"),
    ],
)
def test_identity_rejects(tmp_path, node_id, base_url, environment, message):
    node = Node(NodeConfig(tmp_path, {"node_id": node_id, "country": "FI"}))
    with pytest.raises(ConfigError, match=message):
        identity_from_node(node, base_url, environment=environment)
