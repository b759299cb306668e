"""Tabix (``.tbi``) and CSI indexes of bgzipped VCF: which chunks may hold a region.

Both formats (hts-specs: "The tabix index format" and "The CSI index format")
divide each reference into a hierarchy of bins: level 0 is the whole span of
``2**(min_shift + 3 * depth)`` bases, every bin has eight children, and the
``8**depth`` bins of the last level each cover ``2**min_shift`` bases. A record
is filed in the smallest bin that holds its whole span, as *chunks*: runs of
consecutive records given as ``[virtual_start, virtual_end)`` virtual offsets in
the BGZF file. A region can only be overlapped by records in the bins that
overlap it, so reading those bins' chunks finds all of them (and some others: the
caller filters records). Tabix adds a *linear index*, the first record offset
overlapping each ``2**14``-base window; CSI instead keeps that offset per bin
(``loffset``). Either lets the chunks that end before the region's first possible
record be skipped.

Tabix fixes ``min_shift = 14`` and ``depth = 5`` (positions below ``2**29``); CSI
stores both. A file without an index gets an equivalent one from
:func:`build_index`, one pass over its records.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import struct
from collections.abc import Iterable
from typing import Final, Literal, NamedTuple

from ..errors import StoreError
from . import bgzf

__all__ = [
    "Chunk",
    "IndexBuilder",
    "ReferenceIndex",
    "VariantIndex",
    "bins_overlapping",
    "build_index",
    "merge_chunks",
    "parse_csi",
    "parse_index",
    "parse_tabix",
    "region_bin",
    "vcf_record_span",
]

TABIX_MIN_SHIFT: Final = 14
TABIX_DEPTH: Final = 5
#: The in-memory index of :func:`build_index` reaches every VCF position (< 2**31).
BUILT_DEPTH: Final = 6

_INT32 = struct.Struct("<i")
_UINT32 = struct.Struct("<I")
_UINT64 = struct.Struct("<Q")
_TABIX_CONFIG = struct.Struct("<7i")  # format col_seq col_beg col_end meta skip l_nm


class Chunk(NamedTuple):
    """A run of records: ``[virtual_start, virtual_end)`` in the BGZF file."""

    virtual_start: int
    virtual_end: int


def _first_bin(level: int) -> int:
    # Bins are numbered level by level: level l starts after the (8**l - 1) / 7
    # bins of the levels above it.
    return ((1 << (3 * level)) - 1) // 7


def _parent(bin_number: int) -> int:
    return (bin_number - 1) >> 3


def _pseudo_bin(depth: int) -> int:
    # Real bins end at _first_bin(depth + 1) - 1; the one after the next holds
    # statistics (the offsets of the reference and its record counts), not records.
    return _first_bin(depth + 1) + 1


def region_bin(start: int, end: int, min_shift: int, depth: int) -> int:
    """The smallest bin holding all of ``[start, end)`` (hts-specs ``reg2bin``)."""
    last = max(end, start + 1) - 1
    shift = min_shift
    for level in range(depth, 0, -1):
        if start >> shift == last >> shift:
            return _first_bin(level) + (start >> shift)
        shift += 3
    return 0


def bins_overlapping(start: int, end: int, min_shift: int, depth: int) -> list[int]:
    """Every bin that overlaps ``[start, end)`` (hts-specs ``reg2bins``)."""
    if end <= start:
        return []
    last = end - 1
    bins: list[int] = []
    for level in range(depth + 1):
        shift = min_shift + 3 * (depth - level)
        first = _first_bin(level)
        bins.extend(range(first + (start >> shift), first + (last >> shift) + 1))
    return bins


@dataclasses.dataclass(frozen=True)
class ReferenceIndex:
    """The index of one reference sequence.

    Attributes
    ----------
    bin_chunks : dict
        Bin number to its chunks (the pseudo-bin of statistics left out).
    bin_first_offsets : dict
        CSI only: bin number to the virtual offset of the first record
        overlapping the bin.
    linear_offsets : tuple of int
        Tabix (and built indexes) only: for each ``2**min_shift``-base window, the
        virtual offset of the first record overlapping it.
    """

    bin_chunks: dict[int, list[Chunk]]
    bin_first_offsets: dict[int, int] = dataclasses.field(default_factory=dict)
    linear_offsets: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True)
class VariantIndex:
    """A parsed (or built) binning index of a bgzipped VCF.

    Attributes
    ----------
    kind : {"tbi", "csi", "built"}
        Where it came from.
    min_shift, depth : int
        The bin geometry.
    reference_names : tuple of str
        Reference sequences in index order (the order of the file).
    references : tuple of ReferenceIndex
        Their bins, in the same order.
    """

    kind: Literal["tbi", "csi", "built"]
    min_shift: int
    depth: int
    reference_names: tuple[str, ...]
    references: tuple[ReferenceIndex, ...]

    @property
    def max_position(self) -> int:
        """One past the last 0-based position the bins can describe."""
        return 1 << (self.min_shift + 3 * self.depth)

    @functools.cached_property
    def _by_name(self) -> dict[str, ReferenceIndex]:
        return dict(zip(self.reference_names, self.references, strict=True))

    def reference_index(self, reference_name: str) -> ReferenceIndex | None:
        """The index of one reference; None if it has no records."""
        return self._by_name.get(reference_name)

    def chunks(self, reference_name: str, start: int, end: int) -> list[Chunk]:
        """The merged chunks that may hold records overlapping ``[start, end)``.

        Parameters
        ----------
        reference_name
            A reference sequence; one the index does not know has no chunks.
        start, end
            0-based, end exclusive; ``end`` beyond :attr:`max_position` is cut.

        Returns
        -------
        list of Chunk
            In file order, not overlapping; chunks touching the same BGZF block
            are merged (the block is read once).
        """
        reference = self.reference_index(reference_name)
        start = max(start, 0)
        end = min(end, self.max_position)
        if reference is None or end <= start:
            return []
        first_offset = self._first_offset(reference, start)
        found = []
        for bin_number in bins_overlapping(start, end, self.min_shift, self.depth):
            for chunk in reference.bin_chunks.get(bin_number, ()):
                if chunk.virtual_end > first_offset:
                    # The first-offset is where a record starts, so cutting there
                    # keeps chunks on record boundaries.
                    found.append(
                        Chunk(max(chunk.virtual_start, first_offset), chunk.virtual_end)
                    )
        return merge_chunks(found)

    def first_offset(self, reference_name: str, start: int) -> int | None:
        """Where to start reading for the records of ``reference_name`` at
        0-based position ``start`` or later: no such record lies before this
        virtual offset (earlier records may follow it). None if the index has no
        records of that reference."""
        reference = self.reference_index(reference_name)
        if reference is None:
            return None
        return self._first_offset(reference, max(start, 0))

    def _first_offset(self, reference: ReferenceIndex, start: int) -> int:
        # No record overlapping a region that starts at ``start`` lies before the
        # first record overlapping the window (or any bin) holding ``start``.
        window = start >> self.min_shift
        if reference.linear_offsets:
            offsets = reference.linear_offsets
            return offsets[min(window, len(offsets) - 1)]
        if reference.bin_first_offsets:
            bin_number = _first_bin(self.depth) + window
            while True:
                if bin_number in reference.bin_first_offsets:
                    return reference.bin_first_offsets[bin_number]
                if bin_number == 0:
                    return 0
                bin_number = _parent(bin_number)
        return 0


def merge_chunks(chunks: Iterable[Chunk]) -> list[Chunk]:
    """Sort chunks and merge those that overlap or share a BGZF block."""
    merged: list[Chunk] = []
    for chunk in sorted(chunks):
        if merged and chunk.virtual_start >> 16 <= merged[-1].virtual_end >> 16:
            if chunk.virtual_end > merged[-1].virtual_end:
                merged[-1] = Chunk(merged[-1].virtual_start, chunk.virtual_end)
        else:
            merged.append(chunk)
    return merged


class _Reader:
    """Little-endian fields read in order from an uncompressed index."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.position = 0
        self.what = what

    def take(self, layout: struct.Struct) -> tuple[int, ...]:
        try:
            values = layout.unpack_from(self.data, self.position)
        except struct.error:
            raise StoreError(f"truncated {self.what} index") from None
        self.position += layout.size
        return tuple(int(value) for value in values)

    def int32(self) -> int:
        return self.take(_INT32)[0]

    def uint32(self) -> int:
        return self.take(_UINT32)[0]

    def uint64(self) -> int:
        return self.take(_UINT64)[0]

    def chunks(self, count: int) -> list[Chunk]:
        values = self.uint64s(2 * count)
        return [Chunk(values[i], values[i + 1]) for i in range(0, len(values), 2)]

    def uint64s(self, count: int) -> tuple[int, ...]:
        if count < 0:
            raise StoreError(f"damaged {self.what} index: a count of {count}")
        return self.take(struct.Struct(f"<{count}Q"))

    def raw(self, length: int) -> bytes:
        if length < 0 or self.position + length > len(self.data):
            raise StoreError(f"truncated {self.what} index")
        value = self.data[self.position : self.position + length]
        self.position += length
        return value


