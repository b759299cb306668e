"""The network's busiest route, ``GET /api/<entry type>``, answered without the
web framework's routing.

A count query through the network costs the network process about a millisecond,
a fifth of it FastAPI's router, route and dependency machinery, which exists only
on the network's path (a node answers the same query directly). The network's
throughput over three nodes on one machine is set by the CPU of all four
processes, so this fifth is worth saving. :class:`BeaconGetFastPath` is an ASGI
middleware (inside Starlette's server-error middleware, outside its exception
middleware and router) that answers exactly these requests by calling the route's
own handler, :func:`~genomenode.network.http.query_entries`, with the
:class:`~genomenode.beacon.http.BeaconPath` the route would have given it, and
turns the errors it raises into responses with the app's own exception handlers.

Everything else (other methods and paths, ids and nested paths, a mounted root
path) goes through FastAPI unchanged, and the route stays declared there, so the
OpenAPI document and every check and limit of the handler are the same.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from ..beacon.engine import ENTRY_TYPES
from ..beacon.http import BeaconPath
from .http import query_entries

__all__ = ["BeaconGetFastPath"]

_PREFIX = "/api/"
_ENTRIES = frozenset(ENTRY_TYPES)


class BeaconGetFastPath:
    """Answer ``GET /api/<entry type>`` with the route's handler (module docs)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = _fast_path(scope)
        if path is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await query_entries(request, path)
        except Exception as error:
            handler = _handler(scope["app"].exception_handlers, error)
            if handler is None:
                raise  # Starlette's server-error middleware answers it (500)
            response = await handler(request, error)
        await response(scope, receive, send)


def _fast_path(scope: Scope) -> BeaconPath | None:
    """The route's path parameters if the request is one this answers."""
    if scope["type"] != "http" or scope["method"] != "GET" or scope.get("root_path"):
        return None
    path: str = scope["path"]
    if not path.startswith(_PREFIX):
        return None
    entry = path[len(_PREFIX) :]
    return BeaconPath(entry) if entry in _ENTRIES else None


def _handler(handlers: dict[Any, Any], error: Exception) -> Any:
    """The app's handler for ``error`` as Starlette picks it: the nearest class
    of its MRO that has one, short of :class:`Exception` (that one is the
    server-error middleware's, which logs and answers 500)."""
    for kind in type(error).__mro__:
        if kind is Exception:
            return None
        if kind in handlers:
            return handlers[kind]
    return None
