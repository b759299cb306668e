"""What an ingest would do, found without writing: ``genomenode ingest --dry-run``."""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any

from ..dataset import read_dataset_description
from ..store.models import STATUS_PUBLISHED, Dataset
from ..store.node import Node
from .check import check_inputs
from .pipeline import STAGING_FORMAT_VERSION, STEPS
from .run import fingerprint

__all__ = ["IngestPlan", "plan_ingest"]


@dataclasses.dataclass(frozen=True)
class IngestPlan:
    """What ``ingest`` would do with a dataset.yaml on a node.

    ``action`` is ``"publish"`` (a new dataset), ``"resume"`` (an interrupted
    ingest of the same inputs is staged; ``done_steps`` are kept),
    ``"unchanged"`` (already published with the same content) or ``"refuse"``
    (the id is published with other content; ``reason`` says so).
    """

    dataset_id: str
    action: str
    security_level: str
    num_samples: int | None = None
    num_clinical_records: int | None = None
    contigs: tuple[str, ...] = ()
    samples_without_clinical: int | None = None
    num_alignments: int = 0
    done_steps: tuple[str, ...] = ()
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "contigs": list(self.contigs)}


def plan_ingest(node: Node, dataset_yaml: str | pathlib.Path) -> IngestPlan:
    """Check ``dataset_yaml`` and its inputs as the ingest's first step does, and
    say what the ingest would do on ``node``; nothing is written.

    The variant records are not read (the ingest checks them after converting).

    Raises
    ------
    InputError
        A subclass naming the file, line and field of the first problem found.
    """
    description = read_dataset_description(dataset_yaml)
    content = fingerprint(description)
    with node.session() as session:
        row = session.get(Dataset, description.id)
    published = row is not None and row.status == STATUS_PUBLISHED
    if published and row is not None:
        same = row.fingerprint == content
        return IngestPlan(
            dataset_id=description.id,
            action="unchanged" if same else "refuse",
            security_level=row.security_level,
            num_samples=row.num_samples,
            reason=None
            if same
            else (
                f"dataset {description.id!r} is already published with different "
                "content; give the new version another id or remove the published one"
            ),
        )
    checked = check_inputs(description)
    done = _staged_steps(node.staging_dir / description.id / "ingest.json", content)
    return IngestPlan(
        dataset_id=description.id,
        action="resume" if done else "publish",
        security_level=description.security_level,
        num_samples=len(checked.header.samples),
        num_clinical_records=checked.num_clinical_records,
        contigs=checked.header.contigs,
        samples_without_clinical=len(checked.samples_without_clinical),
        num_alignments=len(description.alignments),
        done_steps=done,
    )


def _staged_steps(state_path: pathlib.Path, content: str) -> tuple[str, ...]:
    """The finished steps of a staged ingest of the same inputs, if any."""
    try:
        state = json.loads(state_path.read_text())
    except (OSError, ValueError):
        return ()
    if (
        state.get("format_version") != STAGING_FORMAT_VERSION
        or state.get("fingerprint") != content
    ):
        return ()
    return tuple(step for step in STEPS if step in state.get("done", {}))
