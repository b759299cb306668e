"""Genotypes of a dataset in VCF Zarr, with per-variant statistics and a position index.

Conversion from VCF is bio2zarr's (see :mod:`genomenode.ingest.pipeline`). This
module adds what the node's queries need and reads it back:

- per-variant allele and genotype counts (``variant_allele_count`` ...), computed
  chunk by chunk so memory is bounded by one chunk, never by the cohort;
- the row range of each contig, so that a position lookup is a binary search on the
  sorted ``variant_position`` of that contig, never a scan.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import pathlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import zarr

from ..errors import NotFoundError, StoreError
from .genotype_counts import genotype_table, statistics_from_table

__all__ = [
    "STATISTICS",
    "GenotypeStore",
    "contig_ranges",
    "statistics_for_rows",
    "write_statistics",
]

STATISTICS = (
    "variant_allele_count",
    "variant_allele_total",
    "variant_allele_count_hom",
    "variant_allele_count_het",
    "variant_allele_count_hemi",
    "variant_num_called",
    "variant_num_hom_ref",
    "variant_num_het",
    "variant_num_hom_alt",
)


# Variant rows handed to the counting kernel at a time (see statistics_for_rows).
_KERNEL_ROWS = 1_000
# Decoded per-variant chunks a GenotypeStore keeps (each ~10,000 rows of one array).
_CACHED_CHUNKS = 64


def _sample_blocks(num_samples: int, block: int) -> Iterator[slice]:
    for start in range(0, num_samples, block):
        yield slice(start, min(start + block, num_samples))


def statistics_for_rows(vcz_path: str, start: int, stop: int) -> dict[str, np.ndarray]:
    """Statistics of variants ``start:stop``, read one chunk of samples at a time."""
    root: Any = zarr.open_group(vcz_path, mode="r")
    call_genotype = root["call_genotype"]
    num_alleles = root["variant_allele"].shape[1]
    sample_chunk = call_genotype.chunks[1]
    width = num_alleles + 2
    table = np.zeros((stop - start, width, width), dtype=np.int64)
    for samples in _sample_blocks(call_genotype.shape[1], sample_chunk):
        block = call_genotype[start:stop, samples]
        # The kernel's int32/int64 temporaries are ~12 times the int8 block: feed it
        # slices so that memory stays near one stored chunk.
        for first in range(0, len(block), _KERNEL_ROWS):
            rows = block[first : first + _KERNEL_ROWS]
            table[first : first + len(rows)] += genotype_table(rows, num_alleles)
    return statistics_from_table(table)


def write_statistics(
    vcz_path: pathlib.Path, results: list[tuple[int, dict[str, np.ndarray]]]
) -> None:
    """Write per-variant statistics (from :func:`statistics_for_rows`) as arrays."""
    root: Any = zarr.open_group(vcz_path, mode="r+")
    num_variants = root["variant_position"].shape[0]
    variants_chunk = root["variant_position"].chunks[0]
    num_alleles = root["variant_allele"].shape[1]
    for name in STATISTICS:
        two_dimensional = results and results[0][1][name].ndim == 2
        shape = (num_variants, num_alleles) if two_dimensional else (num_variants,)
        chunks = (variants_chunk, num_alleles) if two_dimensional else (variants_chunk,)
        dimensions = ["variants", "alleles"] if two_dimensional else ["variants"]
        array = root.create_array(
            name, shape=shape, chunks=chunks, dtype=np.int32, overwrite=True
        )
        array.attrs["_ARRAY_DIMENSIONS"] = dimensions
        for start, statistics in results:
            values = statistics[name]
            array[start : start + len(values)] = values


def contig_ranges(vcz_path: pathlib.Path) -> dict[str, list[int]]:
    """Row range ``[start, stop)`` of each contig that has variants."""
    root: Any = zarr.open_group(vcz_path, mode="r")
    contig_ids = list(root["contig_id"][:])
    variant_contig = root["variant_contig"][:]
    ranges: dict[str, list[int]] = {}
    if len(variant_contig) == 0:
        return ranges
    starts = np.concatenate([[0], np.flatnonzero(np.diff(variant_contig)) + 1])
    stops = np.concatenate([starts[1:], [len(variant_contig)]])
    for start, stop in zip(starts, stops, strict=True):
        ranges[str(contig_ids[variant_contig[start]])] = [int(start), int(stop)]
    return ranges


@dataclasses.dataclass(frozen=True)
class VariantCounts:
    """Counts of one variant row, as the Beacon and QC code use them."""

    row: int
    contig: str
    position: int
    alleles: tuple[str, ...]
    allele_count: tuple[int, ...]
    allele_total: int
    num_called: int
    num_hom_ref: int
    num_het: int
    num_hom_alt: int


class GenotypeStore:
    """Read access to one dataset's ``genotypes.vcz``.

    Parameters
    ----------
    vcz_path
        The VCF Zarr directory.
    contigs
        Row range of each contig, as :func:`contig_ranges` returns (stored in the
        dataset's ``dataset.json``).
    """

    def __init__(self, vcz_path: pathlib.Path, contigs: dict[str, list[int]]) -> None:
        if (
            not (vcz_path / "zarr.json").exists()
            and not (vcz_path / ".zgroup").exists()
        ):
            raise StoreError(f"{vcz_path}: not a VCF Zarr store")
        self.path = vcz_path
        # zarr's types are exact per access; genotype code reads them as arrays.
        self.root: Any = zarr.open_group(vcz_path, mode="r")
        self.contigs = contigs
        self._longest_reference: dict[str, int] = {}
        self._chunks: collections.OrderedDict[tuple[str, int], np.ndarray] = (
            collections.OrderedDict()
        )

    def _chunk(self, name: str, index: int) -> np.ndarray:
        """One decoded variants-chunk of a per-variant array, from a small LRU.

        A Beacon query reads a few rows; zarr's per-call overhead would dominate,
        so whole chunks are decoded once and then indexed in memory.
        """
        key = (name, index)
        chunk = self._chunks.get(key)
        if chunk is not None:
            self._chunks.move_to_end(key)
            return chunk
        array = self.root[name]
        size = array.chunks[0]
        chunk = np.asarray(array[index * size : (index + 1) * size])
        self._chunks[key] = chunk
        if len(self._chunks) > _CACHED_CHUNKS:
            self._chunks.popitem(last=False)
        return chunk

    def read(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` of the per-variant array ``name`` (chunk-cached)."""
        if stop <= start:
            return np.asarray(self.root[name][0:0])
        size = self.root[name].chunks[0]
        first, last = start // size, (stop - 1) // size
        parts = [self._chunk(name, index) for index in range(first, last + 1)]
        block = parts[0] if len(parts) == 1 else np.concatenate(parts)
        offset = first * size
        return block[start - offset : stop - offset]

    def alleles(self, start: int, stop: int) -> np.ndarray:
        """``variant_allele`` of rows ``start:stop`` (empty strings pad)."""
        return self.read("variant_allele", start, stop)

    def positions(self, start: int, stop: int) -> np.ndarray:
        """1-based ``variant_position`` of rows ``start:stop``."""
        return self._positions[start:stop]

    @functools.cached_property
    def samples(self) -> list[str]:
        return [str(sample) for sample in self.root["sample_id"][:]]

    @functools.cached_property
    def _contig_ids(self) -> list[str]:
        return [str(contig) for contig in self.root["contig_id"][:]]

    @functools.cached_property
    def _positions(self) -> np.ndarray:
        # Positions of all variants: 4 bytes a variant, small next to genotypes.
        return self.root["variant_position"][:]

    def rows_at(self, contig: str, start: int, stop: int | None = None) -> range:
        """Rows whose 1-based POS lies in ``[start, stop)`` (binary search).

        With ``stop`` None, the rows at exactly ``start``.
        """
        if contig not in self.contigs:
            return range(0)
        first, last = self.contigs[contig]
        positions = self._positions[first:last]
        low = int(np.searchsorted(positions, start, side="left"))
        high = int(
            np.searchsorted(
                positions, start if stop is None else stop - 1, side="right"
            )
        )
        return range(first + low, first + high)

    def longest_reference(self, contig: str) -> int:
        """Length of the longest REF allele on ``contig`` (read once, then cached).

        A range query widens its binary search to the left by this much, so that
        deletions starting before the range but reaching into it are found.
        """
        if contig not in self._longest_reference:
            first, last = self.contigs[contig]
            references = self.root["variant_allele"][first:last, 0]
            self._longest_reference[contig] = max(
                (len(str(allele)) for allele in references), default=1
            )
        return self._longest_reference[contig]

    def counts(self, row: int) -> VariantCounts:
        """Stored statistics of one variant row."""
        if not 0 <= row < len(self._positions):
            raise NotFoundError(f"no variant row {row}")
        alleles = tuple(
            str(allele)
            for allele in self.read("variant_allele", row, row + 1)[0]
            if allele
        )
        allele_count = self.read("variant_allele_count", row, row + 1)[0]
        contig_index = int(self.read("variant_contig", row, row + 1)[0])

        def one(name: str) -> int:
            return int(self.read(name, row, row + 1)[0])

        return VariantCounts(
            row=row,
            contig=self._contig_ids[contig_index],
            position=int(self._positions[row]),
            alleles=alleles,
            allele_count=tuple(int(count) for count in allele_count[: len(alleles)]),
            allele_total=one("variant_allele_total"),
            num_called=one("variant_num_called"),
            num_hom_ref=one("variant_num_hom_ref"),
            num_het=one("variant_num_het"),
            num_hom_alt=one("variant_num_hom_alt"),
        )
