"""BAM slices: the records of each slice are those `samtools view` returns."""

from __future__ import annotations

import gzip
import random
import shutil

import pysam
import pytest

from genomenode.errors import (
    InputError,
    InvalidRangeError,
    NotFoundError,
    UnsupportedFormatError,
)
from genomenode.transfer import reads as reads_module
from genomenode.transfer.read_fields import READ_FIELDS
from genomenode.transfer.reads import ReadRegion, StoredReads

REFERENCES = [("chr1", 300_000), ("chr2", 120_000), ("chrM", 16_569), ("empty", 5_000)]
LONG_REFERENCE = ("big", 700_000_000)  # past 2^29: only a CSI indexes it
SAMPLE = "NA12878"


def write_bam(
    path,
    *,
    seed=1,
    num_reads=4000,
    references=REFERENCES,
    unplaced=200,
    sample=SAMPLE,
):
    """A coordinate-sorted BAM of generated reads.

    Varied CIGARs (M, =, X, I, D, long N, soft and hard clips), several references,
    unmapped reads placed at their mate's position and unplaced ones at the end,
    tags of every type.
    """
    rng = random.Random(seed)
    header = {
        "HD": {"VN": "1.6", "SO": "coordinate"},
        "SQ": [{"SN": name, "LN": length} for name, length in references],
        "RG": [{"ID": "rg1", "SM": sample}],
    }
    # Reads go to every reference but the one left empty.
    placed = [tid for tid, (name, _) in enumerate(references) if name != "empty"]
    unsorted = path.with_name(path.name + ".unsorted.bam")
    with pysam.AlignmentFile(str(unsorted), "wb", header=header) as out:
        for number in range(num_reads):
            tid = rng.choice(placed + [placed[0]] * 2)
            length = references[tid][1]
            read = pysam.AlignedSegment(out.header)
            read.query_name = f"read{number}"
            sequence_length = rng.randint(20, 150)
            read.query_sequence = "".join(
                rng.choice("ACGT") for _ in range(sequence_length)
            )
            read.query_qualities = pysam.qualitystring_to_array(
                "".join(chr(33 + rng.randint(2, 40)) for _ in range(sequence_length))
            )
            read.reference_id = tid
            read.reference_start = rng.randint(0, length - 1)
            read.mapping_quality = rng.randint(0, 60)
            if rng.random() < 0.08:
                # Unmapped, placed at its mate's position.
                read.flag = 0x1 | 0x4 | 0x80
                read.next_reference_id = tid
                read.next_reference_start = read.reference_start
            else:
                read.cigartuples = _cigar(rng, sequence_length)
                read.flag = rng.choice([0, 0x10, 0x1 | 0x2 | 0x20 | 0x40, 0x100])
                if read.flag & 0x1:
                    read.next_reference_id = tid
                    read.next_reference_start = max(
                        0, read.reference_start + rng.randint(-500, 500)
                    )
                    read.template_length = rng.randint(-600, 600)
            tags = [("NM", rng.randint(0, 5)), ("RG", "rg1")]
            if rng.random() < 0.5:
                tags.append(("MD", f"{rng.randint(1, 40)}A5"))
            if rng.random() < 0.3:
                tags.append(("XB", [rng.randint(0, 9) for _ in range(3)]))
            if rng.random() < 0.3:
                tags.append(("XF", 1.5))
            if rng.random() < 0.2:
                tags.append(("XC", "A", "A"))
            read.set_tags(tags)
            out.write(read)
        for number in range(unplaced):
            read = pysam.AlignedSegment(out.header)
            read.query_name = f"unplaced{number}"
            read.flag = 0x4
            read.reference_id = read.reference_start = -1
            read.query_sequence = "ACGTACGTAC"
            read.query_qualities = pysam.qualitystring_to_array("IIIIIIIIII")
            out.write(read)
    pysam.sort("-o", str(path), str(unsorted))
    unsorted.unlink()
    return path


