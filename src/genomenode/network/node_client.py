"""How the network sends a request to a node: a small pooled HTTP/1.1 client.

The fan-out asks every node for every query, so its client is the network's hot
path. A general client (httpx) spends several times a node's own work per request
on layers the fan-out does not use (auth flows, redirects, cookies, per-request
pool bookkeeping); :class:`NodeClient` does only what the fan-out needs:

- one pool per origin of at most ``max_connections`` keep-alive connections
  (requests beyond it wait for one), so one node's connections never crowd
  another's;
- requests written in one piece, responses parsed by ``httptools`` (the parser
  uvicorn uses: lengths and chunked bodies), bodies capped at ``max_response_bytes``;
- a connection whose request was cancelled (the fan-out's timeout, or the caller
  went away) is closed, never reused, so the node sees the client go away;
- a kept-alive connection the node closed meanwhile is retried once on a new one,
  when nothing of the answer had arrived.

Where a proxy from the environment applies to a node (``HTTPS_PROXY``...), that
node is asked through httpx, which speaks to proxies. :class:`HttpxNodeClient`
offers the same :meth:`~NodeClient.send` over any ``httpx2.AsyncClient`` (tests
use one over a mock transport).
"""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
import urllib.request
from collections.abc import Sequence
from typing import Protocol, cast
from urllib.parse import urlsplit

import httptools
import httpx2

__all__ = [
    "MAX_RESPONSE_BYTES",
    "HttpxNodeClient",
    "NodeClient",
    "NodeConnectionError",
    "NodeResponse",
    "NodeSender",
    "NodeTimeoutError",
]

#: The largest answer body a node may send (a page of records is far smaller).
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
_USER_AGENT = b"genomenode-network"


@dataclasses.dataclass(frozen=True)
class NodeResponse:
    """A node's answer: its HTTP status and the whole body."""

    status: int
    content: bytes


class NodeConnectionError(Exception):
    """No usable answer: refused, reset, closed early, malformed or too large."""


class NodeTimeoutError(NodeConnectionError):
    """The node did not answer within the client's own timeout."""


class NodeSender(Protocol):
    """What the fan-out needs of a client: send one request, get the answer."""

    async def send(
        self,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]],
        body: bytes | None,
    ) -> NodeResponse: ...

    async def aclose(self) -> None: ...


