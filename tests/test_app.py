"""The ASGI app's server glue."""

from __future__ import annotations

import urllib.parse

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


def _clear_environment(monkeypatch, *names: str) -> None:
    # Registered with monkeypatch so that what `serve` sets is undone after.
    for name in names:
        monkeypatch.setenv(name, "-")
        monkeypatch.delenv(name)


def _serve(monkeypatch, node_dir, *options: str):
    """`genomenode serve` with uvicorn replaced by building the app as a worker
    would; the CLI result and the app."""
    import uvicorn
    from click.testing import CliRunner

    from genomenode.app import app_from_environment
    from genomenode.cli import cli

    _clear_environment(monkeypatch, "GENOMENODE_PUBLIC_URL", "GENOMENODE_NODE")
    built = []
    monkeypatch.setattr(
        uvicorn, "run", lambda *args, **kwargs: built.append(app_from_environment())
    )
    result = CliRunner().invoke(cli, ["serve", "--node", str(node_dir), *options])
    return result, built[0] if built else None


def test_serve_without_public_url_publishes_urls_on_the_served_port(
    tmp_path, monkeypatch
):
    from fastapi.testclient import TestClient

    from genomenode.ingest.pipeline import ingest
    from genomenode.store.node import init_node

    from .conftest import write_dataset_yaml, write_small_cohort

    write_small_cohort(tmp_path / "open", dataset_id="open")
    # Anonymous callers may fetch this one's files: its DRS objects are readable.
    description = write_dataset_yaml(
        tmp_path / "open",
        id="open",
        security_level="PUBLIC",
        beacon={"anonymous": "record"},
    )
    with init_node(tmp_path / "node", node_id="fi-node", country="FI") as node:
        ingest(node, description)
    config_path = tmp_path / "node" / "genomenode.yaml"
    config_path.write_text(config_path.read_text() + "dev_identity_provider: true\n")

    result, app = _serve(
        monkeypatch, tmp_path / "node", "--host", "0.0.0.0", "--port", "8181"
    )

    assert result.exit_code == 0, result.output
    assert "public_url is not set" in result.stderr
    assert "http://localhost:8181" in result.stderr
    with TestClient(app) as client:
        openid = client.get("/dev-idp/.well-known/openid-configuration").json()
        assert openid["token_endpoint"] == "http://localhost:8181/dev-idp/token"
        stored = app.state.transfer.objects("open")[0]
        document = client.get(
            f"/ga4gh/drs/v1/objects/{urllib.parse.quote(stored.id, safe='')}"
        )
        assert document.status_code == 200, document.text
        assert document.json()["self_uri"].startswith("drs://localhost:8181/")

    # A configured public_url wins, and nothing is said about it.
    config_path.write_text(
        config_path.read_text() + "public_url: https://genomes.example.org/fi\n"
    )
    result, app = _serve(monkeypatch, tmp_path / "node", "--port", "8181")
    assert result.exit_code == 0, result.output
    assert "public_url" not in result.stderr
    assert app.state.access.issuer == "https://genomes.example.org/fi"


def test_a_prod_node_trusting_a_development_provider_refuses_to_start(
    sqlite_node, monkeypatch
):
    from genomenode.app import create_app
    from genomenode.config import load_config
    from genomenode.errors import ConfigError
    from genomenode.store.node import Node

    broker = "http://127.0.0.1:8081/dev-idp"
    config_path = sqlite_node.config.node_dir / "genomenode.yaml"
    config_path.write_text(
        config_path.read_text()
        + "beacon_environment: prod\n"
        + f"trusted_brokers:\n  - issuer: {broker}\n"
        + f"    jku: {broker}/.well-known/jwks.json\n"
    )
    node = Node(load_config(sqlite_node.config.node_dir))
    with pytest.raises(ConfigError, match=r"^trusted_brokers: entry 0"):
        create_app(node, environment="prod")
    create_app(node, environment="dev")  # the demo's setting, outside prod

    result, app = _serve(monkeypatch, sqlite_node.config.node_dir)
    assert result.exit_code == 1 and app is None
    assert "trusted_brokers: entry 0" in result.stderr
    assert "development identity provider" in result.stderr


def test_keys_made_while_serving_are_private(tmp_path, permissive_umask):
    from fastapi.testclient import TestClient

    from genomenode.app import create_app
    from genomenode.store.node import init_node

    from .conftest import assert_private

    node = init_node(tmp_path / "node", node_id="n", country="FI")
    app = create_app(node, dev_identity_provider=True)  # the links secret, dev keys
    app.state.access.signing_keys.active()  # the first visa key, as a grant makes it
    with TestClient(app) as client:
        assert client.get("/.well-known/jwks.json").json()["keys"]
        assert client.get("/dev-idp/.well-known/jwks.json").json()["keys"]
    node.close()
    files = {
        path.relative_to(tmp_path / "node")
        for path in assert_private(tmp_path / "node")
    }
    assert {"links.key", "visas", "dev-idp"} <= {
        path.parts[1] for path in files if path.parts[0] == "keys"
    }
