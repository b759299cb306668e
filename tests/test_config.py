"""Settings: declared once, documented, read from file and environment."""

from __future__ import annotations

import pathlib
import re

import pytest

import genomenode
from genomenode.config import SETTINGS, load_config
from genomenode.errors import ConfigError
from genomenode.node import init_node

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
