"""Exact slices of a stored CRAM, decoded only in memory.

A :class:`StoredCram` sees the CRAM as ``read(offset, length)`` over its plaintext
(the decrypting reader of a Crypt4GH file). A slice holds exactly the records
``samtools view FILE REGION`` returns: those whose alignment span, from POS over
the CIGAR's reference-consuming operations (one base for an unmapped read or a
CIGAR without such operations), overlaps the region; an unmapped read placed at
its mate's position counts there. Several regions give each record once, in file
order (``samtools view -M``).

CRAM containers stand alone (each carries its compression header), so a slice is
made of whole containers (CRAMv3 §7-8): the CRAI index (§12, gzipped text, one
line per slice: reference id, 1-based alignment start, span, container offset,
slice offset, slice size) or, without one, the container headers themselves say
which containers may hold records of the regions. The file definition and SAM
header container, those containers and an EOF container make a small CRAM that
lives in an anonymous in-memory file (``memfd_create``, Linux); htslib decodes it
through ``/dev/fd/N`` against the reference FASTA, the records overlapping the
regions are kept and written, as CRAM or BAM, to a second in-memory file whose
bytes are the answer. No plaintext reaches a disk; the memory held is about the
containers of the slice plus the answer.

htsget ``fields``, ``tags`` and ``notags`` are applied as :mod:`.reads` applies
them to a BAM: a field not asked for gets its SAM "missing" value; FLAG, RNAME and
POS are always kept; QUAL without SEQ keeps the qualities and makes the bases
``N``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import os
import pathlib
import re
import struct
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import Literal

import pysam

from ..errors import (
    InputError,
    InvalidRangeError,
    NotFoundError,
    StoreError,
    UnsupportedFormatError,
)
from .read_fields import READ_FIELDS, read_parameters_change_records
from .reads import ReadRegion

__all__ = ["StoredCram"]

_FILE_DEFINITION_SIZE = 26  # "CRAM", major, minor, 20-byte file id
#: The EOF container of CRAM 3.x (CRAMv3 §9): an empty container, reference -1.
_EOF_CONTAINER_3 = bytes.fromhex(
    "0f000000ffffffff0fe0454f4600000000010005bdd94f0001000606010001000100ee63014b"
)
_EMPTY_INDEX = gzip.compress(b"", mtime=0)
_CONTAINER_HEADER_MAX = 1024  # fixed fields and landmarks of all but huge containers
_CHUNK_SIZE = 1 << 20
_MULTIPLE_REFERENCES = -2
_UNPLACED = -1
_MAX_POSITION = (1 << 63) - 1
_UNMAPPED = 0x4
_REFERENCE_CONSUMING = frozenset((0, 2, 3, 7, 8))  # M D N = X
_TAG = re.compile(r"^[A-Za-z][A-Za-z0-9]$")


@dataclasses.dataclass(frozen=True)
class _Span:
    """A reference range the records of a container's slice cover.

    ``start`` is 0-based, ``end`` exclusive; ``tid`` -1 is unplaced reads, -2 a
    slice of several references (it may hold anything).
    """

    tid: int
    start: int
    end: int


@dataclasses.dataclass(frozen=True)
class _Container:
    """A data container: where it is, its size (header and blocks), what it covers."""

    offset: int
    size: int
    spans: tuple[_Span, ...]


@dataclasses.dataclass(frozen=True)
class _Target:
    tid: int  # -1: unplaced reads; -3: every read
    start: int
    end: int


_EVERYTHING = -3


class StoredCram:
    """A CRAM reached only through a plaintext reader (the decrypting reader of a
    Crypt4GH file).

    Parameters
    ----------
    read
        ``read(offset, length)``: ``length`` plaintext bytes from ``offset`` (fewer
        only at the end).
    size
        The plaintext size.
    index
        The CRAI index, as bytes; ``None`` reads the container headers instead.
    reference
        The FASTA the CRAM was compressed against, indexed (``.fai`` beside it).

    Raises
    ------
    UnsupportedFormatError
        The file is not a CRAM, or a CRAM of a version other than 3.x.
    StoreError
        The file, its index or the reference is damaged or missing.
    """

    def __init__(
        self,
        read: Callable[[int, int], bytes],
        size: int,
        *,
        index: bytes | None,
        reference: pathlib.Path,
    ) -> None:
        definition = read(0, _FILE_DEFINITION_SIZE) if size else b""
        if len(definition) < _FILE_DEFINITION_SIZE or definition[:4] != b"CRAM":
            raise UnsupportedFormatError("not a CRAM file (no CRAM magic at its start)")
        self._major_version = definition[4]
        if self._major_version != 3:
            raise UnsupportedFormatError(
                f"CRAM {definition[4]}.{definition[5]} is not served (CRAM 3.x is)",
                field="format",
            )
        if not reference.is_file():
            raise StoreError(f"the reference FASTA {reference} of a CRAM is missing")
        self._read = read
        self._size = size
        self._reference = reference
        header_container = _container_at(read, size, _FILE_DEFINITION_SIZE)
        # The file definition and the SAM header container open every slice.
        self._head = read(0, _FILE_DEFINITION_SIZE + header_container.size)
        with _decoded(self._head, reference) as alignments:
            self._header = alignments.header
        self._names = {name: tid for tid, name in enumerate(self._header.references)}
        self._lengths = list(self._header.lengths)
        first = _FILE_DEFINITION_SIZE + header_container.size
        if index is None:
            self._containers = _scan_containers(read, size, first)
        else:
            self._containers = _indexed_containers(read, size, index)

    def reference_names(self) -> list[str]:
        """The references of the header, in order (the CRAM's reference ids)."""
        return list(self._header.references)

    def slice(
        self,
        regions: Sequence[ReadRegion] | None,
        *,
        output_format: Literal["CRAM", "BAM"] = "CRAM",
        fields: frozenset[str] | None = None,
        tags: frozenset[str] | None = None,
        notags: frozenset[str] = frozenset(),
    ) -> Iterator[bytes]:
        """A complete CRAM (or BAM): header, the records overlapping any of
        ``regions``, EOF.

        ``None`` is the whole file. A record overlapping several regions is there
        once, records in file order (``samtools view -M``).

        Raises
        ------
        NotFoundError
            A reference is not in the header.
        InvalidRangeError
            ``start`` or ``end`` is negative, ``start`` is after ``end`` or after
            the reference's end.
        InputError
            An unknown field, a malformed tag name or an unknown output format
            (``field`` names the parameter).

        These are raised here, before any decoding; decoding starts with the
        first item taken from the iterator.
        """
        if output_format not in ("CRAM", "BAM"):
            raise InputError(
                f"unknown output format {output_format!r}; use CRAM or BAM",
                field="format",
            )
        targets = self._targets(regions)
        edit = _record_editor(fields, tags, notags)
        if (
            output_format == "CRAM"
            and fields is not None
            and "CIGAR" not in fields
            and fields & {"SEQ", "QUAL"}
        ):
            # htslib cannot encode the bases of a placed read without its CIGAR.
            raise InputError(
                "a CRAM cannot hold SEQ or QUAL without the CIGAR; ask for CIGAR "
                "too, or for format BAM",
                field="fields",
            )
        if (
            output_format == "CRAM"
            and edit is None
            and any(target.tid == _EVERYTHING for target in targets)
        ):
            return self._whole_file()
        containers = self._selected(targets)
        return self._decoded_slice(containers, targets, output_format, edit)

    def estimated_size(self, regions: Sequence[ReadRegion] | None) -> int:
        """About how many bytes :meth:`slice` returns as CRAM: the header and the
        containers it decodes; the whole file for ``None``."""
        targets = self._targets(regions)
        if any(target.tid == _EVERYTHING for target in targets):
            return self._size
        containers = self._selected(targets)
        return (
            len(self._head)
            + sum(container.size for container in containers)
            + len(_EOF_CONTAINER_3)
        )

    # Regions and the containers that may hold their records.

    def _targets(self, regions: Sequence[ReadRegion] | None) -> list[_Target]:
        if regions is None:
            return [_Target(_EVERYTHING, 0, _MAX_POSITION)]
        return [self._target(region) for region in regions]

    def _target(self, region: ReadRegion) -> _Target:
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
            return _Target(_EVERYTHING if name is None else _UNPLACED, 0, _MAX_POSITION)
        tid = self._names.get(name)
        if tid is None:
            raise NotFoundError(f"reference {name!r} is not in the alignment file")
        length = self._lengths[tid]
        if start is not None and start > length:
            raise InvalidRangeError(
                f"start {start} is after the end of {name} ({length})", field="start"
            )
        return _Target(
            tid, 0 if start is None else start, _MAX_POSITION if end is None else end
        )

    def _selected(self, targets: list[_Target]) -> list[_Container]:
        """The containers that may hold records of the targets, in file order."""
        if any(target.tid == _EVERYTHING for target in targets):
            return list(self._containers)
        return [
            container
            for container in self._containers
            if any(_may_hold(container, target) for target in targets)
        ]

    # Making the answer.

    def _whole_file(self) -> Iterator[bytes]:
        for offset in range(0, self._size, _CHUNK_SIZE):
            yield self._read(offset, min(_CHUNK_SIZE, self._size - offset))

    def _decoded_slice(
        self,
        containers: list[_Container],
        targets: list[_Target],
        output_format: Literal["CRAM", "BAM"],
        edit: Callable[[pysam.AlignedSegment], None] | None,
    ) -> Iterator[bytes]:
        keep = _overlap_test(targets)
        mode = "wc" if output_format == "CRAM" else "wb"
        with contextlib.ExitStack() as stack:
            answer = stack.enter_context(_memory_file("genomenode-cram-slice"))
            source = b"".join(
                [
                    self._head,
                    *(self._read(c.offset, c.size) for c in containers),
                    _EOF_CONTAINER_3,
                ]
            )
            with (
                _decoded(source, self._reference) as alignments,
                pysam.AlignmentFile(
                    f"/dev/fd/{answer}",
                    mode,
                    header=alignments.header,
                    reference_filename=str(self._reference),
                ) as output,
            ):
                del source  # htslib reads its own copy, in the memory file
                try:
                    for record in alignments:
                        if keep(record):
                            if edit is not None:
                                edit(record)
                            output.write(record)
                except OSError as error:
                    raise StoreError(f"damaged CRAM: {error}") from None
            size = os.fstat(answer).st_size
            for offset in range(0, size, _CHUNK_SIZE):
                yield os.pread(answer, min(_CHUNK_SIZE, size - offset), offset)


# In-memory files that htslib opens by name.


@contextlib.contextmanager
def _memory_file(name: str, content: bytes = b"") -> Iterator[int]:
    """An anonymous file in RAM holding ``content``; its descriptor, closed after."""
    try:
        descriptor = os.memfd_create(name, os.MFD_CLOEXEC)
    except (AttributeError, OSError) as error:
        raise UnsupportedFormatError(
            f"CRAM slices need in-memory files (memfd_create, Linux): {error}"
        ) from None
    try:
        view = memoryview(content)
        while view:
            written = os.write(descriptor, view)
            view = view[written:]
        yield descriptor
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def _decoded(content: bytes, reference: pathlib.Path) -> Iterator[pysam.AlignmentFile]:
    """``content``, a whole CRAM, opened for reading from RAM."""
    with (
        _memory_file("genomenode-cram", content) as descriptor,
        _memory_file("genomenode-crai", _EMPTY_INDEX) as index,
    ):
        try:
            # An empty index keeps htslib from looking for one beside
            # /dev/fd/N (and complaining); the records are read in order.
            alignments = pysam.AlignmentFile(
                f"/dev/fd/{descriptor}",
                "rc",
                reference_filename=str(reference),
                index_filename=f"/dev/fd/{index}",
                check_sq=False,
            )
        except (OSError, ValueError) as error:
            raise StoreError(f"damaged CRAM: {error}") from None
        with alignments:
            yield alignments


# Containers (CRAMv3 §7.1) and the CRAI index (§12).


def _itf8(data: bytes, position: int) -> tuple[int, int]:
    """The ITF8 integer at ``position`` (signed 32-bit) and the position after it."""
    first = data[position]
    if first < 0x80:
        return first, position + 1
    if first < 0xC0:
        value = ((first & 0x3F) << 8) | data[position + 1]
        return value, position + 2
    if first < 0xE0:
        value = ((first & 0x1F) << 16) | int.from_bytes(
            data[position + 1 : position + 3], "big"
        )
        return value, position + 3
    if first < 0xF0:
        value = ((first & 0x0F) << 24) | int.from_bytes(
            data[position + 1 : position + 4], "big"
        )
        return value, position + 4
    value = (
        ((first & 0x0F) << 28)
        | (int.from_bytes(data[position + 1 : position + 4], "big") << 4)
        | (data[position + 4] & 0x0F)
    )
    return value - (1 << 32) if value & (1 << 31) else value, position + 5


def _ltf8(data: bytes, position: int) -> int:
    """The position after the LTF8 integer at ``position`` (its value is not used)."""
    first = data[position]
    extra = 0
    while extra < 8 and first & (0x80 >> extra):
        extra += 1
    return position + 1 + extra


def _container_at(
    read: Callable[[int, int], bytes], size: int, offset: int
) -> _Container:
    """The container whose header starts at ``offset``."""
    head = read(offset, min(_CONTAINER_HEADER_MAX, size - offset))
    try:
        (length,) = struct.unpack_from("<i", head, 0)
        tid, position = _itf8(head, 4)
        start, position = _itf8(head, position)
        span, position = _itf8(head, position)
        _, position = _itf8(head, position)  # records
        position = _ltf8(head, position)  # record counter
        position = _ltf8(head, position)  # bases
        _, position = _itf8(head, position)  # blocks
        num_landmarks, position = _itf8(head, position)
        for _ in range(num_landmarks):
            _, position = _itf8(head, position)
        header_size = position + 4  # the header's CRC32
    except (IndexError, struct.error):
        raise StoreError(f"damaged CRAM: no container header at {offset}") from None
    if header_size > len(head) or length < 0 or offset + header_size + length > size:
        raise StoreError(f"damaged CRAM: a container at {offset} runs past the end")
    # Container starts are 1-based; a start of 0 (unplaced reads) stays 0.
    first = max(start - 1, 0)
    return _Container(offset, header_size + length, (_Span(tid, first, first + span),))


def _scan_containers(
    read: Callable[[int, int], bytes], size: int, offset: int
) -> list[_Container]:
    """The data containers from ``offset`` on, from their headers alone."""
    containers = []
    while offset < size:
        container = _container_at(read, size, offset)
        if read(offset, len(_EOF_CONTAINER_3)) == _EOF_CONTAINER_3:
            break
        containers.append(container)
        offset += container.size
    return containers


def _indexed_containers(
    read: Callable[[int, int], bytes], size: int, index: bytes
) -> list[_Container]:
    """The data containers the CRAI lists, each with the range of its slices."""
    try:
        text = gzip.decompress(index).decode("ascii")
        lines = [
            [int(value) for value in line.split("\t")]
            for line in text.splitlines()
            if line.strip()
        ]
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, ValueError) as error:
        raise StoreError(f"damaged CRAI index: {error}") from None
    if any(len(line) != 6 for line in lines):
        raise StoreError("damaged CRAI index: a line without 6 fields")
    # One line per slice and reference: a container of several slices or
    # references has several lines.
    spans: dict[int, list[_Span]] = {}
    for tid, start, span, offset, _, _ in lines:
        first = max(start - 1, 0)
        spans.setdefault(offset, []).append(_Span(tid, first, first + span))
    return [
        dataclasses.replace(
            _container_at(read, size, offset), spans=tuple(spans[offset])
        )
        for offset in sorted(spans)
    ]


