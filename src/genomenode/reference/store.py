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
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
import threading
from typing import Any

import numpy as np
import zarr

from ..errors import StoreError

__all__ = [
    "COUNT_ARRAYS",
    "FORMAT_VERSION",
    "REFERENCE_DIRECTORY",
    "ReferenceCounts",
    "ReferenceStore",
    "reference_path",
]

FORMAT_VERSION = 1
REFERENCE_DIRECTORY = "reference.zarr"
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
    """Read access to one dataset's ``reference.zarr`` (thread-safe reads)."""

    def __init__(self, path: pathlib.Path) -> None:
        if not (path / "zarr.json").exists():
            raise StoreError(f"{path}: no reference built")
        self.path = path
        self.root: Any = zarr.open_group(path, mode="r")
        attributes: dict[str, Any] = dict(self.root.attrs)
        version = attributes.get("format_version")
        if version != FORMAT_VERSION:
            raise StoreError(
                f"{path}: reference format_version {version!r}, this genomenode "
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
