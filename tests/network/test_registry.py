"""NETWORK.yaml: a valid file loads; every wrong field is named with the file."""

from __future__ import annotations

import pytest
import yaml

from genomenode.errors import ConfigError
from genomenode.network.breaker import BreakerSettings
from genomenode.network.registry import RegisteredNode, load_registry


def _changed(mapping: dict, changes: dict) -> dict:
    """``mapping`` with ``changes`` made: a value of None removes the key."""
    for key, value in changes.items():
        if value is None:
            mapping.pop(key)
        else:
            mapping[key] = value
    return mapping


def _document(**changes):
    document = {
        "format_version": 1,
        "network_id": "gdi-test",
        "public_url": "https://network.example.org/",
        "timeout_seconds": 2.5,
        "nodes": [
            {
                "id": "fi-node",
                "country": "FI",
                "url": "https://fi.example.org",
                "jwks": "https://fi.example.org/.well-known/jwks.json",
            },
            {"id": "se-node", "country": "SE", "url": "http://se.example.org:8080/"},
        ],
    }
    return _changed(document, changes)


def _write(tmp_path, document) -> str:
    path = tmp_path / "NETWORK.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return str(path)


def test_valid_file(tmp_path):
    registry = load_registry(_write(tmp_path, _document()))
    assert registry.network_id == "gdi-test"
    assert registry.beacon_id == "org.genomenode.network.gdi-test"
    assert registry.public_url == "https://network.example.org"
    assert registry.api_url == "https://network.example.org/api"
    assert registry.timeout_seconds == 2.5
    assert registry.nodes == (
        RegisteredNode(
            "fi-node",
            "FI",
            "https://fi.example.org",
            "https://fi.example.org/.well-known/jwks.json",
        ),
        RegisteredNode("se-node", "SE", "http://se.example.org:8080"),
    )
    assert registry.nodes[1].api_url == "http://se.example.org:8080/api"
    assert registry.node("se-node").country == "SE"


def test_timeout_defaults_to_five_seconds(tmp_path):
    registry = load_registry(_write(tmp_path, _document(timeout_seconds=None)))
    assert registry.timeout_seconds == 5.0


def test_hardening_settings_and_their_defaults(tmp_path):
    registry = load_registry(_write(tmp_path, _document()))
    assert registry.circuit_breaker == BreakerSettings(5, 30.0)
    assert registry.max_body_bytes == 256 * 1024
    assert registry.max_query_bytes == 16 * 1024
    assert registry.operator_token is None
    document = _document(
        circuit_breaker={"failure_threshold": 0, "open_seconds": 2.5},
        max_body_bytes=1000,
        max_query_bytes=100,
        operator_token="  a-long-enough-operator-token  ",
    )
    registry = load_registry(_write(tmp_path, document))
    assert registry.circuit_breaker == BreakerSettings(0, 2.5)
    assert (registry.max_body_bytes, registry.max_query_bytes) == (1000, 100)
    assert registry.operator_token is not None
    assert registry.operator_token.reveal() == "a-long-enough-operator-token"
    assert "a-long-enough" not in repr(registry)


def test_a_short_operator_token_is_refused_without_repeating_it(tmp_path):
    path = _write(tmp_path, _document(operator_token="hunter2"))
    with pytest.raises(ConfigError, match="at least 16 characters") as raised:
        load_registry(path)
    assert "hunter2" not in str(raised.value)


def _node(**changes):
    node = {"id": "fi-node", "country": "FI", "url": "https://fi.example.org"}
    return _changed(node, changes)


@pytest.mark.parametrize(
    ("document", "field"),
    [
        (_document(format_version=None), "format_version"),
        (_document(format_version=2), "format_version"),
        (_document(network_id=None), "network_id"),
        (_document(network_id="has space"), "network_id"),
        (_document(public_url=None), "public_url"),
        (_document(public_url="network.example.org"), "public_url"),
        (_document(public_url="https://network.example.org/api"), "public_url"),
        (_document(timeout_seconds=0), "timeout_seconds"),
        (_document(timeout_seconds="soon"), "timeout_seconds"),
        (_document(environment="staging"), "environment"),
        (_document(nodes=None), "nodes"),
        (_document(nodes=[]), "nodes"),
        (_document(nodes=["fi-node"]), "nodes[0]"),
        (_document(nodes=[_node(id=None)]), "nodes[0].id"),
        (_document(nodes=[_node(), _node()]), "nodes[1].id"),
        (_document(nodes=[_node(country=None)]), "nodes[0].country"),
        (_document(nodes=[_node(country="Finland")]), "nodes[0].country"),
        (_document(nodes=[_node(country=False)]), "nodes[0].country"),
        (_document(nodes=[_node(url=None)]), "nodes[0].url"),
        (_document(nodes=[_node(url="ftp://fi.example.org")]), "nodes[0].url"),
        (_document(nodes=[_node(url="https://fi.example.org/api")]), "nodes[0].url"),
        (_document(nodes=[_node(jwks="keys.json")]), "nodes[0].jwks"),
        (_document(nodes=[_node(secret="x")]), "nodes[0].secret"),
        (_document(colour="blue"), "colour"),
        (_document(circuit_breaker=5), "circuit_breaker"),
        (
            _document(circuit_breaker={"failure_threshold": -1}),
            "circuit_breaker.failure_threshold",
        ),
        (
            _document(circuit_breaker={"failure_threshold": 2.5}),
            "circuit_breaker.failure_threshold",
        ),
        (
            _document(circuit_breaker={"open_seconds": 0}),
            "circuit_breaker.open_seconds",
        ),
        (_document(circuit_breaker={"reset": 1}), "circuit_breaker.reset"),
        (_document(max_body_bytes=0), "max_body_bytes"),
        (_document(max_body_bytes=True), "max_body_bytes"),
        (_document(max_query_bytes="16k"), "max_query_bytes"),
        (_document(operator_token=12345678901234567890), "operator_token"),
    ],
)
def test_invalid_field_is_named(tmp_path, document, field):
    path = _write(tmp_path, document)
    with pytest.raises(ConfigError) as raised:
        load_registry(path)
    message = str(raised.value)
    assert message.startswith(path)
    assert f"field {field!r}" in message


def test_unquoted_norway_gets_a_hint(tmp_path):
    path = tmp_path / "NETWORK.yaml"
    path.write_text(
        "format_version: 1\nnetwork_id: n\npublic_url: https://n.example.org\n"
        "nodes:\n  - {id: no-node, country: NO, url: https://no.example.org}\n"
    )
    with pytest.raises(ConfigError, match="quote the code"):
        load_registry(path)


def test_unreadable_and_not_yaml(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_registry(tmp_path / "missing.yaml")
    path = tmp_path / "NETWORK.yaml"
    path.write_text("nodes: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_registry(path)
