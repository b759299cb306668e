"""Where a node's big computations run: in this process, or on a Dask cluster.

With the ``dask_scheduler`` setting unset (the default), ingest partitions and
the node's computations run here (threads, or ingest's worker processes). Set to
the address of a ``distributed`` scheduler (``tcp://host:8786``), they are
submitted to that cluster instead; the workers need the same genomenode installed
and read and write the same paths as this process (a shared filesystem for
staging, the object store's URL and credentials for the store).

Everything submitted is idempotent (an ingest partition, a block of statistics):
when a worker dies, the scheduler hands its tasks to another worker, and a task
that fails on every worker it is tried on (``distributed.scheduler.
allowed-failures``, 3 by default) fails the step with an error naming it; the
ingest then resumes from the partitions that were finished.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import NodeConfig
from ..errors import ConfigError, StoreError
from .genotype_rows import GenotypeSource, kept_open

if TYPE_CHECKING:
    from .node import Node

__all__ = [
    "allele_frequencies",
    "dask_client",
    "each_result",
    "open_client",
    "run_on_cluster",
    "scheduler_client",
]

logger = logging.getLogger(__name__)

# Seconds to wait for the scheduler before saying it cannot be reached.
_CONNECT_SECONDS = 10
# How long a cluster may have no workers before a step gives up on it (the
# dask_worker_wait setting's default), and how often that is looked at while
# tasks are pending.
_NO_WORKERS_SECONDS = 30.0
_POLL_SECONDS = 1.0
# The wait of each open client, set where it was opened (scheduler_client).
_worker_waits: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()
# Bytes of calls counted at a time by allele_frequencies: the kernel's
# temporaries then stay in a core's cache (at 3,000 samples 256 KB pieces count
# 20 % faster than 3 MB ones).
_COUNT_BYTES = 256 * 2**10
# Tasks submitted and not yet reduced, by each_result: their results wait in
# memory (here or on the workers) until their turn.
_IN_FLIGHT = 8


def open_client(address: str) -> Any:
    """A ``distributed.Client`` connected to ``address``.

    Raises
    ------
    ConfigError
        The scheduler cannot be reached (naming the ``dask_scheduler`` setting).
    """
    from distributed import Client

    try:
        return Client(address, timeout=_CONNECT_SECONDS, set_as_default=False)
    except (OSError, TimeoutError) as error:
        raise ConfigError(
            f"setting 'dask_scheduler': cannot reach the Dask scheduler at "
            f"{address!r} ({type(error).__name__}: {error}); start it "
            "(`dask scheduler`) or unset the setting to compute in this process"
        ) from None


@contextlib.contextmanager
def dask_client(config: NodeConfig, address: str | None = None) -> Iterator[Any | None]:
    """A client of the node's Dask cluster, or None when it computes in-process.

    ``address`` (``genomenode ingest --dask-scheduler``) overrides the setting.
    Closed (never the cluster itself) when the block ends.
    """
    with scheduler_client(
        address or config.dask_scheduler, worker_wait=config.dask_worker_wait
    ) as client:
        yield client


@contextlib.contextmanager
def scheduler_client(
    address: str | None, *, worker_wait: float | None = None
) -> Iterator[Any | None]:
    """A client of the Dask scheduler at ``address`` (None: yields None, for
    computing in this process); what code holding only the address uses
    (the reference build, the analyses). Steps on it wait ``worker_wait``
    seconds for a cluster without workers (default 30: ``dask_worker_wait``)."""
    if not address:
        yield None
        return
    client = open_client(address)
    _worker_waits[client] = float(worker_wait or _NO_WORKERS_SECONDS)
    try:
        yield client
    finally:
        client.close()


def _task(function: Callable[..., Any], *args: Any) -> Any:
    """One task on a worker; a kill-test checkpoint first (``cluster:task``)."""
    if os.environ.get("GENOMENODE_TEST_KILL_AT") == "cluster:task":
        # The ingest layer's hook (ingest/workers.py), inlined: store sits below.
        once = os.environ.get("GENOMENODE_TEST_KILL_ONCE")
        try:
            if once:
                os.remove(once)
            os.kill(os.getpid(), signal.SIGKILL)
        except FileNotFoundError:
            pass
    return function(*args)


def _has_workers(client: Any) -> bool:
    return bool(client.scheduler_info(n_workers=1).get("workers"))


def run_on_cluster(
    client: Any,
    function: Callable[..., Any],
    arguments: Sequence[tuple[Any, ...]],
    *,
    advance: Callable[[], None],
    in_flight: int | None = None,
    on_result: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """``function(*args)`` for each tuple on the cluster; results in order.

    Task keys are the function's name and a hash of the arguments, so a
    resubmitted partition is one task. A task that killed the workers it ran on
    (``KilledWorker``), or a cluster left without workers for the client's
    ``dask_worker_wait`` (:func:`scheduler_client`), ends the step with a
    :class:`StoreError` saying so;
    the first other failure cancels the rest and is raised as it is.

    With ``on_result``, each result is handed to it as ``(index, result)`` in
    the order of ``arguments`` (and not kept: the list returned holds None), and
    at most ``in_flight`` tasks are submitted and not yet handed over, so that
    the results waiting here, or on the workers, are bounded whatever the
    number of tasks. A caller reducing floating-point partial results gets them
    in one order, cluster or not.

    Raises
    ------
    StoreError
        The cluster lost its workers; rerunning resumes from what finished.
    """
    from dask.base import tokenize
    from dask.utils import funcname
    from distributed import KilledWorker

    limit = in_flight or max(1, len(arguments))
    results: list[Any] = [None] * len(arguments)
    pending: dict[int, Any] = {}
    # Set by the client when a task ends. The cluster's workers are looked at
    # only when nothing ended for a while: asking the scheduler (an RPC with
    # every worker's state) every 50 ms cost the scheduler and this process
    # CPU that the partitions needed on a small machine.
    ended = threading.Event()
    submitted = 0
    handed = 0

    def submit_more() -> None:
        nonlocal submitted
        while submitted < len(arguments) and len(pending) < limit:
            args = arguments[submitted]
            # Named after the function (what the dashboard shows), keyed by
            # the arguments: a resubmitted partition is the same task.
            key = f"{funcname(function)}-{tokenize(function, *args)}"
            future = client.submit(_task, function, *args, key=key)
            future.add_done_callback(lambda _: ended.set())
            pending[submitted] = future
            submitted += 1

    without_workers_since: float | None = None
    worker_wait = _worker_waits.get(client, _NO_WORKERS_SECONDS)
    try:
        submit_more()
        while pending:
            if not ended.wait(_POLL_SECONDS):
                if _has_workers(client):
                    without_workers_since = None
                elif without_workers_since is None:
                    without_workers_since = time.monotonic()
                elif time.monotonic() - without_workers_since > worker_wait:
                    raise StoreError(
                        f"the Dask cluster at {client.scheduler.address} has had no "
                        f"workers for {worker_wait:g} s (setting 'dask_worker_wait'); "
                        "start workers (`dask worker ADDRESS`) and run the same "
                        "command again to resume"
                    )
                continue
            ended.clear()
            if on_result is None:
                for index in [
                    index for index, future in pending.items() if future.done()
                ]:
                    results[index] = pending.pop(index).result()
                    advance()
            else:
                while handed in pending and pending[handed].done():
                    on_result(handed, pending.pop(handed).result())
                    handed += 1
                    advance()
            submit_more()
    except KilledWorker as error:
        client.cancel(list(pending.values()))
        raise StoreError(
            f"Dask workers of {client.scheduler.address} died running a task "
            f"({error}); check their memory and logs, then run the same command "
            "again to resume"
        ) from None
    except BaseException:
        client.cancel(list(pending.values()))
        raise
    return results


def each_result(
    client: Any,
    function: Callable[..., Any],
    arguments: Sequence[tuple[Any, ...]],
    *,
    on_result: Callable[[int, Any], None],
    in_flight: int = _IN_FLIGHT,
) -> None:
    """``on_result(index, function(*arguments[index]))`` for each index in
    order: in this process when ``client`` is None, else as tasks on its
    cluster (:func:`run_on_cluster`, at most ``in_flight`` at a time).

    What a chunked computation uses to reduce partial results as they come,
    holding a few of them, never all.
    """
    if client is None:
        for index, args in enumerate(arguments):
            on_result(index, function(*args))
        return
    run_on_cluster(
        client,
        function,
        arguments,
        advance=lambda: None,
        in_flight=in_flight,
        on_result=on_result,
    )


def allele_count_rows(calls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ALT copies and called alleles per variant of ``(variants, samples,
    ploidy)`` int8 calls: each test's flags packed 8 to a byte and counted by
    population count (~1 ns a call, 5 times a table lookup per call)."""
    flat = np.ascontiguousarray(calls).reshape(len(calls), -1)

    def count(flags: np.ndarray) -> np.ndarray:
        return np.bitwise_count(np.packbits(flags, axis=1)).sum(axis=1, dtype=np.int64)

    return count(flat > 0), count(flat >= 0)


