"""Exact slices of a stored BAM, read only through its plaintext reader.

A :class:`StoredReads` sees the BAM as ``read(offset, length)`` over its plaintext
(the decrypting reader of a Crypt4GH file), so nothing is ever written to disk. A
slice holds exactly the records ``samtools view FILE REGION`` returns: those whose
alignment span, from POS over the CIGAR's reference-consuming operations (one base
for an unmapped read or a CIGAR without such operations), overlaps the region; an
unmapped read placed at its mate's position counts there.

The records are found through the BAI or CSI index (SAMv1 §5, :mod:`.bam_index`):
the bins overlapping the region give chunks of virtual offsets, and only the BGZF
blocks of those chunks are read and inflated. Without an index one is built in
memory by a single scan of the records (bins and linear index, not records). Output
is BGZF: the header in its own blocks, then the records; a source block whose
records are all kept is copied as it is, the others are recompressed record by
record.

htsget ``fields``, ``tags`` and ``notags`` re-encode each kept record
(:mod:`.read_fields`).
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import itertools
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Literal

from ..errors import (
    InputError,
    InvalidRangeError,
    NotFoundError,
    StoreError,
    UnsupportedFormatError,
)
from ..store import bgzf
from .bam_index import BamIndex, IndexBuilder, merge_chunks, parse_index
from .read_fields import RECORD_CORE, record_filter

__all__ = [
    "ReadRegion",
    "StoredReads",
]

_BGZF_MAGIC = b"\x1f\x8b\x08\x04"
_BGZF_FIXED_HEADER = 12  # the gzip header up to its extra field
_BAM_MAGIC = b"BAM\x01"
_READ_AHEAD = 256 * 1024
_CACHED_BLOCKS = 16
_UNMAPPED = 0x4
_REFERENCE_CONSUMING = frozenset((0, 2, 3, 7, 8))  # M D N = X
_MAX_POSITION = (1 << 63) - 1


@dataclasses.dataclass(frozen=True)
class ReadRegion:
    """A range of one reference: 0-based, ``start`` inclusive, ``end`` exclusive.

    ``reference_name`` ``"*"`` is the unplaced unmapped reads; ``None`` is every
    read, mapped and unmapped. A missing ``start`` or ``end`` is the reference's
    start or end.
    """

    reference_name: str | None
    start: int | None = None
    end: int | None = None


class StoredReads:
    """A BAM reached only through a plaintext reader (the decrypting reader of a
    Crypt4GH file).

    Parameters
    ----------
    read
        ``read(offset, length)``: ``length`` plaintext bytes from ``offset`` (fewer
        only at the end).
    size
        The plaintext size.
    index
        The BAI or CSI index, as bytes; ``None`` builds one in memory by one scan.
    index_kind
        ``"bai"`` or ``"csi"``; ``None`` tells the kind from the index's magic.

    Raises
    ------
    UnsupportedFormatError
        The file is a CRAM (slices need the reference; not served yet) or not a BAM.
    StoreError
        The file or index is damaged.
    """

    def __init__(
        self,
        read: Callable[[int, int], bytes],
        size: int,
        *,
        index: bytes | None,
        index_kind: Literal["bai", "csi"] | None,
    ) -> None:
        head = read(0, 4) if size else b""
        if head == b"CRAM":
            raise UnsupportedFormatError(
                "CRAM slices need the reference; not served yet", field="format"
            )
        if head != _BGZF_MAGIC:
            raise UnsupportedFormatError("not a BAM file (no BGZF block at its start)")
        self._blocks = _Blocks(read, size)
        try:
            self._header = _read_header(self._blocks)
        except (struct.error, UnicodeDecodeError) as error:
            raise StoreError(f"damaged BAM header: {error}") from None
        self._names = {name: tid for tid, name in enumerate(self._header.names)}
        self._index_bytes = index
        self._index_kind = index_kind
        self._index: BamIndex | None = None
        self._index_lock = threading.Lock()

    def reference_names(self) -> list[str]:
        """The references of the header, in order (the BAM's ``refID`` order)."""
        return list(self._header.names)

    def header_part(self) -> bytes:
        """The BAM header (magic, text, references), bgzipped, without EOF block."""
        return bgzf.compress(self._header.raw, eof=False)

    def eof(self) -> bytes:
        """The BGZF end-of-file block that ends a BAM."""
        return bgzf.EOF_BLOCK

    def body_part(
        self,
        region: ReadRegion,
        *,
        fields: frozenset[str] | None = None,
        tags: frozenset[str] | None = None,
        notags: frozenset[str] = frozenset(),
    ) -> Iterator[bytes]:
        """BGZF blocks of the records overlapping ``region``: no header, no EOF.

        Raises
        ------
        NotFoundError
            The reference is not in the header.
        InvalidRangeError
            ``start`` or ``end`` is negative, ``start`` is after ``end`` or after
            the reference's end.
        InputError
            An unknown field or a malformed tag name (``field`` names the parameter).
        """
        return self._body([region], fields=fields, tags=tags, notags=notags)

    def slice(
        self,
        regions: Sequence[ReadRegion] | None,
        *,
        fields: frozenset[str] | None = None,
        tags: frozenset[str] | None = None,
        notags: frozenset[str] = frozenset(),
    ) -> Iterator[bytes]:
        """A complete BAM: header, the records overlapping any of ``regions``, EOF.

        ``None`` is the whole file. A record overlapping several regions is there
        once, records in file order (``samtools view -M``). Raises as
        :meth:`body_part`, before the first block.
        """
        body = self._body(
            [ReadRegion(None)] if regions is None else regions,
            fields=fields,
            tags=tags,
            notags=notags,
        )
        return itertools.chain([self.header_part()], body, [bgzf.EOF_BLOCK])

    def estimated_size(self, regions: Sequence[ReadRegion] | None) -> int:
        """About how many bytes :meth:`slice` returns, from the index alone.

        The compressed bytes of the chunks to read, the part of a block taken at a
        third of its inflated size; the whole file for ``None``.
        """
        if regions is None or any(item.reference_name is None for item in regions):
            return self._blocks.size
        total = len(self.header_part()) + len(bgzf.EOF_BLOCK)
        for tid, intervals in self._plan(regions).items():
            for start, end in self._chunks(tid, intervals):
                whole_blocks = (end >> 16) - (start >> 16)
                total += whole_blocks + max(0, (end & 0xFFFF) - (start & 0xFFFF)) // 3
        return total

    # The slicing itself.

    def _body(
        self,
        regions: Sequence[ReadRegion],
        *,
        fields: frozenset[str] | None,
        tags: frozenset[str] | None,
        notags: frozenset[str],
    ) -> Iterator[bytes]:
        reencode = record_filter(fields, tags, notags)
        plan = self._plan(regions)
        if any(region.reference_name is None for region in regions):
            items = self._everything()
        else:
            self._loaded_index()  # its errors come before the first block
            items = self._selected(plan)
        return _write(items, reencode)

    def _plan(self, regions: Iterable[ReadRegion]) -> dict[int, list[_Interval]]:
        """The intervals to read by refID, each region checked; unplaced reads (-1,
        also the key of a region of every read) sort last."""
        plan: dict[int, list[_Interval]] = {}
        for region in regions:
            tid, interval = self._target(region)
            plan.setdefault(tid, []).append(interval)
        return dict(sorted(plan.items(), key=lambda item: (item[0] < 0, item[0])))

    def _target(self, region: ReadRegion) -> tuple[int, _Interval]:
        name, start, end = region.reference_name, region.start, region.end
        if start is not None and start < 0:
            raise InvalidRangeError(f"start {start} is negative", field="start")
        if end is not None and end < 0:
            raise InvalidRangeError(f"end {end} is negative", field="end")
        if start is not None and end is not None and start > end:
            raise InvalidRangeError(f"start {start} is after end {end}", field="start")
        if name is None or name == "*":
            if start is not None or end is not None:
                raise InputError(
                    "start and end need the name of a reference", field="start"
                )
            return -1, _Interval(0, _MAX_POSITION)
        tid = self._names.get(name)
        if tid is None:
            raise NotFoundError(f"reference {name!r} is not in the alignment file")
        length = self._header.lengths[tid]
        if start is not None and start > length:
            raise InvalidRangeError(
                f"start {start} is after the end of {name} ({length})", field="start"
            )
        return tid, _Interval(
            0 if start is None else start, _MAX_POSITION if end is None else end
        )

    def _everything(self) -> Iterator[_Item]:
        cursor = _Cursor(self._blocks, self._header.end)
        yield from _scan(cursor, None, lambda record: _Verdict.KEEP)

    def _selected(self, plan: dict[int, list[_Interval]]) -> Iterator[_Item]:
        for tid, intervals in plan.items():
            if tid < 0:
                cursor = _Cursor(self._blocks, self._unplaced_start())
                yield from _scan(cursor, None, _is_unplaced)
                continue
            keep = _overlap_test(tid, intervals)
            for start, end in self._chunks(tid, intervals):
                cursor = _Cursor(self._blocks, start)
                stopped = False
                for item in _scan(cursor, end, keep):
                    if item is _STOP:
                        stopped = True
                        break
                    yield item
                if stopped:
                    break

    def _chunks(self, tid: int, intervals: list[_Interval]) -> list[tuple[int, int]]:
        if tid < 0:
            return [(self._unplaced_start(), self._blocks.size << 16)]
        index = self._loaded_index()
        chunks: list[tuple[int, int]] = []
        for interval in intervals:
            chunks.extend(index.chunks(tid, interval.start, interval.end))
        return merge_chunks(chunks)

    def _unplaced_start(self) -> int:
        index = self._loaded_index()
        return max(index.last_placed_end(), self._header.end)

    def _loaded_index(self) -> BamIndex:
        with self._index_lock:
            if self._index is None:
                if self._index_bytes is None:
                    self._index = _build_index(self._blocks, self._header)
                else:
                    self._index = parse_index(self._index_bytes, self._index_kind)
                    self._index_bytes = None
            return self._index


# BGZF: reading blocks through read(), writing them.


class _Blocks:
    """The BGZF blocks of the plaintext, inflated on demand, a few kept.

    Safe to share between threads (one StoredReads serves concurrent requests):
    the read-ahead window is replaced as one tuple, the cache under a lock.
    """

    def __init__(self, read: Callable[[int, int], bytes], size: int) -> None:
        self._read = read
        self.size = size
        self._window: tuple[int, bytes] = (0, b"")  # (start, bytes from start)
        self._lock = threading.Lock()
        self._cache: collections.OrderedDict[int, tuple[bytes, bytes]] = (
            collections.OrderedDict()
        )

    def block(self, offset: int) -> tuple[bytes, bytes]:
        """The inflated data and the compressed bytes of the block at ``offset``."""
        with self._lock:
            cached = self._cache.get(offset)
            if cached is not None:
                self._cache.move_to_end(offset)
                return cached
        head = self._bytes(offset, _BGZF_FIXED_HEADER)
        if len(head) == _BGZF_FIXED_HEADER:
            # The extra field (mostly just BC, 6 bytes) holds the block's size.
            extra_length = int.from_bytes(head[10:12], "little")
            head = self._bytes(offset, _BGZF_FIXED_HEADER + max(extra_length, 6))
        compressed = self._bytes(offset, bgzf.block_size(head))
        data = bgzf.decompress_block(compressed)
        with self._lock:
            self._cache[offset] = (data, compressed)
            if len(self._cache) > _CACHED_BLOCKS:
                self._cache.popitem(last=False)
        return data, compressed

    def _bytes(self, offset: int, length: int) -> bytes:
        end = min(offset + length, self.size)
        window_start, window = self._window
        if not (window_start <= offset and end <= window_start + len(window)):
            # Blocks are mostly read in order: fetch ahead, not block by block.
            window_start = offset
            window = self._read(offset, min(max(length, _READ_AHEAD), end - offset))
            self._window = (window_start, window)
        start = offset - window_start
        return window[start : start + end - offset]


class _Cursor:
    """The inflated stream from a virtual offset on, read across blocks."""

    def __init__(self, blocks: _Blocks, virtual_offset: int) -> None:
        self._blocks = blocks
        self.block_offset = virtual_offset >> 16
        self.position = virtual_offset & 0xFFFF
        if self.block_offset >= blocks.size:
            self.data, self.compressed = b"", b""
        else:
            self.data, self.compressed = blocks.block(self.block_offset)
        if self.position > len(self.data):
            raise StoreError(f"damaged BAM index: no virtual offset {virtual_offset}")

    def tell(self) -> int:
        """The virtual offset of the next byte (of the next block at a block's end)."""
        self.at_data()
        return (self.block_offset << 16) | self.position

    def at_data(self) -> bool:
        """Move past spent (and empty) blocks; ``False`` at the end of the file."""
        while self.position >= len(self.data):
            following = self.block_offset + len(self.compressed)
            if not self.compressed or following >= self._blocks.size:
                return False
            self.block_offset = following
            self.data, self.compressed = self._blocks.block(following)
            self.position = 0
        return True

    def skip_block(self) -> None:
        self.position = len(self.data)

    def read(self, length: int) -> bytes:
        parts = []
        while length > 0:
            if not self.at_data():
                raise StoreError("damaged BAM: it ends inside a record")
            part = self.data[self.position : self.position + length]
            self.position += len(part)
            length -= len(part)
            parts.append(part)
        return b"".join(parts)

    def read_record(self) -> bytes | None:
        """The next record with its ``block_size``, ``None`` at the end of file."""
        if not self.at_data():
            return None
        size_bytes = self.read(4)
        (block_size,) = struct.unpack("<i", size_bytes)
        if block_size < RECORD_CORE.size:
            raise StoreError(f"damaged BAM: a record of {block_size} bytes")
        return size_bytes + self.read(block_size)


# The BAM header.


@dataclasses.dataclass(frozen=True)
class _Header:
    raw: bytes
    names: tuple[str, ...]
    lengths: tuple[int, ...]
    end: int  # virtual offset of the first record


def _read_header(blocks: _Blocks) -> _Header:
    cursor = _Cursor(blocks, 0)
    magic = cursor.read(4)
    if magic != _BAM_MAGIC:
        raise UnsupportedFormatError("not a BAM file (no BAM magic in its first block)")
    (text_length,) = struct.unpack("<i", cursor.read(4))
    text = cursor.read(text_length)
    (num_references,) = struct.unpack("<i", cursor.read(4))
    parts = [magic, struct.pack("<i", text_length), text]
    parts.append(struct.pack("<i", num_references))
    names: list[str] = []
    lengths: list[int] = []
    for _ in range(num_references):
        length_bytes = cursor.read(4)
        (name_length,) = struct.unpack("<i", length_bytes)
        name = cursor.read(name_length)
        reference_length = cursor.read(4)
        parts += [length_bytes, name, reference_length]
        names.append(name.rstrip(b"\0").decode())
        lengths.append(struct.unpack("<i", reference_length)[0])
    return _Header(b"".join(parts), tuple(names), tuple(lengths), cursor.tell())


# Choosing records.


@dataclasses.dataclass(frozen=True)
class _Interval:
    start: int
    end: int


class _Verdict(enum.Enum):
    KEEP = 1
    SKIP = 2
    STOP = 3  # past the region: nothing further in the file overlaps


class _Stop:
    pass


_STOP = _Stop()


@dataclasses.dataclass(frozen=True)
class _SourceBlock:
    """A source BGZF block whose records are all kept, copied as it is."""

    compressed: bytes
    records: list[bytes]


_Item = bytes | _SourceBlock | _Stop


def _alignment_end(record: bytes) -> int:
    """End of the alignment span (exclusive), as htslib's ``bam_endpos``."""
    _, position, name_length, _, _, num_cigar, flag = struct.unpack_from(
        "<iiBBHHH", record, 4
    )
    length = 0
    if not flag & _UNMAPPED and num_cigar:
        offset = 4 + 32 + name_length
        for operation in struct.unpack_from(f"<{num_cigar}I", record, offset):
            if operation & 0xF in _REFERENCE_CONSUMING:
                length += operation >> 4
    return int(position) + (length or 1)


def _overlap_test(tid: int, intervals: list[_Interval]) -> Callable[[bytes], _Verdict]:
    last_end = max(interval.end for interval in intervals)

    def keep(record: bytes) -> _Verdict:
        record_tid, position = struct.unpack_from("<ii", record, 4)
        if record_tid != tid or position >= last_end:
            return _Verdict.STOP
        end: int | None = None
        for interval in intervals:
            if position >= interval.end:
                continue
            if position >= interval.start:
                return _Verdict.KEEP  # a span is at least one base
            if end is None:
                end = _alignment_end(record)
            if end > interval.start:
                return _Verdict.KEEP
        return _Verdict.SKIP

    return keep


def _is_unplaced(record: bytes) -> _Verdict:
    (record_tid,) = struct.unpack_from("<i", record, 4)
    return _Verdict.KEEP if record_tid == -1 else _Verdict.SKIP


def _scan(
    cursor: _Cursor, stop: int | None, keep: Callable[[bytes], _Verdict]
) -> Iterator[_Item]:
    """The kept records from the cursor up to virtual offset ``stop`` (or the end).

    Yields ``_STOP`` when ``keep`` says nothing further can overlap.
    """
    while cursor.at_data():
        if stop is not None and cursor.tell() >= stop:
            return
        if cursor.position == 0 and (stop is None or _next_block(cursor) <= stop):
            records = _whole_records(cursor.data)
            if records and all(keep(record) is _Verdict.KEEP for record in records):
                yield _SourceBlock(cursor.compressed, records)
                cursor.skip_block()
                continue
        record = cursor.read_record()
        if record is None:
            return
        verdict = keep(record)
        if verdict is _Verdict.STOP:
            yield _STOP
            return
        if verdict is _Verdict.KEEP:
            yield record


def _next_block(cursor: _Cursor) -> int:
    return (cursor.block_offset + len(cursor.compressed)) << 16


def _whole_records(data: bytes) -> list[bytes] | None:
    """The records of a block, if it holds whole records only (htslib writes so)."""
    records = []
    position = 0
    while position + 4 <= len(data):
        (block_size,) = struct.unpack_from("<i", data, position)
        end = position + 4 + block_size
        if block_size < RECORD_CORE.size or end > len(data):
            return None
        records.append(data[position:end])
        position = end
    return records if position == len(data) else None


def _write(
    items: Iterator[_Item], reencode: Callable[[bytes], bytes] | None
) -> Iterator[bytes]:
    writer = bgzf.BgzfWriter()
    for item in items:
        if isinstance(item, _SourceBlock):
            if reencode is None:
                yield writer.flush() + item.compressed
                continue
            blocks = b"".join(writer.write(reencode(r)) for r in item.records)
        elif isinstance(item, bytes):
            blocks = writer.write(item if reencode is None else reencode(item))
        else:
            continue
        if blocks:
            yield blocks
    last = writer.flush()
    if last:
        yield last


def _build_index(blocks: _Blocks, header: _Header) -> BamIndex:
    """An index of a BAM without one, from one scan of its records."""
    builder = IndexBuilder(header.lengths)
    cursor = _Cursor(blocks, header.end)
    offset = cursor.tell()
    while (record := cursor.read_record()) is not None:
        tid, position = struct.unpack_from("<ii", record, 4)
        builder.push(tid, position, _alignment_end(record), offset)
        offset = cursor.tell()
    return builder.finish(offset)
