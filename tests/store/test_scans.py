"""Per-person scans in a scan process: the same answer as in the request's
thread, in another process at a lower CPU priority, and a killed scan process
replaced on the next scan."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from genomenode.ingest.pipeline import ingest
from genomenode.store import scans
from genomenode.store.node import init_node, open_node
from genomenode.store.published import PublishedDatasets

from ..conftest import in_process_workers, write_small_cohort


@pytest.fixture(scope="module")
def node_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("scans")
    with in_process_workers():
        node = init_node(root / "node", node_id="fi-node", country="FI")
        ingest(node, write_small_cohort(root / "small", dataset_id="small", seed=3))
        node.close()
    return root / "node"


def _handle(node_dir, monkeypatch, processes: int):
    monkeypatch.setenv("GENOMENODE_SCAN_PROCESSES", str(processes))
    node = open_node(node_dir)
    return node, PublishedDatasets(node).get("small")


def _naive(handle, sample: int) -> list[tuple[int, int]]:
    genotypes = np.asarray(handle.store.root["call_genotype"][:, sample])
    return [
        (row, allele)
        for row in range(genotypes.shape[0])
        for allele in sorted({int(a) for a in genotypes[row] if a > 0})
    ]


def test_the_scan_process_finds_what_the_thread_finds(node_dir, monkeypatch):
    node, handle = _handle(node_dir, monkeypatch, 0)
    try:
        samples = range(0, handle.store.root["call_genotype"].shape[1], 7)
        in_thread = {sample: list(handle.sample_variants(sample)) for sample in samples}
    finally:
        node.close()
    node, handle = _handle(node_dir, monkeypatch, 1)

    def not_here(*_arguments):
        raise AssertionError("a block was read in the request's process")

    # The server's own copy of the block reader fails: the scan process has its
    # own, so the answers can only have come from there.
    monkeypatch.setattr(scans, "_block_keys", not_here)
    try:
        for sample, expected in in_thread.items():
            assert expected == _naive(handle, sample)
            assert list(handle.sample_variants(sample)) == expected
    finally:
        node.close()
    assert any(in_thread.values())  # someone carries something


def test_the_scan_process_runs_at_a_lower_priority(monkeypatch):
    monkeypatch.setenv("GENOMENODE_SCAN_PROCESSES", "1")
    pid = scans.scan_pid(1)
    assert pid != os.getpid()
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, mine + scans.NICENESS)


def test_a_killed_scan_process_is_replaced(node_dir, monkeypatch):
    node, handle = _handle(node_dir, monkeypatch, 1)
    try:
        expected = list(handle.sample_variants(1))
        killed = scans.scan_pid(1)
        os.kill(killed, signal.SIGKILL)
        assert list(handle.sample_variants(1)) == expected
        assert scans.scan_pid(1) != killed
    finally:
        node.close()


def test_a_scan_process_ends_with_a_server_that_exits_without_stopping_it():
    """A server process that ends without shutting its pool down (uvicorn's
    worker stopped mid-start-up, a SIGKILL) must not leave its scan process
    waiting for work forever: it held the server's stderr open, and
    `genomenode serve --workers 2` stopped by SIGTERM hung its caller."""
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os\n"
            "from genomenode.store import scans\n"
            "print(scans.scan_pid(1), flush=True)\n"
            "os._exit(0)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    # Only the first line: the pipe stays open as long as the scan process.
    orphan = int(server.stdout.readline())
    server.wait(timeout=60)
    server.stdout.close()
    deadline = time.monotonic() + 10
    while _alive(orphan) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(orphan), "the scan process outlived its server by 10 s"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # An exited process its parent has not reaped yet is not alive.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ")[1][0] != "Z"
