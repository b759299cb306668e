"""The fan-out's HTTP/1.1 client against tiny real servers on loopback: keep-alive
reuse, bounded pools, every way an answer may be framed or broken, cancellation
closing the connection, and assertions signed over exactly what a node receives."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest

from genomenode.access.network_trust import (
    ASSERTION_HEADER,
    NetworkSigner,
    NetworkVerifier,
)
from genomenode.access.tokens import JwksCache, TrustedIssuer
from genomenode.network import fanout
from genomenode.network.node_client import (
    NodeClient,
    NodeConnectionError,
    NodeResponse,
)
from genomenode.network.registry import RegisteredNode

from .test_merge import GOOD

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """A loopback server running ``handler`` per connection; counts connections."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.open = 0
        self.most_open = 0
        self.closed_by_client = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _serve(self, reader, writer) -> None:
        self.connections += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            await self.handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open -= 1
            writer.close()


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, dict, bytes]:
    """One request: its request line, headers (lower-case names) and body."""
    head = await reader.readuntil(b"\r\n\r\n")
    line, *header_lines = head[:-4].split(b"\r\n")
    headers = {}
    for header in header_lines:
        name, _, value = header.partition(b":")
        headers[name.strip().lower().decode()] = value.strip().decode()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return line, headers, body


def answer(body: bytes, *extra: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        + b"".join(extra)
        + f"content-length: {len(body)}\r\n\r\n".encode()
        + body
    )


def answering_once(raw: bytes) -> Handler:
    """A handler that reads one request, writes ``raw`` and closes."""

    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(raw)
        await writer.drain()
        writer.close()

    return once


async def keep_alive(reader, writer) -> None:
    while True:
        line, _, body = await read_request(reader)
        document = {"line": line.decode(), "body": len(body)}
        writer.write(answer(json.dumps(document).encode()))
        await writer.drain()


def run(coroutine):
    return asyncio.run(coroutine)


def test_sequential_requests_reuse_one_connection():
    server = Server(keep_alive)

    async def go():
        async with server as url:
            client = NodeClient(max_connections=4)
            answers = [
                await client.send("GET", f"{url}/api/info?a=1", [], None)
                for _ in range(5)
            ]
            posted = await client.send("POST", f"{url}/api/x", [], b"{}")
            await client.aclose()
            return answers, posted

    answers, posted = run(go())
    assert {a.status for a in answers} == {200}
    assert json.loads(answers[0].content)["line"] == "GET /api/info?a=1 HTTP/1.1"
    assert json.loads(posted.content) == {"line": "POST /api/x HTTP/1.1", "body": 2}
    assert server.connections == 1


def test_a_pool_holds_at_most_max_connections():
    async def slow(reader, writer) -> None:
        while True:
            await read_request(reader)
            await asyncio.sleep(0.05)
            writer.write(answer(b"{}"))
            await writer.drain()

    server = Server(slow)

    async def go():
        async with server as url:
            client = NodeClient(max_connections=3)
            answers = await asyncio.gather(
                *(client.send("GET", f"{url}/", [], None) for _ in range(12))
            )
            await client.aclose()
            return answers

    assert [a.status for a in run(go())] == [200] * 12
    assert server.most_open == 3


@pytest.mark.parametrize(
    ("raw", "body"),
    [
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
            b"abcdefg",
        ),
        # Neither length nor chunked: the body ends with the connection.
        (b"HTTP/1.1 200 OK\r\n\r\nuntil-close", b"until-close"),
        (b"HTTP/1.0 404 Not Found\r\ncontent-length: 2\r\n\r\nno", b"no"),
    ],
)
def test_every_framing_of_an_answer(raw, body):
    async def go():
        async with Server(answering_once(raw)) as url:
            client = NodeClient(max_connections=1)
            response = await client.send("GET", f"{url}/", [], None)
            await client.aclose()
            return response

    response = run(go())
    assert response.content == body
    assert response.status in (200, 404)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort", "middle"),
        (b"SMTP ready\r\n\r\n", "malformed"),
        (answer(b"x" * 2000), "over"),
        (b"", "closed before the answer"),
    ],
)
def test_a_broken_answer_is_an_error(raw, message):
    async def go():
        async with Server(answering_once(raw)) as url:
            client = NodeClient(max_connections=1, max_response_bytes=1000)
            with pytest.raises(NodeConnectionError, match=message):
                await client.send("GET", f"{url}/", [], None)
            await client.aclose()

    run(go())


def test_a_refused_connection_is_an_error():
    async def go():
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        client = NodeClient(max_connections=1)
        with pytest.raises(NodeConnectionError, match="ConnectionRefused"):
            await client.send("GET", f"http://127.0.0.1:{port}/", [], None)

    run(go())