def _may_hold(container: _Container, target: _Target) -> bool:
    return any(
        span.tid == _MULTIPLE_REFERENCES
        or (
            span.tid == target.tid
            and (
                target.tid == _UNPLACED
                or (span.start < target.end and span.end > target.start)
            )
        )
        for span in container.spans
    )


# Choosing and editing records.


def _alignment_end(record: pysam.AlignedSegment) -> int:
    """End of the alignment span (exclusive), as htslib's ``bam_endpos``."""
    length = 0
    if not record.flag & _UNMAPPED and record.cigartuples:
        length = sum(
            count
            for operation, count in record.cigartuples
            if operation in _REFERENCE_CONSUMING
        )
    return record.reference_start + (length or 1)


def _overlap_test(targets: list[_Target]) -> Callable[[pysam.AlignedSegment], bool]:
    if any(target.tid == _EVERYTHING for target in targets):
        return lambda record: True
    by_reference: dict[int, list[_Target]] = {}
    for target in targets:
        by_reference.setdefault(target.tid, []).append(target)

    def keep(record: pysam.AlignedSegment) -> bool:
        candidates = by_reference.get(record.reference_id)
        if candidates is None:
            return False
        if record.reference_id == _UNPLACED:
            return True
        start = record.reference_start
        end = _alignment_end(record)
        return any(start < t.end and end > t.start for t in candidates)

    return keep