class _Stale(NodeConnectionError):
    """A kept-alive connection closed before any byte of the answer came."""


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: one request at a time, answers parsed as they come."""

    def __init__(self, max_response_bytes: int) -> None:
        self._max_response_bytes = max_response_bytes
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[NodeResponse] | None = None
        self._body: list[bytes] = []
        self._size = 0
        self._received = False
        self._framed = False  # the answer says where its body ends
        self._headers_done = False
        self.closed = False

    # -- asyncio.Protocol ------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self._fail(NodeConnectionError("the node sent bytes nobody asked for"))
            return
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(NodeConnectionError(f"malformed HTTP answer: {error}"))

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost finishes the answer

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._headers_done and not self._framed:
            # Neither Content-Length nor chunked: the body ends with the connection.
            self._complete(keep_alive=False)
        elif not self._received:
            waiter.set_exception(_Stale("connection closed before the answer"))
        else:
            waiter.set_exception(
                NodeConnectionError("connection closed in the middle of the answer")
            )

    # -- httptools callbacks ---------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered == b"content-length" or (
            lowered == b"transfer-encoding" and b"chunked" in value.lower()
        ):
            self._framed = True

    def on_headers_complete(self) -> None:
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self._max_response_bytes:
            self._fail(
                NodeConnectionError(
                    f"answer body over {self._max_response_bytes:,} bytes"
                )
            )
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._complete(keep_alive=self._parser.should_keep_alive())

    # -- the request -----------------------------------------------------------

    async def exchange(self, request: bytes) -> NodeResponse:
        """Send ``request`` (whole, bytes) and wait for the whole answer."""
        if self.closed or self._transport is None:
            raise _Stale("connection already closed")
        self._waiter = asyncio.get_running_loop().create_future()
        self._body, self._size, self._received = [], 0, False
        self._framed = self._headers_done = False
        self._transport.write(request)
        try:
            return await self._waiter
        finally:
            self._waiter = None

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    def _complete(self, *, keep_alive: bool) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if not keep_alive:
            self.close()
        waiter.set_result(
            NodeResponse(self._parser.get_status_code(), b"".join(self._body))
        )

    def _fail(self, error: NodeConnectionError) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)
        self.close()


class _Origin:
    """The pool of one (scheme, host, port): at most ``max_connections``."""

    def __init__(
        self,
        scheme: str,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None,
        max_connections: int,
        max_response_bytes: int,
    ) -> None:
        self._host = host
        self._port = port
        self._ssl = ssl_context if scheme == "https" else None
        self._max_response_bytes = max_response_bytes
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[_Connection] = []

    async def send(self, request: bytes) -> NodeResponse:
        async with self._slots:
            connection = self._idle_connection()
            if connection is not None:
                try:
                    return await self._exchange(connection, request)
                except _Stale:
                    pass  # closed by the node while idle: once more, on a new one
            connection = await self._connect()
            try:
                return await self._exchange(connection, request)
            except _Stale as error:
                raise NodeConnectionError(str(error)) from None

    async def _exchange(self, connection: _Connection, request: bytes) -> NodeResponse:
        try:
            response = await connection.exchange(request)
        except BaseException:
            # Cancelled or failed mid-request: the connection's state is unknown.
            connection.close()
            raise
        if not connection.closed:
            self._idle.append(connection)
        return response

    def _idle_connection(self) -> _Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                return connection
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(
                lambda: _Connection(self._max_response_bytes),
                self._host,
                self._port,
                ssl=self._ssl,
                server_hostname=self._host if self._ssl is not None else None,
            )
        except (OSError, ssl.SSLError) as error:
            raise NodeConnectionError(f"{type(error).__name__}: {error}") from None
        return connection

    def close(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()


def _checked(value: str, what: str) -> bytes:
    if "\r" in value or "\n" in value:
        raise ValueError(f"{what} holds a line break")
    return value.encode("latin-1")


class NodeClient:
    """Pooled HTTP/1.1 to the nodes (module docs).

    Parameters
    ----------
    max_connections
        Per origin; requests beyond it wait for a connection.
    max_response_bytes
        The largest answer body accepted (larger: :class:`NodeConnectionError`).
    """

    def __init__(
        self,
        *,
        max_connections: int,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        proxied_timeout_seconds: float = 30.0,
    ) -> None:
        self._max_connections = max_connections
        self._max_response_bytes = max_response_bytes
        self._origins: dict[tuple[str, str, int], _Origin] = {}
        self._direct: dict[tuple[str, str], bool] = {}
        self._ssl_context: ssl.SSLContext | None = None
        self._proxied_timeout_seconds = proxied_timeout_seconds
        self._proxied: HttpxNodeClient | None = None

    async def send(
        self,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]],
        body: bytes | None,
    ) -> NodeResponse:
        """Send one request; the node's status and body.

        Raises
        ------
        NodeConnectionError
            Refused, reset, closed early, malformed or over the size cap.
        ValueError
            ``url`` is not http(s), or a header value holds a line break.
        """
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname
        if scheme not in ("http", "https") or not host:
            raise ValueError(f"not an http(s) URL: {url}")
        if not self._is_direct(scheme, host):
            return await self._proxy().send(method, url, headers, body)
        port = parts.port or (443 if scheme == "https" else 80)
        target = parts.path or "/"
        if parts.query:
            target = f"{target}?{parts.query}"
        lines = [
            _checked(f"{method} {target} HTTP/1.1", "request line"),
            b"Host: " + _checked(parts.netloc.rpartition("@")[2], "host"),
            b"User-Agent: " + _USER_AGENT,
            b"Accept: application/json",
        ]
        lines.extend(
            _checked(name, "header name") + b": " + _checked(value, name)
            for name, value in headers
        )
        if body is not None:
            lines.append(b"Content-Length: " + str(len(body)).encode())
        request = b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")
        return await self._origin(scheme, host, port).send(request)

    async def aclose(self) -> None:
        """Close every idle connection (and the proxied client, if one was made)."""
        origins, self._origins = list(self._origins.values()), {}
        for origin in origins:
            origin.close()
        if self._proxied is not None:
            await self._proxied.aclose()

    def _origin(self, scheme: str, host: str, port: int) -> _Origin:
        key = (scheme, host, port)
        origin = self._origins.get(key)
        if origin is None:
            if scheme == "https" and self._ssl_context is None:
                self._ssl_context = httpx2.create_ssl_context()
            origin = _Origin(
                scheme,
                host,
                port,
                ssl_context=self._ssl_context,
                max_connections=self._max_connections,
                max_response_bytes=self._max_response_bytes,
            )
            self._origins[key] = origin
        return origin

    def _is_direct(self, scheme: str, host: str) -> bool:
        key = (scheme, host)
        direct = self._direct.get(key)
        if direct is None:
            proxies = urllib.request.getproxies()
            direct = scheme not in proxies or bool(urllib.request.proxy_bypass(host))
            self._direct[key] = direct
        return direct

    def _proxy(self) -> HttpxNodeClient:
        if self._proxied is None:
            limits = httpx2.Limits(max_connections=self._max_connections)
            self._proxied = HttpxNodeClient(
                httpx2.AsyncClient(
                    timeout=self._proxied_timeout_seconds,
                    limits=limits,
                    follow_redirects=False,
                ),
                owned=True,
            )
        return self._proxied


class HttpxNodeClient:
    """:meth:`NodeClient.send` over an ``httpx2.AsyncClient`` (proxies, tests).

    Parameters
    ----------
    client
        The client to send with.
    owned
        Close ``client`` in :meth:`aclose` (else it stays the caller's).
    """

    def __init__(self, client: httpx2.AsyncClient, *, owned: bool = False) -> None:
        self._client = client
        self._owned = owned

    async def send(
        self,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]],
        body: bytes | None,
    ) -> NodeResponse:
        """As :meth:`NodeClient.send`."""
        try:
            response = await self._client.request(
                method, url, content=body, headers=list(headers)
            )
        except httpx2.TimeoutException as error:
            raise NodeTimeoutError(f"{type(error).__name__}: {error}") from None
        except httpx2.HTTPError as error:
            raise NodeConnectionError(f"{type(error).__name__}: {error}") from None
        return NodeResponse(response.status_code, response.content)

    async def aclose(self) -> None:
        """Close the client if it is ours."""
        if self._owned:
            await self._client.aclose()
