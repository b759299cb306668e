"""Tabix and CSI indexes, and the index a scan builds: the chunks returned for a
region hold every record overlapping it (a naive scan decides which), in whole
records; bins as the spec draws them; damaged indexes refused."""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import pathlib
import random
import shutil
import struct

import pysam
import pytest

from genomenode.errors import StoreError
from genomenode.store import bgzf
from genomenode.store import vcf_index as indexes
from genomenode.store.vcf_index import Chunk

from ..conftest import CINECA_VCF, write_vcf
from .test_bgzf import naive_members
from .test_variants import EDGE_HEADER, VcfCase, edge_records, indexed_case


@dataclasses.dataclass(frozen=True)
class NaiveRecord:
    contig: str
    start: int
    stop: int
    virtual_start: int
    virtual_end: int


def naive_records(path: pathlib.Path) -> list[NaiveRecord]:
    """Every record with its span as htslib sees it (pysam's ``start`` and
    ``stop``) and its virtual offsets, found by splitting gzip members with zlib
    and the text at newlines."""
    members = [member for member in naive_members(path.read_bytes()) if member[2]]
    stream_starts = []
    total = 0
    for _, _, inflated in members:
        stream_starts.append(total)
        total += len(inflated)
    stream = b"".join(inflated for _, _, inflated in members)

    def virtual(position: int) -> int:
        if position == total:
            return (members[-1][0] + len(members[-1][1])) << 16
        i = bisect.bisect_right(stream_starts, position) - 1
        return members[i][0] << 16 | (position - stream_starts[i])

    line_spans = []
    position = 0
    for line in stream.splitlines(keepends=True):
        if not line.startswith(b"#"):
            line_spans.append((position, position + len(line)))
        position += len(line)
    with pysam.VariantFile(str(path)) as vcf:
        spans = [(record.chrom, record.start, record.stop) for record in vcf]
    assert len(spans) == len(line_spans)
    return [
        NaiveRecord(contig, start, stop, virtual(begin), virtual(end))
        for (contig, start, stop), (begin, end) in zip(spans, line_spans, strict=True)
    ]


def assert_chunks_cover(
    chunks: list[Chunk], records: list[NaiveRecord], region: tuple[str, int, int]
) -> None:
    contig, start, end = region
    for record in records:
        if record.contig == contig and record.start < end and record.stop > start:
            assert any(
                chunk.virtual_start <= record.virtual_start
                and record.virtual_end <= chunk.virtual_end
                for chunk in chunks
            ), (region, record)
    for earlier, later in itertools.pairwise(chunks):
        assert earlier.virtual_end < later.virtual_start


def random_regions(
    records: list[NaiveRecord], generator: random.Random, count: int
) -> list[tuple[str, int, int]]:
    regions = []
    for record in generator.sample(records, min(count, len(records))):
        regions += [
            (record.contig, record.start, record.start + 1),
            (record.contig, record.stop - 1, record.stop),
            (record.contig, record.stop, record.stop + 1),
            (record.contig, max(record.start - 20_000, 0), record.start),
            (record.contig, record.start, record.start + generator.randint(1, 50_000)),
        ]
    for contig in {record.contig for record in records}:
        regions.append((contig, 0, 1 << 29))
    return regions


@pytest.fixture(scope="module")
def indexed(tmp_path_factory) -> dict[str, VcfCase]:
    directory = tmp_path_factory.mktemp("indexes")
    cineca = directory / "cineca.vcf.gz"
    shutil.copy(CINECA_VCF, cineca)
    edge = write_vcf(
        directory / "edge.vcf.gz",
        edge_records(),
        samples=[f"S{i}" for i in range(40)],
        contigs=("1", "2", "3"),
        extra_header=EDGE_HEADER,
        index=False,
    )
    return {"cineca": indexed_case(cineca), "edge": indexed_case(edge)}


def built_index(case: VcfCase) -> indexes.VariantIndex:
    return indexes.build_index(bgzf.iter_lines(bgzf.iter_blocks(case.data)))


@pytest.mark.parametrize("name", ["cineca", "edge"])
def test_chunks_hold_every_overlapping_record(indexed, name):
    case = indexed[name]
    records = naive_records(case.path)
    tbi = indexes.parse_tabix(case.tbi)
    csi = indexes.parse_csi(case.csi)
    built = built_index(case)
    names = tuple(dict.fromkeys(record.contig for record in records))
    assert tbi.reference_names == csi.reference_names == built.reference_names == names
    for region in random_regions(records, random.Random(name), 25):
        for index in (tbi, csi, built):
            assert_chunks_cover(index.chunks(*region), records, region)


@pytest.mark.parametrize("name", ["cineca", "edge"])
def test_tabix_and_csi_agree(indexed, name):
    """Both pick the same overlapping records, and neither reads much more."""
    case = indexed[name]
    records = naive_records(case.path)
    tbi = indexes.parse_tabix(case.tbi)
    csi = indexes.parse_csi(case.csi)
    assert (tbi.min_shift, tbi.depth, tbi.kind) == (14, 5, "tbi")
    assert (csi.min_shift, csi.kind) == (14, "csi")

    starts = [record.virtual_start for record in records]

    def candidates(index, region):
        found: set[int] = set()
        for chunk in index.chunks(*region):
            first = bisect.bisect_left(starts, chunk.virtual_start)
            last = bisect.bisect_left(starts, chunk.virtual_end)
            found.update(range(first, last))
        return found

    for region in random_regions(records, random.Random(f"agree{name}"), 10):
        contig, start, end = region
        overlapping = {
            i
            for i, record in enumerate(records)
            if record.contig == contig and record.start < end and record.stop > start
        }
        from_tbi = candidates(tbi, region)
        from_csi = candidates(csi, region)
        assert from_tbi & overlapping == from_csi & overlapping == overlapping
        # Neither reads the whole file for a small region.
        if end - start == 1:
            assert len(from_tbi) < len(records) // 2
            assert len(from_csi) < len(records) // 2


