"""cli/audit.py: ``genomenode audit`` (the log itself: tests/access/test_audit.py)."""

from __future__ import annotations

from genomenode.access import committee
from genomenode.store.node import init_node
from tests.access.test_workflow import add_dataset

from .conftest import invoke, invoke_json


def test_verify_checkpoint_and_an_unwritable_out(tmp_path):
    with init_node(tmp_path / "node", node_id="fi-node", country="FI") as node:
        add_dataset(node)
        committee.add_dac_member(
            node.engine, dataset_id="d1", subject="erin", actor="operator:t"
        )
    node_dir = tmp_path / "node"
    assert invoke("audit", "verify", "--node", node_dir).stdout == (
        "Audit log intact: 1 entries verified, no checkpoints yet "
        "(`genomenode audit checkpoint` makes one).\n"
    )
    kept = tmp_path / "kept.jws"
    written = invoke("audit", "checkpoint", "--node", node_dir, "--out", kept)
    assert written.stdout == f"Checkpoint of entry 1 appended to {kept}.\n"
    checked = invoke_json("audit", "verify", "--node", node_dir, "--checkpoint", kept)
    assert checked["intact"] and checked["num_checkpoints"] >= 1
    nowhere = tmp_path / "missing" / "kept.jws"
    failed = invoke(
        "audit", "checkpoint", "--node", node_dir, "--out", nowhere, expect=1
    )
    assert failed.stderr == f"error: {nowhere}: No such file or directory\n"
