"""BGZF, the blocked gzip of bgzipped VCF, BCF and tabix indexes, in memory.

A BGZF file (SAMv1 specification, section 4.1) is a series of gzip members, each
with an extra field ``BC`` holding the member's size, and each inflating to at
most 64 KiB; it ends with a fixed empty member, :data:`EOF_BLOCK`. A *virtual
offset* names a byte of the uncompressed stream as ``coffset << 16 | uoffset``:
the file offset of the block holding it and the position inside that block.

Everything here works on bytes and on a ``read(offset, length)`` callable (the
decrypting reader of a Crypt4GH file), never on a path: plaintext genotypes are
not to touch the disk.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Final

import deflate

from ..errors import StoreError

__all__ = [
    "EOF_BLOCK",
    "MAX_BLOCK_INPUT",
    "MAX_BLOCK_SIZE",
    "BgzfBlock",
    "BgzfLine",
    "BgzfWriter",
    "block_size",
    "compress",
    "compress_block",
    "decompress",
    "decompress_block",
    "iter_blocks",
    "iter_lines",
    "make_virtual_offset",
    "read_blocks",
    "split_virtual_offset",
]

#: The empty BGZF block that ends every BGZF file (SAMv1 section 4.1.2).
EOF_BLOCK: Final = bytes.fromhex(
    "1f8b08040000000000ff0600424302001b0003000000000000000000"
)
#: A whole block, header to trailer, is at most this many bytes.
MAX_BLOCK_SIZE: Final = 65_536
#: The most uncompressed bytes put in one block; htslib's choice (0xff00), which
#: leaves room for incompressible input to fit :data:`MAX_BLOCK_SIZE`.
MAX_BLOCK_INPUT: Final = 65_280

_HEADER_SIZE: Final = 18  # fixed gzip header + XLEN + the BC subfield
_TRAILER_SIZE: Final = 8  # CRC32 + ISIZE
_GZIP_FIXED = struct.Struct("<4BI2BH")  # ID1 ID2 CM FLG MTIME XFL OS XLEN
_BGZF_HEADER = struct.Struct("<4BI2BH2BHH")  # ... SI1 SI2 SLEN BSIZE
_TRAILER = struct.Struct("<2I")
_FLAG_EXTRA: Final = 4
_DEFAULT_READ_SIZE: Final = 1 << 20

_BytesLike = bytes | bytearray | memoryview


def make_virtual_offset(block_offset: int, within_block: int) -> int:
    """The virtual offset of byte ``within_block`` of the block at ``block_offset``."""
    return block_offset << 16 | within_block


def split_virtual_offset(virtual_offset: int) -> tuple[int, int]:
    """``(block_offset, within_block)`` of a virtual offset."""
    return virtual_offset >> 16, virtual_offset & 0xFFFF


@dataclasses.dataclass(frozen=True)
class BgzfBlock:
    """One BGZF block of a file.

    Attributes
    ----------
    offset : int
        Where the block starts in the compressed file.
    raw : bytes
        The whole compressed block, gzip header to trailer.
    data : bytes
        Its inflated content (empty for the EOF block).
    """

    offset: int
    raw: bytes
    data: bytes

    @property
    def size(self) -> int:
        """Length of the compressed block in the file."""
        return len(self.raw)

    @property
    def next_offset(self) -> int:
        """Where the block after this one starts."""
        return self.offset + len(self.raw)


def block_size(
    buffer: _BytesLike, offset: int = 0, *, file_offset: int | None = None
) -> int:
    """The size of the BGZF block starting at ``buffer[offset]``, from its header.

    ``file_offset`` is where that is in the file, for error messages (default:
    ``offset``).

    Raises
    ------
    StoreError
        If fewer than the header's bytes are there, or they are not a BGZF header
        (plain gzip has no ``BC`` field).
    """
    where = offset if file_offset is None else file_offset
    if len(buffer) - offset < _HEADER_SIZE:
        raise StoreError(f"truncated BGZF block header at offset {where}")
    id1, id2, method, flags, _, _, _, extra_length = _GZIP_FIXED.unpack_from(
        buffer, offset
    )
    if (id1, id2, method) != (31, 139, 8) or not flags & _FLAG_EXTRA:
        raise StoreError(f"not a BGZF block at offset {where}")
    # The BC subfield is almost always the only one, so look there first.
    position = offset + 12
    end = position + extra_length
    if extra_length == 6 and bytes(buffer[position : position + 4]) == b"BC\x02\x00":
        return int.from_bytes(buffer[position + 4 : position + 6], "little") + 1
    if len(buffer) < end:
        raise StoreError(f"truncated BGZF block header at offset {where}")
    while position + 4 <= end:
        subfield_length = int.from_bytes(buffer[position + 2 : position + 4], "little")
        if bytes(buffer[position : position + 2]) == b"BC" and subfield_length == 2:
            return int.from_bytes(buffer[position + 4 : position + 6], "little") + 1
        position += 4 + subfield_length
    raise StoreError(f"gzip block without the BGZF size field at offset {where}")


def decompress_block(raw: _BytesLike) -> bytes:
    """Inflate one whole BGZF block (as :attr:`BgzfBlock.raw`).

    Raises
    ------
    StoreError
        If the block is damaged: bad deflate data, or a length or CRC that does
        not match the trailer.
    """
    size = block_size(raw)
    if len(raw) < size:
        raise StoreError("truncated BGZF block")
    extra_length = int.from_bytes(raw[10:12], "little")
    start = 12 + extra_length
    crc, length = _TRAILER.unpack_from(raw, size - _TRAILER_SIZE)
    payload = raw[start : size - _TRAILER_SIZE]
    # libdeflate inflates into a buffer of the trailer's length, ~4.5 times as
    # fast as zlib (docs/benchmarks.md); zlib for the empty (EOF) block.
    try:
        if length == 0:
            data = zlib.decompress(payload, -15)
        else:
            data = bytes(deflate.deflate_decompress(payload, length))
    except (zlib.error, deflate.DeflateError) as error:
        raise StoreError(f"damaged BGZF block: {error}") from None
    if length != len(data) or crc != deflate.crc32(data):
        raise StoreError("damaged BGZF block: length or CRC does not match")
    return data


def iter_blocks(data: _BytesLike, start: int = 0) -> Iterator[BgzfBlock]:
    """The blocks of a BGZF file held in memory, from offset ``start`` to the end."""
    view = memoryview(data)
    offset = start
    while offset < len(view):
        size = block_size(view, offset)
        raw = bytes(view[offset : offset + size])
        yield BgzfBlock(offset, raw, decompress_block(raw))
        offset += size


def read_blocks(
    read: Callable[[int, int], bytes],
    size: int,
    start: int,
    stop: int | None = None,
    *,
    read_size: int = _DEFAULT_READ_SIZE,
) -> Iterator[BgzfBlock]:
    """The blocks of a BGZF file reached through ``read``, one at a time.

    Parameters
    ----------
    read
        ``read(offset, length)`` returns bytes ``[offset, offset + length)`` of the
        compressed file.
    size
        The length of the compressed file.
    start
        Offset of the first block to yield (a block boundary).
    stop
        Yield the blocks that start before ``stop`` (all to the end if None).
    read_size
        The most bytes asked of ``read`` at once: memory stays within about
        twice this, however many blocks are read.
    """
    # No block that starts before ``stop`` ends after stop + MAX_BLOCK_SIZE.
    read_end = size if stop is None else min(size, stop + MAX_BLOCK_SIZE)
    offset = start
    buffer = b""  # bytes of the file from offset - position on
    position = 0
    while offset < size and (stop is None or offset < stop):
        available = len(buffer) - position
        if available < _HEADER_SIZE or available < block_size(
            buffer, position, file_offset=offset
        ):
            kept = buffer[position:]
            fetch_from = offset + len(kept)
            length = min(max(read_size, MAX_BLOCK_SIZE), read_end - fetch_from)
            buffer = kept + (read(fetch_from, length) if length > 0 else b"")
            position = 0
            if len(buffer) < block_size(buffer, file_offset=offset):
                raise StoreError(f"truncated BGZF file: block at offset {offset}")
        block_length = block_size(buffer, position, file_offset=offset)
        raw = buffer[position : position + block_length]
        yield BgzfBlock(offset, raw, decompress_block(raw))
        position += block_length
        offset += block_length


def decompress(data: _BytesLike) -> bytes:
    """The whole uncompressed content of a BGZF file held in memory."""
    return b"".join(block.data for block in iter_blocks(data))


def compress_block(data: _BytesLike, level: int = 6) -> bytes:
    """One BGZF block holding ``data`` (at most :data:`MAX_BLOCK_INPUT` bytes)."""
    if len(data) > MAX_BLOCK_INPUT:
        raise ValueError(f"{len(data)} bytes do not fit one BGZF block")
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    deflated = compressor.compress(data) + compressor.flush()
    total = _HEADER_SIZE + len(deflated) + _TRAILER_SIZE
    header = _BGZF_HEADER.pack(31, 139, 8, 4, 0, 0, 255, 6, 66, 67, 2, total - 1)
    return header + deflated + _TRAILER.pack(zlib.crc32(data), len(data))


def compress(
    chunks: bytes | Iterable[bytes], *, level: int = 6, eof: bool = True
) -> bytes:
    """BGZF-compress bytes (or an iterable of bytes) into one bytes object."""
    writer = BgzfWriter(level=level)
    pieces = (
        [writer.write(chunks)]
        if isinstance(chunks, bytes)
        else [writer.write(chunk) for chunk in chunks]
    )
    pieces.append(writer.flush())
    if eof:
        pieces.append(EOF_BLOCK)
    return b"".join(pieces)


class BgzfWriter:
    """Compress a stream into BGZF blocks, returning the blocks as they fill.

    Parameters
    ----------
    level
        zlib compression level.

    Examples
    --------
    >>> writer = BgzfWriter()
    >>> out = writer.write(b"##fileformat=VCFv4.3\\n") + writer.flush() + EOF_BLOCK
    >>> decompress(out)
    b'##fileformat=VCFv4.3\\n'
    """

    def __init__(self, *, level: int = 6) -> None:
        self._level = level
        self._pending = bytearray()

    def write(self, data: _BytesLike) -> bytes:
        """Add ``data``; the compressed bytes of every block it completed."""
        self._pending += data
        if len(self._pending) < MAX_BLOCK_INPUT:
            return b""
        view = memoryview(self._pending)
        num_full = len(view) // MAX_BLOCK_INPUT
        blocks = [
            compress_block(
                view[i * MAX_BLOCK_INPUT : (i + 1) * MAX_BLOCK_INPUT], self._level
            )
            for i in range(num_full)
        ]
        rest = bytes(view[num_full * MAX_BLOCK_INPUT :])
        view.release()
        self._pending = bytearray(rest)
        return b"".join(blocks)

    def flush(self) -> bytes:
        """Compress whatever is buffered as one (short) block; b"" if nothing is."""
        if not self._pending:
            return b""
        block = compress_block(self._pending, self._level)
        self._pending = bytearray()
        return block


@dataclasses.dataclass(frozen=True)
class BgzfLine:
    """One line of the uncompressed stream, with where it lies in the blocks.

    Attributes
    ----------
    text : bytes
        The line, with its newline (none on a last line that lacks it).
    virtual_start, virtual_end : int
        Virtual offsets of its first byte and of the byte after it; a line ending
        exactly at the end of a block ends at offset 0 of the next block, as
        htslib writes offsets into indexes.
    pieces : tuple of (BgzfBlock, int, int)
        The line as ``(block, start, end)`` ranges of :attr:`BgzfBlock.data`, one
        per block it touches (most lines: one).
    """

    text: bytes
    virtual_start: int
    virtual_end: int
    pieces: tuple[tuple[BgzfBlock, int, int], ...]


def iter_lines(
    blocks: Iterable[BgzfBlock],
    start_within: int = 0,
    stop: int | None = None,
) -> Iterator[BgzfLine]:
    """The lines of the uncompressed stream of ``blocks``.

    Parameters
    ----------
    blocks
        Consecutive blocks of a BGZF file.
    start_within
        Where in the first block's data the first line starts.
    stop
        A virtual offset: lines starting at or after it are not yielded.
    """
    pending: list[tuple[BgzfBlock, int, int]] = []
    pending_start = 0
    position = start_within
    for block in blocks:
        data = block.data
        while position < len(data):
            line_start = make_virtual_offset(block.offset, position)
            if not pending:
                if stop is not None and line_start >= stop:
                    return
                pending_start = line_start
            newline = data.find(b"\n", position)
            if newline < 0:
                pending.append((block, position, len(data)))
                break
            end = newline + 1
            virtual_end = (
                make_virtual_offset(block.offset, end)
                if end < len(data)
                else make_virtual_offset(block.next_offset, 0)
            )
            if pending:
                pending.append((block, position, end))
                pieces = tuple(pending)
                text = b"".join(piece.data[a:b] for piece, a, b in pieces)
                pending = []
            else:
                pieces = ((block, position, end),)
                text = data[position:end]
            yield BgzfLine(text, pending_start, virtual_end, pieces)
            position = end
        position = 0
    if pending:
        last_block = pending[-1][0]
        yield BgzfLine(
            b"".join(piece.data[a:b] for piece, a, b in pending),
            pending_start,
            make_virtual_offset(last_block.next_offset, 0),
            tuple(pending),
        )