def test_a_keep_alive_connection_the_node_closed_is_retried_once():
    async def one_answer_per_connection(reader, writer) -> None:
        await read_request(reader)
        # Says keep-alive, then closes: what a node restarting or timing out its
        # idle connections does between two requests.
        writer.write(answer(b"{}"))
        await writer.drain()
        await asyncio.sleep(0.05)

    server = Server(one_answer_per_connection)

    async def go():
        async with server as url:
            client = NodeClient(max_connections=1)
            first = await client.send("GET", f"{url}/", [], None)
            await asyncio.sleep(0.2)  # the server has closed it by now
            second = await client.send("GET", f"{url}/", [], None)
            await client.aclose()
            return first, second

    assert run(go()) == (NodeResponse(200, b"{}"), NodeResponse(200, b"{}"))
    assert server.connections == 2


def test_a_cancelled_request_closes_its_connection():
    async def never_answers(reader, writer) -> None:
        await read_request(reader)
        # The client going away shows as end of file.
        assert await reader.read() == b""
        server.closed_by_client += 1

    server = Server(never_answers)

    async def go():
        async with server as url:
            client = NodeClient(max_connections=1)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(client.send("GET", f"{url}/", [], None), 0.1)
            for _ in range(50):
                if server.closed_by_client:
                    break
                await asyncio.sleep(0.01)
            await client.aclose()

    run(go())
    assert server.closed_by_client == 1


def test_a_line_break_in_a_header_is_refused():
    async def go():
        client = NodeClient(max_connections=1)
        with pytest.raises(ValueError, match="line break"):
            await client.send(
                "GET", "http://127.0.0.1:9/", [("Authorization", "x\r\nX: y")], None
            )
        with pytest.raises(ValueError, match="not an http"):
            await client.send("GET", "file:///etc/passwd", [], None)

    run(go())


def test_a_node_behind_a_proxy_is_asked_through_httpx(monkeypatch):
    server = Server(keep_alive)

    async def go():
        async with server as url:
            client = NodeClient(max_connections=1)
            # Direct: answered. Through a proxy that is not there: httpx's
            # connection error, which shows the proxy was used.
            direct = await client.send("GET", f"{url}/", [], None)
            monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
            monkeypatch.delenv("no_proxy", raising=False)
            monkeypatch.delenv("NO_PROXY", raising=False)
            proxied = NodeClient(max_connections=1)
            with pytest.raises(NodeConnectionError, match="ConnectError"):
                await proxied.send("GET", "http://node.example/", [], None)
            await client.aclose()
            await proxied.aclose()
            return direct

    assert run(go()).status == 200


def test_fan_out_signs_exactly_what_the_node_receives(tmp_path):
    """The assertion verifies against the request line the node read, also for a
    query with characters the client must percent-encode."""
    received: list[tuple[bytes, dict, bytes]] = []

    async def node(reader, writer) -> None:
        while True:
            request = await read_request(reader)
            received.append(request)
            writer.write(answer(json.dumps(GOOD).encode()))
            await writer.drain()

    issuer = "http://network.test"
    signer = NetworkSigner(tmp_path / "keys", issuer)
    verifier = NetworkVerifier(
        [TrustedIssuer(issuer, f"{issuer}/.well-known/jwks.json")],
        JwksCache(lambda _url: signer.jwks()),
    )
    query = 'filters=NCIT:C16576&note="a|b"&x=%7B1%7D'
    body = b'{"query": {}}'

    async def go():
        async with Server(node) as url:
            registered = RegisteredNode("a", "FI", url)
            client = NodeClient(max_connections=2)
            answers = [
                *await fanout.fan_out(
                    [registered],
                    "GET",
                    "individuals",
                    query=query,
                    timeout_seconds=5,
                    client=client,
                    signer=signer,
                ),
                *await fanout.fan_out(
                    [registered],
                    "POST",
                    "g_variants",
                    body=body,
                    timeout_seconds=5,
                    client=client,
                    signer=signer,
                ),
            ]
            await client.aclose()
            return url, answers

    url, answers = run(go())
    assert [answer.status for answer in answers] == ["ok", "ok"]
    for (line, headers, sent_body), method in zip(
        received, ("GET", "POST"), strict=True
    ):
        target = line.split(b" ")[1].decode()
        assertion = headers[ASSERTION_HEADER.lower()]
        run(verifier.prepare(assertion))
        caller = verifier.verify(
            assertion,
            audience=url,
            method=method,
            path_and_query=target,
            body=sent_body,
        )
        assert caller is not None and caller.network == issuer
    get_target = received[0][0].split(b" ")[1]
    assert b'"' not in get_target and b"|" not in get_target
    assert received[1][2] == body
    assert received[1][1]["content-type"] == "application/json"
