"""Work off the event loop: :func:`run_blocking` runs database, Zarr, crypto and
CPU work in the thread pool and tells it to stop (:func:`check_cancelled`) when
the client goes away.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request

from ..errors import (
    ClientDisconnected,
)
from .body import read_body

__all__ = [
    "cancel_on_disconnect",
    "check_cancelled",
    "run_blocking",
]

_T = TypeVar("_T")

# ------------------------------------------------------------ blocking work


class _Cancellation:
    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


_cancellation: contextvars.ContextVar[_Cancellation | None] = contextvars.ContextVar(
    "genomenode_cancellation", default=None
)


def check_cancelled() -> None:
    """Stop the current request's work if its client has gone away.

    Long loops (genotype scans, filter expansion) call this between steps; it
    costs a context-variable read outside requests.

    Raises
    ------
    ClientDisconnected
        The request this work runs for was abandoned by its client.
    """
    cancellation = _cancellation.get()
    if cancellation is not None and cancellation.cancelled:
        raise ClientDisconnected("the client went away; its work was stopped")


async def _disconnected(request: Request) -> None:
    """Return when the client disconnects (after the body has been read)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def run_blocking(
    request: Request, function: Callable[..., _T], /, *args: Any, **kwargs: Any
) -> _T:
    """``function(*args, **kwargs)`` in the thread pool, off the event loop.

    While it runs, the client's connection is watched: if the client goes away,
    the work is told to stop (:func:`check_cancelled` raises in it) and
    :class:`ClientDisconnected` is raised here; nothing is answered. The body is
    read first (within the limits), as watching the connection consumes what
    the client sends.
    """
    await read_body(request)
    cancellation = _Cancellation()

    def call() -> _T:
        _cancellation.set(cancellation)
        return function(*args, **kwargs)

    context = contextvars.copy_context()
    loop = asyncio.get_running_loop()
    work = loop.run_in_executor(_executor(), context.run, call)
    try:
        # Most work is done in a millisecond: watch the connection only for
        # work that takes longer (a task per request costs as much as the hop).
        done, _ = await asyncio.wait({work}, timeout=_WATCH_AFTER_SECONDS)
        if done:
            return work.result()
        # Shielded: a thread cannot be cancelled, it is told to stop instead.
        return await cancel_on_disconnect(request, asyncio.shield(work))
    except (asyncio.CancelledError, ClientDisconnected):
        cancellation.cancel()
        # The thread finishes at its next check; its result is unwanted.
        work.add_done_callback(_ignore_result)
        raise


#: How long work runs before the client's connection is watched.
_WATCH_AFTER_SECONDS = 0.02
#: Threads answering requests: enough for slow scans to leave room for the rest.
_MAX_THREADS = 40
_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> concurrent.futures.ThreadPoolExecutor:
    """The process's request threads (created on first use, after any fork)."""
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = concurrent.futures.ThreadPoolExecutor(
                    _MAX_THREADS, thread_name_prefix="genomenode-request"
                )
    return _pool


async def cancel_on_disconnect(request: Request, awaitable: Awaitable[_T]) -> _T:
    """Await ``awaitable`` (async work: a fan-out), cancelling it if the client
    disconnects first.

    Starlette runs a handler to the end even when its client has gone. This
    watches the ASGI channel while the work runs; the body is read first.

    Raises
    ------
    ClientDisconnected
        The client went away first; the work was cancelled and has finished
        (its ``finally`` blocks ran). Nothing is answered.
    """
    await read_body(request)
    work = asyncio.ensure_future(awaitable)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
        gone = not work.done() and watcher.done() and watcher.exception() is None
        if not gone:
            # Done, or the channel failed us (then just finish the work).
            return await work
    except asyncio.CancelledError:
        # Cancelled from outside (server shutdown): the work goes down with us.
        await _cancelled(work)
        raise
    finally:
        await _cancelled(watcher)
    await _cancelled(work)
    raise ClientDisconnected("the client went away; its request was cancelled")


async def _cancelled(task: asyncio.Future[Any]) -> None:
    """Cancel a task and wait until it has finished (its finally blocks ran)."""
    if task.done():
        if not task.cancelled():
            task.exception()  # retrieved: asyncio does not log it as lost
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


def _ignore_result(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
