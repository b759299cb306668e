"""Stop work for a caller who has gone away.

Starlette runs a handler to the end even when its client disconnects: a network
request whose caller gave up would keep every node busy until the per-node
timeout. :func:`cancel_on_disconnect` runs the work while it listens on the ASGI
``receive`` channel, and cancels the work when ``http.disconnect`` arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any, TypeVar

from starlette.requests import Request

from genomenode.errors import ClientDisconnected

__all__ = ["cancel_on_disconnect"]

T = TypeVar("T")


async def _disconnected(request: Request) -> None:
    """Return when the client has gone away."""
    while True:
        message = await request.receive()
        # Anything else is the rest of a body nobody reads any more.
        if message["type"] == "http.disconnect":
            return


async def cancel_on_disconnect(request: Request, awaitable: Awaitable[T]) -> T:
    """Await ``awaitable``, cancelling it if the client disconnects first.

    Call it once the request body has been read: the ASGI channel then carries
    nothing but the disconnect, and the body is not taken from the handler.

    Parameters
    ----------
    request
        The request whose client is watched.
    awaitable
        The work done for that client (a coroutine or a future).

    Returns
    -------
    The awaitable's result.

    Raises
    ------
    ClientDisconnected
        When the client went away first; the work has then been cancelled and
        has finished (its ``finally`` blocks ran). The response is never sent.
    """
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
