"""Exact slices of a stored bgzipped VCF, as VCF or BCF, without touching the disk.

A slice holds exactly the records ``bcftools view -r`` returns for the same
regions: those whose span (POS over the length of REF, or to INFO/END) overlaps a
region. The index (``.tbi``, ``.csi``, or one built by a scan) names the chunks
that may hold such records; only the BGZF blocks those chunks touch are read
(through the decrypting reader) and inflated, and only the first eight columns of
each line are parsed. Blocks whose every byte is wanted are copied as they are;
the rest is recompressed. BCF is made by htslib from the VCF slice, in memory
files, record for record as ``bcftools view -Ob`` makes it (INFO/END included).
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import os
import re
import struct
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from typing import Final, Literal

from ..errors import (
    InvalidRangeError,
    NotFoundError,
    StoreError,
    UnsupportedFormatError,
)
from ..store import bgzf
from ..store.vcf_index import (
    Chunk,
    VariantIndex,
    build_index,
    merge_chunks,
    parse_index,
    vcf_record_span,
)
from ..vocab.contigs import find_contig
from .htslib import HtslibError, vcf_to_bcf
from .reads import ReadRegion

__all__ = [
    "OUTPUT_FORMATS",
    "OutputFormat",
    "Region",
    "StoredVariants",
    "regions_as_named",
]

OutputFormat = Literal["VCF", "BCF"]
OUTPUT_FORMATS: Final[tuple[str, ...]] = ("VCF", "BCF")

# A piece of output: a range of one block's inflated data, or literal bytes.
_Piece = tuple[bgzf.BgzfBlock, int, int] | bytes

_CONTIG_ID = re.compile(rb"^##contig=<(?:[^\n]*?,)?ID=([^,>\n]+)", re.MULTILINE)
_DECLARED = re.compile(
    rb"^##(contig|FILTER|INFO|FORMAT)=<(?:[^\n]*?,)?ID=([^,>\n]+)", re.MULTILINE
)
_INFO_END_INTEGER = re.compile(rb"^##INFO=<ID=END,(?=[^\n]*Type=Integer)", re.MULTILINE)
_BCF_MAGIC: Final = b"BCF\x02\x02"
#: VCF text converted to BCF at once: memory stays within a few times this.
_BCF_BATCH: Final = 8 << 20


@dataclasses.dataclass(frozen=True)
class Region:
    """A region of one reference sequence, in htsget's coordinates.

    Parameters
    ----------
    reference_name
        The reference sequence (VCF CHROM).
    start
        0-based first base; None for the start of the reference.
    end
        0-based, exclusive; None for the end of the reference.
    """

    reference_name: str
    start: int | None = None
    end: int | None = None


def regions_as_named(
    regions: Sequence[ReadRegion] | None, names: Iterable[str], assembly: str | None
) -> tuple[ReadRegion, ...] | None:
    """``regions`` with each ``referenceName`` spelled as the file spells it.

    A chromosome may be asked for in any spelling (``22`` of a ``chr22`` file,
    ``chrM`` of ``MT``, ``NC_000022.11`` in a GRCh38 dataset:
    :func:`genomenode.vocab.contigs.find_contig`); a name the file does not have
    in any spelling is kept, for the caller to refuse.
    """
    if regions is None:
        return None
    known = list(names)
    renamed = []
    for region in regions:
        name = region.reference_name
        found = None if name is None else find_contig(known, name, assembly)
        renamed.append(dataclasses.replace(region, reference_name=found or name))
    return tuple(renamed)


@dataclasses.dataclass(frozen=True)
class _ReferencePlan:
    """What to read of one reference: merged wanted intervals and the chunks
    that may hold records overlapping them, in file order."""

    reference_name: str
    intervals: list[tuple[int, int]]
    chunks: list[Chunk]


class StoredVariants:
    """A bgzipped VCF reached only through a plaintext reader.

    Parameters
    ----------
    read
        ``read(offset, length)`` returns the plaintext bytes ``[offset, offset +
        length)`` of the bgzipped VCF (the decrypting reader of a Crypt4GH file).
    size
        The length of the bgzipped VCF.
    index
        The bytes of its ``.tbi`` or ``.csi`` index. Without one, the file is
        scanned once (a block at a time) to build an equivalent index, kept on
        this object.
    index_kind
        ``"tbi"`` or ``"csi"``; recognised from the index's magic when None.

    Raises
    ------
    StoreError
        If the file is not BGZF, the index is damaged, or (when scanning) the
        records are not sorted.
    """

    def __init__(
        self,
        read: Callable[[int, int], bytes],
        size: int,
        *,
        index: bytes | None = None,
        index_kind: Literal["tbi", "csi"] | None = None,
    ) -> None:
        self._read = read
        self._size = size
        lines = bgzf.iter_lines(bgzf.read_blocks(read, size, 0, read_size=1 << 18))
        header_lines = []
        first_record: bgzf.BgzfLine | None = None
        for line in lines:
            if not line.text.startswith(b"#"):
                first_record = line
                break
            header_lines.append(line)
        if not header_lines or not header_lines[-1].text.startswith(b"#CHROM"):
            raise StoreError("not a VCF: no #CHROM header line")
        self._header = b"".join(line.text for line in header_lines)
        self._body_start = header_lines[-1].virtual_end
        self._index: VariantIndex
        if index is not None:
            self._index = parse_index(index, index_kind or _index_kind(index))
        else:
            records = itertools.chain([first_record] if first_record else [], lines)
            self._index = build_index(records)
        self._use_info_end = _INFO_END_INTEGER.search(self._header) is not None
        header_contigs = [name.decode() for name in _CONTIG_ID.findall(self._header)]
        self._reference_names = header_contigs + [
            name for name in self._index.reference_names if name not in header_contigs
        ]

    @property
    def index(self) -> VariantIndex:
        """The index in use (parsed, or built by the scan)."""
        return self._index

    def reference_names(self) -> list[str]:
        """The reference sequences of the VCF: its ``##contig`` lines, then any
        other the index names."""
        return list(self._reference_names)

    def header(self) -> bytes:
        """The plain-text VCF header: the ``##`` lines and the ``#CHROM`` line."""
        return self._header

    def eof(self) -> bytes:
        """The BGZF end-of-file block."""
        return bgzf.EOF_BLOCK

    def slice(
        self,
        regions: Sequence[Region] | None,
        *,
        output_format: OutputFormat = "VCF",
        include_header: bool = True,
        include_body: bool = True,
    ) -> Iterator[bytes]:
        """The bytes of a bgzipped VCF (or BCF) of the records in ``regions``.

        Parameters
        ----------
        regions
            The records overlapping any region are kept, each once, in file
            order; None keeps every record.
        output_format
            ``"VCF"`` or ``"BCF"``.
        include_header
            With the header, the output is a whole file, ending with the BGZF EOF
            block. Without, it is body blocks only, to be put between
            :meth:`header_part` and :meth:`eof` (as htsget tickets do).
        include_body
            False for the header alone.

        Raises
        ------
        NotFoundError
            A region names a reference the file does not have.
        InvalidRangeError
            A region starts after its end or at a negative position.
        UnsupportedFormatError
            ``output_format`` is neither VCF nor BCF.
        """
        _check_format(output_format)
        pieces: Iterator[_Piece] = iter(())
        if include_body:
            pieces = self._pieces(self._plan(regions))
        if output_format == "BCF":
            return _non_empty(self._bcf(pieces, include_header, include_body))
        return _non_empty(self._vcf(pieces, include_header))

    def header_part(self, output_format: OutputFormat = "VCF") -> bytes:
        """The header alone, bgzipped, without the EOF block."""
        return b"".join(
            self.slice(None, output_format=output_format, include_body=False)
        )[: -len(bgzf.EOF_BLOCK)]

    def body_part(
        self, region: Region, output_format: OutputFormat = "VCF"
    ) -> Iterator[bytes]:
        """The bgzipped records of one region: no header, no EOF block."""
        return self.slice([region], output_format=output_format, include_header=False)

    def estimated_size(self, regions: Sequence[Region] | None) -> int:
        """Compressed bytes of the header and of the candidate chunks of
        ``regions`` (a partly read block counted whole): what a slice reads."""
        if regions is None:
            return self._size
        header_end, header_within = bgzf.split_virtual_offset(self._body_start)
        total = header_end + (bgzf.MAX_BLOCK_SIZE if header_within else 0)
        for reference in self._plan(regions) or []:
            for chunk in reference.chunks:
                first, _ = bgzf.split_virtual_offset(chunk.virtual_start)
                last, within = bgzf.split_virtual_offset(chunk.virtual_end)
                total += last - first + (bgzf.MAX_BLOCK_SIZE if within else 0)
        return min(total, self._size)

    def _plan(self, regions: Sequence[Region] | None) -> list[_ReferencePlan] | None:
        # Per reference, in file order: the merged intervals wanted and the
        # chunks that may hold records overlapping them. None: every record.
        if regions is None:
            return None
        wanted: dict[str, list[tuple[int, int]]] = {}
        for region in regions:
            start, end = self._check_region(region)
            if end > start:
                wanted.setdefault(region.reference_name, []).append((start, end))
        order = {name: i for i, name in enumerate(self._index.reference_names)}
        plan = []
        for name in sorted(
            (name for name in wanted if name in order), key=order.__getitem__
        ):
            intervals = _merge_intervals(wanted[name])
            chunks: list[Chunk] = []
            for start, end in intervals:
                chunks.extend(self._index.chunks(name, start, end))
            plan.append(_ReferencePlan(name, intervals, merge_chunks(chunks)))
        return plan

    def _check_region(self, region: Region) -> tuple[int, int]:
        if region.reference_name not in self._reference_names:
            raise NotFoundError(
                f"reference {region.reference_name!r} is not in this file"
            )
        start = 0 if region.start is None else region.start
        if start < 0:
            raise InvalidRangeError(f"start {start} is negative", field="start")
        if region.end is None:
            return start, self._index.max_position
        if region.end < 0:
            raise InvalidRangeError(f"end {region.end} is negative", field="end")
        if start > region.end:
            raise InvalidRangeError(
                f"start {start} is after end {region.end}", field="start"
            )
        # No record of the index lies beyond its reach.
        return start, min(region.end, self._index.max_position)

    def _pieces(self, plan: list[_ReferencePlan] | None) -> Iterator[_Piece]:
        blocks = _BlockSource(self._read, self._size)
        if plan is None:
            yield from self._all_records(blocks)
            return
        for reference in plan:
            yield from self._overlapping_records(blocks, reference)

    def _all_records(self, blocks: _BlockSource) -> Iterator[_Piece]:
        # Every record: whole blocks, no line needs parsing.
        start, within = bgzf.split_virtual_offset(self._body_start)
        last = b"\n"
        for block in blocks.blocks(start, self._size):
            if within < len(block.data):
                yield block, within, len(block.data)
                last = block.data[-1:]
            within = 0
        if last != b"\n":
            yield b"\n"

    def _overlapping_records(
        self, blocks: _BlockSource, plan: _ReferencePlan
    ) -> Iterator[_Piece]:
        reference = plan.reference_name.encode()
        starts = [start for start, _ in plan.intervals]
        ends = [end for _, end in plan.intervals]
        beyond = ends[-1]
        for chunk in plan.chunks:
            first, within = bgzf.split_virtual_offset(chunk.virtual_start)
            last, last_within = bgzf.split_virtual_offset(chunk.virtual_end)
            chunk_blocks = blocks.blocks(first, last + 1 if last_within else last)
            for line in bgzf.iter_lines(chunk_blocks, within, chunk.virtual_end):
                text = line.text
                if text.startswith(b"#") or not text.strip():
                    continue
                chrom, start, end = vcf_record_span(text, info_end=self._use_info_end)
                if chrom != reference:
                    continue
                if start >= beyond:
                    # Records are sorted by POS: none further on can overlap.
                    return
                # The first interval ending after the record's start is the only
                # one it can overlap first; if it does not, none after does.
                i = bisect.bisect_right(ends, start)
                if i < len(ends) and starts[i] < end:
                    yield from line.pieces
                    if not text.endswith(b"\n"):
                        yield b"\n"

    def _vcf(
        self, pieces: Iterable[_Piece], include_header: bool
    ) -> Generator[bytes, None, None]:
        writer = bgzf.BgzfWriter()
        if include_header:
            yield writer.write(self._header)
        yield from _compress_pieces(pieces, writer)
        yield writer.flush()
        if include_header:
            yield bgzf.EOF_BLOCK

    def _bcf(
        self, pieces: Iterable[_Piece], include_header: bool, include_body: bool
    ) -> Generator[bytes, None, None]:
        writer = bgzf.BgzfWriter()
        first_header: bytes | None = None
        # Every reference of the index is declared, so that a header part and the
        # body parts made apart from it share one dictionary.
        references = {
            (b"contig", name.encode()): True for name in self._reference_names
        }
        header = _declare_missing(self._header, references)
        batches = _text_batches(pieces, _BCF_BATCH)
        for bcf in _vcf_to_bcf(header, batches, may_declare=include_header):
            if not bcf.startswith(_BCF_MAGIC):
                raise StoreError("htslib wrote something other than BCF")
            header_length = 9 + int(struct.unpack_from("<I", bcf, 5)[0])
            if first_header is None:
                first_header = bcf[:header_length]
                if include_header:
                    yield writer.write(first_header)
            elif bcf[:header_length] != first_header:
                raise StoreError("htslib wrote two BCF headers for one slice")
            if include_body:
                yield writer.write(bcf[header_length:])
        yield writer.flush()
        if include_header:
            yield bgzf.EOF_BLOCK