def _uncompressed(data: bytes, magic: bytes, what: str) -> bytes:
    plain = data if data.startswith(magic) else bgzf.decompress(data)
    if not plain.startswith(magic):
        raise StoreError(f"not a {what} index (no {magic!r} magic)")
    return plain


def _names(raw: bytes) -> tuple[str, ...]:
    return tuple(name.decode() for name in raw.split(b"\0") if name)


def parse_tabix(data: bytes) -> VariantIndex:
    """Parse a tabix ``.tbi`` index (BGZF-compressed, as tabix writes it).

    Raises
    ------
    StoreError
        If ``data`` is not a complete tabix index.
    """
    reader = _Reader(_uncompressed(data, b"TBI\x01", "tabix"), "tabix")
    reader.raw(4)
    num_references = reader.int32()
    config = reader.take(_TABIX_CONFIG)
    names = _names(reader.raw(config[-1]))
    if len(names) != num_references:
        raise StoreError(
            f"tabix index names {len(names)} references but holds {num_references}"
        )
    pseudo_bin = _pseudo_bin(TABIX_DEPTH)
    references = []
    for _ in range(num_references):
        bin_chunks = {}
        for _ in range(reader.int32()):
            bin_number = reader.uint32()
            chunks = reader.chunks(reader.int32())
            if bin_number != pseudo_bin:
                bin_chunks[bin_number] = chunks
        linear = reader.uint64s(reader.int32())
        references.append(ReferenceIndex(bin_chunks, linear_offsets=linear))
    return VariantIndex("tbi", TABIX_MIN_SHIFT, TABIX_DEPTH, names, tuple(references))


