"""QC on a real Dask cluster (``dask scheduler`` and two ``dask worker``
processes started from their command line): the stored results equal an
in-process run's, value for value, on a plain node and on a sealed node in an
S3 bucket (a real ``moto.server``); and the blocks ran on the workers.

The planted cohort is ingested in chunks of 1,000 variants × 64 samples and
kinship is cut into blocks of 64 samples, so that every pass is several tasks
whose partial results are added up (9 blocks of variants, 6 pairs of blocks
of samples).
"""

from __future__ import annotations

import collections
import contextlib
import os
import time
from collections.abc import Iterator

import numpy as np
import pytest
from click.testing import CliRunner

from genomenode.cli import cli
from genomenode.errors import ConfigError
from genomenode.qc import samples
from genomenode.qc.flags import load_report, load_variant_arrays
from genomenode.qc.run import run_qc
from genomenode.store import compute
from genomenode.store.compute import each_result, scheduler_client

from ..scale.cluster import dask_cluster
from ..scale.moto_server import BUCKET, ingested_node, s3_in_environment
from .cohort import write_cohort

DATASET = "qc-cohort"
_CHUNKS = {
    "GENOMENODE_VARIANTS_CHUNK_SIZE": "1000",
    "GENOMENODE_SAMPLES_CHUNK_SIZE": "64",
}
_TASKS = ("sample_block", "variant_block", "kinship_block")


@pytest.fixture(scope="module")
def s3():
    with s3_in_environment() as service:
        yield service


@pytest.fixture(scope="module")
def cluster(s3):
    """Started inside the S3 environment: the workers read the bucket too."""
    with dask_cluster([{}, {}]) as (address, _workers):
        yield address


@pytest.fixture(scope="module")
def nodes(tmp_path_factory, s3):
    directory = tmp_path_factory.mktemp("qc-dask")
    cohort = write_cohort(directory / "cohort")
    saved = {name: os.environ.get(name) for name in _CHUNKS}
    os.environ.update(_CHUNKS)
    try:
        made = {
            "plain": ingested_node(directory / "plain", [cohort.dataset_yaml]),
            "s3": ingested_node(
                directory / "s3",
                [cohort.dataset_yaml],
                sealed=True,
                storage=f"s3://{BUCKET}/qc-dask",
                endpoint=s3.endpoint,
            ),
        }
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    yield made
    for node in made.values():
        node.close()


def _results(node) -> tuple[dict, dict[str, np.ndarray]]:
    report = load_report(node, DATASET)
    for key in ("created", "seconds"):
        report.pop(key)
    return report, load_variant_arrays(node, DATASET)


@contextlib.contextmanager
def _tasks_run(address: str) -> Iterator[collections.Counter]:
    """The tasks the cluster's workers ran inside the block, by name."""
    from distributed import get_task_stream

    counts: collections.Counter = collections.Counter()
    with scheduler_client(address) as observer:
        with get_task_stream(client=observer) as stream:
            yield counts
        counts.update(str(task["key"]).split("-")[0] for task in stream.data)


@pytest.mark.parametrize("name", ["plain", "s3"])
def test_qc_on_a_cluster_equals_in_process(nodes, cluster, name, monkeypatch):
    monkeypatch.setattr(samples, "KING_BLOCK", 64)
    node = nodes[name]
    here = run_qc(node, DATASET)
    in_process, in_process_arrays = _results(node)
    with _tasks_run(cluster) as counts:
        there = run_qc(node, DATASET, dask_scheduler=cluster)
    on_cluster, on_cluster_arrays = _results(node)
    ran = {task: counts[task] for task in _TASKS}
    # 8,800 variants in chunks of 1,000; 160 samples in blocks of 64: 3 + 2 + 1.
    assert ran == {"sample_block": 9, "variant_block": 9, "kinship_block": 6}, ran
    assert there["summary"] == here["summary"]
    assert on_cluster == in_process
    assert on_cluster_arrays.keys() == in_process_arrays.keys()
    for key, values in in_process_arrays.items():
        np.testing.assert_array_equal(on_cluster_arrays[key], values, err_msg=key)
    # What the comparison covers: the planted problems were found.
    summary = in_process["summary"]
    assert summary["num_related_pairs"] >= 1
    assert {"duplicate", "sex_mismatch", "low_call_rate"} <= set(
        summary["sample_reasons"]
    )
    assert summary["variant_reasons"]["hwe"] >= 2
    assert len(in_process["samples"]) == 160


def test_the_node_setting_runs_qc_on_the_cluster(nodes, cluster, monkeypatch):
    monkeypatch.setenv("GENOMENODE_DASK_SCHEDULER", cluster)
    from genomenode.store.node import open_node

    with (
        _tasks_run(cluster) as counts,
        open_node(nodes["plain"].config.node_dir) as node,
    ):
        assert node.config.dask_scheduler == cluster
        run_qc(node, DATASET)
    assert counts["sample_block"] == 9 and counts["variant_block"] == 9


def test_an_unreachable_scheduler_is_a_clear_error(nodes, monkeypatch):
    # Nothing listens on port 9; the client retries until its timeout (10 s).
    monkeypatch.setattr(compute, "_CONNECT_SECONDS", 1)
    with pytest.raises(ConfigError, match="dask_scheduler"):
        run_qc(nodes["plain"], DATASET, dask_scheduler="tcp://127.0.0.1:9")
    node_dir = str(nodes["plain"].config.node_dir)
    result = CliRunner().invoke(
        cli,
        [
            "qc",
            "run",
            "--node",
            node_dir,
            DATASET,
            "--dask-scheduler",
            "tcp://127.0.0.1:9",
        ],
    )
    assert result.exit_code == 1, result.output
    assert "dask_scheduler" in result.stderr and "Traceback" not in result.stderr


def slow_square(value: int, seconds: float) -> int:
    time.sleep(seconds)
    return value * value


def test_results_are_reduced_in_order_with_few_in_flight(cluster):
    """Tasks ending out of order (the first sleeps longest) are handed over in
    the order of their arguments, with at most ``in_flight`` not handed over."""
    arguments = [(value, 0.4 if value % 3 == 0 else 0.0) for value in range(10)]
    handed: list[tuple[int, int]] = []
    most = 0
    with scheduler_client(cluster) as client:

        def on_result(index: int, result: int) -> None:
            nonlocal most
            handed.append((index, result))
            waiting = client.run_on_scheduler(
                lambda dask_scheduler: sum(
                    1
                    for task in dask_scheduler.tasks.values()
                    if task.key.startswith("slow_square-")
                    and task.state in ("waiting", "processing", "memory", "queued")
                    and task.who_wants
                )
            )
            most = max(most, waiting)

        each_result(client, slow_square, arguments, on_result=on_result, in_flight=3)
    assert handed == [(value, value * value) for value in range(10)]
    assert 1 <= most <= 3
