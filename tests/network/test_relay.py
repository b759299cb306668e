"""The network's relay keys: fetched in the background, used instead of signing,
dropped and replaced when a node refuses them, and never a cause of failure.

The end-to-end test runs a real node (``genomenode serve``, its own process) that
trusts a real network app (served by uvicorn on loopback, in this process so its
ES256 signatures can be counted); the back-off test uses the in-process network
over a mock transport, as ``test_app.py`` does.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx2
import pytest
from fastapi.testclient import TestClient

from genomenode.access import jws
from genomenode.access.network_trust import ASSERTION_HEADER, NetworkSigner
from genomenode.access.relay_keys import RelayKey
from genomenode.ingest.pipeline import ingest
from genomenode.network import fanout
from genomenode.network.app import create_network_app
from genomenode.network.node_client import HttpxNodeClient
from genomenode.network.registry import RegisteredNode, Registry
from genomenode.network.relay import RelayKeys, _Held
from genomenode.store.node import init_node

from ..conftest import (
    free_port,
    in_process_workers,
    serving_in_thread,
    wait_until_up,
    write_dataset_yaml,
    write_small_cohort,
)
from .test_merge import GOOD
from .test_network import _serve_node, _stop

QUERY = "/api/g_variants?referenceName=1&start=999&end=1000&requestedGranularity=count"


@pytest.fixture
def es256_signatures(monkeypatch) -> list[str]:
    """Every ES256 signature made (the real signing still happens)."""
    made: list[str] = []
    original = jws.sign_es256

    def counting(*args, **kwargs):
        made.append(kwargs.get("token_type", "JWT"))
        return original(*args, **kwargs)

    monkeypatch.setattr(jws, "sign_es256", counting)
    return made


def _without_timings(document: object) -> object:
    """An answer without the nodes' latencies, the one part that varies."""
    if isinstance(document, dict):
        return {
            name: _without_timings(value)
            for name, value in document.items()
            if name != "latencyMs"
        }
    if isinstance(document, list):
        return [_without_timings(value) for value in document]
    return document


def _until(condition, what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_relayed_queries_are_maced_once_a_key_is_held(tmp_path, es256_signatures):
    with in_process_workers():
        write_small_cohort(
            tmp_path / "cohort", dataset_id="fi-cohort", num_samples=30, seed=4
        )
        dataset_yaml = write_dataset_yaml(
            tmp_path / "cohort",
            id="fi-cohort",
            country="FI",
            security_level="PUBLIC",
            beacon={"anonymous": "count"},
        )
        with init_node(tmp_path / "fi-node", node_id="fi-node", country="FI") as node:
            ingest(node, dataset_yaml)
    network_port, node_port = free_port(), free_port()
    network_url = f"http://127.0.0.1:{network_port}"
    node_url = f"http://127.0.0.1:{node_port}"
    trusted = [{"issuer": network_url, "jku": f"{network_url}/.well-known/jwks.json"}]
    signer = NetworkSigner(tmp_path / "network-keys", network_url)
    registry = Registry(
        network_id="relay-net",
        public_url=network_url,
        nodes=(RegisteredNode("fi-node", "FI", node_url),),
        timeout_seconds=10,
    )
    app = create_network_app(registry, signer=signer)
    node_process = _serve_node(
        tmp_path / "fi-node",
        node_port,
        {
            "GENOMENODE_PUBLIC_URL": node_url,
            "GENOMENODE_DISCLOSURE_ENABLED": "false",
            "GENOMENODE_TRUSTED_NETWORKS": json.dumps(trusted),
            "GENOMENODE_REQUIRE_NETWORK_ASSERTION": "true",
        },
    )
    try:
        wait_until_up(node_process, f"{node_url}/api/service-info")
        with serving_in_thread(app, network_port) as network, httpx2.Client() as client:
            relay_keys: RelayKeys = app.state.relay_keys

            def ask() -> object:
                response = client.get(f"{network}{QUERY}", timeout=30)
                assert response.status_code == 200, response.text
                document = response.json()
                assert document["responseSummary"]["numTotalResults"] > 0, document
                return _without_timings(document)

            # The first query is signed and asks for a key in the background.
            signed_answer = ask()
            assert es256_signatures
            _until(lambda: relay_keys.num_obtained == 1, "a relay key")
            es256_signatures.clear()
            maced_answers = [ask() for _ in range(5)]
            assert es256_signatures == []
            assert all(answer == signed_answer for answer in maced_answers)
            # The node requires an assertion: these were MACed and accepted.
            held = relay_keys._held["fi-node"].key
            assert held.kid.count(".") == 1

            # A new relay secret on the node: its keys are refused, the network
            # resends signed (the caller sees nothing), then gets a new key.
            (tmp_path / "fi-node" / "keys" / "relay.key").unlink()
            time.sleep(1.2)  # the node looks at the file at most once a second
            es256_signatures.clear()
            assert ask() == signed_answer
            assert es256_signatures  # the resend was signed
            _until(lambda: relay_keys.num_obtained == 2, "a new relay key")
            assert relay_keys._held["fi-node"].key.kid != held.kid
            es256_signatures.clear()
            assert ask() == signed_answer
            assert es256_signatures == []
    finally:
        _stop(node_process)


def test_a_node_without_relay_keys_is_asked_once_and_signed_for(tmp_path):
    """An older node (404 on /access/relay-keys) costs one request for a key,
    then a back-off; every query is signed and answered meanwhile."""
    asked: list[str] = []

    async def handle(request: httpx2.Request) -> httpx2.Response:
        asked.append(request.url.path)
        if not request.url.path.startswith("/api"):
            return httpx2.Response(404, json={"detail": "not found"})
        assertion = request.headers[ASSERTION_HEADER]
        assert jws.peek(assertion)[0]["alg"] == "ES256"
        return httpx2.Response(200, json=GOOD)

    registry = Registry(
        network_id="test-net",
        public_url="http://network.test",
        nodes=(RegisteredNode("fi-node", "FI", "http://fi.test"),),
        timeout_seconds=2,
    )
    signer = NetworkSigner(tmp_path / "keys", "http://network.test")
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(handle))
    app = create_network_app(registry, client=client, signer=signer)
    with TestClient(app) as test_client:
        for _ in range(4):
            response = test_client.get("/api/individuals?requestedGranularity=count")
            assert response.status_code == 200, response.text
            test_client.portal.call(app.state.relay_keys.wait_idle)
    assert asked.count("/access/relay-keys") == 1
    assert asked.count("/api/individuals") == 4
    assert app.state.relay_keys.num_obtained == 0