def parse_csi(data: bytes) -> VariantIndex:
    """Parse a CSI index of a bgzipped VCF (names in the tabix-style aux data).

    Raises
    ------
    StoreError
        If ``data`` is not a complete CSI index, or carries no reference names
        (as the CSI of a BCF file, whose names are in the BCF header).
    """
    reader = _Reader(_uncompressed(data, b"CSI\x01", "CSI"), "CSI")
    reader.raw(4)
    min_shift = reader.int32()
    depth = reader.int32()
    aux = reader.raw(reader.int32())
    if len(aux) < _TABIX_CONFIG.size:
        raise StoreError("CSI index without reference names (a BCF index?)")
    names = _names(aux[_TABIX_CONFIG.size :])
    num_references = reader.int32()
    if len(names) != num_references:
        raise StoreError(
            f"CSI index names {len(names)} references but holds {num_references}"
        )
    pseudo_bin = _pseudo_bin(depth)
    references = []
    for _ in range(num_references):
        bin_chunks = {}
        first_offsets = {}
        for _ in range(reader.int32()):
            bin_number = reader.uint32()
            first_offset = reader.uint64()
            chunks = reader.chunks(reader.int32())
            if bin_number != pseudo_bin:
                bin_chunks[bin_number] = chunks
                first_offsets[bin_number] = first_offset
        references.append(ReferenceIndex(bin_chunks, bin_first_offsets=first_offsets))
    return VariantIndex("csi", min_shift, depth, names, tuple(references))


def parse_index(data: bytes, kind: Literal["tbi", "csi"]) -> VariantIndex:
    """Parse a ``.tbi`` or ``.csi`` index."""
    if kind == "tbi":
        return parse_tabix(data)
    if kind == "csi":
        return parse_csi(data)
    raise ValueError(f"unknown index kind {kind!r}")