def test_chunks_of_an_unknown_reference_or_empty_region(indexed):
    tbi = indexes.parse_tabix(indexed["cineca"].tbi)
    assert tbi.chunks("2", 0, 1000) == []
    assert tbi.chunks("1", 500, 500) == []
    assert tbi.chunks("1", 10**12, 10**12 + 5) == []


def naive_bin_span(bin_number: int, min_shift: int, depth: int) -> tuple[int, int]:
    """The bases a bin covers, by counting bins level by level."""
    first = 0
    for level in range(depth + 1):
        count = 8**level
        if bin_number < first + count:
            width = 1 << (min_shift + 3 * (depth - level))
            index = bin_number - first
            return index * width, (index + 1) * width
        first += count
    raise AssertionError(bin_number)


@pytest.mark.parametrize("geometry", [(3, 3), (14, 5), (14, 6)])
def test_bins_as_the_spec_draws_them(geometry):
    min_shift, depth = geometry
    generator = random.Random(str(geometry))
    top = 1 << (min_shift + 3 * depth)
    for _ in range(300):
        start = generator.randrange(top)
        end = min(top, start + generator.choice([1, 2, 1 << min_shift, top // 64]))
        bins = indexes.bins_overlapping(start, end, min_shift, depth)
        spans = [naive_bin_span(b, min_shift, depth) for b in bins]
        assert all(a < end and b > start for a, b in spans)
        # Every level is covered without a gap: as many bins as it takes.
        for level in range(depth + 1):
            width = 1 << (min_shift + 3 * (depth - level))
            at_level = [span for span in spans if span[1] - span[0] == width]
            assert len(at_level) == (end - 1) // width - start // width + 1
        smallest = indexes.region_bin(start, end, min_shift, depth)
        low, high = naive_bin_span(smallest, min_shift, depth)
        assert low <= start and end <= high
        assert smallest in bins
        assert all(
            not (a <= start and end <= b) or b - a >= high - low for a, b in spans
        )


def test_known_bins():
    assert indexes.region_bin(0, 1, 14, 5) == 4681
    assert indexes.region_bin(0, 1 << 29, 14, 5) == 0
    assert indexes.region_bin(16_383, 16_385, 14, 5) == 585
    assert indexes.bins_overlapping(0, 1, 14, 5) == [0, 1, 9, 73, 585, 4681]


def test_merge_chunks():
    block = 1 << 16
    assert indexes.merge_chunks([]) == []
    assert indexes.merge_chunks(
        [Chunk(5 * block, 6 * block), Chunk(block, 2 * block + 10)]
    ) == [Chunk(block, 2 * block + 10), Chunk(5 * block, 6 * block)]
    # Overlapping, contained, or meeting in one block: one chunk.
    assert indexes.merge_chunks(
        [
            Chunk(block, 3 * block),
            Chunk(2 * block, 2 * block + 5),
            Chunk(3 * block + 7, 4 * block),
        ]
    ) == [Chunk(block, 4 * block)]


def test_record_span_is_htslibs(indexed):
    """Our span of every edge record is pysam's ``start``/``stop`` (htslib rlen)."""
    case = indexed["edge"]
    lines = [
        line
        for line in bgzf.decompress(case.data).splitlines(keepends=True)
        if not line.startswith(b"#")
    ]
    with pysam.VariantFile(str(case.path)) as vcf:
        expected = [
            (record.chrom.encode(), record.start, record.stop) for record in vcf
        ]
    assert [indexes.vcf_record_span(line) for line in lines] == expected
    assert indexes.vcf_record_span(b"1\t100\t.\tACGT\tA\t.\t.\tSVEND=900\n") == (
        b"1",
        99,
        103,
    )
    assert indexes.vcf_record_span(
        b"1\t100\t.\tA\t<DEL>\t.\t.\tEND=900", info_end=False
    ) == (b"1", 99, 100)
    with pytest.raises(StoreError, match="columns"):
        indexes.vcf_record_span(b"1\t100\tA\n")
    with pytest.raises(StoreError, match="POS"):
        indexes.vcf_record_span(b"1\tx\t.\tA\tC\t.\t.\t.\n")


def test_a_built_index_refuses_unsorted_records():
    builder = indexes.IndexBuilder()
    builder.add("1", 100, 101, 0, 10)
    with pytest.raises(StoreError, match="not sorted"):
        builder.add("1", 50, 51, 10, 20)
    builder = indexes.IndexBuilder()
    builder.add("1", 100, 101, 0, 10)
    builder.add("2", 1, 2, 10, 20)
    with pytest.raises(StoreError, match="comes back"):
        builder.add("1", 200, 201, 20, 30)


def test_damaged_indexes(indexed):
    tbi = bgzf.decompress(indexed["cineca"].tbi)
    with pytest.raises(StoreError, match="truncated"):
        indexes.parse_tabix(bgzf.compress(tbi[: len(tbi) // 2]))
    with pytest.raises(StoreError, match="not a CSI"):
        indexes.parse_csi(indexed["cineca"].tbi)
    with pytest.raises(StoreError, match="not a tabix"):
        indexes.parse_tabix(indexed["cineca"].csi)
    bcf_style = b"CSI\x01" + struct.pack("<4i", 14, 5, 0, 0)
    with pytest.raises(StoreError, match="without reference names"):
        indexes.parse_csi(bgzf.compress(bcf_style))
    # Uncompressed indexes are accepted as well.
    assert indexes.parse_tabix(tbi).reference_names == ("1",)