def _non_empty(chunks: Generator[bytes, None, None]) -> Iterator[bytes]:
    # Empty chunks are noise to a streaming response; closing this generator
    # closes the one below (and its memory files) at once.
    try:
        for chunk in chunks:
            if chunk:
                yield chunk
    finally:
        chunks.close()


def _check_format(output_format: str) -> None:
    if output_format not in OUTPUT_FORMATS:
        raise UnsupportedFormatError(
            f"format {output_format!r} is not served for variants; "
            f"ask for one of {', '.join(OUTPUT_FORMATS)}",
            field="format",
        )


def _index_kind(index: bytes) -> Literal["tbi", "csi"]:
    magic = index[:4] if index[:3] in (b"TBI", b"CSI") else bgzf.decompress(index)[:4]
    if magic == b"TBI\x01":
        return "tbi"
    if magic == b"CSI\x01":
        return "csi"
    raise StoreError("index is neither tabix (.tbi) nor CSI")


def _merge_intervals(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


class _BlockSource:
    """Blocks read through ``read``, keeping the last one: consecutive chunks
    often end and start in the same block."""

    def __init__(self, read: Callable[[int, int], bytes], size: int) -> None:
        self._read = read
        self._size = size
        self._last: bgzf.BgzfBlock | None = None

    def blocks(self, start: int, stop: int) -> Iterator[bgzf.BgzfBlock]:
        """The blocks starting in ``[start, stop)``."""
        offset = start
        if self._last is not None and self._last.offset == start and start < stop:
            yield self._last
            offset = self._last.next_offset
        if offset >= stop:
            return
        for block in bgzf.read_blocks(self._read, self._size, offset, stop):
            self._last = block
            yield block


def _compress_pieces(
    pieces: Iterable[_Piece], writer: bgzf.BgzfWriter
) -> Iterator[bytes]:
    """BGZF of the pieces' bytes; a block wanted whole is copied, not redone."""
    current: bgzf.BgzfBlock | None = None
    ranges: list[tuple[int, int]] = []

    def finish() -> bytes:
        if current is None:
            return b""
        if ranges == [(0, len(current.data))]:
            return writer.flush() + current.raw
        data = current.data
        return b"".join(writer.write(data[start:end]) for start, end in ranges)

    for piece in pieces:
        if isinstance(piece, bytes):
            yield finish()
            current, ranges = None, []
            yield writer.write(piece)
            continue
        block, start, end = piece
        if current is not None and block.offset != current.offset:
            yield finish()
            ranges = []
        current = block
        if ranges and ranges[-1][1] == start:
            ranges[-1] = (ranges[-1][0], end)
        else:
            ranges.append((start, end))
    yield finish()


def _text_batches(pieces: Iterable[_Piece], size: int) -> Iterator[bytes]:
    """The plain bytes of the pieces in batches of whole lines, each of at least
    ``size`` bytes but the last (no records: one empty batch)."""
    batch: list[bytes] = []
    length = 0
    yielded = False
    for piece in pieces:
        data = piece if isinstance(piece, bytes) else piece[0].data[piece[1] : piece[2]]
        batch.append(data)
        length += len(data)
        if length >= size:
            text = b"".join(batch)
            # Pieces may end inside a line (at a block boundary); cut after one.
            cut = text.rfind(b"\n") + 1
            if cut:
                yield text[:cut]
                yielded = True
            batch, length = [text[cut:]], len(text) - cut
    rest = b"".join(batch)
    if rest or not yielded:
        yield rest


def _vcf_to_bcf(
    header: bytes, record_batches: Iterable[bytes], *, may_declare: bool
) -> Iterator[bytes]:
    """Uncompressed BCF of each batch of VCF records, with the same header.

    htslib converts each batch (:func:`~genomenode.transfer.htslib.vcf_to_bcf`,
    as ``bcftools view`` does: an INFO/END within REF is kept, where pysam's
    writer would drop it) between two memory files (``memfd``: RAM, never a file
    system on disk) that it opens by their ``/dev/fd`` names. A
    batch at a time keeps memory bounded; the BCF header, the same for every
    batch, fixes the dictionary the records are encoded with, so the records of
    all batches belong after any one of the headers.

    Parameters
    ----------
    header
        The VCF header.
    record_batches
        VCF record lines, in batches of whole lines.
    may_declare
        Whether the first batch may add declarations of the tags its records
        use and ``header`` lacks (the header is yet to be sent).

    Raises
    ------
    UnsupportedFormatError
        If records use a tag the header lacks where it can no longer be added,
        or htslib cannot encode them.
    """
    with _MemoryFile("vcf") as vcf_file, _MemoryFile("bcf") as bcf_file:
        for batch in record_batches:
            declared = _declare_missing(header, _used_names(batch))
            if declared != header and not may_declare:
                raise UnsupportedFormatError(
                    "these records use INFO, FORMAT or FILTER names that the VCF "
                    "header does not declare, so they cannot be sent as BCF "
                    "apart from a header; ask for VCF",
                    field="format",
                )
            header, may_declare = declared, False
            vcf_file.replace(header + batch)
            bcf_file.replace(b"")
            try:
                vcf_to_bcf(vcf_file.path, bcf_file.path)
            except HtslibError as error:
                raise UnsupportedFormatError(
                    f"these records cannot be written as BCF: {error}", field="format"
                ) from error
            # htslib writes "uncompressed" BCF as level-0 BGZF: inflating is a copy.
            yield bgzf.decompress(bcf_file.contents())


def _used_names(records: bytes) -> dict[tuple[bytes, bytes], bool]:
    """The contigs, filters, INFO and FORMAT keys the record lines use, each with
    whether it comes with a value (INFO flags do not)."""
    used: dict[tuple[bytes, bytes], bool] = {}
    for fields in _first_nine_columns(records):
        names = [(b"contig", fields[0], True)]
        if len(fields) > 6 and fields[6] not in (b".", b"PASS"):
            names += [(b"FILTER", name, True) for name in fields[6].split(b";")]
        if len(fields) > 7 and fields[7] != b".":
            for entry in fields[7].split(b";"):
                key, equals, _ = entry.partition(b"=")
                names.append((b"INFO", key, bool(equals)))
        if len(fields) > 8:
            names += [(b"FORMAT", key, True) for key in fields[8].split(b":")]
        for kind, name, has_value in names:
            if name:
                used[kind, name] = used.get((kind, name), False) or has_value
    return used


def _declare_missing(header: bytes, used: dict[tuple[bytes, bytes], bool]) -> bytes:
    """``header`` with declarations of the names ``used`` (as from
    :func:`_used_names`) that it lacks.

    BCF refers to contigs, filters and tags by their place in the header, and
    htslib refuses to write a record that used one undeclared when it was read.
    """
    declared = set(_DECLARED.findall(header))
    note = b'Description="Not declared in the VCF header"'
    lines = []
    for (kind, name), has_value in used.items():
        if (kind, name) in declared:
            continue
        if kind == b"contig":
            lines.append(b"##contig=<ID=" + name + b">\n")
        elif kind == b"FILTER":
            lines.append(b"##FILTER=<ID=" + name + b"," + note + b">\n")
        else:
            number_type = (
                b"Number=.,Type=String" if has_value else b"Number=0,Type=Flag"
            )
            lines.append(
                b"##"
                + kind
                + b"=<ID="
                + name
                + b","
                + number_type
                + b","
                + note
                + b">\n"
            )
    if not lines:
        return header
    chrom_line = header.rindex(b"#CHROM")
    return header[:chrom_line] + b"".join(lines) + header[chrom_line:]


def _first_nine_columns(records: bytes) -> Iterator[list[bytes]]:
    # CHROM to FORMAT of each record line, without copying the samples' columns.
    position = 0
    while position < len(records):
        end = records.find(b"\n", position)
        end = len(records) if end < 0 else end
        stop = position
        for _ in range(9):
            tab = records.find(b"\t", stop, end)
            if tab < 0:
                stop = end
                break
            stop = tab + 1
        if end > position and records[position] != ord("#"):
            yield records[position:stop].rstrip(b"\t\r").split(b"\t")
        position = end + 1


class _MemoryFile:
    """An anonymous file in memory (Linux ``memfd_create``), named for htslib."""

    def __init__(self, name: str) -> None:
        if not hasattr(os, "memfd_create"):
            raise UnsupportedFormatError(
                "BCF needs memory files (Linux memfd_create); ask for VCF",
                field="format",
            )
        self.descriptor = os.memfd_create(f"genomenode-{name}", os.MFD_CLOEXEC)
        self.path = f"/dev/fd/{self.descriptor}"

    def replace(self, data: bytes) -> None:
        os.ftruncate(self.descriptor, 0)
        view = memoryview(data)
        written = 0
        while written < len(view):
            written += os.pwrite(self.descriptor, view[written:], written)

    def contents(self) -> bytes:
        size = os.fstat(self.descriptor).st_size
        chunks = []
        offset = 0
        while offset < size:
            chunk = os.pread(self.descriptor, size - offset, offset)
            if not chunk:
                break
            chunks.append(chunk)
            offset += len(chunk)
        return b"".join(chunks)

    def __enter__(self) -> _MemoryFile:
        return self

    def __exit__(self, *exception: object) -> None:
        os.close(self.descriptor)
