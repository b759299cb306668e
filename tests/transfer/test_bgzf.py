"""BGZF blocks: the EOF block, round trips through gzip and htslib, block limits,
reading through a ``read`` callable, and lines with their virtual offsets."""

from __future__ import annotations

import bisect
import gzip
import random
import zlib

import pysam
import pytest

from genomenode.errors import StoreError
from genomenode.store import bgzf

from ..conftest import CINECA_VCF

# SAMv1 section 4.1.2, written out byte by byte.
SPEC_EOF = bytes.fromhex(
    "1f 8b 08 04 00 00 00 00 00 ff 06 00 42 43 02 001b 00 03 00 00 00 00 00 00 00 00 00"
)


def naive_members(data: bytes) -> list[tuple[int, bytes, bytes]]:
    """``(offset, raw, inflated)`` of each gzip member, split by zlib alone."""
    members = []
    offset = 0
    while offset < len(data):
        inflater = zlib.decompressobj(31)
        inflated = inflater.decompress(data[offset:])
        size = len(data) - offset - len(inflater.unused_data)
        members.append((offset, data[offset : offset + size], inflated))
        offset += size
    return members


def test_the_eof_block_is_the_specs():
    assert bgzf.EOF_BLOCK == SPEC_EOF
    assert len(bgzf.EOF_BLOCK) == 28
    assert bgzf.block_size(bgzf.EOF_BLOCK) == 28
    assert bgzf.decompress_block(bgzf.EOF_BLOCK) == b""
    assert CINECA_VCF.read_bytes().endswith(bgzf.EOF_BLOCK)


@pytest.mark.parametrize(
    "size", [0, 1, 1000, bgzf.MAX_BLOCK_INPUT, bgzf.MAX_BLOCK_INPUT + 1, 300_000]
)
@pytest.mark.parametrize("kind", ["text", "random"])
def test_round_trip(size, kind):
    generator = random.Random(size)
    if kind == "random":
        data = generator.randbytes(size)
    else:
        data = b"".join(
            f"1\t{i}\trs{i}\tA\tT\t.\tPASS\t.\n".encode() for i in range(size)
        )[:size]
    compressed = bgzf.compress(data)
    assert gzip.decompress(compressed) == data
    assert bgzf.decompress(compressed) == data
    assert compressed.endswith(bgzf.EOF_BLOCK)
    members = naive_members(compressed)
    assert members[-1][1] == bgzf.EOF_BLOCK
    for _, raw, inflated in members[:-1]:
        # Incompressible input too stays within the block limits.
        assert 0 < len(inflated) <= bgzf.MAX_BLOCK_INPUT
        assert len(raw) <= bgzf.MAX_BLOCK_SIZE
        assert bgzf.block_size(raw) == len(raw)
    # Blocks are full except the last: boundaries at multiples of the input limit.
    assert [len(inflated) for _, _, inflated in members[:-2]] == [
        bgzf.MAX_BLOCK_INPUT
    ] * (len(members) - 2)


def test_writer_gives_the_same_blocks_however_it_is_fed():
    generator = random.Random(7)
    data = generator.randbytes(50_000) + b"ACGT" * 60_000
    whole = bgzf.compress(data)
    writer = bgzf.BgzfWriter()
    pieces = []
    position = 0
    while position < len(data):
        step = generator.choice([1, 17, 4096, 70_000])
        pieces.append(writer.write(data[position : position + step]))
        position += step
    pieces.append(writer.flush())
    pieces.append(bgzf.EOF_BLOCK)
    assert b"".join(pieces) == whole
    assert writer.flush() == b""


def test_compress_block_refuses_more_than_a_block():
    with pytest.raises(ValueError, match="do not fit"):
        bgzf.compress_block(b"x" * (bgzf.MAX_BLOCK_INPUT + 1))