def test_a_refused_key_is_dropped_and_the_request_resent_signed(tmp_path):
    """A 401 naming the network assertion: once more, signed; a 401 for the
    passport: the key is kept and the answer passed on."""
    signer = NetworkSigner(tmp_path / "keys", "http://network.test")
    node = RegisteredNode("fi-node", "FI", "http://fi.test")
    seen: list[str] = []
    refuse = {"mac": True, "passport": False}

    async def handle(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/access/relay-keys":
            return httpx2.Response(503)
        header = jws.peek(request.headers[ASSERTION_HEADER])[0]
        seen.append(header["alg"])
        error = {"errorCode": 401, "errorMessage": ""}
        document = {"meta": GOOD["meta"], "error": error}
        if refuse["passport"]:
            error["errorMessage"] = "passport of https://broker has expired"
            return httpx2.Response(401, json=document)
        if header["alg"] == "HS256" and refuse["mac"]:
            error["errorMessage"] = (
                "network assertion of http://network.test has a bad signature"
            )
            return httpx2.Response(401, json=document)
        return httpx2.Response(200, json=GOOD)

    async def go():
        client = HttpxNodeClient(
            httpx2.AsyncClient(transport=httpx2.MockTransport(handle)), owned=True
        )
        keys = RelayKeys(signer, client, timeout_seconds=1)
        key = RelayKey("4000000000.0123456789abcdef", bytes(range(32)), 3600)
        keys._held["fi-node"] = _held(key)
        answers = []
        for change in ({}, {"mac": False}, {"passport": True}):
            refuse.update(change)
            if "fi-node" not in keys._held:
                keys._held["fi-node"] = _held(key)
            answers.extend(
                await fanout.fan_out(
                    [node],
                    "GET",
                    "individuals",
                    timeout_seconds=2,
                    client=client,
                    signer=signer,
                    relay_keys=keys,
                )
            )
            answers.append("fi-node" in keys._held)
        await keys.aclose()
        await client.aclose()
        return answers

    answers = asyncio.run(go())
    # Refused key: MACed, then signed, answered; the key dropped.
    assert answers[0].status == "ok" and answers[1] is False
    # Honoured key: MACed only.
    assert answers[2].status == "ok" and answers[3] is True
    # A passport refusal: passed on, the key kept, nothing resent.
    assert answers[4].status == "error" and answers[5] is True
    assert seen == ["HS256", "ES256", "HS256", "HS256"]


def _held(key: RelayKey) -> _Held:
    return _Held(key, renew_at=float("inf"), use_until=float("inf"))
