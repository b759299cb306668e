"""Passports across real server processes: node A trusts node B's identity provider.

B runs the development identity provider; A lists B as its trusted broker and visa
issuer, so A fetches B's keys and userinfo over HTTP, as it would LS-AAI's. A runs
with two worker processes; its audit entries must be in the log once it stops.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx2
import yaml

from genomenode.access.audit_check import verify
from genomenode.ingest.pipeline import ingest
from genomenode.store.models import AuditEntry
from genomenode.store.node import init_node, open_node

from ..conftest import (
    free_port,
    wait_until_up,
    write_dataset_yaml,
    write_small_cohort,
)
from ..network.test_network import _stop


def _serve(node_dir, port: int, *extra: str, **environment: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "genomenode",
            "serve",
            "--node",
            str(node_dir),
            "--port",
            str(port),
            *extra,
        ],
        env={
            **os.environ,
            "GENOMENODE_PUBLIC_URL": f"http://127.0.0.1:{port}",
            **environment,
        },
        start_new_session=True,
        stderr=subprocess.PIPE,
    )


def test_a_node_trusts_another_servers_broker_over_http(tmp_path, monkeypatch):
    monkeypatch.setenv("GENOMENODE_WORKER_PROCESSES", "0")
    write_small_cohort(tmp_path / "cohort", dataset_id="fi-registered")
    description = write_dataset_yaml(
        tmp_path / "cohort", id="fi-registered", security_level="REGISTERED"
    )
    node_a = init_node(tmp_path / "a", node_id="a", country="FI")
    ingest(node_a, description)
    node_a.close()
    init_node(tmp_path / "b", node_id="b", country="FI").close()
    port_a, port_b = free_port(), free_port()
    broker = f"http://127.0.0.1:{port_b}/dev-idp"
    config_path = tmp_path / "a" / "genomenode.yaml"
    config = yaml.safe_load(config_path.read_text())
    trusted = {
        "issuer": broker,
        "jku": f"{broker}/.well-known/jwks.json",
        "userinfo": f"{broker}/userinfo",
    }
    config["trusted_brokers"] = [trusted]
    config["trusted_visa_issuers"] = [{k: trusted[k] for k in ("issuer", "jku")}]
    config_path.write_text(yaml.safe_dump(config))

    server_b = _serve(tmp_path / "b", port_b, GENOMENODE_DEV_IDENTITY_PROVIDER="true")
    server_a = _serve(tmp_path / "a", port_a, "--workers", "2")
    query = {"referenceName": "1", "start": "999", "end": "1000"}
    try:
        wait_until_up(server_b, f"{broker}/")
        wait_until_up(server_a, f"http://127.0.0.1:{port_a}/api/info")
        # An access token without visas: A must fetch them from B's userinfo.
        token = httpx2.post(
            f"{broker}/token",
            json={"subject": "researcher@b.example", "embed_visas": False},
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        granularity = {"requestedGranularity": "count"}
        anonymous = httpx2.get(
            f"http://127.0.0.1:{port_a}/api/g_variants", params=query | granularity
        ).json()
        assert anonymous["responseSummary"]["exists"] is False
        for _ in range(4):  # both workers, each fetching B's keys once
            registered = httpx2.get(
                f"http://127.0.0.1:{port_a}/api/g_variants",
                params=query | granularity,
                headers=headers,
            ).json()
            assert registered["responseSummary"]["exists"] is True
            assert registered["responseSummary"]["numTotalResults"] >= 1
        # A does not run a development identity provider of its own.
        assert (
            httpx2.post(f"http://127.0.0.1:{port_a}/dev-idp/token", json={}).status_code
            == 404
        )
    finally:
        # Each one stopped (killed if it must be), whatever happens to the other.
        stopped = [_stop(server, timeout=30) for server in (server_a, server_b)]
    assert all(stopped), f"did not stop within 30 s of SIGTERM: {stopped}"
    with open_node(tmp_path / "a") as node, node.session() as session:
        assert verify(session).intact
        entries = session.query(AuditEntry).order_by(AuditEntry.id).all()
    queries = [
        entry
        for entry in entries
        if entry.actor == "researcher@b.example"
        and entry.action == "GET /api/g_variants"
    ]
    assert len(queries) == 4
    assert all(
        entry.details["datasets"] == {"fi-registered": "count"} for entry in queries
    )
    assert "eyJ" not in json.dumps([entry.details for entry in entries])
