"""cli/nodes.py: ``genomenode init``."""

from __future__ import annotations

from .conftest import invoke, invoke_json


def test_init_prints_and_answers_json(tmp_path):
    text = invoke("init", tmp_path / "fi", "--node-id", "fi-node", "--country", "FI")
    assert text.stdout == f"Initialised node fi-node (FI) in {tmp_path / 'fi'}\n"
    result = invoke_json(
        "init", tmp_path / "it", "--node-id", "it-node", "--country", "IT"
    )
    assert result["node_id"] == "it-node" and result["country"] == "IT"
    assert result["database"].startswith("sqlite:///")
    assert (tmp_path / "it" / "keys" / "node.pub").exists()


def test_init_refuses_a_node_directory_in_one_line(tmp_path):
    invoke("init", tmp_path / "fi", "--node-id", "fi-node", "--country", "FI")
    again = invoke(
        "init", tmp_path / "fi", "--node-id", "fi-node", "--country", "FI", expect=1
    )
    assert again.stderr == (
        f"error: {tmp_path / 'fi'} is already a genomenode node; "
        "choose a new or empty directory\n"
    )