def vcf_record_span(line: bytes, *, info_end: bool = True) -> tuple[bytes, int, int]:
    """CHROM and the 0-based ``[start, end)`` a VCF data line covers.

    The span is the one htslib (1.24) gives the record, ``rlen``, which
    ``bcftools view -r`` tests regions against: from POS over the length of REF,
    or to INFO/END if that reaches further (symbolic and structural alleles).

    Parameters
    ----------
    line
        One data line.
    info_end
        Whether to look at INFO/END; htslib does only when the header declares
        END as an Integer.

    Raises
    ------
    StoreError
        If the line has fewer than eight columns or POS is not a number.
    """
    fields = line.split(b"\t", 8)
    if len(fields) < 8:
        raise StoreError(f"VCF record with {len(fields)} columns: {line[:80]!r}")
    try:
        start = int(fields[1]) - 1
    except ValueError:
        raise StoreError(f"VCF record with POS {fields[1][:20]!r}") from None
    end = start + len(fields[3])
    info = fields[7]
    if info_end and b"END=" in info:
        for entry in info.rstrip(b"\r\n").split(b";"):
            if entry.startswith(b"END="):
                with contextlib.suppress(ValueError):
                    end = max(end, int(entry[4:]))
                break
    return fields[0], start, end


class IndexBuilder:
    """Build a binning index from records given in file order.

    Parameters
    ----------
    min_shift, depth
        The bin geometry; the default reaches every position a VCF can hold.
    """

    def __init__(
        self, *, min_shift: int = TABIX_MIN_SHIFT, depth: int = BUILT_DEPTH
    ) -> None:
        self.min_shift = min_shift
        self.depth = depth
        self._names: list[str] = []
        self._bins: list[dict[int, list[Chunk]]] = []
        self._linear: list[list[int]] = []
        self._last_start = -1

    def add(
        self,
        reference_name: str,
        start: int,
        end: int,
        virtual_start: int,
        virtual_end: int,
    ) -> None:
        """File one record: its reference, ``[start, end)`` and virtual offsets.

        Raises
        ------
        StoreError
            If records are not sorted: a reference coming back after another, or
            a start before the previous record's.
        """
        if not self._names or self._names[-1] != reference_name:
            if reference_name in self._names:
                raise StoreError(
                    f"VCF not sorted: reference {reference_name!r} comes back "
                    "after another one"
                )
            self._names.append(reference_name)
            self._bins.append({})
            self._linear.append([])
            self._last_start = -1
        start = max(start, 0)
        end = max(end, start + 1)
        if start < self._last_start:
            raise StoreError(
                f"VCF not sorted: {reference_name}:{start + 1} after "
                f"{reference_name}:{self._last_start + 1}"
            )
        self._last_start = start
        chunks = self._bins[-1].setdefault(
            region_bin(start, end, self.min_shift, self.depth), []
        )
        if chunks and chunks[-1].virtual_end == virtual_start:
            chunks[-1] = Chunk(chunks[-1].virtual_start, virtual_end)
        else:
            chunks.append(Chunk(virtual_start, virtual_end))
        linear = self._linear[-1]
        last_window = (end - 1) >> self.min_shift
        if len(linear) <= last_window:
            linear.extend([-1] * (last_window + 1 - len(linear)))
        for window in range(start >> self.min_shift, last_window + 1):
            if linear[window] < 0:
                linear[window] = virtual_start

    def finish(self) -> VariantIndex:
        """The index of every record added."""
        references = []
        for bin_chunks, linear in zip(self._bins, self._linear, strict=True):
            # A window no record overlaps takes the offset of the next window
            # that has one: no record overlapping it can come earlier.
            filled = list(linear)
            following = 0
            for window in range(len(filled) - 1, -1, -1):
                if filled[window] < 0:
                    filled[window] = following
                else:
                    following = filled[window]
            references.append(ReferenceIndex(bin_chunks, linear_offsets=tuple(filled)))
        return VariantIndex(
            "built", self.min_shift, self.depth, tuple(self._names), tuple(references)
        )


def build_index(lines: Iterable[bgzf.BgzfLine]) -> VariantIndex:
    """An index of the VCF data lines given (header lines are skipped).

    Memory grows with the bins and windows the records touch, not with the
    number of records.
    """
    builder = IndexBuilder()
    for line in lines:
        if line.text.startswith(b"#") or not line.text.strip():
            continue
        reference_name, start, end = vcf_record_span(line.text)
        builder.add(
            reference_name.decode(), start, end, line.virtual_start, line.virtual_end
        )
    return builder.finish()
