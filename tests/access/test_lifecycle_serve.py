"""A lifecycle change reaches every worker of a running ``genomenode serve`` at once.

The server runs with two worker processes, each with its own published-dataset
cache; the change is made by another process (as the CLI makes it). Every request
after the change, whichever worker answers it, must show it: no restart, no
waiting for a refresh interval.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx2

from genomenode.access import access_change, lifecycle
from genomenode.ingest.pipeline import ingest
from genomenode.store.node import init_node, open_node

from ..conftest import free_port, wait_until_up, write_dataset_yaml, write_small_cohort

DATASET = "served"
QUERY = {"referenceName": "1", "start": "999", "end": "1000"}


def _answers(url: str, count: int) -> set[tuple[bool, bool]]:
    """(Beacon says it exists, the DCAT catalogue lists it) over ``count`` requests."""
    found = set()
    for _ in range(count):
        exists = httpx2.get(f"{url}/api/g_variants", params=QUERY).json()[
            "responseSummary"
        ]["exists"]
        listed = DATASET in httpx2.get(f"{url}/catalogue/datasets").text
        found.add((exists, listed))
    return found


def test_every_worker_sees_a_change_on_its_next_request(tmp_path, monkeypatch):
    monkeypatch.setenv("GENOMENODE_WORKER_PROCESSES", "0")
    write_small_cohort(tmp_path / "cohort", dataset_id=DATASET)
    description = write_dataset_yaml(
        tmp_path / "cohort", id=DATASET, security_level="PUBLIC"
    )
    with init_node(tmp_path / "node", node_id="n", country="FI") as node:
        ingest(node, description)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "genomenode", "serve", "--workers", "2"),
            *("--node", str(tmp_path / "node"), "--port", str(port)),
        ],
        env={**os.environ, "GENOMENODE_PUBLIC_URL": url},
        start_new_session=True,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until_up(server, f"{url}/api/info")
        # Enough requests that both workers have cached the dataset.
        assert _answers(url, 12) == {(True, True)}
        with open_node(tmp_path / "node") as node:
            lifecycle.unpublish(node, DATASET, actor="operator:test")
        assert _answers(url, 12) == {(False, False)}
        with open_node(tmp_path / "node") as node:
            lifecycle.publish(node, DATASET, actor="operator:test")
        assert _answers(url, 12) == {(True, True)}
        with open_node(tmp_path / "node") as node:
            access_change.set_access(
                node, DATASET, actor="operator:test", security_level="REGISTERED"
            )
        # Still catalogued, no longer answering anonymous callers.
        assert _answers(url, 12) == {(False, True)}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.communicate(timeout=30)
