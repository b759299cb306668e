"""Ingest on a real Dask cluster (``dask scheduler`` + two ``dask worker``
processes): the store equals an in-process ingest's, also when a worker is killed
mid-ingest; with every worker gone the ingest fails clearly and a rerun resumes.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from genomenode.errors import ConfigError
from genomenode.ingest import ingest
from genomenode.ingest.convert import _num_partitions
from genomenode.store import compute
from genomenode.store.compute import allele_frequencies, dask_client
from genomenode.store.node import init_node, open_node
from genomenode.store.published import PublishedDatasets

from ..conftest import write_small_cohort
from ..ingest.test_resume import _assert_same, _snapshot_of
from .cluster import REPOSITORY, dask_cluster


def _cli_ingest(
    node_dir, dataset_yaml, scheduler: str, **settings: str
) -> subprocess.CompletedProcess:
    environment = dict(os.environ, GENOMENODE_WORKER_PROCESSES="2", **settings)
    environment["PYTHONPATH"] = str(REPOSITORY / "src")
    environment.pop("GENOMENODE_TEST_KILL_AT", None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "genomenode",
            "ingest",
            "--node",
            str(node_dir),
            str(dataset_yaml),
            "--dask-scheduler",
            scheduler,
        ],
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cohort")
    return write_small_cohort(directory, num_samples=60, num_variants=900, seed=4)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cohort):
    """The same cohort ingested in this process, worker_processes=2 partitioning."""
    os.environ["GENOMENODE_WORKER_PROCESSES"] = "2"
    try:
        node_dir = tmp_path_factory.mktemp("reference") / "node"
        with init_node(node_dir, node_id="ref-node", country="FI") as node:
            ingest(node, cohort)
            return _snapshot_of(node, "small")
    finally:
        os.environ["GENOMENODE_WORKER_PROCESSES"] = "0"


def test_ingest_on_a_cluster_with_a_worker_killed_equals_in_process(
    tmp_path, cohort, reference
):
    once = tmp_path / "kill-once"
    once.write_text("")
    killer = {
        "GENOMENODE_TEST_KILL_AT": "cluster:task",
        "GENOMENODE_TEST_KILL_ONCE": str(once),
    }
    with dask_cluster([killer, {}]) as (address, workers):
        node_dir = tmp_path / "node"
        init_node(node_dir, node_id="dask-node", country="FI").close()
        result = _cli_ingest(node_dir, cohort, address)
        assert result.returncode == 0, result.stderr
        assert "Dask dashboard: http://127.0.0.1:" in result.stderr
        # The first worker died on its first task; the other did the rest.
        assert not once.exists()
        assert workers[0].wait(timeout=10) != 0
        assert workers[1].poll() is None
    with open_node(node_dir) as node:
        _assert_same(_snapshot_of(node, "small"), reference)


def test_with_every_worker_dead_ingest_fails_clearly_and_resumes(
    tmp_path, cohort, reference
):
    node_dir = tmp_path / "node"
    init_node(node_dir, node_id="dask-node", country="FI").close()
    kill = {"GENOMENODE_TEST_KILL_AT": "cluster:task"}
    with dask_cluster([kill, kill]) as (address, _workers):
        # The setting's default is 30 s; 3 s shows the setting is what counts.
        failed = _cli_ingest(node_dir, cohort, address, GENOMENODE_DASK_WORKER_WAIT="3")
    assert failed.returncode != 0
    assert "Error" in failed.stderr and "Traceback" not in failed.stderr
    assert "no workers for 3 s (setting 'dask_worker_wait')" in failed.stderr
    with dask_cluster([{}, {}]) as (address, _workers):
        resumed = _cli_ingest(node_dir, cohort, address)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed after validate" in resumed.stdout
    with open_node(node_dir) as node:
        _assert_same(_snapshot_of(node, "small"), reference)


def test_an_unreachable_scheduler_names_the_setting(tmp_path, monkeypatch):
    # Nothing listens on port 9; the client retries until its timeout (10 s).
    monkeypatch.setattr(compute, "_CONNECT_SECONDS", 1)
    with init_node(tmp_path / "node", node_id="n", country="FI") as node:
        config = node.config
    address = "tcp://127.0.0.1:9"
    with (
        pytest.raises(ConfigError, match="dask_scheduler"),
        dask_client(config, address),
    ):
        pass


def test_allele_frequencies_on_the_cluster_equal_in_process(tmp_path, cohort):
    with init_node(tmp_path / "node", node_id="af-node", country="FI") as node:
        ingest(node, cohort)
        here = allele_frequencies(node, "small")
        with (
            dask_cluster([{}, {}]) as (address, _workers),
            dask_client(node.config, address) as client,
        ):
            there = allele_frequencies(node, "small", client=client)
            # Ingest cuts a VCF by the cluster's size, not the local setting:
            # four partitions per worker thread (two single-threaded workers).
            assert _num_partitions(0, client) == 8
            assert _num_partitions(16, client) == 8
        handle = PublishedDatasets(node).get("small")
        stored = handle.store.read("variant_allele_count", 0, len(here))
        totals = handle.store.read("variant_allele_total", 0, len(here))
    np.testing.assert_array_equal(there, here)
    np.testing.assert_allclose(here, stored[:, 1:].sum(axis=1) / totals)
    assert 0 < here.mean() < 1
