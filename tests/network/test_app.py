"""The network app in-process, its nodes behind httpx2's MockTransport: what the
caller controls is checked before any node is asked, open circuits are reported,
every forwarded query is audited once, the harvest needs the operator's token,
and a caller who goes away cancels the fan-out."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import httpx2
import jwt
import pytest
from fastapi.testclient import TestClient

from genomenode.beacon.schemas import validate
from genomenode.config import Secret
from genomenode.errors import ClientDisconnected, ConfigError
from genomenode.network.app import (
    OPERATOR_TOKEN_ENVIRONMENT_VARIABLE,
    create_network_app,
    operator_token_from_environment,
)
from genomenode.network.breaker import BreakerSettings
from genomenode.network.registry import RegisteredNode, Registry
from genomenode.web.blocking import cancel_on_disconnect

from .test_merge import GOOD, _info

NODES = (
    RegisteredNode("fi-node", "FI", "http://fi.test"),
    RegisteredNode("se-node", "SE", "http://se.test"),
)
COUNT = {"requestedGranularity": "count"}
TOKEN = "operator-token-0123456789"


class Nodes:
    """The nodes' side: what each was asked, and how each behaves."""

    def __init__(self) -> None:
        self.asked: list[httpx2.Request] = []
        self.down: set[str] = set()
        self.hang: set[str] = set()
        self.cancelled: list[str] = []

    def api_requests(self) -> list[httpx2.Request]:
        return [r for r in self.asked if r.url.path.startswith("/api")]

    async def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.asked.append(request)
        host = request.url.host
        if not request.url.path.startswith("/api"):
            return httpx2.Response(404, text="no catalogue here")
        if host in self.down:
            raise httpx2.ConnectError("connection refused", request=request)
        if host in self.hang:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                self.cancelled.append(host)
                raise
        if request.url.path == "/api/info":
            return httpx2.Response(200, json=_info(host, [f"{host}-a"]))
        return httpx2.Response(200, json=GOOD)


def _registry(**changes: Any) -> Registry:
    fields: dict[str, Any] = {
        "network_id": "test-net",
        "public_url": "http://network.test",
        "nodes": NODES,
        "timeout_seconds": 0.3,
        **changes,
    }
    return Registry(**fields)


@contextlib.contextmanager
def _network(registry: Registry | None = None, **options: Any):
    nodes = Nodes()
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(nodes.handle))
    app = create_network_app(registry or _registry(), client=client, **options)
    with TestClient(app) as test_client:
        yield test_client, nodes, app


def _refused_before_fan_out(response, nodes: Nodes, status: int, field: str) -> None:
    assert response.status_code == status, response.text
    document = response.json()
    validate(document, "beaconErrorResponse")
    assert field in document["error"]["errorMessage"]
    assert nodes.api_requests() == []


@pytest.mark.parametrize(
    "path",
    [
        "/api/datasets/%2e%2e",
        "/api/datasets/%2E%2E/individuals",
        "/api/individuals/%2e",
        "/api/individuals/%252e%252e",
        "/api/individuals/a%00b",
        "/api/individuals/a%20b",
        "/api/individuals/a%0Ab",
        "/api/cohorts/%2e%2e/filtering_terms",
        "/api/individuals/" + "a" * 257,
    ],
)
def test_bad_entry_ids_are_refused_before_any_node_is_asked(path):
    with _network() as (client, nodes, _):
        for method in ("GET", "POST"):
            response = client.request(method, path)
            _refused_before_fan_out(response, nodes, 400, "entry id")


def test_entry_ids_and_the_query_are_forwarded_as_sent():
    query = "requestedGranularity=count&filters=HP%3A0000118,NCIT:C16576&skip=0"
    with _network() as (client, nodes, _):
        response = client.get(f"/api/datasets/fi-cohort.v1_2/individuals?{query}")
        assert response.status_code == 200, response.text
        forwarded = {r.url.host: r for r in nodes.api_requests()}
        assert forwarded.keys() == {"fi.test", "se.test"}
        for request in forwarded.values():
            assert request.url.path == "/api/datasets/fi-cohort.v1_2/individuals"
            assert request.url.query.decode() == query