def _allele_count_block(
    source: GenotypeSource, start: int, stop: int
) -> tuple[np.ndarray, np.ndarray]:
    """ALT copies and called alleles of variants ``start:stop``, a slab of calls
    at a time (memory: one slab, whatever the cohort's size).

    Runs where it is scheduled: ``source`` opens the store there (a worker needs
    the store's path, or the node directory, or a copy of it, and the store's
    credentials), never the database.
    """
    alternate = np.zeros(stop - start, np.int64)
    called = np.zeros(stop - start, np.int64)
    for first, _samples, calls in kept_open(source).blocks(start, stop):
        rows = slice(first - start, first - start + len(calls))
        step = max(1, _COUNT_BYTES // max(1, int(np.prod(calls.shape[1:]))))
        for row in range(0, len(calls), step):
            piece = calls[row : row + step]
            more_alternate, more_called = allele_count_rows(piece)
            alternate[rows][row : row + len(piece)] += more_alternate
            called[rows][row : row + len(piece)] += more_called
    return alternate, called


def allele_frequencies(
    node: Node, dataset_id: str, *, client: Any = None
) -> np.ndarray:
    """ALT allele frequency (all ALT alleles together) of every variant of a
    published dataset, from its calls (:mod:`.genotype_rows`).

    One task per block of stored variant chunks, on the Dask cluster of
    ``client`` (:func:`dask_client`) or in this process; the same numbers
    either way. A variant with no called allele has frequency 0. The opened
    store is kept for the next call
    (:func:`~genomenode.store.genotype_rows.kept_open`).
    """
    manifest = node.dataset_manifest(dataset_id)
    vcz = manifest["genotypes"]["path"]
    fingerprint = manifest["fingerprint"]
    total = int(manifest["genotypes"]["num_variants"])
    source = GenotypeSource.of(node, dataset_id, fingerprint, vcz)
    step = int(kept_open(source).chunks[0])
    arguments = [
        (source, start, min(start + step, total)) for start in range(0, total, step)
    ]
    if client is None:
        parts = [_allele_count_block(*args) for args in arguments]
    else:
        parts = run_on_cluster(
            client, _allele_count_block, arguments, advance=lambda: None
        )
    if not parts:
        return np.zeros(0)
    alternate = np.concatenate([part[0] for part in parts])
    called = np.concatenate([part[1] for part in parts])
    return np.asarray(alternate / np.maximum(called, 1))
