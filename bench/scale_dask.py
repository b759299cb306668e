"""The cluster's speed-up, 1 → 2 Dask workers (``bench/scale.py --dask`` and
``--dask-af``): an ingest, and the allele frequencies of all variants of a kept
node, each on a fresh local cluster of one and then two single-threaded worker
processes, wall and CPU time in the same run."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

from ingest import measure  # a sibling script (bench/ is on sys.path)

_GENOMENODE = [sys.executable, "-m", "genomenode"]


def _cluster_cpu_seconds() -> float:
    """User + system CPU so far of this process's live descendants (a local
    Dask cluster's nanny and worker processes) and of the scheduler's threads
    in this process."""
    import psutil

    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.NoSuchProcess:
            continue
    return total


_IDLE_SECONDS = 5.0


def _worker_cluster(workers: int) -> Any:
    """A local Dask cluster of ``workers`` single-threaded worker processes, no
    dashboard: what the 1 → 2 worker speed-ups run on."""
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
    )


def dask_speedup(
    samples: int, dataset_yaml: pathlib.Path, scratch_root: pathlib.Path
) -> None:
    """Ingest on a local Dask cluster of 1 and then 2 worker processes, back to
    back in the same run: wall time, and CPU time of the ingest and the cluster
    (on a machine other work shares, the CPU time shows what wall time hides).
    Each cluster is fresh: its workers import genomenode and bio2zarr during the
    ingest (which has them start while it validates the inputs)."""
    timings: dict[int, tuple[float, float, float]] = {}
    for workers in (1, 2):
        with (
            _worker_cluster(workers) as cluster,
            tempfile.TemporaryDirectory(dir=scratch_root) as scratch,
        ):
            node_dir = pathlib.Path(scratch) / "node"
            subprocess.run(
                [
                    *_GENOMENODE,
                    "init",
                    str(node_dir),
                    "--node-id",
                    "b",
                    "--country",
                    "FI",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            # What the cluster burns doing nothing (heartbeats, Dask's profiler,
            # memory monitors): it grows with wall time, which the machine's
            # other load stretches, so it is subtracted from the cluster's CPU.
            idle_started, idle_before = time.monotonic(), _cluster_cpu_seconds()
            time.sleep(_IDLE_SECONDS)
            idle_rate = (_cluster_cpu_seconds() - idle_before) / (
                time.monotonic() - idle_started
            )
            cluster_before = _cluster_cpu_seconds()
            run = measure(
                f"ingest on {workers} Dask worker(s)",
                [
                    *_GENOMENODE,
                    "ingest",
                    "--node",
                    str(node_dir),
                    str(dataset_yaml),
                    "--dask-scheduler",
                    cluster.scheduler_address,
                ],
            )
            cluster_cpu = _cluster_cpu_seconds() - cluster_before
        idle = idle_rate * run.seconds
        cpu = run.cpu_seconds + cluster_cpu
        timings[workers] = (run.seconds, cpu, cpu - idle)
        print(
            f"{samples} samples, {workers} Dask worker(s): wall {run.seconds:.1f} s, "
            f"CPU {cpu:.1f} s (ingest process {run.cpu_seconds:.1f} s, "
            f"cluster {cluster_cpu:.1f} s, of which idle overhead "
            f"{idle_rate:.3f} CPU s/s × wall = {idle:.1f} s)",
            flush=True,
        )
    (wall_1, cpu_1, work_1), (wall_2, cpu_2, work_2) = timings[1], timings[2]
    print(
        f"speed-up 1 → 2 workers: wall {wall_1 / wall_2:.2f} (ideal 2.0 on two free "
        f"cores); CPU 2 / 1 workers {cpu_2 / cpu_1:.2f}, without the cluster's "
        f"idle overhead {work_2 / work_1:.2f} (ideal 1.0)"
    )


def dask_af_speedup(node_dir: pathlib.Path, dataset_id: str, repeats: int = 5) -> None:
    """Allele frequencies of all variants of a kept node (``--keep-nodes``, VCF
    Zarr input) on a local Dask cluster of 1 and then 2 single-threaded worker
    processes: wall time and CPU time (this process and the cluster's) of the
    best of ``repeats`` runs after a first that has each worker open the store,
    and the speed-up. One task per stored chunk of variants (``call_genotype``'s
    variants chunk: 200 rows at 100,000 samples)."""
    from distributed import Client

    from genomenode.store.compute import allele_frequencies as compute
    from genomenode.store.node import open_node

    timings: dict[int, tuple[float, float]] = {}
    with open_node(node_dir) as node:
        expected = compute(node, dataset_id)
        for workers in (1, 2):
            with (
                _worker_cluster(workers) as cluster,
                Client(cluster) as client,
            ):
                np.testing.assert_array_equal(
                    compute(node, dataset_id, client=client), expected
                )
                runs = []
                for _ in range(repeats):
                    cpu, started = _cluster_cpu_seconds(), time.perf_counter()
                    compute(node, dataset_id, client=client)
                    runs.append(
                        (
                            time.perf_counter() - started,
                            _cluster_cpu_seconds() - cpu,
                        )
                    )
            timings[workers] = min(runs)
            wall, cpu = timings[workers]
            print(
                f"AF of {dataset_id} on {workers} Dask worker(s): best of "
                f"{repeats} wall {wall:.2f} s, CPU {cpu:.2f} s (all runs: "
                + ", ".join(f"{run[0]:.2f}/{run[1]:.2f}" for run in runs)
                + ")",
                flush=True,
            )
    (wall_1, cpu_1), (wall_2, cpu_2) = timings[1], timings[2]
    print(
        f"AF speed-up 1 → 2 workers: wall {wall_1 / wall_2:.2f} (ideal 2.0 on two "
        f"free cores); CPU 2 / 1 workers {cpu_2 / cpu_1:.2f} (ideal 1.0)"
    )
