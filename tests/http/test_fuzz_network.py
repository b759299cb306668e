"""Fuzz the network's HTTP API: no request gets a 5xx, and every error is JSON in
its API's error document.

The network fans out to the fuzzed node in-process (``conftest.network_app``), so
a request the network forwards reaches a real node. As for the node: schemathesis
from the network's OpenAPI, then hypothesis over every route it answers.
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
def network_schema(network_app, network_client):
    return schemathesis.openapi.from_asgi("/api/openapi.json", network_app)


def test_openapi_lists_every_route(network_app, network_client):
    assert_openapi_complete(network_app, network_client)


def test_openapi_operations(network_schema):
    problems = fuzz_openapi(network_schema, examples=3)
    assert not problems, "\n".join(problems)


@fuzz_settings(100)
@given(data=st.data())
def test_every_route_survives_hostile_requests(
    network_app, network_client, passports, data
):
    request = draw_request(data, routes(network_app), (PUBLIC, CONTROLLED), passports)
    assert_answer(network_client.request(**request))
