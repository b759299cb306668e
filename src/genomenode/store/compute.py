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
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..config import NodeConfig
from ..errors import ConfigError, StoreError

__all__ = ["dask_client", "open_client", "run_on_cluster"]

logger = logging.getLogger(__name__)

# Seconds to wait for the scheduler before saying it cannot be reached.
_CONNECT_SECONDS = 10
# How long a cluster may have no workers before a step gives up on it, and how
# often that is looked at while tasks are pending.
_NO_WORKERS_SECONDS = 30.0
_POLL_SECONDS = 0.05


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
    address = address or config.dask_scheduler
    if not address:
        yield None
        return
    client = open_client(address)
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


def run_on_cluster(
    client: Any,
    function: Callable[..., Any],
    arguments: Sequence[tuple[Any, ...]],
    *,
    advance: Callable[[], None],
) -> list[Any]:
    """``function(*args)`` for each tuple on the cluster; results in order.

    Task keys derive from the arguments (``pure=True``), so a resubmitted
    partition is one task. A task that killed the workers it ran on
    (``KilledWorker``), or a cluster left without workers for
    ``_NO_WORKERS_SECONDS``, ends the step with a :class:`StoreError` saying so;
    the first other failure cancels the rest and is raised as it is.

    Raises
    ------
    StoreError
        The cluster lost its workers; rerunning resumes from what finished.
    """
    from distributed import KilledWorker

    futures = [client.submit(_task, function, *args, pure=True) for args in arguments]
    results: list[Any] = [None] * len(futures)
    pending = dict(enumerate(futures))
    without_workers_since: float | None = None
    try:
        while pending:
            batch = [index for index, future in pending.items() if future.done()]
            if not batch:
                time.sleep(_POLL_SECONDS)
                if client.scheduler_info().get("workers"):
                    without_workers_since = None
                elif without_workers_since is None:
                    without_workers_since = time.monotonic()
                elif time.monotonic() - without_workers_since > _NO_WORKERS_SECONDS:
                    raise StoreError(
                        f"the Dask cluster at {client.scheduler.address} has had no "
                        f"workers for {_NO_WORKERS_SECONDS:.0f} s; start workers "
                        "(`dask worker ADDRESS`) and run the same command again "
                        "to resume"
                    )
                continue
            for index in batch:
                results[index] = pending.pop(index).result()
                advance()
    except KilledWorker as error:
        client.cancel(futures)
        raise StoreError(
            f"Dask workers of {client.scheduler.address} died running a task "
            f"({error}); check their memory and logs, then run the same command "
            "again to resume"
        ) from None
    except BaseException:
        client.cancel(futures)
        raise
    return results
