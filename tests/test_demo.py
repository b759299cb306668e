"""``make demo`` end to end on a small cohort: ingest, then the access workflow."""

from __future__ import annotations

import re

from genomenode.access import workflow
from genomenode.demo import DEMO_RESEARCHER, run_demo
from genomenode.node import open_node


def test_the_demo_applies_is_approved_and_then_sees_carriers(tmp_path, capsys):
    run_demo(tmp_path, samples=200, length=300_000)
    first = capsys.readouterr().out
    assert "anonymous caller" in first and "dataset not visible" in first
    assert re.search(r"Application 1 submitted; DUO match: approve", first)
    carriers = re.search(r"granted fi-sim-7: (\d+) carriers", first)
    assert carriers is not None and int(carriers.group(1)) > 0
    assert "intact" in first
    # Run again: the grant is in force, so no second application.
    run_demo(tmp_path, samples=200, length=300_000)
    second = capsys.readouterr().out
    assert "submitted" not in second
    assert f"granted fi-sim-7: {carriers.group(1)} carriers" in second
    with open_node(tmp_path / "fi-node") as node:
        applications = workflow.list_applications(node.engine, as_operator=True)
        assert [item.applicant for item in applications] == [DEMO_RESEARCHER]
        assert applications[0].state == "approved"
