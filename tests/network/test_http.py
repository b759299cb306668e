"""The network's handlers alone: each is a module-level function over
``app.state``, so a test hands it a registry, a client and an audit log of its
own, with no app in between."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2

from genomenode.beacon.http import BeaconPath
from genomenode.network import http as network_http
from genomenode.network.breaker import Breakers, BreakerSettings
from genomenode.network.node_client import HttpxNodeClient
from genomenode.network.registry import RegisteredNode, Registry

from ..handlers import stub_request
from .test_merge import GOOD

NODES = (
    RegisteredNode("fi-node", "FI", "http://fi.test"),
    RegisteredNode("se-node", "SE", "http://se.test"),
)


class Recorded:
    """An audit log that keeps what it is given (``NetworkAudit``)."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def record(self, **entry: Any) -> None:
        self.entries.append(entry)


def test_the_query_handler_asks_every_node_and_audits_once():
    asked: list[str] = []

    async def node(request: httpx2.Request) -> httpx2.Response:
        asked.append(f"{request.url.host} {request.url.raw_path.decode()}")
        if request.url.host == "se.test":
            raise httpx2.ConnectError("connection refused", request=request)
        return httpx2.Response(200, json=GOOD)

    registry = Registry(
        network_id="test-net",
        public_url="http://network.test",
        nodes=NODES,
        timeout_seconds=0.3,
    )
    audit = Recorded()
    last_seen: dict[str, str] = {}

    async def run() -> httpx2.Response:
        client = httpx2.AsyncClient(transport=httpx2.MockTransport(node))
        request = stub_request(
            {
                "registry": registry,
                "node_client": HttpxNodeClient(client),
                "signer": None,
                "breakers": Breakers(BreakerSettings(3, 30)),
                "audit": audit,
                "last_seen": last_seen,
            },
            path="/api/datasets/fi-a/individuals",
            query="requestedGranularity=count",
        )
        path = BeaconPath("datasets", entry_id="fi-a", tail="individuals")
        try:
            return await network_http.query_entries(request, path)
        finally:
            await client.aclose()

    response = asyncio.run(run())
    assert response.status_code == 200
    document = json.loads(response.body)
    assert document["responseSummary"]["numTotalResults"] == 6
    # The path asked of the nodes is the route's; the query string is as sent.
    assert sorted(asked) == [
        "fi.test /api/datasets/fi-a/individuals?requestedGranularity=count",
        "se.test /api/datasets/fi-a/individuals?requestedGranularity=count",
    ]
    assert set(last_seen) == {"fi-node"}
    [entry] = audit.entries
    assert entry["action"] == "GET /api/datasets/fi-a/individuals"
    assert entry["outcome"] == "ok"
    assert entry["details"]["nodes"] == {"fi-node": "ok", "se-node": "error"}
