"""ingest/plan.py: what an ingest would do, found without writing."""

from __future__ import annotations

import pytest

from genomenode.ingest import pipeline
from genomenode.ingest.pipeline import ingest
from genomenode.ingest.plan import plan_ingest
from tests.conftest import write_dataset_yaml, write_small_cohort


def _files(root):
    return sorted(path for path in root.rglob("*") if path.is_file())


def test_the_plan_follows_the_dataset_through_its_ingest(
    sqlite_node, tmp_path, monkeypatch
):
    node = sqlite_node
    description = write_small_cohort(tmp_path / "c", num_samples=6, num_variants=20)
    before = _files(node.config.node_dir)

    planned = plan_ingest(node, description)
    assert (planned.action, planned.num_samples, planned.contigs) == (
        "publish",
        6,
        ("1", "2"),
    )
    assert planned.num_clinical_records == 6 and planned.samples_without_clinical == 0
    assert _files(node.config.node_dir) == before  # nothing written

    def stop(run):
        raise RuntimeError("stopped")

    with monkeypatch.context() as patch:
        patch.setitem(pipeline._STEP_FUNCTIONS, "encrypt", stop)
        with pytest.raises(RuntimeError):
            ingest(node, description)
    resumed = plan_ingest(node, description)
    assert resumed.action == "resume"
    # The conversion beside the failed encryption stops where it was: the plan
    # lists what was done, in the pipeline's order.
    done = resumed.done_steps
    assert done[:3] == ("validate", "index", "index_alignments")
    assert "clinical" in done and "encrypt" not in done
    assert list(done) == [step for step in pipeline.STEPS if step in done]

    ingest(node, description)
    assert plan_ingest(node, description).action == "unchanged"
    write_dataset_yaml(tmp_path / "c", id="small", name="Other")
    refused = plan_ingest(node, description)
    assert refused.action == "refuse"
    assert "already published with different content" in refused.reason
