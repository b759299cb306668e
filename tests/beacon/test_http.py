"""Every Beacon endpoint over HTTP (in-process), checked by the official schemas."""

from __future__ import annotations

import asyncio
import json

import pytest
from fastapi.routing import APIRoute

from genomenode.beacon import entry_types
from genomenode.beacon import http as beacon_http
from genomenode.beacon.http import BeaconPath, BeaconService
from genomenode.beacon.schemas import validate

from ..handlers import stub_request

ENTITY_SCHEMA = {
    "g_variants": "genomicVariations",
    "individuals": "individuals",
    "biosamples": "biosamples",
    "runs": "runs",
    "analyses": "analyses",
    "datasets": "datasets",
    "cohorts": "cohorts",
}
ENTRIES = tuple(ENTITY_SCHEMA)
COLLECTIONS = ("datasets", "cohorts")
# One entry of each type in the public CINECA dataset.
KNOWN_IDS = {
    "g_variants": "1-10177-A-AC",
    "individuals": "HG00096",
    "biosamples": "HG00096",
    "runs": "HG00096-run",
    "analyses": "HG00096-analysis",
    "datasets": "cineca-1kg",
    "cohorts": "cineca-1kg",
}
# The nested endpoints, as the framework declares them (checked against the
# official OpenAPI in test_framework.py).
NESTED = entry_types.NESTED


def check(document: dict, entry: str) -> None:
    """Validate a result document: its response schema, then every record."""
    granularity = document["meta"]["returnedGranularity"]
    if granularity == "boolean":
        validate(document, "beaconBooleanResponse")
        assert "numTotalResults" not in document["responseSummary"]
        return
    if granularity == "count":
        validate(document, "beaconCountResponse")
    collections = entry in ("datasets", "cohorts")
    if "response" in document:
        if collections:
            validate(document, "beaconCollectionsResponse")
        else:
            validate(document, "beaconResultsetsResponse")
    records = (
        document["response"].get("collections", [])
        if collections
        else [
            record
            for result_set in document["response"]["resultSets"]
            for record in result_set["results"]
        ]
    )
    if granularity == "count":
        assert records == []
    for record in records:
        validate(record, ENTITY_SCHEMA[entry])


@pytest.mark.parametrize(
    ("path", "schema"),
    [
        ("/api", "beaconInfoResponse"),
        ("/api/info", "beaconInfoResponse"),
        ("/api/service-info", "ga4gh-service-info-1-0-0-schema"),
        ("/api/configuration", "beaconConfigurationResponse"),
        ("/api/map", "beaconMapResponse"),
        ("/api/entry_types", "beaconEntryTypesResponse"),
        ("/api/filtering_terms", "beaconFilteringTermsResponse"),
        *[
            (f"/api/{entry}/filtering_terms", "beaconFilteringTermsResponse")
            for entry in ENTRIES
        ],
        ("/api/datasets/cineca-1kg/filtering_terms", "beaconFilteringTermsResponse"),
        ("/api/cohorts/cineca-1kg/filtering_terms", "beaconFilteringTermsResponse"),
    ],
)
def test_framework_endpoints_validate(client, path, schema):
    response = client.get(path)
    assert response.status_code == 200, response.text
    validate(response.json(), schema)


def test_info_lists_only_what_an_anonymous_caller_may_query(client):
    datasets = client.get("/api/info").json()["response"]["datasets"]
    assert sorted(item["id"] for item in datasets) == ["cineca-1kg", "sim-public"]


