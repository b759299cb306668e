"""One ingest run: the dataset's staging directory and the steps it has finished.

The state is ``ingest.json`` in the staging directory, written atomically after
each step (:meth:`IngestRun.finish`), which is what makes a run resumable.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

from ..dataset import DatasetDescription
from ..store.node import Node, write_json_atomic
from .workers import Reporter, checkpoint

__all__ = ["IngestRun", "input_files"]


@dataclasses.dataclass
class IngestRun:
    node: Node
    description: DatasetDescription
    work: pathlib.Path
    state: dict[str, Any]
    reporter: Reporter
    #: A ``distributed.Client`` when partitions run on a Dask cluster.
    cluster: Any = None

    @property
    def publish_dir(self) -> pathlib.Path:
        return self.work / "publish"

    @property
    def vcz(self) -> pathlib.Path:
        return self.publish_dir / "genotypes.vcz"

    def done(self, step: str) -> bool:
        return step in self.state["done"]

    def finish(self, step: str, result: Any = True) -> None:
        self.state["done"][step] = result
        write_json_atomic(self.work / "ingest.json", self.state)
        checkpoint(f"after:{step}")


def input_files(description: DatasetDescription) -> list[tuple[str, pathlib.Path]]:
    """(role, path) of every input file that is stored, encrypted, with the dataset."""
    files = [("description", description.source)]
    # A VCF Zarr directory is stored as one archive under its own role: htsget
    # serves slices of a VCF, not of it.
    files += [
        ("genotypes-vcz" if path.is_dir() else "genotypes", path)
        for path in description.genotypes
    ]
    for path in description.genotypes:
        for suffix in (".tbi", ".csi"):
            index = path.with_name(path.name + suffix)
            if index.exists():
                files.append(("genotypes-index", index))
    if description.clinical is not None:
        clinical = description.clinical.path
        if clinical.is_dir():
            files += [("clinical", path) for path in sorted(clinical.glob("*.json"))]
        else:
            files.append(("clinical", clinical))
    if description.genes is not None:
        files.append(("genes", description.genes))
    for alignment in description.alignments:
        files.append(("alignments", alignment.path))
        if alignment.index is not None:
            files.append(("alignments-index", alignment.index))
    return files
