"""index.py: what a node says it serves, and its warnings for development settings."""

from __future__ import annotations

from genomenode.config import load_config
from genomenode.index import describe_node, development_warnings, node_index


def test_the_index_names_every_service(sqlite_node):
    index = node_index(
        "fi-node", "https://genomes.example.org/fi/", dev_identity_provider=False
    )
    assert index["endpoints"]["drs"] == "https://genomes.example.org/fi/ga4gh/drs/v1"
    assert "dev_identity_provider" not in index["endpoints"]
    described = describe_node(
        sqlite_node, "http://localhost:8080", listen="0.0.0.0:8080"
    )
    assert described["node_id"] == sqlite_node.config.node_id
    assert described["datasets"] == []


def test_development_settings_are_warned_about(sqlite_node, monkeypatch):
    node_dir = sqlite_node.config.node_dir
    assert development_warnings(load_config(node_dir), "http://x")[0].startswith(
        "public_url is not set: URLs are published under http://x"
    )
    monkeypatch.setenv("GENOMENODE_PUBLIC_URL", "https://genomes.example.org")
    assert (
        development_warnings(load_config(node_dir), "https://genomes.example.org") == []
    )
    monkeypatch.setenv("GENOMENODE_DEV_IDENTITY_PROVIDER", "true")
    monkeypatch.setenv(
        "GENOMENODE_TRUSTED_BROKERS",
        '[{"issuer": "http://127.0.0.1:8081/dev-idp", '
        '"jku": "http://127.0.0.1:8081/dev-idp/.well-known/jwks.json"}]',
    )
    warnings = development_warnings(
        load_config(node_dir), "https://genomes.example.org"
    )
    assert len(warnings) == 2
    assert "issues passports to anyone" in warnings[0]
    assert warnings[1].startswith("trusted_brokers trusts a development identity")
