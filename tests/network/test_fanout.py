"""The network's client: one bounded connection pool per node (against tiny real
HTTP servers on loopback), and schema verdicts remembered per body."""

from __future__ import annotations

import asyncio
import json

import httpx2
import pytest

from genomenode.errors import BeaconValidationError
from genomenode.network import fanout
from genomenode.network.app import new_client
from genomenode.network.fanout import PerOriginTransport
from genomenode.network.registry import RegisteredNode, Registry

from .test_merge import GOOD
from .test_node_client import Handler, Server, answer


def slow(delay: float) -> Handler:
    """A :class:`Server` handler answering every request after ``delay`` seconds."""
    body = json.dumps(GOOD).encode()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.readuntil(b"\r\n\r\n"):
            await asyncio.sleep(delay)
            writer.write(answer(body))
            await writer.drain()

    return serve


def test_each_node_has_its_own_bounded_pool():
    first, second = Server(slow(0.1)), Server(slow(0.1))

    async def run():
        async with first as first_url, second as second_url:
            nodes = (
                RegisteredNode("a", "FI", first_url),
                RegisteredNode("b", "SE", second_url),
            )
            registry = Registry(
                "t", "http://network.test", nodes, max_connections_per_node=2
            )
            async with new_client(registry) as client:
                rounds = await asyncio.gather(
                    *(
                        fanout.fan_out(
                            nodes,
                            "GET",
                            "individuals",
                            timeout_seconds=5,
                            client=client,
                        )
                        for _ in range(6)
                    )
                )
                transport = client._transport
                assert isinstance(transport, PerOriginTransport)
                return rounds, len(transport._pools)

    rounds, num_pools = asyncio.run(run())
    assert all(answer.status == "ok" for answers in rounds for answer in answers)
    # Six requests at once to each node, two connections each: they took turns.
    assert first.most_open == second.most_open == 2
    assert num_pools == 2


def test_a_valid_body_is_validated_once(monkeypatch):
    calls: list[str] = []
    real_validate = fanout.validate

    def counting(document, schema):
        calls.append(schema)
        real_validate(document, schema)

    monkeypatch.setattr(fanout, "validate", counting)
    valid_bodies = fanout._ValidBodies(2)
    content = json.dumps(GOOD).encode()
    for _ in range(3):
        valid_bodies.validate(content, GOOD, "beaconCountResponse")
    assert calls == ["beaconCountResponse"]
    # Another schema, another verdict; the oldest verdict is forgotten.
    valid_bodies.validate(content, GOOD, "beaconResultsetsResponse")
    valid_bodies.validate(b"{}" + content, GOOD, "beaconCountResponse")
    valid_bodies.validate(content, GOOD, "beaconCountResponse")
    assert len(calls) == 4
    # An invalid body is never remembered: it fails every time.
    broken = {**GOOD, "responseSummary": {"exists": "yes"}}
    for _ in range(2):
        with pytest.raises(BeaconValidationError):
            valid_bodies.validate(b"broken", broken, "beaconCountResponse")
    assert len(calls) == 6


def test_params_are_encoded_when_no_query_string_is_given():
    seen: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.url.query.decode())
        return httpx2.Response(200, json=GOOD)

    async def run():
        transport = httpx2.MockTransport(handler)
        async with httpx2.AsyncClient(transport=transport) as client:
            node = RegisteredNode("n", "FI", "http://n.test")
            await fanout.fan_out(
                [node],
                "GET",
                "individuals",
                params=[("filters", "HP:1"), ("filters", "a b")],
                timeout_seconds=1,
                client=client,
            )
            with pytest.raises(ValueError, match="not both"):
                await fanout.fan_out(
                    [node],
                    "GET",
                    "individuals",
                    params=[("a", "1")],
                    query="a=1",
                    timeout_seconds=1,
                    client=client,
                )

    asyncio.run(run())
    assert seen == ["filters=HP%3A1&filters=a+b"]