def _scope(
    path: str, *, method: str = "GET", query: bytes = b"", headers: list | None = None
) -> dict:
    """An ASGI HTTP scope with raw bytes as given (TestClient would encode them)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": headers or [],
        "client": ("127.0.0.1", 1234),
        "server": ("network.test", 80),
    }


def _asgi_request(
    app, path: str, *, query: bytes = b"", headers: list | None = None
) -> tuple[int, dict]:
    """One GET straight through the ASGI interface, raw bytes as given."""
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = _scope(path, query=query, headers=headers)
    asyncio.run(app(scope, receive, send))
    body = b"".join(
        message.get("body", b"")
        for message in sent
        if message["type"] == "http.response.body"
    )
    return sent[0]["status"], json.loads(body)


@pytest.mark.parametrize(
    ("query", "headers", "field"),
    [
        (b"requestedGranularity=count&x=a b", [], "query string"),
        (b"requestedGranularity=count\x00", [], "query string"),
        ("requestedGranularity=c\u00e9".encode(), [], "query string"),
        (b"skip=0&" + b"a" * 200, [], "query string"),
        (b"", [(b"authorization", "Bearer café".encode("latin-1"))], "Authorization"),
        (b"", [(b"authorization", b"Bearer \x01")], "Authorization"),
        (b"", [(b"authorization", b"Bearer " + b"a" * 70_000)], "Authorization"),
    ],
)
def test_bad_query_strings_and_passports_are_refused(query, headers, field):
    nodes = Nodes()
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(nodes.handle))
    app = create_network_app(_registry(max_query_bytes=100), client=client)
    status, document = _asgi_request(
        app, "/api/individuals", query=query, headers=headers
    )
    assert status == 400
    validate(document, "beaconErrorResponse")
    assert field in document["error"]["errorMessage"]
    # A credential is never repeated back.
    assert "caf" not in document["error"]["errorMessage"]
    assert nodes.api_requests() == []


def test_bodies_too_large_or_too_deep_are_refused():
    with _network(_registry(max_body_bytes=1000)) as (client, nodes, _):
        response = client.post("/api/g_variants", content=b" " * 1001)
        _refused_before_fan_out(response, nodes, 413, "1000")
    with _network() as (client, nodes, _):
        response = client.post("/api/g_variants", content=b"[" * 100_000)
        _refused_before_fan_out(response, nodes, 400, "body")
        response = client.post("/api/g_variants", content=b'{"query": "\xff"}')
        _refused_before_fan_out(response, nodes, 400, "body")


def test_an_open_circuit_is_reported_not_dropped():
    registry = _registry(circuit_breaker=BreakerSettings(2, 60))
    with _network(registry) as (client, nodes, _):
        nodes.down.add("se.test")
        statuses = []
        for _ in range(3):
            document = client.get("/api/individuals", params=COUNT).json()
            validate(document, "beaconCountResponse")
            statuses.append({n["id"]: n for n in document["info"]["nodes"]})
        assert [s["se-node"]["status"] for s in statuses] == [
            "error",
            "error",
            "unavailable",
        ]
        assert "circuit open" in statuses[2]["se-node"]["reason"]
        assert all(s["fi-node"]["status"] == "ok" for s in statuses)
        assert [r.url.host for r in nodes.api_requests()].count("se.test") == 2
        circuits = {
            n["id"]: n["circuit"] for n in client.get("/network/status").json()["nodes"]
        }
        assert circuits == {"fi-node": "closed", "se-node": "open"}


class FakeAudit:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def record(self, **entry: Any) -> None:
        self.records.append(entry)


def test_every_forwarded_query_is_audited_once():
    audit = FakeAudit()
    passport = jwt.encode({"sub": "researcher@example.org"}, "k" * 32, "HS256")
    with _network(audit=audit) as (client, nodes, _):
        nodes.down.add("se.test")
        client.get("/api/individuals", params=COUNT)
        client.post(
            "/api/g_variants",
            json={"query": {"requestedGranularity": "count"}},
            headers={"Authorization": f"Bearer {passport}"},
        )
        client.get("/api/info")
        client.get("/api/datasets/x/filtering_terms")
        # Not forwarded: the network's own documents, and refused requests.
        client.get("/api/map")
        client.get("/api/service-info")
        client.get("/api/individuals", params={"colour": "blue"})
        client.get("/api/datasets/%2e%2e")
    assert [(r["actor"], r["action"], r["outcome"]) for r in audit.records] == [
        ("anonymous", "GET /api/individuals", "ok"),
        ("researcher@example.org", "POST /api/g_variants", "ok"),
        ("anonymous", "GET /api/info", "ok"),
        ("anonymous", "GET /api/datasets/x/filtering_terms", "ok"),
    ]
    first = audit.records[0]
    assert first["details"]["nodes"] == {"fi-node": "ok", "se-node": "error"}
    assert first["reason"] == "HTTP 200; 1 of 2 nodes answered"
    assert passport not in json.dumps(audit.records)


def test_a_query_no_node_answers_is_audited_as_an_error():
    audit = FakeAudit()
    with _network(audit=audit) as (client, nodes, _):
        nodes.down.update({"fi.test", "se.test"})
        assert client.get("/api/individuals", params=COUNT).status_code == 502
    [record] = audit.records
    assert record["outcome"] == "error"
    assert record["details"]["nodes"] == {"fi-node": "error", "se-node": "error"}


def test_on_demand_harvest_needs_the_operator_token():
    with _network(_registry(operator_token=Secret(TOKEN))) as (client, _, _app):
        assert client.post("/catalogue/harvest").status_code == 401
        wrong = client.post(
            "/catalogue/harvest", headers={"Authorization": f"Bearer {TOKEN}x"}
        )
        assert wrong.status_code == 403
        assert TOKEN not in wrong.text
        right = {"Authorization": f"Bearer {TOKEN}"}
        for _ in range(2):  # an operator is not rate-limited
            response = client.post("/catalogue/harvest", headers=right)
            assert response.status_code == 200
            assert response.json().keys() == {"fi-node", "se-node"}


def test_without_a_token_anyone_may_harvest_once_a_minute():
    with _network() as (client, _, _app):
        assert client.post("/catalogue/harvest").status_code == 200
        again = client.post("/catalogue/harvest")
        assert again.status_code == 429
        assert "retry in" in again.json()["detail"]


def test_operator_token_from_the_environment(monkeypatch):
    monkeypatch.delenv(OPERATOR_TOKEN_ENVIRONMENT_VARIABLE, raising=False)
    assert operator_token_from_environment() is None
    monkeypatch.setenv(OPERATOR_TOKEN_ENVIRONMENT_VARIABLE, TOKEN)
    token = operator_token_from_environment()
    assert token is not None and token.reveal() == TOKEN
    assert TOKEN not in repr(token)
    monkeypatch.setenv(OPERATOR_TOKEN_ENVIRONMENT_VARIABLE, "short")
    with pytest.raises(ConfigError, match="at least 16"):
        operator_token_from_environment()
    # The environment's token wins over NETWORK.yaml's.
    monkeypatch.setenv(OPERATOR_TOKEN_ENVIRONMENT_VARIABLE, TOKEN)
    registry = _registry(operator_token=Secret("from-network-yaml-0123"))
    with _network(registry, operator_token=operator_token_from_environment()) as (
        client,
        _,
        _app,
    ):
        operator = {"Authorization": f"Bearer {TOKEN}"}
        assert client.post("/catalogue/harvest", headers=operator).status_code == 200


def _watched_request(disconnect_after: float | None):
    """A Request whose client disconnects after ``disconnect_after`` seconds."""
    from starlette.requests import Request

    async def receive() -> dict:
        if receive.calls == 0:  # type: ignore[attr-defined]
            receive.calls += 1  # type: ignore[attr-defined]
            return {"type": "http.request", "body": b"", "more_body": False}
        if disconnect_after is None:
            await asyncio.sleep(3600)
        await asyncio.sleep(disconnect_after)
        return {"type": "http.disconnect"}

    receive.calls = 0  # type: ignore[attr-defined]
    return Request({"type": "http", "method": "GET", "headers": []}, receive)


def test_cancel_on_disconnect_cancels_the_work():
    finished: list[str] = []

    async def work() -> str:
        try:
            await asyncio.sleep(30)
            return "done"
        finally:
            finished.append("cleaned up")

    async def run() -> float:
        started = time.perf_counter()
        with pytest.raises(ClientDisconnected):
            await cancel_on_disconnect(_watched_request(0.05), work())
        return time.perf_counter() - started

    elapsed = asyncio.run(run())
    assert elapsed < 1
    assert finished == ["cleaned up"]


def test_cancel_on_disconnect_returns_the_result_and_stops_watching():
    async def work() -> str:
        await asyncio.sleep(0.01)
        return "done"

    async def run() -> tuple[str, int]:
        result = await cancel_on_disconnect(_watched_request(None), work())
        await asyncio.sleep(0)
        # Only this test's own task is left: the watcher was cancelled.
        return result, len(asyncio.all_tasks())

    assert asyncio.run(run()) == ("done", 1)


def test_a_caller_going_away_mid_body_is_not_an_error():
    nodes = Nodes()
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(nodes.handle))
    app = create_network_app(_registry(), client=client)
    messages = iter(
        [
            {"type": "http.request", "body": b'{"query": ', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    sent: list[dict] = []

    async def receive() -> dict:
        return next(messages)

    async def send(message: dict) -> None:
        sent.append(message)

    scope = _scope("/api/g_variants", method="POST")
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 499
    assert nodes.api_requests() == []


def test_a_caller_going_away_cancels_the_nodes_requests():
    nodes = Nodes()
    nodes.hang.update({"fi.test", "se.test"})
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(nodes.handle))
    app = create_network_app(_registry(timeout_seconds=30), client=client)
    sent: list[dict] = []
    calls = 0

    async def receive() -> dict:
        nonlocal calls
        calls += 1
        if calls == 1:
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(0.1)
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = _scope("/api/individuals", query=b"requestedGranularity=count")
    started = time.perf_counter()
    asyncio.run(app(scope, receive, send))
    assert time.perf_counter() - started < 1
    assert sorted(nodes.cancelled) == ["fi.test", "se.test"]
    assert sent[0]["status"] == 499  # never delivered: the caller is gone