def _cigar(rng, sequence_length):
    operations = []
    remaining = sequence_length
    if rng.random() < 0.3:
        clipped = rng.randint(1, 10)
        operations.append((4, clipped))  # S
        remaining -= clipped
    tail = rng.randint(1, 10) if rng.random() < 0.3 else 0
    remaining -= tail
    while remaining > 0:
        matched = rng.randint(1, remaining)
        operations.append((rng.choice([0, 0, 7, 8]), matched))  # M M = X
        remaining -= matched
        if remaining > 0 and rng.random() < 0.5:
            kind = rng.random()
            if kind < 0.3:
                operations.append((2, rng.randint(1, 50)))  # D
            elif kind < 0.5:
                # N: a few splice gaps long enough to leave the lowest bins.
                longest = 40_000 if rng.random() < 0.2 else 2_000
                operations.append((3, rng.randint(100, longest)))
            else:
                inserted = rng.randint(1, remaining)
                operations.append((1, inserted))  # I
                remaining -= inserted
    if tail:
        operations.append((4, tail))
    if rng.random() < 0.05:
        operations.insert(0, (5, 5))  # H
    return operations


@pytest.fixture(scope="module")
def bam(tmp_path_factory):
    """A BAM with a BAI and a CSI beside it (as two files with both names)."""
    directory = tmp_path_factory.mktemp("bam")
    path = write_bam(directory / "reads.bam")
    pysam.samtools.index(str(path))
    pysam.samtools.index("-c", str(path))
    return path


@pytest.fixture(scope="module")
def long_bam(tmp_path_factory):
    """A BAM with a reference longer than a BAI can index, and its CSI."""
    directory = tmp_path_factory.mktemp("long")
    path = write_bam(
        directory / "long.bam",
        seed=2,
        num_reads=2000,
        references=[*REFERENCES, LONG_REFERENCE],
    )
    pysam.samtools.index("-c", str(path))
    return path


def stored(path, index_kind):
    """StoredReads over the file's bytes, with its index of that kind (or none)."""
    data = path.read_bytes()
    index = None
    if index_kind is not None:
        index = path.with_name(path.name + "." + index_kind).read_bytes()
    return StoredReads(
        lambda offset, length: data[offset : offset + length],
        len(data),
        index=index,
        index_kind=index_kind,
    )


def records(blob, tmp_path):
    """The records of a BAM given as bytes, as SAM lines (pysam reads it whole)."""
    path = tmp_path / "slice.bam"
    path.write_bytes(blob)
    pysam.samtools.quickcheck(str(path))
    return pysam.samtools.view(str(path)).splitlines()


def expected(path, *regions):
    return pysam.samtools.view(str(path), *regions).splitlines()


def region_text(region):
    if region.start is None and region.end is None:
        return region.reference_name
    start = 1 if region.start is None else region.start + 1
    return f"{region.reference_name}:{start}-{'' if region.end is None else region.end}"


def random_regions(seed, references, count):
    rng = random.Random(seed)
    regions = []
    for _ in range(count):
        name, length = rng.choice(references)
        start = rng.randint(0, length)
        width = rng.choice([1, 2, 50, 1_000, 16_384, 60_000, 200_000])
        regions.append(ReadRegion(name, start, start + rng.randint(1, width)))
    return regions


EDGE_REGIONS = [
    ReadRegion("chr1"),
    ReadRegion("chr1", 0, 1),
    ReadRegion("chr1", 16_383, 16_385),  # across the first 16 kb window boundary
    ReadRegion("chr1", 131_071, 131_073),  # across a level-4 bin boundary
    ReadRegion("chr1", 250_000, 300_000),  # to the reference's end
    ReadRegion("chr1", 299_999, 400_000),  # past it
    ReadRegion("chr1", 300_000, 300_000 + 10),
    ReadRegion("chr2", 5_000),
    ReadRegion("chrM", 100),
    ReadRegion("chrM", None, 2_000),
    ReadRegion("empty", 0, 5_000),
    ReadRegion("empty"),
]


@pytest.mark.parametrize("index_kind", ["bai", "csi", None])
def test_slices_hold_the_records_samtools_view_returns(bam, tmp_path, index_kind):
    reads = stored(bam, index_kind)
    regions = EDGE_REGIONS + random_regions(7, REFERENCES, 150)
    for region in regions:
        blob = b"".join(reads.slice([region]))
        assert records(blob, tmp_path) == expected(bam, region_text(region)), region


