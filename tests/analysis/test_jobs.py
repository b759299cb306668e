"""Jobs under faults: a node killed mid-job, cancel, a network restart.

Each test serves its own copies of the three nodes and the network (a kill or
a restart must not reach the other tests).
"""

from __future__ import annotations

import os
import signal
import time

import httpx2
import pytest
from sqlalchemy import select

from genomenode.store.models import AuditEntry
from genomenode.store.node import open_node

from .conftest import serve_network

DATASETS = ["part-1", "part-2", "part-3"]
#: Small windows: many round trips, so that a job is still running when the
#: test acts on it.
LONG_JOB = {
    "analysis": "gwas",
    "datasets": DATASETS,
    "phenotype": "ICD10:I25.1",
    "model": "logistic",
    "covariates": ["sex", "age"],
    "chunk_variants": 250,
}


@pytest.fixture
def own_network(node_templates, tmp_path):
    with serve_network(node_templates, tmp_path / "served") as served:
        yield served


def _wait_for_progress(network, job_id: str, least: float = 0.05) -> None:
    deadline = time.monotonic() + 60
    while True:
        status = network.status(job_id)
        assert status["state"] in {"INITIALIZING", "RUNNING"}, status
        if min(task["progress"] for task in status["tasks"].values()) >= least:
            return
        assert time.monotonic() < deadline, status
        time.sleep(0.05)


def _analysis_calls(directory, job_id: str) -> int:
    with open_node(directory) as node, node.session() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.action.startswith("analyse"))
        ).all()
    return sum(1 for row in rows if (row.details or {}).get("job") == job_id)


def test_a_node_killed_mid_job_is_reported_and_the_job_goes_on(own_network):
    job = own_network.submit({**LONG_JOB, "on_node_failure": "continue"})
    _wait_for_progress(own_network, job["id"])
    os.killpg(own_network.processes[2].pid, signal.SIGKILL)
    status = own_network.wait(job["id"], seconds=180)
    assert status["state"] == "COMPLETE", status
    failed = status["tasks"]["part-3"]
    assert failed["state"] == "SYSTEM_ERROR"
    assert failed["node"] == "node-3" and failed["reason"]
    assert {status["tasks"][d]["state"] for d in DATASETS[:2]} == {"COMPLETE"}
    result = own_network.results(job["id"])
    assert result["datasets"] == DATASETS[:2]
    assert {row["num_observations"] for row in result["rows"]} == {400}

    # Asked to fail instead, a job over the dead node ends in its state.
    second = own_network.submit({**LONG_JOB, "on_node_failure": "fail"})
    ended = own_network.wait(second["id"])
    assert ended["state"] == "SYSTEM_ERROR"
    assert ended["tasks"]["part-3"]["state"] == "SYSTEM_ERROR"
    assert "node-3" in ended["reason"]
    refused = httpx2.get(
        f"{own_network.url}/analysis/jobs/{second['id']}/results",
        headers=own_network.owner(),
    )
    assert refused.status_code == 409


def test_cancel_stops_the_nodes_work(own_network):
    job = own_network.submit(LONG_JOB)
    _wait_for_progress(own_network, job["id"])
    canceled = httpx2.post(
        f"{own_network.url}/analysis/jobs/{job['id']}/cancel",
        headers=own_network.owner(),
    )
    assert canceled.status_code == 200
    assert canceled.json()["state"] == "CANCELED"
    time.sleep(1.0)  # a round in flight ends
    before = [_analysis_calls(d, job["id"]) for d in own_network.node_dirs]
    time.sleep(2.0)
    after = [_analysis_calls(d, job["id"]) for d in own_network.node_dirs]
    assert before == after
    assert all(count > 0 for count in before)
    status = own_network.status(job["id"])
    assert status["state"] == "CANCELED"
    assert {task["state"] for task in status["tasks"].values()} == {"CANCELED"}
    again = httpx2.post(
        f"{own_network.url}/analysis/jobs/{job['id']}/cancel",
        headers=own_network.owner(),
    )
    assert again.status_code == 409


def test_jobs_and_results_survive_a_network_restart(own_network):
    done = own_network.submit(
        {"analysis": "summary", "datasets": DATASETS, "variables": ["age"]}
    )
    assert own_network.wait(done["id"])["state"] == "COMPLETE"
    result = own_network.results(done["id"])
    running = own_network.submit(LONG_JOB)
    _wait_for_progress(own_network, running["id"])
    own_network.stop_network()
    own_network.start_network()
    assert own_network.results(done["id"]) == result
    # The interrupted job waits for its owner (the network kept no passport):
    # their next request, with a fresh passport, runs it again to the end.
    owner = own_network.passport()
    waiting = httpx2.get(
        f"{own_network.url}/analysis/jobs/{running['id']}", headers=owner, timeout=30
    ).json()
    assert waiting["state"] in {"QUEUED", "INITIALIZING", "RUNNING"}, waiting
    own_network.passports.clear()
    assert own_network.wait(running["id"], seconds=240)["state"] == "COMPLETE"
    assert own_network.results(running["id"])["rows"]
