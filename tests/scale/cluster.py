"""A real Dask cluster for tests: ``dask scheduler`` and ``dask worker`` processes
started from their command line on loopback, stopped by process group."""

from __future__ import annotations

import contextlib
import os
import pathlib
import subprocess
import sys
import time
from collections.abc import Iterator

from ..conftest import free_port
from ..network.test_network import _stop

DASK = pathlib.Path(sys.executable).with_name("dask")
REPOSITORY = pathlib.Path(__file__).resolve().parents[2]


def _environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(REPOSITORY / "src"), str(REPOSITORY), environment.get("PYTHONPATH", "")]
    )
    environment.pop("GENOMENODE_TEST_KILL_AT", None)
    environment.update(extra or {})
    return environment


def _popen(arguments: list[str], environment: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        arguments,
        env=environment,
        cwd=REPOSITORY,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for_workers(address: str, count: int, timeout: float = 60) -> None:
    from distributed import Client

    with Client(address, timeout=timeout) as client:
        client.wait_for_workers(count, timeout=timeout)


@contextlib.contextmanager
def dask_cluster(
    worker_environments: list[dict[str, str]],
) -> Iterator[tuple[str, list[subprocess.Popen]]]:
    """A scheduler and one single-threaded worker (no nanny: a killed worker stays
    dead) per environment; yields the scheduler's address and the workers."""
    port, dashboard = free_port(), free_port()
    address = f"tcp://127.0.0.1:{port}"
    processes: list[subprocess.Popen] = []
    workers: list[subprocess.Popen] = []
    try:
        processes.append(
            _popen(
                [
                    str(DASK),
                    "scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--dashboard-address",
                    f"127.0.0.1:{dashboard}",
                ],
                _environment(),
            )
        )
        for number, extra in enumerate(worker_environments):
            worker = _popen(
                [
                    str(DASK),
                    "worker",
                    address,
                    "--nthreads",
                    "1",
                    "--no-nanny",
                    "--name",
                    f"worker-{number}",
                    "--no-dashboard",
                ],
                _environment(extra),
            )
            processes.append(worker)
            workers.append(worker)
        deadline = time.monotonic() + 60
        while True:
            try:
                wait_for_workers(address, len(workers), timeout=20)
                break
            except (OSError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
        yield address, workers
    finally:
        for process in reversed(processes):
            _stop(process)