@pytest.mark.parametrize("index_kind", ["bai", "csi", None])
def test_unplaced_reads_and_the_whole_file(bam, tmp_path, index_kind):
    reads = stored(bam, index_kind)
    unplaced = records(b"".join(reads.slice([ReadRegion("*")])), tmp_path)
    assert unplaced == expected(bam, "*")
    assert len(unplaced) == 200
    everything = records(b"".join(reads.slice(None)), tmp_path)
    assert everything == expected(bam)
    assert records(b"".join(reads.slice([ReadRegion(None)])), tmp_path) == everything


@pytest.mark.parametrize("index_kind", ["bai", None])
def test_several_regions_give_each_record_once(bam, tmp_path, index_kind):
    reads = stored(bam, index_kind)
    for seed in range(5):
        regions = [
            *random_regions(100 + seed, REFERENCES, 4),
            ReadRegion("chr1", 20_000, 30_000),
            ReadRegion("chr1", 25_000, 40_000),  # overlaps the one before
            ReadRegion("*"),
        ]
        texts = [region_text(region) for region in regions]
        blob = b"".join(reads.slice(regions))
        assert records(blob, tmp_path) == expected(bam, "-M", *texts)


def test_the_long_reference_of_a_csi(long_bam, tmp_path):
    """A reference past 2^29 has more bin levels; the CSI and a built index agree."""
    references = [*REFERENCES, LONG_REFERENCE]
    regions = random_regions(11, [LONG_REFERENCE], 40) + random_regions(
        12, references, 30
    )
    with_csi, scanned = stored(long_bam, "csi"), stored(long_bam, None)
    found = 0
    for region in [*regions, ReadRegion("big"), ReadRegion("big", 600_000_000)]:
        wanted = expected(long_bam, region_text(region))
        found += len(wanted)
        assert records(b"".join(with_csi.slice([region])), tmp_path) == wanted
        assert records(b"".join(scanned.slice([region])), tmp_path) == wanted
    assert found > 0


def test_parts_concatenate_into_a_valid_bam(bam, tmp_path):
    reads = stored(bam, "bai")
    first, second = ReadRegion("chr1", 1_000, 90_000), ReadRegion("chr2", 0, 50_000)
    parts = [
        reads.header_part(),
        *reads.body_part(first),
        *reads.body_part(second),
        reads.eof(),
    ]
    assert records(b"".join(parts), tmp_path) == expected(
        bam, region_text(first), region_text(second)
    )


def test_header_only(bam, tmp_path):
    reads = stored(bam, "bai")
    path = tmp_path / "header.bam"
    path.write_bytes(reads.header_part() + reads.eof())
    header = pysam.samtools.view("-H", "--no-PG", str(path))
    assert header == pysam.samtools.view("-H", "--no-PG", str(bam))
    assert "SM:NA12878" in header
    assert pysam.samtools.view(str(path)) == ""
    assert reads.reference_names() == [name for name, _ in REFERENCES]


