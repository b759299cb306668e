"""The published OpenAPI 3.1 documents of the node and the network: valid
(openapi-spec-validator), complete (every route, every path parameter, the
Beacon operations' query parameters, request bodies and official response
schemas), and a fuzzer that checks answers against them can fail."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi import FastAPI
from openapi_spec_validator import OpenAPIV31SpecValidator

from genomenode.beacon.requests import GET_PARAMETERS
from genomenode.beacon.schemas import validate
from genomenode.web.openapi import publish_openapi
from genomenode.web.responses import install_error_handlers, json_response

from .conftest import fuzz_openapi

COMPONENTS = "#/components/schemas/"


@pytest.fixture(params=["node", "network"])
def document(request, node_client, network_client):
    client = node_client if request.param == "node" else network_client
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    return response.json()


def _operations(document):
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            yield path, method, operation


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"].startswith("3.1.")
    errors = [
        str(error)[:300] for error in OpenAPIV31SpecValidator(document).iter_errors()
    ]
    assert not errors, "\n".join(errors)


def test_every_reference_resolves_inside_the_document(document):
    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    yield value
                else:
                    yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    for reference in set(walk(document)):
        assert reference.startswith(COMPONENTS), reference
        target = document
        for part in reference.removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        assert isinstance(target, dict), reference


def test_beacon_operations_declare_their_query_body_and_answers(document):
    beacon = [(p, m, o) for p, m, o in _operations(document) if p.startswith("/api")]
    assert len(beacon) > 80
    for path, method, operation in beacon:
        ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert "$ref" in ok or "anyOf" in ok, (method, path)
        error = operation["responses"]["4XX"]["content"]["application/json"]
        assert error["schema"] == {
            "$ref": COMPONENTS + "responses.beaconErrorResponse"
        }, (method, path)
        names = {parameter["name"] for parameter in operation.get("parameters", [])}
        if "{entry_id}" in path:
            assert "entry_id" in names, (method, path)
        query_route = "filtering_terms" in path or (
            path.count("/") >= 2
            and not any(
                path.endswith(tail)
                for tail in ("/service-info", "/configuration", "/map", "/entry_types")
            )
        )
        if method == "get" and query_route and path != "/api/info":
            assert names >= GET_PARAMETERS, (method, path)
        if method == "post":
            body = operation["requestBody"]["content"]["application/json"]["schema"]
            assert body == {"$ref": COMPONENTS + "requests.beaconRequestBody"}
    schemas = document["components"]["schemas"]
    for name in (
        "responses.beaconBooleanResponse",
        "responses.beaconCountResponse",
        "responses.beaconResultsetsResponse",
        "responses.beaconCollectionsResponse",
        "common.beaconCommonComponents",
    ):
        assert name in schemas
    # No operation promises FastAPI's 422: a request that does not validate is a 400.
    assert not [p for p, _, o in _operations(document) if "422" in o["responses"]]


def test_the_other_apis_declare_their_error_documents(node_client):
    document = node_client.get("/api/openapi.json").json()
    for path, method, operation in _operations(document):
        error = operation["responses"]["4XX"]["content"]["application/json"]["schema"]
        if path.startswith("/htsget"):
            assert error["required"] == ["htsget"], (method, path)
        elif path.startswith("/ga4gh/drs"):
            assert error["required"] == ["msg", "status_code"], (method, path)
        elif not path.startswith("/api"):
            assert error["required"] == ["detail"], (method, path)
    # DRS and the DAC API declare what they answer, a new application its 201.
    paths = document["paths"]
    created = paths["/access/applications"]["post"]["responses"]
    assert "201" in created and "200" not in created
    for path, method in (
        ("/ga4gh/drs/v1/objects/{object_id}", "get"),
        ("/ga4gh/drs/v1/objects/{object_id}/access/{access_id}", "post"),
        ("/access/applications/{application_id}", "get"),
        ("/access/grants", "get"),
    ):
        answer = paths[path][method]["responses"]
        status = "201" if "201" in answer else "200"
        assert answer[status]["content"]["application/json"]["schema"]["required"]
    assert any(path.startswith("/htsget") for path in document["paths"])
    assert any(path.startswith("/ga4gh/drs") for path in document["paths"])
    assert any(path.startswith("/access") for path in document["paths"])


def test_the_components_are_the_official_schemas(node_client):
    # A real answer validates against the component as against the vendored file.
    answer = node_client.get("/api/info").json()
    validate(answer, "beaconInfoResponse")
    document = node_client.get("/api/openapi.json").json()
    assert document["components"]["schemas"]["responses.beaconInfoResponse"][
        "properties"
    ]["meta"]["$ref"] == (
        COMPONENTS + "responses.sections.beaconInformationalResponseMeta"
    )


def test_an_answer_that_breaks_its_declared_schema_is_reported():
    app = FastAPI(openapi_url="/api/openapi.json")

    @app.get(
        "/thing",
        openapi_extra={
            "responses": {
                "200": {
                    "description": "a thing",
                    "content": {
                        "application/json": {
                            "schema": {"type": "object", "required": ["name"]}
                        }
                    },
                }
            }
        },
    )
    async def thing():
        return json_response({"nom": "x"})

    install_error_handlers(app)
    publish_openapi(app)
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    problems = fuzz_openapi(schema, examples=2)
    assert problems and "name" in problems[0], problems


def test_htsget_operations_declare_their_parameters_body_and_ticket(node_client):
    paths = node_client.get("/api/openapi.json").json()["paths"]
    for kind, only_reads in (("variants", set()), ("reads", {"fields", "tags"})):
        operations = paths[f"/htsget/{kind}/{{object_id}}"]
        names = {p["name"] for p in operations["get"]["parameters"]}
        assert {"format", "class", "referenceName", "start", "end"} <= names
        assert only_reads <= names
        if kind == "variants":
            assert not {"fields", "tags", "notags"} & names
        body = operations["post"]["requestBody"]["content"]["application/json"]
        assert "regions" in body["schema"]["properties"]
        for method in ("get", "post"):
            content = operations[method]["responses"]["200"]["content"]
            ticket = content["application/vnd.ga4gh.htsget.v1.3.0+json"]["schema"]
            assert ticket["properties"]["htsget"]["required"] == ["format", "urls"]