def test_filtering_terms_come_from_visible_data(client):
    terms = client.get("/api/filtering_terms").json()["response"]["filteringTerms"]
    ids = {term["id"] for term in terms}
    assert "NCIT:C20197" in ids and "LOINC:35925-4" in ids
    assert "ICD10:E10" in ids
    own = client.get("/api/datasets/cineca-1kg/filtering_terms").json()
    assert {term["id"] for term in own["response"]["filteringTerms"]} <= ids


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e not in COLLECTIONS])
@pytest.mark.parametrize("granularity", ["boolean", "count", "record"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_every_entry_type_at_every_granularity(client, entry, granularity, method):
    if method == "GET":
        response = client.get(
            f"/api/{entry}", params={"requestedGranularity": granularity}
        )
    else:
        body = {
            "meta": {"apiVersion": "v2.0"},
            "query": {"requestedGranularity": granularity},
        }
        response = client.post(f"/api/{entry}", json=body)
    assert response.status_code == 200, response.text
    document = response.json()
    check(document, entry)
    assert document["meta"]["returnedGranularity"] == granularity
    assert (
        document["meta"]["receivedRequestSummary"]["requestedGranularity"]
        == granularity
    )
    assert document["responseSummary"]["exists"] is True
    if granularity != "boolean":
        # Only the dataset that gives anonymous callers records answers above boolean.
        assert document["info"]["datasetsAtLowerGranularity"] == ["sim-public"]
        ids = [item["id"] for item in document["response"]["resultSets"]]
        assert ids == ["cineca-1kg"]


@pytest.mark.parametrize("entry", COLLECTIONS)
@pytest.mark.parametrize("granularity", [None, "boolean", "count", "record"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_collections_are_records_to_anyone_who_may_see_the_dataset(
    client, entry, granularity, method
):
    # Dataset and cohort records are catalogue metadata (already public in
    # DCAT-AP): sim-public allows anonymous callers only boolean, and is listed.
    query = {} if granularity is None else {"requestedGranularity": granularity}
    if method == "GET":
        response = client.get(f"/api/{entry}", params=query)
    else:
        response = client.post(f"/api/{entry}", json={"query": query})
    assert response.status_code == 200, response.text
    document = response.json()
    check(document, entry)
    validate(document, "beaconCollectionsResponse")
    assert document["meta"]["returnedGranularity"] == "record"
    assert "info" not in document
    records = document["response"]["collections"]
    assert sorted(record["id"] for record in records) == ["cineca-1kg", "sim-public"]
    assert document["responseSummary"] == {"exists": True, "numTotalResults": 2}

    one = client.get(f"/api/{entry}/sim-public").json()
    check(one, entry)
    assert [record["id"] for record in one["response"]["collections"]] == ["sim-public"]


@pytest.mark.parametrize("entry", COLLECTIONS)
def test_collections_selected_by_filters_keep_the_dataset_granularity(client, entry):
    # "Which datasets hold a woman" is a question about people: a dataset that
    # gives anonymous callers boolean answers it at boolean.
    body = {
        "query": {"filters": [{"id": "NCIT:C16576"}], "requestedGranularity": "record"}
    }
    document = client.post(f"/api/{entry}", json=body).json()
    check(document, entry)
    assert document["meta"]["returnedGranularity"] == "record"
    assert document["info"]["datasetsAtLowerGranularity"] == ["sim-public"]
    records = document["response"]["collections"]
    assert [record["id"] for record in records] == ["cineca-1kg"]


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("granularity", ["boolean", "count", "record"])
def test_one_entry_by_id(client, entry, granularity):
    response = client.get(
        f"/api/{entry}/{KNOWN_IDS[entry]}", params={"requestedGranularity": granularity}
    )
    assert response.status_code == 200, response.text
    document = response.json()
    check(document, entry)
    assert document["responseSummary"]["exists"] is True
    if granularity == "record":
        if entry in ("datasets", "cohorts"):
            records = document["response"]["collections"]
        else:
            records = document["response"]["resultSets"][0]["results"]
        key = "variantInternalId" if entry == "g_variants" else "id"
        assert [record[key] for record in records] == [KNOWN_IDS[entry]]


@pytest.mark.parametrize(
    ("entry", "nested"),
    [(entry, nested) for entry, children in NESTED.items() for nested in children],
)
@pytest.mark.parametrize("granularity", ["boolean", "count", "record"])
def test_nested_paths(client, entry, nested, granularity):
    response = client.post(
        f"/api/{entry}/{KNOWN_IDS[entry]}/{nested}",
        json={
            "query": {"requestedGranularity": granularity, "pagination": {"limit": 3}}
        },
    )
    assert response.status_code == 200, response.text
    document = response.json()
    check(document, nested)
    assert document["responseSummary"]["exists"] is True
    if granularity == "record":
        results = document["response"]["resultSets"][0]["results"]
        assert 1 <= len(results) <= 3


@pytest.mark.parametrize("entry", ENTRIES)
def test_filters_on_every_entry_type(client, entry):
    body = {
        "query": {"filters": [{"id": "NCIT:C16576"}], "requestedGranularity": "record"}
    }
    if entry == "g_variants":
        body["query"]["requestParameters"] = {
            "referenceName": "1",
            "start": [10000],
            "end": [20000],
        }
    response = client.post(f"/api/{entry}", json=body)
    assert response.status_code == 200, response.text
    check(response.json(), entry)
    assert response.json()["responseSummary"]["exists"] is True


def test_unknown_id_is_an_empty_answer(client):
    document = client.get(
        "/api/individuals/NOBODY", params={"requestedGranularity": "count"}
    ).json()
    check(document, "individuals")
    assert document["responseSummary"] == {"exists": False, "numTotalResults": 0}


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "words"),
    [
        ("GET", "/api/individuals", {"params": {"bogus": "1"}}, 400, "bogus"),
        (
            "GET",
            "/api/g_variants",
            {"params": {"start": "x", "referenceName": "1"}},
            400,
            "start",
        ),
        ("POST", "/api/individuals", {"content": b"{not json"}, 400, "not JSON"),
        (
            "POST",
            "/api/individuals",
            {"json": {"query": {"filters": [{"id": "XYZ:1"}]}}},
            400,
            "XYZ:1",
        ),
        (
            "POST",
            "/api/individuals",
            {"json": {"query": {"requestedGranularity": "all"}}},
            400,
            "requestedGranularity",
        ),
        (
            "GET",
            "/api/individuals",
            {"params": {"filters": "HP:9999999"}},
            400,
            "HP:9999999",
        ),
        ("GET", "/api/nothing", {}, 404, "Not Found"),
        ("GET", "/api/g_variants/not-a-variant", {}, 404, "variant"),
        ("DELETE", "/api/individuals", {}, 405, "Method Not Allowed"),
    ],
)
def test_errors_are_beacon_error_responses(client, method, path, kwargs, status, words):
    response = client.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    document = response.json()
    validate(document, "beaconErrorResponse")
    assert document["error"]["errorCode"] == status
    assert words in document["error"]["errorMessage"]


def test_openapi_describes_every_endpoint(client):
    spec = client.get("/api/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/api",
        "/api/info",
        "/api/service-info",
        "/api/configuration",
        "/api/map",
        "/api/entry_types",
        "/api/filtering_terms",
    ):
        assert path in paths
    for entry in ENTRIES:
        assert set(paths[f"/api/{entry}"]) == {"get", "post"}
        assert f"/api/{entry}/{{entry_id}}" in paths
        for nested in NESTED[entry]:
            assert f"/api/{entry}/{{entry_id}}/{nested}" in paths


def test_controlled_dataset_is_never_mentioned_to_anonymous(client):
    for path in (
        "/api/datasets/sim-controlled",
        "/api/cohorts/sim-controlled/individuals",
    ):
        document = client.get(path, params={"requestedGranularity": "record"}).json()
        assert document["responseSummary"]["exists"] is False
        assert "sim-controlled" not in str(document)


def test_configuration_lists_only_levels_an_anonymous_caller_may_see(client):
    # The node holds a CONTROLLED dataset (sim-controlled); anonymous callers
    # must not learn that from the configuration either.
    security = client.get("/api/configuration").json()["response"]["securityAttributes"]
    assert security["securityLevels"] == ["PUBLIC"]


# Handlers alone: module-level functions over app.state, no app or server needed.


def test_a_query_handler_answers_alone(beacon_node, client):
    service = BeaconService(beacon_node, base_url="http://localhost:8080/api")
    request = stub_request(
        {"beacon": service},
        path="/api/individuals/HG00096",
        query="requestedGranularity=record",
    )
    path = BeaconPath("individuals", entry_id="HG00096")
    response = asyncio.run(beacon_http.query_entries(request, path))
    assert response.status_code == 200
    document = json.loads(response.body)
    check(document, "individuals")
    records = document["response"]["resultSets"][0]["results"]
    assert [record["id"] for record in records] == ["HG00096"]
    # The same answer as the app's, where the route and its dependencies ran.
    over_http = client.get(
        "/api/individuals/HG00096", params={"requestedGranularity": "record"}
    )
    assert document == over_http.json()


def test_every_query_route_reads_its_own_path():
    """beacon_path reads each route's template back into the parts it names."""
    query_handlers = (beacon_http.query_entries, beacon_http.query_filtering_terms)
    routes = [
        route
        for route in beacon_http.router.routes
        if isinstance(route, APIRoute) and route.endpoint in query_handlers
    ]
    # GET and POST of /filtering_terms, three paths per entry type, the nested
    # ones and the filtering terms of one dataset or cohort.
    num_paths = 1 + 3 * len(ENTRIES) + sum(map(len, NESTED.values())) + 2
    assert len(routes) == 2 * num_paths
    for route in routes:
        with_id = "{entry_id}" in route.path_format
        request = stub_request(
            {}, route=route, path_params={"entry_id": "x"} if with_id else {}
        )
        path = asyncio.run(beacon_http.beacon_path(request))
        parts = [path.entry, "{entry_id}" if path.entry_id == "x" else None, path.tail]
        assert "/" + "/".join(part for part in parts if part) == route.path_format
        if route.endpoint is beacon_http.query_entries:
            assert path.scope().entry_type == (path.tail or path.entry)
