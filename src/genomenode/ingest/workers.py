"""Worker processes for ingest, and progress reporting.

Workers die with the ingest process (Linux ``PR_SET_PDEATHSIG``): after a SIGKILL of
the ingest no orphan can go on writing into the staging area while a resumed run
redoes the same partition.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import contextvars
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from ..errors import Stopped
from ..store.compute import run_on_cluster

__all__ = ["Reporter", "checkpoint", "run_tasks", "warm_cluster", "worker_pool"]

# Test hook: SIGKILL this process at the named checkpoint (docs/ingest.md).
KILL_AT_VARIABLE = "GENOMENODE_TEST_KILL_AT"
# With it, only the process that manages to delete this file dies (once).
KILL_ONCE_VARIABLE = "GENOMENODE_TEST_KILL_ONCE"


def checkpoint(name: str) -> None:
    """Die here, as a SIGKILL would, if the kill-and-resume tests ask for it."""
    if os.environ.get(KILL_AT_VARIABLE) == name:
        once = os.environ.get(KILL_ONCE_VARIABLE)
        if once:
            try:
                os.remove(once)
            except FileNotFoundError:
                return
        os.kill(os.getpid(), signal.SIGKILL)


_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:
        os._exit(1)


def _start_worker(parent_pid: int) -> None:
    """A worker's start: die with the ingest, then import the conversion code
    once (~1 s of CPU: numpy, zarr, bio2zarr), before any task arrives."""
    _die_with_parent(parent_pid)
    _import_conversion()


def _import_conversion() -> None:
    from . import convert  # noqa: F401


def warm_cluster(client: Any) -> None:
    """Have each worker of a Dask cluster import the conversion code now,
    while this process validates the inputs, not on its first partition (a
    fresh worker spends ~1 s of CPU on imports). Does not wait."""
    from distributed import fire_and_forget

    for address in client.nthreads():
        fire_and_forget(
            client.submit(
                _import_conversion,
                workers=[address],
                allow_other_workers=True,
                pure=False,
            )
        )


def _nothing() -> None:
    """A task that makes the pool start a worker."""


# The pool of the ingest running in this thread (:func:`worker_pool`); a
# context variable, so that ingests in two threads never share one.
_pool: contextvars.ContextVar[cf.ProcessPoolExecutor | None] = contextvars.ContextVar(
    "ingest_worker_pool", default=None
)


@contextlib.contextmanager
def worker_pool(worker_processes: int) -> Iterator[None]:
    """One pool of worker processes for a whole ingest.

    Started at once, its workers import the conversion code while this process
    validates the inputs and reads the clinical data; every partitioned step
    (explode, encode, statistics) then reuses them. A pool per step paid that
    start-up three times over, several seconds of CPU (docs/scale.md). Without
    worker processes it does nothing.
    """
    if worker_processes <= 0 or _pool.get() is not None:
        yield
        return
    context = multiprocessing.get_context("spawn")
    executor = cf.ProcessPoolExecutor(
        max_workers=worker_processes,
        mp_context=context,
        initializer=_start_worker,
        initargs=(os.getpid(),),
    )
    for _ in range(worker_processes):
        executor.submit(_nothing)
    token = _pool.set(executor)
    try:
        yield
    finally:
        _pool.reset(token)
        executor.shutdown(wait=True, cancel_futures=True)


class Reporter:
    """Rich progress bars on stderr when it is a terminal and progress is wanted.

    Steps may run at once (the pipeline encrypts beside the conversion): their
    bars share one live display, which stays up while any step runs.
    """

    def __init__(self, show: bool) -> None:
        self.show = show
        #: Once set, advancing any step raises Stopped: the run is failing.
        self.stopping = threading.Event()
        self._progress: Progress | None = None
        self._running = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def step(self, description: str, total: int | None) -> Iterator[Callable[[], None]]:
        """A bar for one step; yields a function that advances it by one (and
        raises Stopped once :attr:`stopping` is set)."""
        if not self.show:
            yield self._check
            return
        with self._lock:
            if self._progress is None:
                self._progress = Progress(
                    TextColumn("[bold]{task.description:<22}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    transient=False,
                )
                self._progress.start()
            progress = self._progress
            self._running += 1
            task = progress.add_task(description, total=total)

        def advance() -> None:
            self._check()
            progress.advance(task)

        try:
            yield advance
        finally:
            with self._lock:
                progress.stop_task(task)
                self._running -= 1
                if self._running == 0:
                    progress.stop()
                    self._progress = None

    def _check(self) -> None:
        if self.stopping.is_set():
            raise Stopped("stopped: another step of this ingest failed")

    def note(self, text: str) -> None:
        """A line for the operator on stderr (the Dask dashboard's address), with
        or without bars: stdout may be JSON."""
        Console(stderr=True, highlight=False).print(text)


def run_tasks(
    function: Callable[..., Any],
    arguments: Iterable[tuple[Any, ...]],
    *,
    worker_processes: int,
    advance: Callable[[], None],
    cluster: Any = None,
) -> list[Any]:
    """``function(*args)`` for each tuple, in workers if asked; results in order.

    With ``cluster`` (a ``distributed.Client``, :mod:`genomenode.store.compute`)
    the tasks run on the Dask cluster instead of local worker processes.
    """
    arguments = list(arguments)
    if cluster is not None and arguments:
        return run_on_cluster(cluster, function, arguments, advance=advance)
    results: list[Any] = [None] * len(arguments)
    if worker_processes == 0 or len(arguments) <= 1:
        for index, args in enumerate(arguments):
            results[index] = function(*args)
            advance()
        return results
    pool = _pool.get()
    if pool is not None:
        return _run_in(pool, function, arguments, results, advance)
    context = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(
        max_workers=min(worker_processes, len(arguments)),
        mp_context=context,
        initializer=_die_with_parent,
        initargs=(os.getpid(),),
    ) as executor:
        return _run_in(executor, function, arguments, results, advance)


def _run_in(
    executor: cf.ProcessPoolExecutor,
    function: Callable[..., Any],
    arguments: list[tuple[Any, ...]],
    results: list[Any],
    advance: Callable[[], None],
) -> list[Any]:
    futures = {
        executor.submit(function, *args): index for index, args in enumerate(arguments)
    }
    try:
        for future in cf.as_completed(futures):
            results[futures[future]] = future.result()
            advance()
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    return results
