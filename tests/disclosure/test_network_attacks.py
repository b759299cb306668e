"""The differencing attacks through the network: three nodes (real node apps,
in-process behind an ASGI transport) and the network app fanning out to them,
signing each forwarded query with the caller's address (``clt``).

The attacked cohort is on ``fi-node``; the other two hold cohorts with nobody aged
86 or more, so the network's totals differ exactly as the attacked node's. The
network sums what each node released, never undoing a node's noise: differences
of its totals are differences of multiples of 5. Anonymous callers get counts
here (``beacon: {anonymous: count}``) so that the count attacks need no passport
broker shared by three nodes; the mechanism is the one a registered caller meets.
Criteria as in :mod:`.test_attacks`.
"""

from __future__ import annotations

import contextlib
import shutil

import httpx2
import pytest
from fastapi.testclient import TestClient

from genomenode.access import authorize
from genomenode.access.network_trust import NetworkSigner
from genomenode.app import create_app
from genomenode.config import NodeConfig
from genomenode.ingest.pipeline import ingest
from genomenode.network.app import create_network_app
from genomenode.network.registry import RegisteredNode, Registry
from genomenode.store.node import Node, init_node

from ..conftest import in_process_workers
from . import attacks
from .cohort import NUM_COMMON, build, write_description
from .test_attacks import FIXED_KEY

NETWORK = "https://network.example.org"
NETWORK_JWKS = f"{NETWORK}/.well-known/jwks.json"
NODES = {
    "fi-node": ("FI", 12, True),
    "se-node": ("SE", 13, False),
    "ee-node": ("EE", 14, False),
}


def _url(node_id: str) -> str:
    return f"http://{node_id}.test"


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    root = tmp_path_factory.mktemp("network-attacks")
    opened: dict[str, Node] = {}
    cohort = None
    with in_process_workers():
        for node_id, (country, seed, oldest) in NODES.items():
            data = root / f"{node_id}-data"
            truth = build(data, seed, oldest=oldest)
            cohort = truth if oldest else cohort
            description = write_description(
                data,
                f"{node_id}-cohort",
                "PUBLIC",
                country=country,
                beacon={"anonymous": "count"},
            )
            node = init_node(root / node_id, node_id=node_id, country=country)
            ingest(node, description)
            (node.config.node_dir / "keys" / "disclosure.key").write_text(FIXED_KEY)
            trusted = ({"issuer": NETWORK, "jku": NETWORK_JWKS},)
            opened[node_id] = Node(
                NodeConfig(
                    node.config.node_dir,
                    {**node.config.values, "trusted_networks": trusted},
                )
            )
            shutil.rmtree(data)
    yield opened, cohort
    for node in opened.values():
        node.close()


@pytest.fixture(scope="module")
def signer(tmp_path_factory) -> NetworkSigner:
    return NetworkSigner(tmp_path_factory.mktemp("network-keys"), issuer=NETWORK)


@pytest.fixture
def network_keys(monkeypatch, signer):
    async def get(self, url, *, bearer=None):
        assert url == NETWORK_JWKS, url
        return signer.jwks()

    monkeypatch.setattr(authorize.JsonFetcher, "get", get)


class _Nodes(httpx2.AsyncBaseTransport):
    """Routes each forwarded request to its node's app by host name."""

    def __init__(self, apps) -> None:
        self.transports = {
            f"{node_id}.test": httpx2.ASGITransport(app=app, client=("203.0.113.50", 1))
            for node_id, app in apps.items()
        }

    async def handle_async_request(self, request):
        return await self.transports[request.url.host].handle_async_request(request)


@contextlib.contextmanager
def _network(nodes, signer, **settings):
    apps = {
        node_id: create_app(
            Node(NodeConfig(node.config.node_dir, {**node.config.values, **settings})),
            base_url=_url(node_id),
        )
        for node_id, node in nodes.items()
    }
    for node in nodes.values():
        with node.engine.begin() as connection:
            connection.exec_driver_sql("DELETE FROM disclosure_budgets")
    registry = Registry(
        "attack-net",
        NETWORK,
        tuple(RegisteredNode(n, NODES[n][0], _url(n)) for n in nodes),
        timeout_seconds=30.0,
    )
    client = httpx2.AsyncClient(transport=_Nodes(apps))
    network = create_network_app(registry, client=client, signer=signer)
    with TestClient(network) as test_client:
        yield lambda path, body: test_client.post(path, json=body)


def test_through_the_network_without_defences_the_attacks_succeed(
    nodes, signer, network_keys
):
    opened, cohort = nodes
    with _network(opened, signer, disclosure_enabled=False) as post:
        estimates = attacks.filter_differencing(post, dataset=None)
        decisions = attacks.isolation(post, cohort, dataset=None)
    assert estimates == {d: cohort.old_count(d) for d in estimates}
    assert decisions.decided >= NUM_COMMON
    assert decisions.correct == decisions.decided


def test_through_the_network_the_attacks_fail(nodes, signer, network_keys):
    opened, cohort = nodes
    with _network(
        opened,
        signer,
        disclosure_epsilon_budget=1e12,
        disclosure_anonymous_epsilon_budget=1e12,
    ) as post:
        estimates = attacks.filter_differencing(post, dataset=None)
        decisions = attacks.isolation(post, cohort, dataset=None)
        booleans = attacks.boolean_differencing(post, cohort)
    for disease, estimate in estimates.items():
        assert estimate is not None and estimate % 5 == 0
        assert estimate != cohort.old_count(disease)
    assert decisions.decided >= 150
    # With the budget unlimited, noise alone bounds the isolation attack (the
    # defaults' budget makes it chance: the test below).
    assert decisions.advantage() < 0.25, (decisions.correct, decisions.decided)
    assert booleans.advantage() == 0.0


def test_through_the_network_each_node_budgets_the_caller(nodes, signer, network_keys):
    opened, cohort = nodes
    with _network(opened, signer) as post:
        decisions = attacks.isolation(post, cohort, dataset=None)
    # 20 counts per node and dataset, whoever relays them: 10 variants.
    assert decisions.decided + decisions.undecided <= 10
    assert decisions.p_value() > 0.01