def _record_editor(
    fields: frozenset[str] | None, tags: frozenset[str] | None, notags: frozenset[str]
) -> Callable[[pysam.AlignedSegment], None] | None:
    """An editor of records for these parameters; ``None`` keeps them as they are."""
    if not read_parameters_change_records(fields, tags, notags):
        return None
    wanted = READ_FIELDS if fields is None else fields

    def edit(record: pysam.AlignedSegment) -> None:
        for tag, _ in record.get_tags():
            if (tags is not None and tag not in tags) or tag in notags:
                record.set_tag(tag, None)  # removes it, the others as they were
        if "QNAME" not in wanted:
            record.query_name = "*"
        if "MAPQ" not in wanted:
            record.mapping_quality = 255
        if "CIGAR" not in wanted:
            record.cigartuples = None
        if "RNEXT" not in wanted:
            record.next_reference_id = -1
        if "PNEXT" not in wanted:
            record.next_reference_start = -1
        if "TLEN" not in wanted:
            record.template_length = 0
        if "SEQ" not in wanted:
            qualities = record.query_qualities if "QUAL" in wanted else None
            if qualities is None:
                record.query_sequence = None
            else:
                record.query_sequence = "N" * len(qualities)
                record.query_qualities = qualities
        elif "QUAL" not in wanted:
            record.query_qualities = None

    return edit
