"""``genomenode privacy audit``: per dataset and kind of caller, what is shown."""

from __future__ import annotations

from genomenode.ingest.pipeline import ingest
from genomenode.node import init_node

from ..conftest import write_dataset_yaml, write_small_cohort
from .conftest import invoke, invoke_json


def test_privacy_audit(tmp_path):
    write_small_cohort(tmp_path / "cohort", dataset_id="reg")
    description = write_dataset_yaml(
        tmp_path / "cohort", id="reg", security_level="REGISTERED"
    )
    with init_node(tmp_path / "node", node_id="fi-node", country="FI") as node:
        ingest(node, description)
    audit = invoke_json("privacy", "audit", "--node", tmp_path / "node")
    assert audit["disclosure_enabled"] is True
    (dataset,) = audit["datasets"]
    callers = dataset["callers"]
    assert dataset["security_level"] == "REGISTERED"
    assert callers["anonymous"]["granularity"] is None
    assert callers["registered"]["granularity"] == "count"
    assert callers["registered"]["budget"]["answers_about_people"] == 20
    assert callers["registered"]["rare_allele_policy"]["min_allele_count"] == 10
    assert callers["granted"]["granularity"] == "record"
    text = invoke("privacy", "audit", "--node", tmp_path / "node").stdout
    assert "disclosure control: on" in text
    assert "reg (REGISTERED)" in text

    config = tmp_path / "node" / "genomenode.yaml"
    config.write_text(config.read_text() + "disclosure_enabled: false\n")
    off = invoke_json("privacy", "audit", "--node", tmp_path / "node")
    assert off["disclosure_enabled"] is False
    assert "OFF" in off["datasets"][0]["callers"]["registered"]["learns"]
