"""BAM index helpers: bins as htslib computes them, chunk merging, built indexes."""

from __future__ import annotations

import pysam
import pytest

from genomenode.errors import StoreError
from genomenode.transfer.bam_index import (
    IndexBuilder,
    merge_chunks,
    parse_index,
    reg2bin,
)

from .test_reads import write_bam


def test_reg2bin_equals_the_bin_htslib_writes(tmp_path):
    path = write_bam(tmp_path / "bins.bam", num_reads=1500, unplaced=0)
    with pysam.AlignmentFile(str(path)) as bam:
        for read in bam:
            end = read.reference_end if not read.is_unmapped else None
            end = max(end or read.reference_start + 1, read.reference_start + 1)
            assert reg2bin(read.reference_start, end) == read.bin, read.query_name


def test_reg2bin_of_deeper_indexes():
    # depth 6: the first bin of the lowest level is (8^6 - 1) / 7.
    assert reg2bin(0, 1, 14, 6) == 37449
    assert reg2bin(1 << 30, (1 << 30) + 1, 14, 6) == 37449 + (1 << 16)
    assert reg2bin(0, 1 << 33, 14, 6) == 0


def test_merge_chunks():
    block = 1 << 16
    assert merge_chunks([]) == []
    assert merge_chunks([(5 * block, 6 * block), (block, 2 * block + 10)]) == [
        (block, 2 * block + 10),
        (5 * block, 6 * block),
    ]
    # Overlapping, contained, and meeting in one block: one chunk.
    assert merge_chunks(
        [(block, 3 * block), (2 * block, 2 * block + 5), (3 * block + 7, 4 * block)]
    ) == [(block, 4 * block)]


def test_a_built_index_finds_what_the_bai_finds(tmp_path):
    """Every record is in a chunk the built index returns for its own span."""
    path = write_bam(tmp_path / "built.bam", num_reads=1500, unplaced=20)
    pysam.samtools.index(str(path))
    with pysam.AlignmentFile(str(path)) as bam:
        builder = IndexBuilder([bam.get_reference_length(n) for n in bam.references])
        spans = []
        offset = bam.tell()
        for read in bam:
            end = read.reference_end if not read.is_unmapped else None
            start = read.reference_start
            builder.push(read.reference_id, start, end or start + 1, offset)
            if read.reference_id >= 0:
                spans.append((read.reference_id, start, end or start + 1, offset))
            offset = bam.tell()
        built = builder.finish(offset)
    bai = parse_index(path.with_name(path.name + ".bai").read_bytes(), "bai")
    for index in (built, bai):
        for tid, start, end, record_offset in spans[::7]:
            chunks = index.chunks(tid, start, end)
            assert any(a <= record_offset < b for a, b in chunks)
    assert built.last_placed_end() == bai.last_placed_end()


def test_unsorted_records_are_refused():
    from genomenode.errors import UnsupportedFormatError

    builder = IndexBuilder([1000])
    builder.push(0, 500, 600, 1 << 16)
    with pytest.raises(UnsupportedFormatError, match="not sorted"):
        builder.push(0, 100, 200, 2 << 16)


def test_damaged_indexes():
    with pytest.raises(StoreError, match="not a BAI or CSI"):
        parse_index(b"TBI\x01" + bytes(20), None)
    with pytest.raises(StoreError, match="ends too early"):
        parse_index(b"BAI\x01\x02\x00\x00\x00\x05\x00", "bai")
