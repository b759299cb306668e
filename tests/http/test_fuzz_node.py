"""Fuzz the node's HTTP API: no request gets a 5xx, and every error is JSON in its
API's error document.

Two fuzzers, both in-process:

- schemathesis, from the node's published OpenAPI (``/api/openapi.json``),
  positive and negative cases for every operation it declares;
- hypothesis over every route the app answers (``app.routes``), because the
  OpenAPI leaves out what the Beacon routes read from the path, query and body:
  hostile path segments, query parameters and passports (:mod:`.strategies`).

``GENOMENODE_FUZZ_EXAMPLES`` runs more examples per test.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import given
from hypothesis import strategies as st

from .conftest import (
    CONTROLLED,
    PUBLIC,
    assert_answer,
    assert_openapi_complete,
    draw_request,
    fuzz_openapi,
    routes,
)
from .strategies import fuzz_settings

pytestmark = pytest.mark.fuzz


@pytest.fixture(scope="module")
def node_schema(node_app, node_client):
    # node_client runs the app's lifespan; schemathesis runs its own as well.
    return schemathesis.openapi.from_asgi("/api/openapi.json", node_app)


def test_openapi_operations(node_schema):
    problems = fuzz_openapi(node_schema, examples=5)
    assert not problems, "\n".join(problems)


def test_openapi_lists_every_route(node_app, node_client):
    assert_openapi_complete(node_app, node_client)


@fuzz_settings(200)
@given(data=st.data())
def test_every_route_survives_hostile_requests(
    node_app, node_client, passports, ids, data
):
    real = (PUBLIC, CONTROLLED, *ids.drs_objects, str(ids.submitted_application))
    request = draw_request(data, routes(node_app), real, passports)
    assert_answer(node_client.request(**request))