def test_htslib_reads_what_we_write(tmp_path):
    lines = [b"##fileformat=VCFv4.3\n", b"##contig=<ID=1,length=1000000>\n"]
    lines.append(b"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    lines += [f"1\t{10 * i + 1}\t.\tA\tC\t.\tPASS\t.\n".encode() for i in range(20_000)]
    path = tmp_path / "ours.vcf.gz"
    path.write_bytes(bgzf.compress(b"".join(lines)))
    pysam.tabix_index(str(path), preset="vcf", force=True)
    with pysam.VariantFile(str(path)) as vcf:
        assert [record.pos for record in vcf.fetch("1", 1000, 1100)] == [
            1001,
            1011,
            1021,
            1031,
            1041,
            1051,
            1061,
            1071,
            1081,
            1091,
        ]


def test_read_blocks_equals_the_naive_split():
    data = CINECA_VCF.read_bytes()
    requests = []

    def read(offset, length):
        requests.append(length)
        return data[offset : offset + length]

    blocks = list(bgzf.read_blocks(read, len(data), 0, read_size=100_000))
    assert [(b.offset, b.raw, b.data) for b in blocks] == naive_members(data)
    assert max(requests) <= 100_000
    assert [b.offset for b in bgzf.iter_blocks(data)] == [b.offset for b in blocks]


def test_read_blocks_from_and_to():
    data = CINECA_VCF.read_bytes()
    offsets = [offset for offset, _, _ in naive_members(data)]
    start, stop = offsets[10], offsets[14]
    read_ranges = []

    def read(offset, length):
        read_ranges.append((offset, offset + length))
        return data[offset : offset + length]

    got = [b.offset for b in bgzf.read_blocks(read, len(data), start, stop)]
    assert got == offsets[10:14]
    # Nothing before the start is read, nor more than a block past the stop.
    assert min(a for a, _ in read_ranges) == start
    assert max(b for _, b in read_ranges) <= stop + bgzf.MAX_BLOCK_SIZE
    # A stop inside a block still yields that block.
    assert [b.offset for b in bgzf.read_blocks(read, len(data), start, start + 1)] == [
        start
    ]


def test_damaged_and_foreign_data():
    block = bgzf.compress_block(b"hello\n")
    with pytest.raises(StoreError, match="not a BGZF block"):
        bgzf.block_size(gzip.compress(b"hello"))
    with pytest.raises(StoreError, match="truncated"):
        bgzf.block_size(block[:10])
    damaged = bytearray(block)
    damaged[-8] ^= 0xFF  # the CRC
    with pytest.raises(StoreError, match="CRC"):
        bgzf.decompress_block(bytes(damaged))
    with pytest.raises(StoreError, match="truncated"):
        list(bgzf.read_blocks(lambda o, n: block[o : o + n][:-3], len(block), 0))


def small_block_file(lines: list[bytes], sizes: list[int]) -> bytes:
    """BGZF of ``lines`` cut into blocks of the given sizes (cycled)."""
    data = b"".join(lines)
    blocks = []
    position = 0
    index = 0
    while position < len(data):
        size = sizes[index % len(sizes)]
        blocks.append(bgzf.compress_block(data[position : position + size]))
        position += size
        index += 1
    return b"".join(blocks) + bgzf.EOF_BLOCK


def test_lines_and_their_virtual_offsets():
    generator = random.Random(3)
    lines = [
        b"x" * generator.choice([0, 1, 5, 40, 200]) + b"\n" for _ in range(400)
    ] + [b"last line without newline"]
    data = small_block_file(lines, [7, 64, 1, 300, 41])
    members = naive_members(data)
    block_starts = [offset for offset, _, _ in members]
    stream_starts = []
    position = 0
    for _, _, inflated in members:
        stream_starts.append(position)
        position += len(inflated)
    stream = b"".join(inflated for _, _, inflated in members)

    def absolute(virtual):
        block_offset, within = bgzf.split_virtual_offset(virtual)
        return stream_starts[block_starts.index(block_offset)] + within

    got = list(bgzf.iter_lines(bgzf.iter_blocks(data)))
    assert [line.text for line in got] == lines
    for line in got:
        assert stream[absolute(line.virtual_start) : absolute(line.virtual_end)] == (
            line.text
        )
        assert b"".join(block.data[a:b] for block, a, b in line.pieces) == line.text
        # Offsets point into a block, never at its end (htslib's convention).
        block_offset, within = bgzf.split_virtual_offset(line.virtual_end)
        if block_offset in block_starts:
            size = len(members[block_starts.index(block_offset)][2])
            assert within < size or size == 0

    # Starting inside a block and stopping at a line start.
    middle = got[100]
    block_offset, within = bgzf.split_virtual_offset(middle.virtual_start)
    some = list(
        bgzf.iter_lines(
            bgzf.iter_blocks(data, block_offset), within, got[300].virtual_start
        )
    )
    assert [line.text for line in some] == lines[100:300]
    position = bisect.bisect_right(stream_starts, absolute(middle.virtual_start)) - 1
    assert block_starts[position] == block_offset


def test_virtual_offsets():
    assert bgzf.make_virtual_offset(123_456, 789) == 123_456 * 65_536 + 789
    assert bgzf.split_virtual_offset(123_456 * 65_536 + 789) == (123_456, 789)