def test_only_the_blocks_of_a_region_are_read(bam, monkeypatch):
    """A small region inflates a few blocks, not the file (no read-ahead here)."""
    monkeypatch.setattr(reads_module, "_READ_AHEAD", 0)
    data = bam.read_bytes()
    asked: list[int] = []  # the offsets read from

    def read(offset, length):
        asked.append(offset)
        return data[offset : offset + length]

    index = bam.with_name(bam.name + ".bai").read_bytes()
    reads = StoredReads(read, len(data), index=index, index_kind="bai")
    asked.clear()
    blob = b"".join(reads.body_part(ReadRegion("chr2", 60_000, 60_500)))
    assert blob
    num_blocks = data.count(b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff\x06\x00BC")
    num_blocks_read = len(set(asked))  # each block is read from its start
    assert num_blocks > 10
    assert num_blocks_read <= 3
    assert reads.estimated_size([ReadRegion("chr2", 60_000, 60_500)]) < len(data) / 4
    assert reads.estimated_size(None) == len(data)
    whole = reads.estimated_size([ReadRegion("chr1")])
    assert len(data) / 4 < whole <= len(data)


def test_a_bam_without_records(tmp_path):
    path = write_bam(tmp_path / "none.bam", num_reads=0, unplaced=0)
    pysam.samtools.index(str(path))
    for index_kind in ("bai", None):
        reads = stored(path, index_kind)
        for region in (ReadRegion("chr1", 0, 100), ReadRegion("*"), ReadRegion(None)):
            assert records(b"".join(reads.slice([region])), tmp_path) == []


def sam_columns_kept(line, fields, tags=None, notags=frozenset()):
    """The naive twin of field and tag filtering, on a SAM line."""
    columns = line.split("\t")
    names = ["QNAME", "FLAG", "RNAME", "POS", "MAPQ", "CIGAR"]
    names += ["RNEXT", "PNEXT", "TLEN", "SEQ", "QUAL"]
    missing = {
        "QNAME": "*",
        "MAPQ": "255",
        "CIGAR": "*",
        "RNEXT": "*",
        "PNEXT": "0",
        "TLEN": "0",
        "SEQ": "*",
        "QUAL": "*",
    }
    kept = dict(zip(names, columns[:11], strict=True))
    for name in names:
        if name not in fields and name in missing:
            kept[name] = missing[name]
    if "SEQ" not in fields and "QUAL" in fields and columns[9] != "*":
        kept["SEQ"] = "N" * len(columns[9])
    aux = [
        column
        for column in columns[11:]
        if (tags is None or column[:2] in tags) and column[:2] not in notags
    ]
    return "\t".join([kept[name] for name in names] + aux)


@pytest.mark.parametrize(
    ("fields", "tags", "notags"),
    [
        (frozenset({"QNAME", "FLAG", "RNAME", "POS"}), None, frozenset()),
        (frozenset({"SEQ"}), None, frozenset()),
        (frozenset({"QUAL", "CIGAR"}), None, frozenset()),
        (frozenset({"RNEXT", "PNEXT", "TLEN", "MAPQ"}), frozenset(), frozenset()),
        (None, frozenset({"NM", "XB"}), frozenset()),
        (None, None, frozenset({"MD", "XF", "RG"})),
        (READ_FIELDS, frozenset({"XC", "XF"}), frozenset({"NM"})),
        (frozenset(), frozenset(), frozenset()),
    ],
)
def test_fields_and_tags(bam, tmp_path, fields, tags, notags):
    reads = stored(bam, "bai")
    wanted_fields = READ_FIELDS if fields is None else fields
    for region in [ReadRegion("chr1", 10_000, 60_000), ReadRegion("*"), None]:
        texts = [] if region is None else [region_text(region)]
        regions = None if region is None else [region]
        blob = b"".join(reads.slice(regions, fields=fields, tags=tags, notags=notags))
        wanted = [
            sam_columns_kept(line, wanted_fields, tags, notags)
            for line in expected(bam, *texts)
        ]
        assert records(blob, tmp_path) == wanted


def test_fields_left_out_are_gone(bam, tmp_path):
    reads = stored(bam, "bai")
    region = ReadRegion("chr1", 0, 100_000)
    blob = b"".join(reads.slice([region], fields=frozenset({"FLAG", "RNAME", "POS"})))
    lines = records(blob, tmp_path)
    assert lines
    for line in lines:
        columns = line.split("\t")
        assert columns[0] == "*" and columns[9] == "*" and columns[10] == "*"
        assert columns[5] == "*" and columns[4] == "255"


@pytest.mark.parametrize(
    ("call", "error", "field"),
    [
        (lambda r: r.body_part(ReadRegion("chr9", 0, 10)), NotFoundError, None),
        (lambda r: r.body_part(ReadRegion("chr1", 10, 5)), InvalidRangeError, "start"),
        (lambda r: r.body_part(ReadRegion("chr1", -1, 5)), InvalidRangeError, "start"),
        (lambda r: r.body_part(ReadRegion("chr1", 0, -5)), InvalidRangeError, "end"),
        (
            lambda r: r.body_part(ReadRegion("chr1", 400_000, 500_000)),
            InvalidRangeError,
            "start",
        ),
        (lambda r: r.body_part(ReadRegion("*", 0, 10)), InputError, "start"),
        (
            lambda r: r.body_part(ReadRegion("chr1"), fields=frozenset({"BASES"})),
            InputError,
            "fields",
        ),
        (
            lambda r: r.body_part(ReadRegion("chr1"), tags=frozenset({"N"})),
            InputError,
            "tags",
        ),
        (
            lambda r: r.body_part(
                ReadRegion("chr1"), tags=frozenset({"NM"}), notags=frozenset({"NM"})
            ),
            InputError,
            "notags",
        ),
        (lambda r: r.slice([ReadRegion("chr9")]), NotFoundError, None),
    ],
)
def test_errors_are_raised_before_any_block(bam, call, error, field):
    reads = stored(bam, "bai")
    with pytest.raises(error) as raised:
        call(reads)
    if field is not None:
        assert raised.value.field == field


def test_cram_is_not_served(tmp_path):
    fasta = tmp_path / "ref.fa"
    fasta.write_text(">chr1\n" + "ACGT" * 250 + "\n")
    pysam.faidx(str(fasta))
    header = {"SQ": [{"SN": "chr1", "LN": 1000}]}
    cram = tmp_path / "reads.cram"
    with pysam.AlignmentFile(
        str(cram), "wc", header=header, reference_filename=str(fasta)
    ) as out:
        read = pysam.AlignedSegment(out.header)
        read.query_name, read.reference_id, read.reference_start = "r", 0, 10
        read.query_sequence, read.cigarstring = "ACGTACGTAC", "10M"
        out.write(read)
    data = cram.read_bytes()
    with pytest.raises(UnsupportedFormatError, match="CRAM"):
        StoredReads(
            lambda o, n: data[o : o + n], len(data), index=None, index_kind=None
        )


def test_not_a_bam(tmp_path):
    data = gzip.compress(b"chr1\t1\t2\n")
    with pytest.raises(UnsupportedFormatError):
        StoredReads(
            lambda o, n: data[o : o + n], len(data), index=None, index_kind=None
        )


def test_an_unsorted_bam_without_index_is_refused(tmp_path):
    path = write_bam(tmp_path / "sorted.bam", num_reads=300, unplaced=0)
    unsorted = tmp_path / "unsorted.bam"
    pysam.sort("-n", "-o", str(unsorted), str(path))
    reads = stored(unsorted, None)
    with pytest.raises(UnsupportedFormatError, match="not sorted"):
        b"".join(reads.slice([ReadRegion("chr1", 0, 1000)]))
    # The whole file needs no index.
    whole = records(b"".join(reads.slice(None)), tmp_path)
    assert whole == expected(unsorted)


def test_an_index_of_the_wrong_kind_is_a_store_error(bam):
    from genomenode.errors import StoreError

    data = bam.read_bytes()
    index = bam.with_name(bam.name + ".bai").read_bytes()
    reads = StoredReads(
        lambda o, n: data[o : o + n], len(data), index=index, index_kind="csi"
    )
    with pytest.raises(StoreError, match="not a csi index"):
        reads.body_part(ReadRegion("chr1", 0, 10))


def test_copy_of_fixture_is_independent(bam, tmp_path):
    """Slicing reads only through ``read``: the file itself may be gone."""
    copy = tmp_path / "copy.bam"
    shutil.copy(bam, copy)
    data = copy.read_bytes()
    copy.unlink()
    reads = StoredReads(
        lambda o, n: data[o : o + n], len(data), index=None, index_kind=None
    )
    assert records(b"".join(reads.slice([ReadRegion("chrM")])), tmp_path) == (
        expected(bam, "chrM")
    )


def test_one_instance_serves_concurrent_slices(bam, tmp_path, monkeypatch):
    """Threads share the block cache and read-ahead window; each slice stays exact."""
    import concurrent.futures

    monkeypatch.setattr(reads_module, "_READ_AHEAD", 4096)
    reads = stored(bam, None)
    regions = random_regions(21, REFERENCES, 24)
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        blobs = list(pool.map(lambda r: b"".join(reads.slice([r])), regions))
    for number, (region, blob) in enumerate(zip(regions, blobs, strict=True)):
        path = tmp_path / f"{number}.bam"
        path.write_bytes(blob)
        assert pysam.samtools.view(str(path)).splitlines() == expected(
            bam, region_text(region)
        )
