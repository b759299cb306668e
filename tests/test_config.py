"""Settings: declared once, documented, read from file and environment."""

from __future__ import annotations

import json
import pathlib
import re

import pytest

import genomenode
from genomenode.config import (
    SETTINGS,
    check_production_trust,
    is_development_identity_provider,
    load_config,
    public_url_for,
)
from genomenode.errors import ConfigError
from genomenode.store.node import init_node

DOCS = pathlib.Path(__file__).parent.parent / "docs"


def test_every_setting_is_documented():
    text = (DOCS / "settings.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", text, flags=re.MULTILINE))
    declared = {setting.name for setting in SETTINGS}
    assert declared == documented
    for setting in SETTINGS:
        assert setting.environment_variable in text


def test_environment_overrides_file(tmp_path, monkeypatch):
    init_node(tmp_path / "n", node_id="fi-node", country="FI").close()
    monkeypatch.setenv("GENOMENODE_VARIANTS_CHUNK_SIZE", "512")
    config = load_config(tmp_path / "n")
    assert config.variants_chunk_size == 512
    assert config.node_id == "fi-node"
    assert config.database_url.endswith("genomenode.db")


def test_bad_values_name_the_setting(tmp_path, monkeypatch):
    init_node(tmp_path / "n", node_id="fi-node", country="FI").close()
    monkeypatch.setenv("GENOMENODE_SAMPLES_CHUNK_SIZE", "-3")
    with pytest.raises(ConfigError, match="samples_chunk_size"):
        load_config(tmp_path / "n")


def test_unknown_setting_and_passphrase_in_file_are_rejected(tmp_path):
    init_node(tmp_path / "n", node_id="fi-node", country="FI").close()
    config_file = tmp_path / "n" / "genomenode.yaml"
    original = config_file.read_text()
    config_file.write_text(original + "colour: blue\n")
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        load_config(tmp_path / "n")
    config_file.write_text(original + "key_passphrase: hunter2\n")
    with pytest.raises(ConfigError, match="GENOMENODE_KEY_PASSPHRASE"):
        load_config(tmp_path / "n")


def test_not_a_node(tmp_path):
    with pytest.raises(ConfigError, match="genomenode init"):
        load_config(tmp_path)


def test_public_surface_is_pinned():
    assert sorted(genomenode.__all__) == [
        "DatasetDescription",
        "GenomenodeError",
        "IngestResult",
        "Node",
        "Secret",
        "__version__",
        "discard",
        "ingest",
        "init_node",
        "load_config",
        "open_node",
        "read_dataset_description",
    ]
    for name in genomenode.__all__:
        assert hasattr(genomenode, name)


def test_trusted_issuers_from_file_and_environment(tmp_path, monkeypatch):
    init_node(tmp_path / "n", node_id="fi-node", country="FI").close()
    config_path = tmp_path / "n" / "genomenode.yaml"
    config_path.write_text(
        config_path.read_text()
        + "trusted_brokers:\n"
        + "  - issuer: https://login.example.org/oidc/\n"
        + "    jku: https://login.example.org/oidc/jwk/\n"
        + "    userinfo: https://login.example.org/oidc/userinfo\n"
        + "registered_visa_types: [ResearcherStatus]\n"
    )
    monkeypatch.setenv(
        "GENOMENODE_TRUSTED_VISA_ISSUERS",
        '[{"issuer": "https://rems.example.org/", "jku": "https://rems.example.org/jwk"}]',
    )
    monkeypatch.setenv("GENOMENODE_DEV_IDENTITY_PROVIDER", "yes")
    config = load_config(tmp_path / "n")
    assert config.trusted_brokers == (
        {
            "issuer": "https://login.example.org/oidc/",
            "jku": "https://login.example.org/oidc/jwk",
            "userinfo": "https://login.example.org/oidc/userinfo",
        },
    )
    assert config.trusted_visa_issuers[0]["issuer"] == "https://rems.example.org/"
    assert config.registered_visa_types == ("ResearcherStatus",)
    assert config.dev_identity_provider is True


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TRUSTED_BROKERS", '[{"issuer": "https://a"}]', "needs both issuer and jku"),
        ("TRUSTED_BROKERS", '[{"issuer": "a", "jku": "ftp://a"}]', "http"),
        ("TRUSTED_BROKERS", '[{"issuer": "a", "jku": "https://a", "x": 1}]', "mapping"),
        ("TRUSTED_VISA_ISSUERS", "{not json", "JSON"),
        ("DEV_IDENTITY_PROVIDER", "maybe", "true or false"),
    ],
)
def test_bad_trust_settings_name_the_setting(
    tmp_path, monkeypatch, name, value, message
):
    init_node(tmp_path / "n", node_id="fi-node", country="FI").close()
    monkeypatch.setenv(f"GENOMENODE_{name}", value)
    with pytest.raises(ConfigError, match=f"{name.lower()}.*{message}"):
        load_config(tmp_path / "n")


