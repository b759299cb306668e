"""cli/network.py: what ``genomenode network serve`` says it serves."""

from __future__ import annotations

import json

import uvicorn

from .conftest import invoke

NETWORK = """\
format_version: 1
network_id: demo
public_url: http://127.0.0.1:9000
nodes:
  - {id: fi-node, country: FI, url: http://127.0.0.1:8081}
  - {id: it-node, country: IT, url: http://127.0.0.1:8082}
"""


def test_network_serve_prints_urls_nodes_and_warnings(tmp_path, monkeypatch):
    monkeypatch.delenv("GENOMENODE_NETWORK_OPERATOR_TOKEN", raising=False)
    monkeypatch.setenv("GENOMENODE_NETWORK", "-")  # serve sets it; undone after
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append(kwargs))
    (tmp_path / "NETWORK.yaml").write_text(NETWORK)

    text = invoke("network", "serve", tmp_path / "NETWORK.yaml")
    assert text.stdout.splitlines()[0] == "Serving network demo on 127.0.0.1:8090:"
    assert "http://127.0.0.1:9000/api" in text.stdout
    assert "Nodes: fi-node http://127.0.0.1:8081, it-node http://127.0.0.1:8082" in (
        text.stdout
    )
    assert "WARNING: no operator_token" in text.stderr

    monkeypatch.setenv("GENOMENODE_NETWORK_OPERATOR_TOKEN", "x" * 40)
    line = invoke("network", "serve", tmp_path / "NETWORK.yaml", "--json").stdout
    served = json.loads(line)
    assert served["network_id"] == "demo"
    assert (
        served["endpoints"]["catalogue"] == "http://127.0.0.1:9000/catalogue/datasets"
    )
    assert [node["id"] for node in served["nodes"]] == ["fi-node", "it-node"]
    assert served["warnings"] == ["environment is dev, not prod"]
    assert len(calls) == 2


def test_a_bad_network_file_is_one_line(tmp_path):
    bad = invoke("network", "serve", tmp_path / "missing.yaml", expect=1)
    assert bad.stderr.startswith("error: ") and "cannot read" in bad.stderr
