"""The one HTTP layer: body limits, JSON limits, off-loop work, errors, server."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from typing import ClassVar

import httpx2
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from genomenode.errors import PermissionDenied, TooManyRequests
from genomenode.web.blocking import check_cancelled, run_blocking
from genomenode.web.body import HttpLimits, parse_json, read_json
from genomenode.web.responses import install_error_handlers, json_response
from genomenode.web.server import ServerProtocol

from .conftest import free_port

LIMITS = HttpLimits(
    max_body_bytes=1000,
    max_json_depth=8,
    max_integer_digits=20,
    body_timeout_seconds=0.5,
)


class _Busy(TooManyRequests):
    """An error that asks its answer to carry a header."""

    headers: ClassVar[dict[str, str]] = {"Retry-After": "7"}


def _app(limits: HttpLimits = LIMITS) -> tuple[FastAPI, dict[str, object]]:
    """A small app over the HTTP layer, and what its slow work saw."""
    app = FastAPI()
    app.state.http_limits = limits
    seen: dict[str, object] = {"cancelled": threading.Event(), "consumed": 0}

    @app.post("/echo")
    async def echo(request: Request):
        return json_response({"body": await read_json(request)})

    @app.get("/slow")
    async def slow(request: Request):
        def work() -> str:
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                try:
                    check_cancelled()
                except Exception:
                    seen["cancelled"].set()  # type: ignore[attr-defined]
                    raise
                time.sleep(0.01)
            return "done"

        return json_response({"result": await run_blocking(request, work)})

    @app.get("/fast")
    async def fast(request: Request):
        return json_response({"ok": await run_blocking(request, lambda: True)})

    @app.get("/forbidden")
    async def forbidden():
        raise PermissionDenied("not yours")

    @app.get("/echo")
    async def echo_get():
        return json_response({"body": None})

    @app.get("/busy")
    async def busy():
        raise _Busy("too many requests: retry in 7 seconds")

    @app.get("/broken")
    async def broken():
        raise RuntimeError("secret value 1234 in the message")

    @app.get("/numbers/{number}")
    async def numbers(number: int):
        return json_response({"number": number})

    install_error_handlers(app)
    return app, seen


# -------------------------------------------------------------- JSON parsing


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\xd4", "not UTF-8"),
        (b"[" * 9 + b"]" * 9, "nested 9 levels"),
        (b'{"a": ' * 9 + b"1" + b"}" * 9, "nested 9 levels"),
        (b"[" * 100_000, "nested 100000 levels"),
        (b'{"n": ' + b"9" * 5000 + b"}", "5000 digits"),
        (b'{"n": -' + b"9" * 21 + b"}", "21 digits"),
        (b"[NaN]", "NaN is not JSON"),
        (b"[Infinity]", "Infinity is not JSON"),
        (b"{", "not JSON"),
        (b'{"id": "a\\ud800b"}', "lone UTF-16 surrogate"),
        (b'["\\udc00"]', "lone UTF-16 surrogate"),
    ],
)
def test_hostile_json_is_a_clear_input_error(raw, message):
    from genomenode.errors import InputError

    with pytest.raises(InputError, match=message) as caught:
        parse_json(raw, LIMITS)
    assert caught.value.status == 400
    assert caught.value.field == "body"


def test_json_within_the_limits_parses_and_brackets_in_strings_do_not_count():
    assert parse_json(b"[" * 8 + b"]" * 8, LIMITS) == [[[[[[[[]]]]]]]]
    text = b'{"s": "' + b"[{" * 50 + b'\\"]", "n": ' + b"9" * 20 + b"}"
    assert parse_json(text, LIMITS)["n"] == int("9" * 20)
    assert parse_json(b'["\\ud83e\\uddec"]', LIMITS) == ["\U0001f9ec"]  # a pair


# ----------------------------------------------------------------- bodies


def test_a_body_over_the_limit_is_refused_before_it_is_read():
    app, _ = _app()
    with TestClient(app) as client:
        response = client.post("/echo", content=b"[" + b"1," * 600 + b"1]")
        assert response.status_code == 413
        assert "http_max_body_bytes" in response.json()["detail"]

        assert client.post("/echo", content=b'{"a": [1, 2]}').json() == {
            "body": {"a": [1, 2]}
        }
        assert client.post("/echo", content=b"").json() == {"body": None}


def test_a_lying_content_length_is_refused():
    app, _ = _app()
    with TestClient(app) as client:
        response = client.post(
            "/echo", content=b"{}", headers={"content-length": "9" * 40}
        )
        assert response.status_code in (400, 413)


# ------------------------------------------------------------------ errors


def test_errors_become_documents_with_their_headers():
    app, _ = _app()
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.delete("/echo")
        assert response.status_code == 405
        # Both routes of the path, not only the one that refused the method.
        assert response.headers["allow"] == "GET, POST"
        assert response.json() == {"detail": "Method Not Allowed"}

        response = client.post("/forbidden")
        assert response.status_code == 405
        assert response.headers["allow"] == "GET"

        response = client.get("/busy")
        assert response.status_code == 429
        assert response.headers["retry-after"] == "7"

        response = client.get("/forbidden")
        assert (response.status_code, response.json()) == (
            403,
            {"detail": "not yours"},
        )

        response = client.get("/broken")
        assert response.status_code == 500
        assert response.json() == {"detail": "internal error"}
        assert "1234" not in response.text

        response = client.get("/numbers/twelve")
        assert response.status_code == 400
        assert "number" in response.json()["detail"]


def test_other_apis_plug_in_their_error_document():
    app, _ = _app()
    install_error_handlers(
        app, {"/forbidden": lambda status, message: {"code": status, "why": message}}
    )
    with TestClient(app) as client:
        assert client.get("/forbidden").json() == {"code": 403, "why": "not yours"}


# ------------------------------------------------------- a real server


@contextlib.contextmanager
def _server(app: FastAPI, header_timeout: float = 0.5, max_header_bytes: int = 4096):
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=ServerProtocol,
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    saved = (ServerProtocol.header_timeout_seconds, ServerProtocol.max_header_bytes)
    ServerProtocol.header_timeout_seconds = header_timeout
    ServerProtocol.max_header_bytes = max_header_bytes
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}", port
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        ServerProtocol.header_timeout_seconds, ServerProtocol.max_header_bytes = saved


@contextlib.contextmanager
def _connected(app: FastAPI):
    """One raw connection to ``app`` served by a real server."""
    with (
        _server(app) as (_url, port),
        socket.create_connection(("127.0.0.1", port)) as connection,
    ):
        yield connection


def _read_all(connection: socket.socket, timeout: float) -> bytes:
    connection.settimeout(timeout)
    received = b""
    with contextlib.suppress(TimeoutError, ConnectionResetError):
        while chunk := connection.recv(65536):
            received += chunk
    return received


def test_slow_headers_get_408_and_the_connection_closes():
    app, _ = _app()
    with _server(app) as (_url, port):
        # Connected, nothing sent.
        with socket.create_connection(("127.0.0.1", port)) as idle:
            started = time.monotonic()
            answer = _read_all(idle, timeout=5)
            assert answer.startswith(b"HTTP/1.1 408")
            assert time.monotonic() - started < 3
        # Half a request (slowloris): the headers never end.
        with socket.create_connection(("127.0.0.1", port)) as slow:
            slow.sendall(b"GET /fast HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n")
            assert _read_all(slow, timeout=5).startswith(b"HTTP/1.1 408")
        # A whole request on time is answered, and keep-alive still works.
        with socket.create_connection(("127.0.0.1", port)) as good:
            for _ in range(2):
                good.sendall(b"GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
                time.sleep(0.1)
                good.settimeout(5)
                assert good.recv(65536).startswith(b"HTTP/1.1 200")


def test_too_large_headers_get_431():
    app, _ = _app()
    with _connected(app) as connection:
        connection.sendall(
            b"GET /fast HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8000 + b"\r\n\r\n"
        )
        assert _read_all(connection, timeout=5).startswith(b"HTTP/1.1 431")


def test_a_chunked_body_is_cut_off_at_the_limit():
    app, _ = _app()
    with _connected(app) as connection:
        connection.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\ncontent-type: application/json"
            b"\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        # 2 kB of an announced endless body; the server answers without
        # waiting for the rest.
        connection.sendall(b"800\r\n" + b" " * 2048 + b"\r\n")
        answer = _read_all(connection, timeout=5)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:100]


def test_a_slow_body_gets_408():
    app, _ = _app()
    with _connected(app) as connection:
        connection.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\ncontent-type: application/json"
            b"\r\ncontent-length: 100\r\n\r\n[1,"
        )
        answer = _read_all(connection, timeout=5)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:100]


def test_blocking_work_does_not_hold_up_other_requests():
    app, _ = _app()
    with _server(app) as (url, _port):

        async def scenario() -> list[float]:
            async with httpx2.AsyncClient(base_url=url, timeout=10) as client:
                await client.get("/fast")  # warm up the pool
                slow = asyncio.ensure_future(client.get("/slow"))
                await asyncio.sleep(0.2)
                latencies = []
                for _ in range(10):
                    started = time.perf_counter()
                    response = await client.get("/fast")
                    latencies.append(time.perf_counter() - started)
                    assert response.status_code == 200
                assert not slow.done()  # the slow one really was running
                slow.cancel()
                with contextlib.suppress(asyncio.CancelledError, httpx2.HTTPError):
                    await slow
                return latencies

        latencies = asyncio.run(scenario())
        assert max(latencies) < 0.1, latencies


def test_work_stops_when_its_client_goes_away():
    app, seen = _app()
    with _server(app) as (_url, port):
        with socket.create_connection(("127.0.0.1", port)) as connection:
            connection.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(0.3)
        # The work checks every 10 ms; it ran 3 s if nobody stopped it.
        assert seen["cancelled"].wait(timeout=1.5)  # type: ignore[attr-defined]


# --------------------------------------------------------- server protocol


async def _nodelay_of_accepted(protocol_class) -> int:
    # A listening socket created as uvicorn's worker processes get theirs
    # (protocol number 0), on which asyncio does not set TCP_NODELAY itself.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    config = uvicorn.Config(app=None)
    state = ServerState()
    made: list[HttpToolsProtocol] = []

    def factory():
        protocol = protocol_class(config=config, server_state=state, app_state={})
        made.append(protocol)
        return protocol

    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, sock=listener)
    _reader, writer = await asyncio.open_connection(*listener.getsockname())
    for _ in range(100):
        if made and made[0].transport is not None:
            break
        await asyncio.sleep(0.01)
    accepted = made[0].transport.get_extra_info("socket")
    value = accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    writer.close()
    await writer.wait_closed()
    made[0].transport.close()
    server.close()
    await server.wait_closed()
    return value


@pytest.mark.parametrize(
    ("protocol", "expected"), [(HttpToolsProtocol, 0), (ServerProtocol, 1)]
)
def test_connections_have_nagle_off(protocol, expected):
    # The stock protocol shows the problem exists, so that the check can fail.
    assert bool(asyncio.run(_nodelay_of_accepted(protocol))) == bool(expected)


def test_limits_come_from_the_settings():
    from genomenode.config import SETTINGS

    defaults = {setting.name: setting.default for setting in SETTINGS}
    assert HttpLimits.from_settings(defaults) == HttpLimits()
    changed = HttpLimits.from_settings({**defaults, "http_max_body_bytes": 10})
    assert changed.max_body_bytes == 10


def _tiny_app() -> FastAPI:
    return FastAPI()


def test_the_served_app_is_frozen_and_hands_the_gil_over_often(monkeypatch):
    """What :func:`serve` runs in each worker: the factory's app, the heap out of
    the collector's view, and a short GIL switch interval (a scan in the thread
    pool must not hold the event loop off for Python's default 5 ms)."""
    import gc
    import sys

    from genomenode.web import server

    monkeypatch.setenv("GENOMENODE_APP_FACTORY", f"{__name__}:_tiny_app")
    before = sys.getswitchinterval()
    try:
        app = server.frozen_app()
        assert isinstance(app, FastAPI)
        assert sys.getswitchinterval() == pytest.approx(server.SWITCH_INTERVAL_SECONDS)
        assert before > server.SWITCH_INTERVAL_SECONDS
        assert gc.get_freeze_count() > 0
    finally:
        sys.setswitchinterval(before)
        gc.unfreeze()
