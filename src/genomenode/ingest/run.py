"""One ingest run: the dataset's staging directory and the steps it has finished.

The state is ``ingest.json`` in the staging directory, written atomically after
each step (:meth:`IngestRun.finish`), which is what makes a run resumable.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pathlib
import threading
from typing import Any

from ..dataset import DatasetDescription
from ..errors import Stopped
from ..store.node import Node
from ..store.objects import write_json_atomic
from .workers import Reporter, checkpoint

__all__ = ["IngestRun", "file_sha256", "fingerprint", "input_files"]


@dataclasses.dataclass
class IngestRun:
    node: Node
    description: DatasetDescription
    work: pathlib.Path
    state: dict[str, Any]
    reporter: Reporter
    #: A ``distributed.Client`` when partitions run on a Dask cluster.
    cluster: Any = None
    #: The clinical records, when this run's ``clinical`` step read them.
    clinical_records: list[Any] | None = None
    # Steps run in two threads (pipeline._run_steps): the state is changed and
    # written under this condition's lock, and a step waits on it for another.
    _changed: threading.Condition = dataclasses.field(
        default_factory=threading.Condition, repr=False
    )

    @property
    def publish_dir(self) -> pathlib.Path:
        return self.work / "publish"

    @property
    def vcz(self) -> pathlib.Path:
        return self.publish_dir / "genotypes.vcz"

    @property
    def sites_only(self) -> bool:
        """The VCF has no sample columns: counts come from INFO
        (store/site_counts.py)."""
        return bool(self.state["done"]["validate"]["num_samples"] == 0)

    @property
    def stopping(self) -> threading.Event:
        """Set when the run is failing: steps running at once stop at their next
        partition or block (the reporter's :meth:`~Reporter.step` raises)."""
        return self.reporter.stopping

    def check_stopping(self) -> None:
        """Raise Stopped if the run is failing."""
        if self.stopping.is_set():
            raise Stopped("stopped: another step of this ingest failed")

    def done(self, step: str) -> bool:
        return step in self.state["done"]

    def finish(self, step: str, result: Any = True) -> None:
        self.keep(step, result)
        checkpoint(f"after:{step}")

    def keep(self, key: str, value: Any, *, within: str | None = None) -> None:
        """Record ``value`` under ``key`` of the finished work (of its ``within``
        group) and write the state, without finishing a step."""
        with self._changed:
            done = self.state["done"]
            if within is not None:
                done = done.setdefault(within, {})
            done[key] = value
            write_json_atomic(self.work / "ingest.json", self.state)
            self._changed.notify_all()

    def wait_for(self, step: str) -> None:
        """Return once ``step`` is done (in another thread); raise Stopped if the
        run is failing first."""
        with self._changed:
            while step not in self.state["done"]:
                self.check_stopping()
                self._changed.wait(timeout=0.5)


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


def file_sha256(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _tree_sha256(directory: pathlib.Path) -> str:
    """A hash of every file's relative path and content (a VCF Zarr directory)."""
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            name = path.relative_to(directory).as_posix()
            digest.update(f"{name}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def fingerprint(description: DatasetDescription) -> str:
    """A hash of every input's name and content: same inputs, same dataset."""
    digest = hashlib.sha256()
    for role, path in input_files(description):
        content = _tree_sha256(path) if path.is_dir() else file_sha256(path)
        digest.update(f"{role}\0{path.name}\0{content}\n".encode())
    return digest.hexdigest()
