"""Genotypes of a dataset in VCF Zarr, with per-variant statistics and a position index.

Conversion from VCF is bio2zarr's (see :mod:`genomenode.ingest.pipeline`). This
module adds what the node's queries need and reads it back:

- per-variant allele and genotype counts (``variant_allele_count`` ...), computed
  block by block so memory is bounded by one block of rows, never by the cohort;
- the row range of each contig, so that a position lookup is a binary search on the
  sorted ``variant_position`` of that contig, never a scan;
- a copy of ``call_genotype`` chunked by variant (``call_genotype_by_variant``), so
  that one variant's calls for all samples are one small chunk to decode, never a
  column of ``variants_chunk_size`` × ``samples_chunk_size`` chunks.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import pathlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numcodecs
import numpy as np
import zarr

from ..errors import NotFoundError, StoreError
from .genotype_counts import genotype_table, statistics_from_table
from .population_counts import (
    CarrierCalls,
    PopulationCounts,
    carrier_calls,
    population_counts,
)

__all__ = [
    "BY_VARIANT",
    "NOT_VARIANTS",
    "STATISTICS",
    "GenotypeStore",
    "by_variant_chunk_length",
    "contig_ranges",
    "create_genotypes_by_variant",
    "statistics_for_rows",
    "write_statistics",
]

# call_genotype again, chunked (a few dozen variants) x all samples x ploidy.
BY_VARIANT = "call_genotype_by_variant"

#: ALT alleles that describe no variant: ``*`` (the allele is missing because of an
#: overlapping deletion) and gVCF's ``<*>`` / ``<NON_REF>`` (any other allele). They
#: are kept in the store (their calls count in AN) but are not Beacon variants: no
#: query finds them, no id fetches them (Beacon's ``alternateBases`` cannot name
#: them either).
NOT_VARIANTS: frozenset[str] = frozenset({"*", "<*>", "<NON_REF>"})

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
# Most bytes of call_genotype a statistics task holds: one block of 10,000 variants
# for up to 13,000 diploid samples, like bio2zarr's encode buffer. Larger cohorts
# read their block in slabs, decoding each stored chunk once per slab.
_SLAB_BYTES = 256 * 2**20
# Memory for decoded per-variant chunks (alleles, lengths, statistics) per store:
# random single-variant queries touch every chunk of the arrays they read, and a
# miss costs ~1.5 ms (a 10,000-row chunk of strings), more than a whole query.
_CACHED_CHUNK_BYTES = 256 * 2**20
# Longest chunk of call_genotype_by_variant: 64 variants of 10,000 diploid samples
# are 1.3 MB, decoded in well under a millisecond. A one-variant read decodes a
# whole chunk, so chunks are bounded in bytes too: at 100,000 samples 5 variants
# (1 MB), not 50 (10 MB, 5 ms to decode, and the CPU caches flushed for the next
# query).
_BY_VARIANT_MAX_ROWS = 64
_BY_VARIANT_MAX_BYTES = _BY_VARIANT_MAX_ROWS * 10_000 * 2
# Bytes of decoded call_genotype_by_variant chunks a GenotypeStore keeps.
_CACHED_GENOTYPE_BYTES = 64 * 2**20
# Read latency matters more than size here: lz4 without shuffle decodes a chunk of
# 64 x 10,000 diploid calls 4-5 times faster than with bit-shuffle or zstd, for
# twice their size (measurements in docs/store-format.md).
_BY_VARIANT_COMPRESSOR = numcodecs.Blosc(
    cname="lz4", clevel=5, shuffle=numcodecs.Blosc.NOSHUFFLE
)


def _sample_blocks(num_samples: int, block: int) -> Iterator[slice]:
    for start in range(0, num_samples, block):
        yield slice(start, min(start + block, num_samples))


def by_variant_chunk_length(variants_chunk_size: int, row_bytes: int) -> int:
    """Variants in a chunk of ``call_genotype_by_variant``.

    The largest divisor of ``variants_chunk_size`` up to 64 variants and up to
    1.28 MB of calls (``row_bytes`` a variant: samples × ploidy): each statistics
    task owns one block of ``variants_chunk_size`` rows and so writes whole chunks
    that no other task touches.
    """
    most = min(
        _BY_VARIANT_MAX_ROWS,
        variants_chunk_size,
        max(1, _BY_VARIANT_MAX_BYTES // max(1, row_bytes)),
    )
    return max(
        length for length in range(1, most + 1) if variants_chunk_size % length == 0
    )


def create_genotypes_by_variant(
    vcz_path: pathlib.Path, variants_chunk_size: int
) -> None:
    """Create the empty ``call_genotype_by_variant`` array (replacing any).

    Statistics tasks (:func:`statistics_for_rows`) then fill it block by block.
    """
    root: Any = zarr.open_group(vcz_path, mode="r+")
    call_genotype = root["call_genotype"]
    _num_variants, num_samples, ploidy = call_genotype.shape
    array = root.create_array(
        BY_VARIANT,
        shape=call_genotype.shape,
        chunks=(
            by_variant_chunk_length(variants_chunk_size, num_samples * ploidy),
            num_samples,
            ploidy,
        ),
        dtype=np.int8,
        # A chunk of missing calls only (-1) is not written at all.
        fill_value=-1,
        compressors=_BY_VARIANT_COMPRESSOR,
        overwrite=True,
    )
    array.attrs["_ARRAY_DIMENSIONS"] = ["variants", "samples", "ploidy"]


def _plain_chunks(array: Any) -> bool:
    """Whether the array's chunks are Zarr v2 files of compressed C-order bytes."""
    metadata = array.metadata
    return (
        getattr(metadata, "zarr_format", None) == 2
        and not metadata.filters
        and metadata.order == "C"
        and metadata.compressor is not None
    )


