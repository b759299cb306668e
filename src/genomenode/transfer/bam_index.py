"""BAM indexes (SAMv1 §5): BAI and CSI read, one built from a scan, chunks found.

A record is filed in the smallest bin holding its span; a bin's chunks are the
virtual-offset ranges of its records. The chunks that may hold records overlapping
a region are those of the bins (at every level) overlapping it, less those ending
before the first record that can overlap: the linear index gives that offset for a
BAI (the first record touching each 16 kb window), the bins' ``loffset`` for a CSI.
Bins and windows are counted with any ``min_shift`` and ``depth``, so a CSI of a
reference longer than 2^29 works as a BAI does.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib
from collections.abc import Iterable, Sequence
from typing import Literal

from ..errors import StoreError, UnsupportedFormatError

__all__ = ["BamIndex", "IndexBuilder", "merge_chunks", "parse_index", "reg2bin"]

#: A chunk: the virtual offsets of its first record and of the byte after its last.
Chunk = tuple[int, int]
_BAI_MAGIC = b"BAI\x01"
_CSI_MAGIC = b"CSI\x01"


def _first_bin(level: int) -> int:
    return ((1 << (3 * level)) - 1) // 7


def reg2bin(start: int, end: int, min_shift: int = 14, depth: int = 5) -> int:
    """The smallest bin holding [start, end) (SAMv1 §5.3, any min_shift and depth)."""
    end -= 1
    shift = min_shift
    for level in range(depth, 0, -1):
        if start >> shift == end >> shift:
            return _first_bin(level) + (start >> shift)
        shift += 3
    return 0


def merge_chunks(chunks: Iterable[Chunk]) -> list[Chunk]:
    """Sorted chunks, those that overlap or meet in one BGZF block made one.

    Reading through the gap inside one block costs nothing more than the block;
    the records there are filtered by overlap as all others.
    """
    merged: list[Chunk] = []
    for start, end in sorted(chunks):
        if merged and start >> 16 <= merged[-1][1] >> 16:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


@dataclasses.dataclass
class _ReferenceIndex:
    bins: dict[int, list[Chunk]] = dataclasses.field(default_factory=dict)
    bin_offsets: dict[int, int] = dataclasses.field(default_factory=dict)  # CSI
    linear: list[int] = dataclasses.field(default_factory=list)  # BAI
    has_unmapped: bool = True  # unknown counts as yes


@dataclasses.dataclass
class BamIndex:
    """The bins, chunks and linear index of each reference."""

    min_shift: int
    depth: int
    references: list[_ReferenceIndex]

    @property
    def pseudo_bin(self) -> int:
        """The bin holding a reference's statistics, not records."""
        return _first_bin(self.depth + 1) + 1

    def chunks(self, tid: int, start: int, end: int) -> list[Chunk]:
        """Chunks that may hold records of reference ``tid`` overlapping [start, end).

        Unsorted and possibly overlapping: see :func:`merge_chunks`.
        """
        if tid >= len(self.references):
            return []
        reference = self.references[tid]
        minimum = self._min_offset(reference, start)
        overlapping = self._bins_overlapping(start, end)
        # A long region has more candidate bins than the reference has bins.
        candidates: Iterable[int] = overlapping
        if len(overlapping) > len(reference.bins):
            candidates = [number for number in reference.bins if number in overlapping]
        return [
            chunk
            for bin_number in candidates
            for chunk in reference.bins.get(bin_number, ())
            if chunk[1] > minimum
        ]

    def last_placed_end(self) -> int:
        """Where the records with a reference end (unplaced reads follow); 0 if none."""
        return max(
            (
                chunk[1]
                for reference in self.references
                for bin_number, chunks in reference.bins.items()
                if bin_number != self.pseudo_bin
                for chunk in chunks
            ),
            default=0,
        )

    def _bins_overlapping(self, start: int, end: int) -> set[int]:
        """The bins of every level that overlap [start, end) (SAMv1 reg2bins)."""
        end = min(end, 1 << (self.min_shift + 3 * self.depth))
        found: set[int] = set()
        if start >= end:
            return found
        for level in range(self.depth + 1):
            shift = self.min_shift + 3 * (self.depth - level)
            first = _first_bin(level)
            found.update(
                range(first + (start >> shift), first + ((end - 1) >> shift) + 1)
            )
        return found

    def _min_offset(self, reference: _ReferenceIndex, start: int) -> int:
        """No record overlapping [start, ...) lies before this virtual offset."""
        window = start >> self.min_shift
        if reference.linear:
            linear = reference.linear
            window = min(window, len(linear) - 1)
            minimum = linear[window]
            if reference.has_unmapped:
                # Some writers leave unmapped reads out of the linear index (htslib
                # guards against it alike): an earlier, smaller offset is safe.
                earlier = (linear[w] for w in range(window - 1, -1, -1))
                minimum = next((o for o in earlier if o < minimum), 0)
            return minimum
        # CSI: the loffset of the bin at start, or of its left sibling or parent.
        bin_number = _first_bin(self.depth) + min(window, (1 << 3 * self.depth) - 1)
        while bin_number and bin_number not in reference.bin_offsets:
            first_sibling = (((bin_number - 1) >> 3) << 3) + 1
            bin_number = (
                bin_number - 1 if bin_number > first_sibling else (bin_number - 1) >> 3
            )
        return reference.bin_offsets.get(bin_number, 0)


