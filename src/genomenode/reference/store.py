"""The built reference of a dataset: a small Zarr group beside its genotypes.

``<storage>/datasets/<dataset id>/reference.zarr`` holds, per variant row of the
dataset's VCF Zarr, ALT allele and population, the true counts over the
QC-passing samples (what is released of them is :mod:`.release`'s business):

================================  ========================  =========================
array                             shape                     what
================================  ========================  =========================
``allele_count``                  (variants, alts, pops)    AC
``allele_count_hom``              (variants, alts, pops)    copies in homozygous calls
``allele_count_het``              (variants, alts, pops)    heterozygous carriers
``allele_count_hemi``             (variants, alts, pops)    hemizygous carriers
``allele_number``                 (variants, pops)          AN
``variant_pass``                  (variants,)               QC-passing variant
================================  ========================  =========================

and attributes ``format_version``, ``populations``, ``population_samples``,
``qc`` (whether QC flags were applied) and ``built_at``. A rebuild replaces it
whole (written under a temporary name, then renamed).

A node whose datasets are in an object store, or sealed (``encrypt_at_rest``),
keeps the same Zarr group as objects of its storage instead:
``<dataset prefix>/reference/<version>/`` made current by
``reference/current.json``, every object sealed on a sealed node
(:mod:`genomenode.store.derived`); :func:`reference_location` finds either.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import zarr

from ..errors import StoreError
from ..store.derived import current_objects
from ..store.node import Node

__all__ = [
    "COUNT_ARRAYS",
    "FORMAT_VERSION",
    "REFERENCE_DIRECTORY",
    "REFERENCE_OBJECTS",
    "ReferenceCounts",
    "ReferenceStore",
    "reference_location",
    "reference_path",
]

FORMAT_VERSION = 1
REFERENCE_DIRECTORY = "reference.zarr"
#: The result's name among a dataset's objects (:mod:`genomenode.store.derived`).
REFERENCE_OBJECTS = "reference"
#: The per-allele count arrays, in the order :class:`ReferenceCounts` lists them.
COUNT_ARRAYS = (
    "allele_count",
    "allele_count_hom",
    "allele_count_het",
    "allele_count_hemi",
)


@dataclasses.dataclass(frozen=True)
class ReferenceCounts:
    """True counts of one allele of one variant, by population (int64 arrays)."""

    populations: list[str]
    population_samples: list[int]
    cell_samples: dict[str, int]
    allele_count: np.ndarray
    allele_count_hom: np.ndarray
    allele_count_het: np.ndarray
    allele_count_hemi: np.ndarray
    allele_number: np.ndarray


class ReferenceStore:
    """Read access to one dataset's ``reference.zarr`` (thread-safe reads).

    ``location`` is the local directory, or a zarr store over the node's
    objects (:func:`reference_location`), described by ``where`` in errors.
    """

    def __init__(self, location: pathlib.Path | Any, where: str | None = None) -> None:
        if isinstance(location, pathlib.Path):
            if not (location / "zarr.json").exists():
                raise StoreError(f"{location}: no reference built")
            where = str(location)
        self.where = where or str(location)
        #: The local directory, or None: objects of the node's storage.
        self.path: pathlib.Path | None = (
            location if isinstance(location, pathlib.Path) else None
        )
        try:
            self.root: Any = zarr.open_group(location, mode="r")
        except (FileNotFoundError, zarr.errors.GroupNotFoundError):
            raise StoreError(f"{self.where}: no reference built") from None
        attributes: dict[str, Any] = dict(self.root.attrs)
        version = attributes.get("format_version")
        if version != FORMAT_VERSION:
            raise StoreError(
                f"{self.where}: reference format_version {version!r}, this genomenode "
                f"reads {FORMAT_VERSION}; run `genomenode reference build` again"
            )
        self.populations: list[str] = list(attributes["populations"])
        self.population_samples: list[int] = [
            int(value) for value in attributes["population_samples"]
        ]
        self.cell_samples: dict[str, int] = {
            str(name): int(value)
            for name, value in dict(attributes.get("cell_samples", {})).items()
        }
        self.qc: bool = bool(attributes.get("qc"))
        self.built_at: str = str(attributes.get("built_at", ""))
        self._lock = threading.Lock()
        self._chunks: dict[tuple[str, int], np.ndarray] = {}
        self._arrays: dict[str, Any] = {}

    @property
    def num_variants(self) -> int:
        return int(self.array("variant_pass").shape[0])

    @functools.cached_property
    def variant_pass(self) -> np.ndarray:
        return np.asarray(self.array("variant_pass")[:], dtype=bool)

    def array(self, name: str) -> Any:
        """The zarr array ``name``, opened once (a group lookup costs ~1 ms)."""
        array = self._arrays.get(name)
        if array is None:
            array = self._arrays[name] = self.root[name]
        return array

    def _row(self, name: str, row: int) -> np.ndarray:
        array = self.array(name)
        size = array.chunks[0]
        key = (name, row // size)
        with self._lock:
            chunk = self._chunks.get(key)
        if chunk is None:
            start = key[1] * size
            chunk = np.asarray(array[start : start + size])
            with self._lock:
                if len(self._chunks) > 64:
                    self._chunks.clear()  # a few MB at most; simpler than an LRU
                self._chunks[key] = chunk
        return chunk[row % size]

    def counts(self, row: int, allele: int) -> ReferenceCounts | None:
        """Counts of ALT ``allele`` (1 = first ALT) of variant ``row``; None when
        the variant failed QC or the row or allele is not in the reference."""
        if not 0 <= row < self.num_variants or not self.variant_pass[row]:
            return None
        if not 1 <= allele <= self.array("allele_count").shape[1]:
            return None
        values = {
            name: self._row(name, row)[allele - 1].astype(np.int64)
            for name in COUNT_ARRAYS
        }
        return ReferenceCounts(
            populations=self.populations,
            population_samples=self.population_samples,
            cell_samples=self.cell_samples,
            allele_number=self._row("allele_number", row).astype(np.int64),
            **values,
        )

    def block(self, start: int, stop: int) -> dict[str, np.ndarray]:
        """Every array of rows ``start:stop`` (for exports, one chunk at a time)."""
        names = (*COUNT_ARRAYS, "allele_number", "variant_pass")
        return {name: np.asarray(self.array(name)[start:stop]) for name in names}


def reference_path(dataset_directory: pathlib.Path) -> pathlib.Path:
    """Where a dataset's reference lives."""
    return dataset_directory / REFERENCE_DIRECTORY


def reference_location(
    node: Node, dataset_id: str, fingerprint: str
) -> tuple[str, Callable[[], ReferenceStore]] | None:
    """Where a dataset's built reference is, or None when none was built.

    Returns a token that changes with each build (to know when a kept
    :class:`ReferenceStore` is stale) and how to open the build: the current
    objects (:mod:`genomenode.store.derived`) if any, else the local directory.
    """
    objects = current_objects(node, dataset_id, fingerprint, REFERENCE_OBJECTS)
    if objects is not None:
        return objects.version, lambda: ReferenceStore(
            objects.zarr_store(), objects.where
        )
    path = reference_path(node.datasets_dir / dataset_id)
    try:
        built = (path / "zarr.json").stat().st_mtime
    except FileNotFoundError:
        return None
    return f"{path}@{built}", lambda: ReferenceStore(path)
