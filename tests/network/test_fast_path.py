"""``GET /api/<entry type>`` through the network's fast path
(:mod:`genomenode.network.fast_path`) answers exactly what FastAPI's route does:
the same status, headers and document for good queries, refused ones, hostile
ones and a failing handler; everything else still goes through the router."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient

from genomenode.network import fast_path
from genomenode.network import http as network_http
from genomenode.network.app import create_network_app
from genomenode.network.fast_path import BeaconGetFastPath

from .test_app import Nodes, _registry

REQUESTS: list[tuple[str, dict[str, str]]] = [
    ("/api/g_variants?referenceName=1&start=0&end=1000&requestedGranularity=count", {}),
    ("/api/individuals?filters=NCIT:C16576&requestedGranularity=boolean", {}),
    ("/api/individuals", {"authorization": "Bearer not-a-jwt"}),
    ("/api/individuals?requestedGranularity=everything", {}),
    ("/api/individuals?unknownParameter=1", {}),
    ("/api/individuals?limit=" + "9" * 5000, {}),
    ("/api/individuals?skip=-1", {}),
    ("/api/individuals?filters=" + ",".join(f"HP:{i:07d}" for i in range(101)), {}),
    ("/api/individuals?start=1&start=2", {}),
    ("/api/datasets?requestedGranularity=record", {}),
    ("/api/cohorts", {"authorization": "Bearer " + "a" * 70_000}),
]


@contextlib.contextmanager
def _apps(nodes: Nodes, *, raise_server_exceptions: bool = True):
    """The network app twice over the same nodes: with the fast path, without."""
    apps = []
    for fast in (True, False):
        client = httpx2.AsyncClient(transport=httpx2.MockTransport(nodes.handle))
        app = create_network_app(_registry(max_query_bytes=4096), client=client)
        if not fast:
            app.user_middleware = [
                layer
                for layer in app.user_middleware
                if layer.cls is not BeaconGetFastPath
            ]
            app.middleware_stack = None
        apps.append(app)
    raising = {"raise_server_exceptions": raise_server_exceptions}
    with (
        TestClient(apps[0], **raising) as fast,
        TestClient(apps[1], **raising) as routed,
    ):
        yield fast, routed


def _same(fast: httpx2.Response, routed: httpx2.Response) -> None:
    assert fast.status_code == routed.status_code, (fast.text, routed.text)
    assert fast.headers.get("content-type") == routed.headers.get("content-type")
    assert fast.headers.get("allow") == routed.headers.get("allow")
    assert _timeless(fast) == _timeless(routed)


def _timeless(response: httpx2.Response) -> Any:
    """The document without the nodes' latencies (which differ between runs)."""
    json_type = response.headers.get("content-type", "").startswith("application/json")
    if not json_type or not response.content:
        return response.content

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "latencyMs"}
        if isinstance(value, list):
            return [strip(item) for item in value]
        return value

    return strip(json.loads(response.content))


@pytest.fixture
def taken(monkeypatch) -> list[str]:
    """The paths the fast path answered."""
    answered: list[str] = []
    handler = fast_path.query_entries

    async def spy(request: Any, path: Any) -> Any:
        answered.append(request.url.path)
        return await handler(request, path)

    monkeypatch.setattr(fast_path, "query_entries", spy)
    return answered


@pytest.mark.parametrize(("url", "headers"), REQUESTS)
def test_the_fast_path_answers_as_the_route_does(url, headers, taken):
    nodes = Nodes()
    with _apps(nodes) as (fast, routed):
        _same(fast.get(url, headers=headers), routed.get(url, headers=headers))
    assert taken == [url.partition("?")[0]]


def test_a_node_down_is_reported_the_same(taken):
    nodes = Nodes()
    nodes.down.add("se.test")
    url = "/api/individuals?requestedGranularity=count"
    with _apps(nodes) as (fast, routed):
        _same(fast.get(url), routed.get(url))
    assert taken == ["/api/individuals"]


def test_an_unexpected_error_is_the_same_500(monkeypatch, taken):
    async def broken(request: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(network_http, "_parsed", broken)
    with _apps(Nodes(), raise_server_exceptions=False) as (fast, routed):
        answers = [client.get("/api/individuals") for client in (fast, routed)]
    _same(*answers)
    assert answers[0].status_code == 500
    assert answers[0].json()["error"]["errorMessage"] == "internal error"
    assert taken == ["/api/individuals"]


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("POST", "/api/individuals"),
        ("HEAD", "/api/individuals"),
        ("GET", "/api/individuals/some-id"),
        ("GET", "/api/individuals/filtering_terms"),
        ("GET", "/api/datasets/d1/individuals"),
        ("GET", "/api/info"),
        ("GET", "/api/unknown_type"),
        ("GET", "/api/individuals/"),
        ("GET", "/network/status"),
    ],
)
def test_everything_else_goes_through_the_router(method, url, taken):
    nodes = Nodes()
    with _apps(nodes) as (fast, routed):
        # No redirects followed: "/api/individuals/" is redirected to the fast path.
        _same(
            fast.request(method, url, follow_redirects=False),
            routed.request(method, url, follow_redirects=False),
        )
    assert taken == []
