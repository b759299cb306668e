"""The one HTTP layer of genomenode: limits, bodies, responses, errors, servers.

Every HTTP surface (the node's Beacon, access, htsget, DRS, catalogue and
development identity provider; the network) reads its requests and writes its
answers through this module:

- :func:`read_body` streams a request body with a size limit (checked against
  ``Content-Length`` before reading and again while reading) and a time limit;
  :func:`read_json` turns it into JSON with limits on nesting depth and on the
  digits of integers, and refuses bytes that are not UTF-8.
- :func:`json_response` is the one way a JSON answer is written.
- :func:`run_blocking` runs database, Zarr, crypto and CPU work in the thread
  pool, never on the event loop, and tells that work to stop
  (:func:`check_cancelled`) when the client goes away.
- :func:`install_error_handlers` turns every error raised by a route into the
  error document of the API the path belongs to, in exactly one place.
- :func:`serve` starts uvicorn for a node or a network, with the header
  timeout and header size limit of :class:`ServerProtocol`.

The limits are settings (:class:`HttpLimits`, ``http_*`` in
:mod:`genomenode.config`); over a limit a caller gets 413 (body), 408 (too
slow to send) or 400 (depth, digits, not UTF-8, not JSON), never a 500.

Error documents by path:

=================  =====================================================
``/api``           Beacon v2 ``beaconErrorResponse``
``/htsget``        htsget ``{"htsget": {"error": <kind>, "message": ...}}``
``/ga4gh/drs``     DRS ``{"msg": ..., "status_code": ...}``
anything else      ``{"detail": ...}``
=================  =====================================================

A 500 says only "internal error" (the cause goes to the log, without the
request's parameters); a 401 carries ``WWW-Authenticate: Bearer``; a 405 keeps
its ``Allow`` header.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import dataclasses
import gc
import importlib
import json
import logging
import os
import re
import socket
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .errors import (
    ClientDisconnected,
    GenomenodeError,
    InputError,
    InvalidRangeError,
    PayloadTooLargeError,
    RequestTimeoutError,
    TokenError,
    UnsupportedFormatError,
)

__all__ = [
    "ErrorDocument",
    "HttpLimits",
    "ServerProtocol",
    "cancel_on_disconnect",
    "check_cancelled",
    "error_response",
    "htsget_error_kind",
    "install_error_handlers",
    "json_response",
    "limits_of",
    "parse_json",
    "read_body",
    "read_json",
    "read_json_object",
    "run_blocking",
    "serve",
]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")


# ---------------------------------------------------------------------- limits


@dataclasses.dataclass(frozen=True)
class HttpLimits:
    """What one request may ask of a server (the ``http_*`` settings).

    Attributes
    ----------
    max_body_bytes
        Largest request body read; more is a 413.
    max_json_depth
        Deepest nesting of arrays and objects in a JSON body; more is a 400.
    max_integer_digits
        Most digits of an integer in a JSON body or a numeric parameter.
    body_timeout_seconds
        Longest a client may take to send its body; more is a 408.
    header_timeout_seconds
        Longest a client may take to send its request line and headers (the
        server closes the connection with a 408).
    max_header_bytes
        Largest request line plus headers (431 and the connection closed).
    """

    max_body_bytes: int = 1_048_576
    max_json_depth: int = 64
    max_integer_digits: int = 100
    body_timeout_seconds: float = 30.0
    header_timeout_seconds: float = 10.0
    max_header_bytes: int = 65_536

    @classmethod
    def from_settings(cls, values: Mapping[str, Any]) -> HttpLimits:
        """The limits from resolved settings (a node's ``config.values``)."""
        return cls(
            **{
                field.name: values[f"http_{field.name}"]
                for field in dataclasses.fields(cls)
                if f"http_{field.name}" in values
            }
        )


_DEFAULT_LIMITS = HttpLimits()


def limits_of(request: Request) -> HttpLimits:
    """The limits of the app answering ``request`` (the defaults if it set none)."""
    app = request.scope.get("app")
    limits: HttpLimits | None = getattr(
        getattr(app, "state", None), "http_limits", None
    )
    return limits if limits is not None else _DEFAULT_LIMITS


# ---------------------------------------------------------------------- bodies


async def read_body(request: Request) -> bytes:
    """The request body, read at most once, within the size and time limits.

    Raises
    ------
    PayloadTooLargeError
        ``Content-Length`` or the bytes sent exceed ``max_body_bytes`` (the rest
        is never read).
    RequestTimeoutError
        The client took longer than ``body_timeout_seconds`` to send it.
    """
    cached: bytes | None = getattr(request.state, "body_bytes", None)
    if cached is not None:
        return cached
    limits = limits_of(request)
    declared = request.headers.get("content-length")
    if declared is not None:
        text = declared.strip()
        if not text.isdigit() or len(text) > 18:
            raise InputError("Content-Length must be a number", field="Content-Length")
        if int(text) > limits.max_body_bytes:
            raise PayloadTooLargeError(_too_large(limits))
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(limits.body_timeout_seconds):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limits.max_body_bytes:
                    raise PayloadTooLargeError(_too_large(limits))
                chunks.append(chunk)
    except ClientDisconnect:
        raise ClientDisconnected(
            "the client went away while sending its body"
        ) from None
    except TimeoutError:
        raise RequestTimeoutError(
            f"the request body took longer than {limits.body_timeout_seconds:g} s "
            "to arrive (http_body_timeout_seconds)"
        ) from None
    body = b"".join(chunks)
    request.state.body_bytes = body
    return body


def _too_large(limits: HttpLimits) -> str:
    return (
        f"the request body is larger than {limits.max_body_bytes} bytes "
        "(http_max_body_bytes)"
    )


# A \u escape of a UTF-16 surrogate, paired or not.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
# A JSON string (escapes included), removed before counting brackets.
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def _nesting_depth(raw: bytes) -> int:
    """The deepest nesting of ``[``/``{`` outside strings (vectorised count)."""
    if b"[" not in raw and b"{" not in raw:
        return 0
    stripped = np.frombuffer(_JSON_STRING.sub(b"", raw), dtype=np.uint8)
    steps = (
        (stripped == ord("[")).astype(np.int32)
        + (stripped == ord("{"))
        - (stripped == ord("]"))
        - (stripped == ord("}"))
    )
    return int(np.cumsum(steps).max(initial=0))


def parse_json(
    raw: bytes, limits: HttpLimits = _DEFAULT_LIMITS, *, field: str = "body"
) -> Any:
    """JSON from bytes, refusing what would be costly or ambiguous to parse.

    Raises
    ------
    InputError
        The bytes are not UTF-8, not JSON, nest deeper than ``max_json_depth``,
        hold an integer with more than ``max_integer_digits`` digits, or hold
        ``NaN``/``Infinity`` (HTTP 400, naming ``field``).
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(
            f"the request body is not UTF-8 (byte {error.start})", field=field
        ) from None
    depth = _nesting_depth(raw)
    if depth > limits.max_json_depth:
        raise InputError(
            f"JSON nested {depth} levels deep; at most {limits.max_json_depth} "
            "(http_max_json_depth)",
            field=field,
        )

    def integer(digits: str) -> int:
        if len(digits.lstrip("-")) > limits.max_integer_digits:
            raise InputError(
                f"an integer of {len(digits.lstrip('-'))} digits; at most "
                f"{limits.max_integer_digits} (http_max_integer_digits)",
                field=field,
            )
        return int(digits)

    def constant(name: str) -> Any:
        raise InputError(f"{name} is not JSON", field=field)

    try:
        document = json.loads(text, parse_int=integer, parse_constant=constant)
    except json.JSONDecodeError as error:
        raise InputError(
            f"request body is not JSON: {error.msg} at line {error.lineno}",
            field=field,
        ) from None
    except RecursionError:  # a depth the bracket count did not see; never a 500
        raise InputError("JSON nested too deeply", field=field) from None
    if _SURROGATE_ESCAPE.search(raw):
        # "\ud800" alone is valid JSON but no text: echoed in an answer it would
        # fail to encode. Pairs (astral characters) pass.
        try:
            json.dumps(document, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(
                "a string holds a lone UTF-16 surrogate (\\ud800-\\udfff), which "
                "is not a character",
                field=field,
            ) from None
    return document


async def read_json(request: Request, *, empty: Any = None, field: str = "body") -> Any:
    """The request body as JSON, within the limits (``empty`` for no body).

    Raises
    ------
    InputError, PayloadTooLargeError, RequestTimeoutError
        As :func:`read_body` and :func:`parse_json`.
    """
    raw = await read_body(request)
    if not raw.strip():
        return empty
    return parse_json(raw, limits_of(request), field=field)


async def read_json_object(request: Request, *, field: str = "body") -> dict[str, Any]:
    """The request body as a JSON object (``{}`` for no body), within the limits.

    Raises
    ------
    InputError
        As :func:`read_json`, or the body is JSON but not an object.
    """
    document = await read_json(request, empty={}, field=field)
    if not isinstance(document, dict):
        raise InputError("request body must be a JSON object", field=field)
    return document


# ------------------------------------------------------------------- responses


def json_response(
    document: Any,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    *,
    media_type: str = "application/json",
) -> JSONResponse:
    """A JSON answer (``application/json``, or an API's own JSON media type)."""
    return JSONResponse(
        document,
        status_code=status,
        headers=dict(headers) if headers else None,
        media_type=media_type,
    )


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


# ----------------------------------------------------------------------- errors

#: Makes the error document of one API from a status and a message.
ErrorDocument = Callable[[int, str], dict[str, Any]]

_HTSGET_KINDS = {
    400: "InvalidInput",
    401: "InvalidAuthentication",
    403: "PermissionDenied",
    404: "NotFound",
    408: "InvalidInput",
    413: "PayloadTooLarge",
}


def htsget_error_kind(status: int, error: BaseException | None = None) -> str:
    """The htsget error name for a status (and the error, for the 400 kinds)."""
    if isinstance(error, UnsupportedFormatError):
        return "UnsupportedFormat"
    if isinstance(error, InvalidRangeError):
        return "InvalidRange"
    return _HTSGET_KINDS.get(status, "InvalidInput" if status < 500 else "Internal")


def _document(
    request: Request, status: int, message: str, error: BaseException | None
) -> dict[str, Any]:
    path = request.url.path
    documents: Mapping[str, ErrorDocument] = getattr(
        request.app.state, "error_documents", {}
    )
    for prefix, document in documents.items():
        if path.startswith(prefix):
            return document(status, message)
    if path.startswith("/htsget"):
        return {
            "htsget": {"error": htsget_error_kind(status, error), "message": message}
        }
    if path.startswith("/ga4gh/drs"):
        return {"msg": message, "status_code": status}
    return {"detail": message}


# Paths whose refusals and failures are access decisions (audited here); Beacon
# requests under /api are audited per dataset by their own dependency.
_ACCESS_PATHS = ("/access", "/htsget", "/ga4gh/drs", "/.well-known", "/catalogue")


def _audit_failure(
    request: Request, status: int, message: str, error: BaseException | None
) -> None:
    """One audit entry for a refused or failed request on an access path."""
    path = request.url.path
    if not path.startswith(_ACCESS_PATHS) or isinstance(error, TokenError):
        return  # bad tokens are audited where they are verified
    if getattr(request.state, "audited", False):
        return
    service = getattr(request.app.state, "access", None)
    audit = getattr(service, "audit", None)
    if audit is None or not (status in (401, 403) or status >= 500):
        return
    caller = getattr(request.state, "caller", None)
    try:
        audit.record(
            actor=getattr(caller, "subject", None) or "anonymous",
            action=f"{request.method} {path}"[:64],
            outcome="error" if status >= 500 else "deny",
            reason=message if status < 500 else "internal error",
            details={"status": status},
        )
        request.state.audited = True
    except Exception:  # the answer goes out; the writer logs its own trouble
        _log.exception("could not audit a refused request to %s", path)


def error_response(
    request: Request,
    status: int,
    message: str,
    error: BaseException | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The error document of the API ``request`` belongs to (audited if access)."""
    _audit_failure(request, status, message, error)
    merged = dict(headers or {})
    if status == 401:
        merged.setdefault("WWW-Authenticate", "Bearer")
    if status in (408, 413):
        # The rest of the body is never read: the connection cannot be reused.
        merged["Connection"] = "close"
    return json_response(_document(request, status, message, error), status, merged)


def _validation_message(error: RequestValidationError) -> str:
    problems = []
    for item in error.errors()[:3]:
        where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
        problems.append(f"{where or 'request'}: {item.get('msg', 'invalid')}")
    return "; ".join(problems) or "invalid request"


def install_error_handlers(
    app: FastAPI, documents: Mapping[str, ErrorDocument] | None = None
) -> None:
    """Turn every error raised by a route into its API's error document.

    ``documents`` maps a path prefix to the error document of the API under it
    (the Beacon's ``beaconErrorResponse`` under ``/api``); htsget and DRS
    documents are built in, ``{"detail": ...}`` is the rest.
    """
    app.state.error_documents = dict(documents or {})

    @app.exception_handler(GenomenodeError)
    async def genomenode_error(request: Request, exc: GenomenodeError) -> Response:
        if isinstance(exc, ClientDisconnected):
            # Nobody reads this answer; 499 is what proxies log for it.
            return Response(status_code=499)
        if exc.status >= 500:
            _log.error(
                "error answering %s %s: %s",
                request.method,
                request.url.path,
                type(exc).__name__,
                exc_info=exc,
            )
            return error_response(request, exc.status, "internal error", exc)
        return error_response(
            request, exc.status, str(exc), exc, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return error_response(
            request, exc.status_code, str(exc.detail), headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(
        request: Request, exc: RequestValidationError
    ) -> Response:
        return error_response(request, 400, _validation_message(exc), exc)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # The type and the traceback, never the request's values (they may be
        # personal data or tokens).
        _log.error(
            "unexpected %s answering %s %s",
            type(exc).__name__,
            request.method,
            request.url.path,
            exc_info=exc,
        )
        return error_response(request, 500, "internal error")


# ---------------------------------------------------------------------- server

#: Where :func:`serve` hands the header limits to uvicorn's worker processes
#: (the same names as the settings' environment variables).
_HEADER_TIMEOUT_VARIABLE = "GENOMENODE_HTTP_HEADER_TIMEOUT_SECONDS"
_HEADER_BYTES_VARIABLE = "GENOMENODE_HTTP_MAX_HEADER_BYTES"
_FACTORY_VARIABLE = "GENOMENODE_APP_FACTORY"


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
    limits: HttpLimits = _DEFAULT_LIMITS,
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
        "genomenode.web:frozen_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http="genomenode.web:ServerProtocol",
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
    return app