def parse_index(data: bytes, kind: Literal["bai", "csi"] | None) -> BamIndex:
    """Read a BAI or CSI index; ``kind`` ``None`` tells it from the magic.

    Raises
    ------
    StoreError
        Not an index of that kind, or damaged.
    """
    if data.startswith(b"\x1f\x8b"):  # a CSI is BGZF-compressed, a BAI is not
        try:
            data = _inflate_all(data)
        except zlib.error as error:
            raise StoreError(f"damaged BAM index: {error}") from None
    magic = data[:4]
    expected = {"bai": _BAI_MAGIC, "csi": _CSI_MAGIC, None: magic}[kind]
    if magic != expected or magic not in (_BAI_MAGIC, _CSI_MAGIC):
        raise StoreError(f"not a {kind or 'BAI or CSI'} index (magic {magic!r})")
    try:
        return _parse_index_body(data, is_csi=magic == _CSI_MAGIC)
    except struct.error:
        raise StoreError("damaged BAM index: it ends too early") from None


def _inflate_all(data: bytes) -> bytes:
    parts = []
    while data:
        inflater = zlib.decompressobj(wbits=31)
        parts.append(inflater.decompress(data))
        data = inflater.unused_data
    return b"".join(parts)


def _parse_index_body(data: bytes, *, is_csi: bool) -> BamIndex:
    offset = 4
    min_shift, depth = 14, 5
    if is_csi:
        min_shift, depth, auxiliary_length = struct.unpack_from("<iiI", data, offset)
        offset += 12 + auxiliary_length
    (num_references,) = struct.unpack_from("<i", data, offset)
    offset += 4
    index = BamIndex(min_shift, depth, [])
    for _ in range(num_references):
        reference = _ReferenceIndex()
        (num_bins,) = struct.unpack_from("<i", data, offset)
        offset += 4
        for _ in range(num_bins):
            (bin_number,) = struct.unpack_from("<I", data, offset)
            offset += 4
            if is_csi:
                (reference.bin_offsets[bin_number],) = struct.unpack_from(
                    "<Q", data, offset
                )
                offset += 8
            (num_chunks,) = struct.unpack_from("<i", data, offset)
            offset += 4
            values = struct.unpack_from(f"<{2 * num_chunks}Q", data, offset)
            offset += 16 * num_chunks
            pairs = list(zip(values[::2], values[1::2], strict=True))
            if bin_number == index.pseudo_bin:
                # (start, end) of the reference's records, (mapped, unmapped) counts.
                reference.has_unmapped = len(pairs) < 2 or pairs[1][1] > 0
            reference.bins[bin_number] = pairs
        if not is_csi:
            (num_windows,) = struct.unpack_from("<i", data, offset)
            offset += 4
            reference.linear = _backward_filled(
                list(struct.unpack_from(f"<{num_windows}Q", data, offset))
            )
            offset += 8 * num_windows
        index.references.append(reference)
    return index