def test_configured_names_the_settings_given_in_file_or_environment(
    tmp_path, monkeypatch
):
    init_node(tmp_path / "n", node_id="fi-node", country="FI").close()
    assert "public_url" not in load_config(tmp_path / "n").configured
    monkeypatch.setenv("GENOMENODE_PUBLIC_URL", "https://genomes.example.org")
    config = load_config(tmp_path / "n")
    assert {"node_id", "country", "public_url"} <= config.configured
    assert "beacon_environment" not in config.configured


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("127.0.0.1", 8081, "http://localhost:8081"),
        ("0.0.0.0", 9000, "http://localhost:9000"),
        ("::", 9000, "http://localhost:9000"),
        ("192.0.2.7", 8443, "http://192.0.2.7:8443"),
        ("2001:db8::7", 8080, "http://[2001:db8::7]:8080"),
        ("node.example.org", 80, "http://node.example.org:80"),
    ],
)
def test_public_url_for_a_bound_address(host, port, expected):
    assert public_url_for(host, port) == expected


_DEV = "http://127.0.0.1:8081/dev-idp"
_REAL = "https://login.elixir-czech.org/oidc"


def _prod_config(tmp_path, monkeypatch, **settings: str):
    init_node(tmp_path / "n", node_id="fi-node", country="FI").close()
    monkeypatch.setenv("GENOMENODE_BEACON_ENVIRONMENT", "prod")
    for name, value in settings.items():
        monkeypatch.setenv(f"GENOMENODE_{name.upper()}", value)
    return load_config(tmp_path / "n")


@pytest.mark.parametrize("setting", ["trusted_brokers", "trusted_visa_issuers"])
@pytest.mark.parametrize(
    "entry",
    [
        {"issuer": _DEV, "jku": f"{_DEV}/.well-known/jwks.json"},
        # Another issuer string, but keys from a development provider.
        {"issuer": "https://idp.example", "jku": f"{_DEV}/.well-known/jwks.json"},
        # Case and a trailing slash do not hide it.
        {"issuer": "https://n.example/Dev-IdP/", "jku": "https://n.example/k"},
    ],
)
def test_prod_refuses_to_trust_a_development_identity_provider(
    tmp_path, monkeypatch, setting, entry
):
    real = {"issuer": _REAL, "jku": f"{_REAL}/jwk"}
    config = _prod_config(tmp_path, monkeypatch, **{setting: json.dumps([real, entry])})
    with pytest.raises(ConfigError, match=rf"^{setting}: entry 1 .*development"):
        check_production_trust(config)
    # The same settings are allowed outside prod (the demo runs them).
    check_production_trust(config, environment="dev")


def test_prod_trusts_real_brokers_and_refuses_the_dev_provider_itself(
    tmp_path, monkeypatch
):
    real = json.dumps([{"issuer": _REAL, "jku": f"{_REAL}/jwk"}])
    config = _prod_config(
        tmp_path, monkeypatch, trusted_brokers=real, trusted_visa_issuers=real
    )
    check_production_trust(config)
    with pytest.raises(ConfigError, match=r"^dev_identity_provider:"):
        check_production_trust(config, dev_identity_provider=True)
    # A URL merely containing the words is not a development provider.
    assert not is_development_identity_provider("https://dev-idp.example.org/oidc")
    assert not is_development_identity_provider("https://x.example/my-dev-idp/jwk")
    assert is_development_identity_provider("https://x.example/a/dev-idp/userinfo")
