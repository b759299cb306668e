"""A request for calling one route handler alone, without an app or a server.

Handlers are module-level functions that read what the app shares from
``request.app.state``; :func:`stub_request` builds a real Starlette request whose
app is only that state, so a test can hand a handler exactly the state it needs.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute
from starlette.types import Message


def stub_request(
    state: Mapping[str, Any],
    *,
    method: str = "GET",
    path: str = "/",
    query: str = "",
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    route: BaseRoute | None = None,
    path_params: Mapping[str, str] | None = None,
) -> Request:
    """A request to an app whose ``app.state`` holds ``state`` (and nothing else).

    The client sends ``body`` and then stays connected; ``route`` and
    ``path_params`` are what routing would have put in the scope.
    """
    app = types.SimpleNamespace(state=types.SimpleNamespace(**state))
    scope: dict[str, Any] = {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("testclient", 50000),
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": [
            (name.lower().encode(), value.encode())
            for name, value in (headers or {}).items()
        ],
        "app": app,
        "path_params": dict(path_params or {}),
    }
    if route is not None:
        scope["route"] = route
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # never disconnects
        raise AssertionError("unreachable")

    return Request(scope, receive)