def _backward_filled(linear: list[int]) -> list[int]:
    """Empty windows (0) take the next window's offset, as htslib reads them."""
    first = next((i for i, offset in enumerate(linear) if offset), len(linear))
    for window in range(len(linear) - 1, first, -1):
        if linear[window - 1] == 0:
            linear[window - 1] = linear[window]
    return linear


class IndexBuilder:
    """A BAI-like index from the records of a BAM pushed in file order.

    Memory grows with bins and 16 kb windows, not records: consecutive records of
    one bin make one chunk, and a chunk that starts in the block where the bin's
    last chunk ends extends it. The depth grows past 5 for references longer than
    2^29, as a CSI's does.

    Raises
    ------
    UnsupportedFormatError
        From :meth:`push`, when the records are not sorted by coordinate.
    """

    def __init__(self, reference_lengths: Sequence[int]) -> None:
        longest = max(reference_lengths, default=0)
        depth = 5
        while longest > 1 << (14 + 3 * depth):
            depth += 1
        self._index = BamIndex(
            14, depth, [_ReferenceIndex() for _ in reference_lengths]
        )
        self._last = (-1, -1)  # (tid, position) of the last placed record
        self._unplaced_seen = False
        self._open: tuple[int, int] | None = None  # (tid, bin) of the open chunk
        self._open_start = 0

    def push(self, tid: int, start: int, end: int, offset: int) -> None:
        """File the record at virtual offset ``offset``, spanning [start, end)."""
        if tid < 0:
            self._unplaced_seen = True
            self._close(offset)
            return
        if tid >= len(self._index.references):
            raise StoreError(f"damaged BAM: a record of reference number {tid}")
        if self._unplaced_seen or (tid, start) < self._last:
            raise UnsupportedFormatError(
                "the BAM is not sorted by coordinate; it cannot be sliced without "
                "an index (sort it with `samtools sort`)"
            )
        self._last = (tid, start)
        start = max(start, 0)
        end = max(end, start + 1)
        reference = self._index.references[tid]
        last_window = (end - 1) >> self._index.min_shift
        if last_window >= len(reference.linear):
            reference.linear += [0] * (last_window + 1 - len(reference.linear))
        for window in range(start >> self._index.min_shift, last_window + 1):
            if not reference.linear[window]:
                reference.linear[window] = offset
        key = (tid, reg2bin(start, end, self._index.min_shift, self._index.depth))
        if self._open != key:
            self._close(offset)
            self._open, self._open_start = key, offset

    def finish(self, end_offset: int) -> BamIndex:
        """The index; the last chunk ends at ``end_offset``, after the last record."""
        self._close(end_offset)
        for reference in self._index.references:
            reference.linear = _forward_filled(reference.linear)
            reference.has_unmapped = False  # they are in this linear index
        return self._index

    def _close(self, offset: int) -> None:
        if self._open is None:
            return
        tid, bin_number = self._open
        chunks = self._index.references[tid].bins.setdefault(bin_number, [])
        if chunks and chunks[-1][1] >> 16 >= self._open_start >> 16:
            chunks[-1] = (chunks[-1][0], offset)
        else:
            chunks.append((self._open_start, offset))
        self._open = None


def _forward_filled(linear: list[int]) -> list[int]:
    """Windows no record touches take the previous window's offset (safe: smaller)."""
    previous = 0
    for window, offset in enumerate(linear):
        if offset:
            previous = offset
        else:
            linear[window] = previous
    return linear
