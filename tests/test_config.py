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
