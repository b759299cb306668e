"""Budgets over HTTP: a spent budget is 429 with Retry-After in a Beacon error
document, audited; a new app on the same database (a restart) keeps it; workers
(threads of one app) cannot overspend it; a trusted network's ``clt`` budgets
the caller it relayed."""

from __future__ import annotations

import concurrent.futures
import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from genomenode.access.network_trust import ASSERTION_HEADER, NetworkSigner
from genomenode.app import create_app
from genomenode.beacon.schemas import validate
from genomenode.config import NodeConfig
from genomenode.ingest.pipeline import ingest
from genomenode.store.models import AuditEntry
from genomenode.store.node import Node, init_node, open_node

from ..access.test_network_trust import NETWORK, NETWORK_JWKS
from ..conftest import in_process_workers, write_dataset_yaml, write_small_cohort

BASE = "http://testserver"
DATASET = "budgeted"
#: Anonymous yes/no on people carrying a common variant: in a dataset of 60 people
#: each costs ceil(100 / 60) = 2 units of 0.5 (disclosure_small_dataset_individuals),
#: a quarter of the budget of 4.
QUERY = {
    "meta": {"apiVersion": "2.0"},
    "query": {
        "requestParameters": {"referenceName": "1", "start": [999], "end": [1200]},
        "filters": [{"id": "NCIT:C16576"}],
        "requestedGranularity": "boolean",
    },
}


@pytest.fixture(scope="module")
def budget_node(tmp_path_factory):
    root = tmp_path_factory.mktemp("budgets")
    with in_process_workers():
        write_small_cohort(root / "cohort", dataset_id=DATASET, num_samples=60)
        description = write_dataset_yaml(
            root / "cohort", id=DATASET, security_level="PUBLIC"
        )
        node = init_node(root / "node", node_id="fi-node", country="FI")
        ingest(node, description)
    trusted = [{"issuer": NETWORK, "jku": NETWORK_JWKS}]
    config_file = node.config.node_dir / "genomenode.yaml"
    config_file.write_text(
        config_file.read_text()
        + f"trusted_networks: {json.dumps(trusted)}\n"
        + "disclosure_epsilon_budget: 4.0\n"
    )
    node.close()
    reopened = open_node(root / "node")
    yield reopened
    reopened.close()


def _reset(node: Node) -> None:
    with node.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM disclosure_budgets")


def _ask(client, headers=None):
    return client.post("/api/individuals", json=QUERY, headers=headers or {})


def test_a_spent_budget_is_429_with_retry_after(budget_node):
    _reset(budget_node)
    with TestClient(create_app(budget_node, base_url=BASE)) as client:
        statuses = [_ask(client).status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 200, 429]
        refused = _ask(client)
        assert refused.status_code == 429
        retry_after = int(refused.headers["Retry-After"])
        assert 0 < retry_after <= 86_400
        document = refused.json()
        validate(document, "beaconErrorResponse")
        assert document["error"]["errorCode"] == 429
        assert "budget" in document["error"]["errorMessage"]
        # Another caller has its own budget.
        other = client.post(
            "/api/individuals", json=QUERY, headers={"X-Forwarded-For": "1.2.3.4"}
        )
        assert other.status_code == 429  # X-Forwarded-For of an untrusted peer
        client.app.state.access.audit.flush()
        with budget_node.session() as session:
            withheld = session.scalars(
                select(AuditEntry).where(AuditEntry.outcome == "withhold")
            ).all()
        assert withheld and withheld[-1].details["datasets"] == {DATASET: "budget"}


def test_rare_alleles_answered_as_absent_are_audited(budget_node):
    _reset(budget_node)
    query = {
        "meta": {"apiVersion": "2.0"},
        "query": {
            "requestParameters": {"referenceName": "1", "start": [0], "end": [10**9]},
            "requestedGranularity": "boolean",
        },
    }
    with TestClient(create_app(budget_node, base_url=BASE)) as client:
        assert client.post("/api/g_variants", json=query).status_code == 200
        client.app.state.access.audit.flush()
    with budget_node.session() as session:
        withheld = session.scalars(
            select(AuditEntry).where(AuditEntry.outcome == "withhold")
        ).all()
    rare = [entry for entry in withheld if "rare-allele" in entry.reason]
    assert rare, [entry.reason for entry in withheld]
    assert rare[-1].details["rare_alleles"][DATASET] > 0


def test_a_restart_keeps_the_budget(budget_node):
    _reset(budget_node)
    with TestClient(create_app(budget_node, base_url=BASE)) as client:
        assert [_ask(client).status_code for _ in range(4)] == [200] * 4
    with TestClient(create_app(budget_node, base_url=BASE)) as client:
        assert _ask(client).status_code == 429


def test_concurrent_requests_cannot_overspend(budget_node):
    _reset(budget_node)
    node = Node(
        NodeConfig(
            budget_node.config.node_dir,
            # 1.0 an answer (QUERY): twenty of them.
            {**budget_node.config.values, "disclosure_epsilon_budget": 20.0},
        )
    )
    with (
        TestClient(create_app(node, base_url=BASE)) as client,
        concurrent.futures.ThreadPoolExecutor(8) as pool,
    ):
        statuses = list(pool.map(lambda _: _ask(client).status_code, range(40)))
    assert statuses.count(200) == 20
    assert statuses.count(429) == 20


def test_the_layer_off_has_no_budget(budget_node):
    _reset(budget_node)
    app = create_app(budget_node, base_url=BASE, disclosure_enabled=False)
    with TestClient(app) as client:
        assert {_ask(client).status_code for _ in range(8)} == {200}


@pytest.fixture
def signer(tmp_path) -> NetworkSigner:
    return NetworkSigner(tmp_path / "network-keys", issuer=NETWORK)


@pytest.fixture
def network_keys(monkeypatch, signer):
    from genomenode.access import authorize

    async def get(self, url, *, bearer=None):
        assert url == NETWORK_JWKS, url
        return signer.jwks()

    monkeypatch.setattr(authorize.JsonFetcher, "get", get)


def _relayed(client, signer, address):
    body = json.dumps(QUERY).encode()
    headers = {
        "Content-Type": "application/json",
        ASSERTION_HEADER: signer.assertion(
            audience=BASE,
            method="POST",
            path_and_query="/api/individuals",
            body=body,
            client=f"ip:{address}",
        ),
    }
    return client.post("/api/individuals", content=body, headers=headers)


def test_the_network_forwards_the_callers_identity(budget_node, signer, network_keys):
    _reset(budget_node)
    with TestClient(create_app(budget_node, base_url=BASE)) as client:
        # Two callers behind one network: each has its own budget.
        first = [_relayed(client, signer, "198.51.100.7").status_code for _ in range(5)]
        second = _relayed(client, signer, "198.51.100.8").status_code
        assert first == [200, 200, 200, 200, 429]
        assert second == 200
        # The same caller asking directly shares the budget it spent through the
        # network (TestClient's address is "testclient").
        for _ in range(4):
            assert _relayed(client, signer, "testclient").status_code == 200
        assert _ask(client).status_code == 429
