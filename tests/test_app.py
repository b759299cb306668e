"""The ASGI app's server glue."""

from __future__ import annotations

import asyncio
import socket

import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from genomenode.app import NoDelayHttpToolsProtocol


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
    ("protocol", "expected"),
    [(HttpToolsProtocol, 0), (NoDelayHttpToolsProtocol, 1)],
)
def test_connections_have_nagle_off(protocol, expected):
    # The stock protocol shows the problem exists, so that the check can fail.
    assert bool(asyncio.run(_nodelay_of_accepted(protocol))) == bool(expected)


def test_the_development_identity_provider_is_off_unless_asked(sqlite_node):
    from fastapi.testclient import TestClient

    from genomenode.app import create_app

    with TestClient(create_app(sqlite_node)) as client:
        assert client.post("/dev-idp/token", json={"subject": "x"}).status_code == 404
        assert client.get("/.well-known/jwks.json").status_code == 200
    with TestClient(create_app(sqlite_node, dev_identity_provider=True)) as client:
        assert client.post("/dev-idp/token", json={"subject": "x"}).status_code == 200


def test_the_development_identity_provider_is_refused_in_prod(sqlite_node):
    from genomenode.app import create_app
    from genomenode.errors import ConfigError

    with pytest.raises(ConfigError, match="dev_identity_provider"):
        create_app(sqlite_node, environment="prod", dev_identity_provider=True)
