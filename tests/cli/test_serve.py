"""cli/serve.py and index.py: what ``genomenode serve`` says it serves; ``GET /``."""

from __future__ import annotations

import json

import pytest
import uvicorn
from fastapi.testclient import TestClient

from genomenode.ingest.pipeline import ingest
from genomenode.store.node import init_node
from tests.conftest import write_small_cohort

from .conftest import invoke


@pytest.fixture
def node_dir(tmp_path, monkeypatch):
    # What serve exports for its workers is undone after each test (setenv
    # records the variable, so that the value serve sets is removed after).
    for name in (
        "GENOMENODE_PUBLIC_URL",
        "GENOMENODE_DEV_IDENTITY_PROVIDER",
        "GENOMENODE_NODE",
    ):
        monkeypatch.setenv(name, "-")
        monkeypatch.delenv(name)
    with init_node(tmp_path / "node", node_id="fi-node", country="FI") as node:
        ingest(node, write_small_cohort(tmp_path / "c", num_samples=4, num_variants=8))
    return tmp_path / "node"


@pytest.fixture
def started(monkeypatch):
    """uvicorn.run replaced: what it was asked to serve."""
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append(kwargs))
    return calls


def test_serve_prints_urls_node_datasets_and_loud_warnings(
    node_dir, started, monkeypatch
):
    monkeypatch.setenv("GENOMENODE_DEV_IDENTITY_PROVIDER", "true")
    result = invoke("serve", "--node", node_dir, "--port", "8181")
    lines = result.stdout.splitlines()
    assert lines[0] == "Serving node fi-node (FI) on 127.0.0.1:8181:"
    for label, path in (
        ("Beacon v2", "/api"),
        ("access (DAC)", "/access"),
        ("htsget", "/htsget"),
        ("DRS", "/ga4gh/drs/v1"),
        ("API docs", "/api/docs"),
        ("dev identity provider", "/dev-idp"),
    ):
        assert any(
            line.split() == [*label.split(), f"http://localhost:8181{path}"]
            for line in lines
        ), label
    assert "Datasets: small (CONTROLLED)" in lines
    assert "WARNING: the development identity provider is ON" in result.stderr
    assert "issues passports to anyone" in result.stderr
    assert "WARNING: public_url is not set" in result.stderr
    assert started and started[0]["port"] == 8181


def test_serve_json_is_one_line_describing_what_is_served(node_dir, started):
    result = invoke("serve", "--node", node_dir, "--port", "8182", "--json")
    (line,) = result.stdout.splitlines()
    served = json.loads(line)
    assert served["node_id"] == "fi-node"
    assert (
        served["endpoints"]["service_info"] == "http://localhost:8182/api/service-info"
    )
    assert "dev_identity_provider" not in served["endpoints"]
    assert served["datasets"] == [{"id": "small", "security_level": "CONTROLLED"}]
    assert served["warnings"] == [
        "public_url is not set: URLs are published under http://localhost:8182; "
        "set public_url to the address clients reach this node at"
    ]


def test_the_node_answers_its_index_at_the_root(node_dir, started, monkeypatch):
    from genomenode.app import app_from_environment

    monkeypatch.setenv("GENOMENODE_DEV_IDENTITY_PROVIDER", "true")
    invoke("serve", "--node", node_dir, "--port", "8183")
    with TestClient(app_from_environment()) as client:
        index = client.get("/")
        assert index.status_code == 200
        document = index.json()
        assert document["id"] == "fi-node" and document["software"] == "genomenode"
        endpoints = document["endpoints"]
        assert endpoints["beacon"] == "http://localhost:8183/api"
        assert endpoints["dev_identity_provider"] == "http://localhost:8183/dev-idp"
        # Each endpoint it names is served.
        assert client.get("/api/service-info").status_code == 200
        assert client.get("/.well-known/jwks.json").status_code == 200
        assert client.get("/api/openapi.json").status_code == 200
