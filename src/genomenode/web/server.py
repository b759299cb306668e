"""The one server start-up of the node and the network: uvicorn with
:class:`ServerProtocol`'s header timeout and size limit, the app built by
:func:`frozen_app` with the heap frozen.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import os
import socket
import sys
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .body import DEFAULT_LIMITS, HttpLimits

__all__ = [
    "ServerProtocol",
    "frozen_app",
    "serve",
]


# ---------------------------------------------------------------------- server

#: Where :func:`serve` hands the header limits to uvicorn's worker processes
#: (the same names as the settings' environment variables).
_HEADER_TIMEOUT_VARIABLE = "GENOMENODE_HTTP_HEADER_TIMEOUT_SECONDS"
_HEADER_BYTES_VARIABLE = "GENOMENODE_HTTP_MAX_HEADER_BYTES"
_FACTORY_VARIABLE = "GENOMENODE_APP_FACTORY"

#: How long a thread keeps the GIL when others wait (Python's default: 5 ms).
SWITCH_INTERVAL_SECONDS = 0.0005


class ServerProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with Nagle off, a header timeout and size cap.

    With ``--workers`` uvicorn hands the listening socket to spawned processes,
    which lose asyncio's TCP_NODELAY on accepted connections; a keep-alive
    response (headers and body written separately) then waits ~40 ms for the
    client's delayed ACK. A client that opens a connection or starts a request
    and does not finish its headers within ``http_header_timeout_seconds`` gets
    a 408 and is disconnected (uvicorn's keep-alive timeout covers only idle
    connections between requests), and one whose request line and headers pass
    ``http_max_header_bytes`` gets a 431.
    """

    header_timeout_seconds = float(
        os.environ.get(_HEADER_TIMEOUT_VARIABLE, HttpLimits.header_timeout_seconds)
    )
    max_header_bytes = int(
        os.environ.get(_HEADER_BYTES_VARIABLE, HttpLimits.max_header_bytes)
    )

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        connection = transport.get_extra_info("socket")
        if connection is not None and connection.family in (
            socket.AF_INET,
            socket.AF_INET6,
        ):
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
        self._header_bytes = 0
        self._header_timer: asyncio.TimerHandle | None = None
        self._start_header_timer()

    def _start_header_timer(self) -> None:
        self._stop_header_timer()
        self._header_timer = self.loop.call_later(
            self.header_timeout_seconds, self._header_timeout
        )

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self._refuse(408, b"Request Timeout", b"request headers too slow\n")

    def _refuse(self, status: int, reason: bytes, message: bytes) -> None:
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s"
            % (status, reason, len(message), message)
        )
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        self._header_bytes = 0
        if self._header_timer is None:
            self._start_header_timer()
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count_header_bytes(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_header_bytes(len(name) + len(value))
        super().on_header(name, value)

    def _count_header_bytes(self, size: int) -> None:
        self._header_bytes += size
        if (
            self._header_bytes > self.max_header_bytes
            and not self.transport.is_closing()
        ):
            self._stop_header_timer()
            self._refuse(
                431, b"Request Header Fields Too Large", b"headers too large\n"
            )

    def on_headers_complete(self) -> None:
        self._stop_header_timer()
        if self.transport.is_closing():
            return
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # The next request's headers are timed from its first byte; until then
        # uvicorn's keep-alive timeout applies.


def serve(
    factory: str,
    *,
    host: str,
    port: int,
    workers: int = 1,
    limits: HttpLimits = DEFAULT_LIMITS,
) -> None:
    """Run uvicorn on the app ``factory`` (``"module:function"``) until stopped.

    The one server start-up of the node and the network: httptools and uvloop
    (about twice the requests per second of h11 on asyncio's loop,
    docs/benchmarks.md) with :class:`ServerProtocol`'s limits, in ``workers``
    processes.
    """
    import uvicorn

    # Spawned workers read the environment; this process reads the class.
    os.environ[_HEADER_TIMEOUT_VARIABLE] = str(limits.header_timeout_seconds)
    os.environ[_HEADER_BYTES_VARIABLE] = str(limits.max_header_bytes)
    ServerProtocol.header_timeout_seconds = limits.header_timeout_seconds
    ServerProtocol.max_header_bytes = limits.max_header_bytes
    os.environ[_FACTORY_VARIABLE] = factory
    uvicorn.run(
        "genomenode.web.server:frozen_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http="genomenode.web.server:ServerProtocol",
        loop="auto",  # uvloop where installed (not on Windows)
        log_level="warning",
        timeout_keep_alive=5,
    )


def frozen_app() -> Any:
    """The app of the factory :func:`serve` was given, with the heap frozen.

    Everything alive once the app is built (modules, schemas, the app) lives as
    long as the process; ``gc.freeze`` takes it out of the cyclic garbage
    collector's view, which otherwise walks it all on every full collection: a
    quarter of a busy network's CPU went there.
    """
    module_name, _, function_name = os.environ[_FACTORY_VARIABLE].partition(":")
    factory = getattr(importlib.import_module(module_name), function_name)
    app = factory()
    gc.collect()
    gc.freeze()
    # A scan in the thread pool (a per-person query) holds the GIL for up to the
    # switch interval each time it gets it, while the event loop's cheap queries
    # wait: 5 ms by default, a whole fast answer several times over. At
    # SWITCH_INTERVAL_SECONDS the loop gets its turn ten times as often.
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    return app
