"""Per-person genotype scans in separate, lower-priority processes.

The variants one person carries are a scan of that person's column of
``call_genotype``: every stored chunk of variants decoded for one sample, tens of
milliseconds for a small cohort, seconds for a whole genome. Run in a request
thread, a scan competes with every other request of its server process for the
interpreter lock, and the count queries beside it wait. So a server hands scans
to ``scan_processes`` processes of its own (default 1) that run at a lower CPU
priority (``nice`` +:data:`NICENESS`): the operating system then gives the
server's own threads the processor first, and the scans the time left over.

A scan is asked one block of variant rows (one stored chunk) at a time: between
blocks the request thread checks whether its client has gone
(:func:`~genomenode.web.blocking.check_cancelled`), so an abandoned scan stops
within a block. The scan process opens the dataset from plain values
(:class:`~genomenode.store.genotype_rows.GenotypeSource`: a directory, or the
node's directory for an object store or a sealed store, whose key it reads
there) and keeps the last few opened. With ``scan_processes: 0`` the blocks are
read in the request's thread, as before.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np

from ..web.blocking import check_cancelled
from .genotype_rows import GenotypeSource, kept_open

__all__ = ["NICENESS", "column_keys", "scan_pid", "start_scans"]

#: How much lower the scan processes' CPU priority is than the server's.
NICENESS = 10
#: How often a waiting request thread checks that its client is still there.
_POLL_SECONDS = 0.05
#: How often a scan process checks that its server is still there.
_PARENT_POLL_SECONDS = 1.0

_pool: concurrent.futures.ProcessPoolExecutor | None = None
_pool_key: tuple[int, tuple[tuple[str, str], ...]] = (0, ())
_pool_lock = threading.Lock()
#: Environment variables a scan process reads its settings and an object
#: store's credentials from: it is started again when they change.
_ENVIRONMENT_PREFIXES = ("GENOMENODE_", "AWS_")


def start_scans(processes: int) -> None:
    """Start the scan processes now (a server's start-up), so that the first
    per-person query does not wait for them; nothing with 0."""
    if processes > 0:
        _executor(processes)


def _executor(processes: int) -> concurrent.futures.ProcessPoolExecutor:
    global _pool, _pool_key
    # A process's settings come from the environment it was started with.
    key = (
        processes,
        tuple(
            sorted(
                (name, value)
                for name, value in os.environ.items()
                if name.startswith(_ENVIRONMENT_PREFIXES)
            )
        ),
    )
    with _pool_lock:
        if _pool is None or _pool_key != key:
            if _pool is not None:
                _pool.shutdown(wait=False, cancel_futures=True)
            # spawn, not fork: a server process has threads (a fork would copy
            # their locks in whatever state they were).
            _pool = concurrent.futures.ProcessPoolExecutor(
                processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_scan_process,
                initargs=(os.getpid(),),
            )
            _pool_key = key
            # Imports happen now, not in the first scan.
            _pool.submit(_ready)
        return _pool


def _reset(broken: concurrent.futures.ProcessPoolExecutor) -> None:
    """Forget a pool whose process died (killed, out of memory)."""
    global _pool
    with _pool_lock:
        if _pool is broken:
            _pool = None


def _start_scan_process(parent_pid: int) -> None:
    """A scan process's start: a lower priority, and an end with its server.

    A server process that exits without shutting its pool down (uvicorn's
    worker stopped mid-start-up, a SIGKILL) leaves the scan process waiting for
    work forever, holding the server's stderr open: ``genomenode serve --workers
    2`` stopped by SIGTERM during a worker's start-up hung its caller for good
    (tests/access/test_serve.py). A thread here ends the process within
    :data:`_PARENT_POLL_SECONDS` of its server's end. (PR_SET_PDEATHSIG would
    also end it when the *thread* that started it ends: a request thread may.)
    """
    os.nice(NICENESS)
    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(
        target=_end_with_parent, args=(parent_pid,), daemon=True, name="parent-watch"
    ).start()


def _end_with_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(_PARENT_POLL_SECONDS)
    os._exit(1)


def _ready() -> int:
    return os.getpid()


def scan_pid(processes: int) -> int:
    """The id of a scan process (for tests and operators: ``ps``, ``nice``)."""
    return int(_executor(processes).submit(_ready).result())


def _block_keys(call_genotype: Any, start: int, stop: int, sample: int) -> np.ndarray:
    """Sorted ``row * 256 + allele`` of every ALT allele the column carries in
    rows ``start:stop`` (rows relative to ``start``)."""
    block = np.asarray(call_genotype[start:stop, sample])
    rows, columns = np.nonzero(block > 0)
    return np.unique(rows.astype(np.int64) * 256 + block[rows, columns])


def _scan_block(
    source: GenotypeSource, start: int, stop: int, sample: int
) -> np.ndarray:
    """In a scan process: :func:`_block_keys` of the dataset at ``source``."""
    return _block_keys(kept_open(source).root["call_genotype"], start, stop, sample)


def column_keys(
    call_genotype: Any,
    source: GenotypeSource | None,
    start: int,
    stop: int,
    sample: int,
    *,
    processes: int,
) -> np.ndarray:
    """The ALT alleles column ``sample`` carries in rows ``start:stop``, as
    sorted ``(row - start) * 256 + allele``.

    In a scan process when ``processes`` > 0 and ``source`` names the store;
    else here, from ``call_genotype``.

    Raises
    ------
    ClientDisconnected
        The request's client went away while the block was read.
    """
    if processes <= 0 or source is None:
        return _block_keys(call_genotype, start, stop, sample)
    for attempt in (1, 2):
        pool = _executor(processes)
        try:
            future = pool.submit(_scan_block, source, start, stop, sample)
            while True:
                try:
                    return np.asarray(future.result(timeout=_POLL_SECONDS))
                except concurrent.futures.TimeoutError:
                    check_cancelled()
        except BrokenProcessPool:
            # A scan process died: start new ones and ask once more.
            _reset(pool)
            if attempt == 2:
                raise
    raise AssertionError("unreachable")
