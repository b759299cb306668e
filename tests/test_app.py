"""The ASGI app's server glue."""

from __future__ import annotations

import pytest


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