def _chunk_path(vcz_path: pathlib.Path, array: Any, index: int) -> pathlib.Path:
    """The file of chunk ``index`` (along variants) of a variants-only-chunked array."""
    key = array.metadata.dimension_separator.join([str(index), "0", "0"])
    return vcz_path / BY_VARIANT / key


def _write_genotype_chunks(
    vcz_path: pathlib.Path, array: Any, start: int, rows: np.ndarray
) -> None:
    """Write ``rows`` (whole chunks from ``start``) into ``call_genotype_by_variant``.

    zarr's write path spends ~1.5 ms a chunk where encoding takes ~0.1 ms; for a
    copy of every genotype that is most of its cost, so chunks are encoded and
    written here, as zarr would (edge chunk padded with the fill value, chunks of
    fill only not written).
    """
    if not _plain_chunks(array):
        array[start : start + len(rows)] = rows
        return
    length = array.chunks[0]
    codec = array.metadata.compressor
    for first in range(0, len(rows), length):
        chunk = rows[first : first + length]
        if (chunk == -1).all():
            continue
        if len(chunk) < length:
            padding = np.full((length - len(chunk), *chunk.shape[1:]), -1, np.int8)
            chunk = np.concatenate([chunk, padding])
        path = _chunk_path(vcz_path, array, (start + first) // length)
        path.write_bytes(codec.encode(np.ascontiguousarray(chunk)))


def statistics_for_rows(vcz_path: str, start: int, stop: int) -> dict[str, np.ndarray]:
    """Statistics of variants ``start:stop``; copies their calls to ``BY_VARIANT``.

    ``start:stop`` must be whole chunks of ``call_genotype_by_variant`` (one block
    of ``variants_chunk_size`` rows), so that concurrent tasks never write the same
    chunk. Memory is at most ``_SLAB_BYTES`` of genotypes plus the kernel's
    temporaries for about one stored chunk.
    """
    root: Any = zarr.open_group(vcz_path, mode="r+")
    call_genotype = root["call_genotype"]
    by_variant = root[BY_VARIANT]
    length = by_variant.chunks[0]
    if start % length or (stop % length and stop != call_genotype.shape[0]):
        raise ValueError(f"rows {start}:{stop} are not whole chunks of {length}")
    num_alleles = root["variant_allele"].shape[1]
    _num_variants, num_samples, ploidy = call_genotype.shape
    sample_chunk = call_genotype.chunks[1]
    width = num_alleles + 2
    table = np.zeros((stop - start, width, width), dtype=np.int64)
    # Slabs of whole copy chunks, all samples: a block that fits is one slab, and
    # each stored chunk is decoded once for both the kernel and the copy.
    slab_rows = max(1, _SLAB_BYTES // (num_samples * ploidy * length)) * length
    for slab_start in range(start, stop, slab_rows):
        slab_stop = min(slab_start + slab_rows, stop)
        slab = np.empty((slab_stop - slab_start, num_samples, ploidy), np.int8)
        for samples in _sample_blocks(num_samples, sample_chunk):
            # One stored chunk's worth, contiguous: the kernel runs faster on it
            # than on a strided view of the slab.
            piece = call_genotype[slab_start:slab_stop, samples]
            slab[:, samples] = piece
            # The kernel's int32/int64 temporaries are ~12 times its int8 input.
            for first in range(0, len(piece), _KERNEL_ROWS):
                rows = piece[first : first + _KERNEL_ROWS]
                low = slab_start - start + first
                table[low : low + len(rows)] += genotype_table(rows, num_alleles)
        _write_genotype_chunks(pathlib.Path(vcz_path), by_variant, slab_start, slab)
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


def _footprint(chunk: np.ndarray) -> int:
    """Bytes a decoded chunk holds; strings (object arrays) count ~64 B each."""
    if chunk.dtype == object:
        return chunk.size * 64
    return chunk.nbytes


class GenotypeStore:
    """Read access to one dataset's ``genotypes.vcz``.

    Parameters
    ----------
    vcz_path
        The VCF Zarr directory (with ``store``: where it is, for messages).
    contigs
        Row range of each contig, as :func:`contig_ranges` returns (stored in the
        dataset's ``dataset.json``).
    store
        A zarr store to read instead of the directory: an object store, or a
        sealed one (:mod:`genomenode.store.sealed`); see
        :meth:`genomenode.store.node.Node.dataset_zarr`.
    read_object
        With ``store``: the plaintext of one object by its key in the store (None
        if absent), for the chunks this class decodes itself.
    """

    def __init__(
        self,
        vcz_path: pathlib.Path | str,
        contigs: dict[str, list[int]],
        *,
        store: Any = None,
        read_object: Callable[[str], bytes | None] | None = None,
    ) -> None:
        if store is None and (
            not (pathlib.Path(vcz_path) / "zarr.json").exists()
            and not (pathlib.Path(vcz_path) / ".zgroup").exists()
        ):
            raise StoreError(f"{vcz_path}: not a VCF Zarr store")
        self.path = vcz_path
        # zarr's types are exact per access; genotype code reads them as arrays.
        try:
            self.root: Any = zarr.open_group(
                vcz_path if store is None else store, mode="r"
            )
        except FileNotFoundError:
            raise StoreError(f"{vcz_path}: not a VCF Zarr store") from None
        self._read_object = read_object
        self.contigs = contigs
        self._longest_span: dict[str, int] = {}
        self._arrays: dict[str, Any] = {}
        self._chunk_lengths: dict[str, int] = {}
        self._present: dict[str, bool] = {}
        self._chunks: collections.OrderedDict[tuple[str, int], np.ndarray] = (
            collections.OrderedDict()
        )
        self._chunk_bytes = 0
        self._genotype_chunks: collections.OrderedDict[int, np.ndarray] = (
            collections.OrderedDict()
        )
        self._genotype_bytes = 0
        # The server answers from a thread pool; the caches and their byte counts
        # must add up.
        self._genotype_lock = threading.Lock()
        self._chunk_lock = threading.Lock()

    def _chunk(self, name: str, index: int) -> np.ndarray:
        """One decoded variants-chunk of a per-variant array, from a small LRU.

        A Beacon query reads a few rows; zarr's per-call overhead would dominate,
        so whole chunks are decoded once and then indexed in memory.
        """
        key = (name, index)
        with self._chunk_lock:
            chunk = self._chunks.get(key)
            if chunk is not None:
                self._chunks.move_to_end(key)
                return chunk
        # Decoded outside the lock: two threads may decode the same chunk once
        # each, which is cheaper than making every reader wait.
        array = self.array(name)
        size = array.chunks[0]
        chunk = np.asarray(array[index * size : (index + 1) * size])
        with self._chunk_lock:
            if key in self._chunks:
                return self._chunks[key]
            self._chunks[key] = chunk
            self._chunk_bytes += _footprint(chunk)
            while self._chunk_bytes > _CACHED_CHUNK_BYTES and len(self._chunks) > 1:
                _, evicted = self._chunks.popitem(last=False)
                self._chunk_bytes -= _footprint(evicted)
        return chunk

    def array(self, name: str) -> Any:
        """The zarr array ``name``, opened once (a group lookup costs ~1 ms)."""
        array = self._arrays.get(name)
        if array is None:
            array = self._arrays[name] = self.root[name]
        return array

    def has(self, name: str) -> bool:
        """Whether the store has the array ``name`` (asked of zarr once)."""
        if name not in self._present:
            self._present[name] = name in self.root
        return self._present[name]

    def _chunk_length(self, name: str) -> int:
        """Rows in a chunk of the per-variant array ``name`` (asked of zarr once)."""
        length = self._chunk_lengths.get(name)
        if length is None:
            length = self._chunk_lengths[name] = int(self.array(name).chunks[0])
        return length

    def _value(self, name: str, row: int) -> Any:
        """Row ``row`` of the per-variant array ``name``: what :meth:`read` gives
        for one row, without its slicing (a count reads eight of them)."""
        length = self._chunk_length(name)
        return self._chunk(name, row // length)[row % length]

    def read(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` of the per-variant array ``name`` (chunk-cached)."""
        if stop <= start:
            return np.asarray(self.array(name)[0:0])
        size = self._chunk_length(name)
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
        # Search with the array's own dtype: a Python int would make numpy cast
        # (copy) the whole int32 array to int64 first, ~0.1 ms per search.
        kind, largest = self._position_type
        low_value = kind(min(max(start, 0), largest))
        high_value = kind(min(max(start if stop is None else stop - 1, 0), largest))
        low = int(positions.searchsorted(low_value, side="left"))
        high = int(positions.searchsorted(high_value, side="right"))
        return range(first + low, first + high)

    @functools.cached_property
    def _position_type(self) -> tuple[type, int]:
        """The scalar type of ``variant_position`` and its largest value."""
        return self._positions.dtype.type, int(np.iinfo(self._positions.dtype).max)

    def longest_span(self, contig: str) -> int:
        """Bases covered by the longest variant on ``contig`` (read once, cached).

        ``variant_length`` (END-aware, so structural variants count in full) where
        the store has it, else the longest REF allele. A range query widens its
        binary search to the left by this much, so that variants starting before
        the range but reaching into it are found.
        """
        if contig not in self._longest_span:
            first, last = self.contigs[contig]
            if self.has("variant_length"):
                lengths = self.array("variant_length")[first:last]
                longest = int(lengths.max()) if len(lengths) else 1
            else:
                references = self.array("variant_allele")[first:last, 0]
                longest = max((len(str(allele)) for allele in references), default=1)
            self._longest_span[contig] = longest
        return self._longest_span[contig]

    def counts(self, row: int) -> VariantCounts:
        """Stored statistics of one variant row."""
        if not 0 <= row < len(self._positions):
            raise NotFoundError(f"no variant row {row}")
        alleles = tuple(
            str(allele) for allele in self._value("variant_allele", row) if allele
        )
        allele_count = self._value("variant_allele_count", row)
        contig_index = int(self._value("variant_contig", row))

        def one(name: str) -> int:
            return int(self._value(name, row))

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

    @functools.cached_property
    def _by_variant(self) -> Any:
        if BY_VARIANT not in self.root:
            raise StoreError(
                f"{self.path}: no {BY_VARIANT} array (the dataset was ingested by an "
                "older genomenode); re-ingest it to serve per-individual queries"
            )
        return self.root[BY_VARIANT]

    def _read_genotype_chunk(self, index: int) -> np.ndarray:
        array = self._by_variant
        length, num_samples, ploidy = array.chunks
        rows = min(length, array.shape[0] - index * length)
        if not self._plain_chunks:
            return np.asarray(array[index * length : index * length + rows])
        # zarr's read path costs more than decoding a chunk this size (~2 ms
        # against ~0.2 ms): read the chunk's file (or object) and decode it here.
        data: bytes | None
        if self._read_object is not None:
            key = array.metadata.dimension_separator.join([str(index), "0", "0"])
            data = self._read_object(f"{BY_VARIANT}/{key}")
        else:
            try:
                data = _chunk_path(pathlib.Path(self.path), array, index).read_bytes()
            except FileNotFoundError:
                data = None
        if data is None:
            # Chunks of the fill value only are not written.
            return np.full((rows, num_samples, ploidy), -1, dtype=np.int8)
        chunk = np.frombuffer(array.metadata.compressor.decode(data), dtype=np.int8)
        return chunk.reshape(length, num_samples, ploidy)[:rows]

    @functools.cached_property
    def _plain_chunks(self) -> bool:
        return _plain_chunks(self._by_variant)

    def _genotype_chunk(self, index: int) -> np.ndarray:
        """One decoded chunk of ``call_genotype_by_variant`` (LRU bounded in bytes)."""
        with self._genotype_lock:
            chunk = self._genotype_chunks.get(index)
            if chunk is not None:
                self._genotype_chunks.move_to_end(index)
                return chunk
        chunk = self._read_genotype_chunk(index)
        # Callers get views: a caller writing into one would corrupt the cache.
        chunk.flags.writeable = False
        with self._genotype_lock:
            if index not in self._genotype_chunks:
                self._genotype_chunks[index] = chunk
                self._genotype_bytes += chunk.nbytes
            while (
                self._genotype_bytes > _CACHED_GENOTYPE_BYTES
                and len(self._genotype_chunks) > 1
            ):
                _, evicted = self._genotype_chunks.popitem(last=False)
                self._genotype_bytes -= evicted.nbytes
        return chunk

    def genotypes(self, row: int) -> np.ndarray:
        """Calls of variant ``row`` for every sample, shape ``(samples, ploidy)``.

        int8 as in ``call_genotype``: allele indices, -1 for a missing allele, -2
        for the fill of a haploid call in a diploid array. The array is a read-only
        view into a cached chunk.

        Raises
        ------
        NotFoundError
            No such row.
        StoreError
            The store has no ``call_genotype_by_variant`` (ingested by an older
            genomenode).
        """
        if not 0 <= row < len(self._positions):
            raise NotFoundError(f"no variant row {row}")
        if self._sites_only:
            # An aggregate-only dataset (store/site_counts.py): nobody's calls.
            return np.empty((0, 2), dtype=np.int8)
        size = self._by_variant.chunks[0]
        return self._genotype_chunk(row // size)[row % size]

    @functools.cached_property
    def _sites_only(self) -> bool:
        return "call_genotype" not in self.root and BY_VARIANT not in self.root

    @functools.cached_property
    def _max_alleles(self) -> int:
        # Opening an array reads its metadata: ~1 ms, more than a whole query.
        return int(self.root["variant_allele"].shape[1])

    def _allele(self, row: int, allele: int) -> int:
        if not 0 <= allele < self._max_alleles:
            raise NotFoundError(f"variant row {row} has no allele {allele}")
        return allele

    def carrier_calls(self, row: int, allele: int) -> CarrierCalls:
        """The samples carrying ``allele`` of variant ``row``, with their calls.

        Parameters
        ----------
        row
            Variant row.
        allele
            Allele index as in ``variant_allele``: 0 is REF, 1 the first ALT.

        Returns
        -------
        CarrierCalls
            Sample indices (ascending), copies of the allele, ploidy and called
            alleles of each carrier's call; ``zygosity()`` names them for Beacon
            case-level data.
        """
        genotypes = self.genotypes(row)
        return carrier_calls(genotypes, self._allele(row, allele))

    def carriers(self, row: int, allele: int) -> np.ndarray:
        """Indices (ascending) of the samples with at least one copy of ``allele``."""
        return self.carrier_calls(row, allele).samples

    def population_counts(
        self, row: int, allele: int, groups: np.ndarray, num_groups: int
    ) -> PopulationCounts:
        """Counts of ``allele`` of variant ``row`` in each group of samples.

        Parameters
        ----------
        row
            Variant row.
        allele
            Allele index as in ``variant_allele``: 0 is REF, 1 the first ALT.
        groups
            Group of each sample (``0 <= group < num_groups``; -1 leaves the
            sample out), e.g. a country × sex code.
        num_groups
            Number of groups.

        Returns
        -------
        PopulationCounts
            Per group: allele count and number, copies in homozygous, heterozygous
            and haploid calls, called samples. Summed over all samples they equal
            the variant's stored ``variant_allele_count`` ... statistics.
        """
        genotypes = self.genotypes(row)
        return population_counts(
            genotypes, self._allele(row, allele), groups, num_groups
        )
