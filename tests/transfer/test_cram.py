"""CRAM slices: the records ``samtools view`` returns, decoded only in memory."""

from __future__ import annotations

import gzip
import random

import pysam
import pytest

from genomenode.errors import (
    InputError,
    InvalidRangeError,
    NotFoundError,
    StoreError,
    UnsupportedFormatError,
)
from genomenode.transfer.cram import StoredCram
from genomenode.transfer.reads import ReadRegion

from .test_reads import _cigar, random_regions, region_text

REFERENCES = [("chr1", 300_000), ("chr2", 120_000), ("chrM", 16_569), ("empty", 5_000)]
NUM_UNPLACED = 40


def write_reference(path, references=REFERENCES, seed=5):
    """A FASTA of random sequences, 60 bases a line, indexed."""
    rng = random.Random(seed)
    with open(path, "w") as handle:
        for name, length in references:
            sequence = "".join(rng.choice("ACGT") for _ in range(length))
            lines = (sequence[i : i + 60] for i in range(0, length, 60))
            handle.write(f">{name}\n" + "\n".join(lines) + "\n")
    pysam.faidx(str(path))
    return path


def write_reads(path, *, seed=1, num_reads=3000, references=REFERENCES):
    """A coordinate-sorted BAM of generated reads that stay within their reference.

    Varied CIGARs (M, =, X, I, D, N, clips), unmapped reads placed at their mate's
    position, unplaced reads at the end, tags of several types; chrM gets few
    reads and "empty" none, so some slices hold several references.
    """
    rng = random.Random(seed)
    header = {
        "HD": {"VN": "1.6", "SO": "coordinate"},
        "SQ": [{"SN": name, "LN": length} for name, length in references],
        "RG": [{"ID": "rg1", "SM": "NA12878"}],
    }
    # chrM gets few reads, "empty" none.
    weights = [{"chrM": 0.2, "empty": 0}.get(name, 10) for name, _ in references]
    unsorted = path.with_name(path.name + ".unsorted.bam")
    with pysam.AlignmentFile(str(unsorted), "wb", header=header) as out:
        for number in range(num_reads + NUM_UNPLACED):
            read = pysam.AlignedSegment(out.header)
            read.query_name = f"read{number}"
            sequence_length = rng.randint(20, 150)
            read.query_sequence = "".join(
                rng.choice("ACGT") for _ in range(sequence_length)
            )
            read.query_qualities = pysam.qualitystring_to_array(
                "".join(chr(33 + rng.randint(2, 40)) for _ in range(sequence_length))
            )
            tags = [("RG", "rg1"), ("XI", rng.randint(-5, 500))]
            if rng.random() < 0.3:
                tags.append(("XB", [rng.randint(0, 9) for _ in range(3)]))
            if rng.random() < 0.3:
                tags.append(("XZ", f"note{rng.randint(0, 9)}"))
            read.set_tags(tags)
            if number >= num_reads:
                read.flag = 0x4
                out.write(read)
                continue
            tid = rng.choices(range(len(references)), weights)[0]
            length = references[tid][1]
            read.reference_id = tid
            read.mapping_quality = rng.randint(0, 60)
            if rng.random() < 0.08:
                # Unmapped, placed at its mate's position.
                read.reference_start = rng.randint(0, length - 1)
                read.flag = 0x1 | 0x4 | 0x80
                read.next_reference_id = tid
                read.next_reference_start = read.reference_start
            else:
                cigar = _cigar(rng, sequence_length)
                span = sum(n for op, n in cigar if op in (0, 2, 3, 7, 8))
                if span > length:
                    cigar, span = [(0, sequence_length)], sequence_length
                read.cigartuples = cigar
                read.reference_start = rng.randint(0, length - span)
                read.flag = rng.choice([0, 0x10, 0x1 | 0x2 | 0x20 | 0x40, 0x100])
                if read.flag & 0x1:
                    read.next_reference_id = tid
                    read.next_reference_start = max(
                        0, read.reference_start + rng.randint(-500, 500)
                    )
                    read.template_length = rng.randint(-600, 600)
            out.write(read)
    pysam.sort("-o", str(path), str(unsorted))
    unsorted.unlink()
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """(reference, BAM, CRAM of small slices with its CRAI)."""
    directory = tmp_path_factory.mktemp("cram")
    reference = write_reference(directory / "reference.fa")
    bam = write_reads(directory / "reads.bam")
    pysam.index(str(bam))
    cram = directory / "reads.cram"
    pysam.view(
        "-C",
        "-T",
        str(reference),
        "--output-fmt-option",
        "seqs_per_slice=150",
        "-o",
        str(cram),
        str(bam),
        catch_stdout=False,
    )
    pysam.index(str(cram))
    return reference, bam, cram


def stored(cram, reference, *, indexed=True):
    data = cram.read_bytes()
    index = cram.with_name(cram.name + ".crai").read_bytes() if indexed else None
    return StoredCram(
        lambda offset, length: data[offset : offset + length],
        len(data),
        index=index,
        reference=reference,
    )


def records(blob, reference, tmp_path):
    """The records of a CRAM or BAM given as bytes, as SAM lines."""
    path = tmp_path / "slice"
    path.write_bytes(blob)
    return pysam.samtools.view("-T", str(reference), str(path)).splitlines()


def expected(cram, reference, *regions):
    return pysam.samtools.view("-T", str(reference), str(cram), *regions).splitlines()


EDGE_REGIONS = [
    ReadRegion("chr1"),
    ReadRegion("chr1", 0, 1),
    ReadRegion("chr1", 16_383, 16_385),
    ReadRegion("chr1", 250_000, 300_000),
    ReadRegion("chr1", 299_999, 400_000),  # past the reference's end
    ReadRegion("chr1", 300_000, 300_010),
    ReadRegion("chr2", 5_000),
    ReadRegion("chrM", 100),
    ReadRegion("chrM", None, 2_000),
    ReadRegion("empty", 0, 5_000),
    ReadRegion("empty"),
]


def test_the_test_cram_has_many_containers(files):
    _, _, cram = files
    crai = gzip.decompress(cram.with_name(cram.name + ".crai").read_bytes()).decode()
    offsets = {line.split("\t")[3] for line in crai.splitlines()}
    assert len(offsets) > 15


@pytest.mark.parametrize("indexed", [True, False])
@pytest.mark.parametrize("output_format", ["CRAM", "BAM"])
def test_slices_hold_the_records_samtools_view_returns(
    files, tmp_path, indexed, output_format
):
    reference, _, cram = files
    reads = stored(cram, reference, indexed=indexed)
    regions = EDGE_REGIONS + random_regions(7, REFERENCES, 40)
    num_nonempty = 0
    for region in regions:
        blob = b"".join(reads.slice([region], output_format=output_format))
        assert blob[:4] == (b"CRAM" if output_format == "CRAM" else b"\x1f\x8b\x08\x04")
        got = records(blob, reference, tmp_path)
        assert got == expected(cram, reference, region_text(region)), region
        num_nonempty += bool(got)
    assert num_nonempty > len(regions) // 2


def test_a_slice_decodes_only_the_containers_of_its_region(files, tmp_path):
    reference, _, cram = files
    data = cram.read_bytes()
    asked = []

    def read(offset, length):
        asked.append((offset, length))
        return data[offset : offset + length]

    index = cram.with_name(cram.name + ".crai").read_bytes()
    reads = StoredCram(read, len(data), index=index, reference=reference)
    asked.clear()
    region = ReadRegion("chr1", 100_000, 101_000)
    blob = b"".join(reads.slice([region]))
    assert records(blob, reference, tmp_path) == expected(
        cram, reference, "chr1:100001-101000"
    )
    assert sum(length for _, length in asked) < len(data) // 5
    assert reads.estimated_size([region]) < len(data) // 5
    assert reads.estimated_size(None) == len(data)


@pytest.mark.parametrize("output_format", ["CRAM", "BAM"])
def test_unplaced_reads_and_the_whole_file(files, tmp_path, output_format):
    reference, _, cram = files
    reads = stored(cram, reference)
    unplaced = records(
        b"".join(reads.slice([ReadRegion("*")], output_format=output_format)),
        reference,
        tmp_path,
    )
    assert unplaced == expected(cram, reference, "*")
    assert len(unplaced) == NUM_UNPLACED
    everything = records(
        b"".join(reads.slice(None, output_format=output_format)), reference, tmp_path
    )
    assert everything == expected(cram, reference)
    assert (
        records(
            b"".join(reads.slice([ReadRegion(None)], output_format=output_format)),
            reference,
            tmp_path,
        )
        == everything
    )


@pytest.mark.parametrize("indexed", [True, False])
def test_several_regions_give_each_record_once(files, tmp_path, indexed):
    reference, _, cram = files
    reads = stored(cram, reference, indexed=indexed)
    for seed in range(4):
        regions = [
            *random_regions(100 + seed, REFERENCES, 4),
            ReadRegion("chr1", 20_000, 30_000),
            ReadRegion("chr1", 25_000, 40_000),  # overlaps the one before
            ReadRegion("*"),
        ]
        texts = [region_text(region) for region in regions]
        blob = b"".join(reads.slice(regions))
        assert records(blob, reference, tmp_path) == expected(
            cram, reference, "-M", *texts
        )


def edited(line, fields, tags, notags, output_format):
    """A SAM line as htsget ``fields``, ``tags`` and ``notags`` leave it (the naive
    twin of the record editor)."""
    columns = line.split("\t")
    missing = {"QNAME": "*", "MAPQ": "255", "CIGAR": "*", "RNEXT": "*"}
    missing |= {"PNEXT": "0", "TLEN": "0", "SEQ": "*", "QUAL": "*"}
    names = ["QNAME", "FLAG", "RNAME", "POS", "MAPQ", "CIGAR"]
    names += ["RNEXT", "PNEXT", "TLEN", "SEQ", "QUAL"]
    wanted = set(names) if fields is None else fields | {"FLAG", "RNAME", "POS"}
    sequence_length = len(columns[9]) if columns[9] != "*" else 0
    for number, name in enumerate(names):
        if name not in wanted:
            columns[number] = missing[name]
    if output_format == "CRAM" and int(columns[1]) & 0x4:
        columns[4] = "0"  # a CRAM holds no MAPQ for an unmapped read
    if "SEQ" not in wanted and "QUAL" in wanted and sequence_length:
        columns[9] = "N" * sequence_length
    kept_tags = [
        item
        for item in columns[11:]
        if (tags is None or item[:2] in tags) and item[:2] not in notags
    ]
    return "\t".join(columns[:11] + kept_tags)


# MD and NM are left out: an htslib reader of a CRAM makes them from the
# reference, whether the CRAM holds them or not.
@pytest.mark.parametrize(
    ("fields", "tags", "notags"),
    [
        (frozenset({"QNAME", "FLAG", "RNAME", "POS"}), None, frozenset()),
        (frozenset({"SEQ", "CIGAR"}), frozenset({"RG", "MD", "NM"}), frozenset()),
        (
            frozenset({"QUAL", "MAPQ", "TLEN", "RNEXT", "PNEXT"}),
            None,
            frozenset({"XB", "XZ"}),
        ),
        (frozenset({"QUAL", "CIGAR", "QNAME"}), None, frozenset({"XI"})),
        (None, frozenset({"XI", "MD", "NM"}), frozenset()),
    ],
)
@pytest.mark.parametrize("output_format", ["CRAM", "BAM"])
def test_fields_and_tags(files, tmp_path, fields, tags, notags, output_format):
    reference, _, cram = files
    reads = stored(cram, reference)
    regions = [ReadRegion("chr1", 10_000, 40_000), ReadRegion("chrM")]
    bases_without_cigar = (
        fields is not None
        and "CIGAR" not in fields
        and fields
        & {
            "SEQ",
            "QUAL",
        }
    )
    if output_format == "CRAM" and bases_without_cigar:
        with pytest.raises(InputError, match="without the CIGAR") as raised:
            reads.slice(regions, fields=fields)
        assert raised.value.field == "fields"
        return
    blob = b"".join(
        reads.slice(
            regions,
            output_format=output_format,
            fields=fields,
            tags=tags,
            notags=notags,
        )
    )
    got = records(blob, reference, tmp_path)
    whole = expected(cram, reference, "-M", "chr1:10001-40000", "chrM")
    assert got == [edited(line, fields, tags, notags, output_format) for line in whole]
    assert len(got) > 50


def test_bad_requests(files):
    reference, _, cram = files
    reads = stored(cram, reference)
    assert reads.reference_names() == [name for name, _ in REFERENCES]
    with pytest.raises(NotFoundError):
        reads.slice([ReadRegion("chr9")])
    with pytest.raises(InvalidRangeError) as raised:
        reads.slice([ReadRegion("chr1", 500, 100)])
    assert raised.value.field == "start"
    with pytest.raises(InvalidRangeError):
        reads.slice([ReadRegion("chr1", 400_000, 400_010)])
    with pytest.raises(InputError) as raised:
        reads.slice(None, fields=frozenset({"NOPE"}))
    assert raised.value.field == "fields"
    with pytest.raises(InputError) as raised:
        reads.slice(None, tags=frozenset({"R"}))
    assert raised.value.field == "tags"


def test_not_a_cram_or_a_damaged_one(files, tmp_path):
    reference, bam, cram = files
    data = bam.read_bytes()
    with pytest.raises(UnsupportedFormatError):
        StoredCram(
            lambda o, n: data[o : o + n], len(data), index=None, reference=reference
        )
    cram_data = cram.read_bytes()
    with pytest.raises(StoreError):
        StoredCram(
            lambda o, n: cram_data[o : o + n],
            len(cram_data),
            index=b"not gzip",
            reference=reference,
        )
    with pytest.raises(StoreError):
        StoredCram(
            lambda o, n: cram_data[o : o + n],
            len(cram_data),
            index=None,
            reference=tmp_path / "missing.fa",
        )


def test_regions_that_touch_a_read_at_its_ends(files, tmp_path):
    """A read ending where a region starts, or starting where it ends, is not in it;
    one base more and it is."""
    reference, _, cram = files
    reads = stored(cram, reference)
    with pysam.AlignmentFile(
        str(cram), "rc", reference_filename=str(reference)
    ) as file:
        chosen = [read for read in file if not read.is_unmapped][::150]
    regions = []
    for read in chosen:
        name, start, end = read.reference_name, read.reference_start, read.reference_end
        regions += [
            ReadRegion(name, end, end + 3),
            ReadRegion(name, end - 1, end + 3),
            ReadRegion(name, max(start - 3, 0), start),
            ReadRegion(name, max(start - 3, 0), start + 1),
        ]
    for region in regions:
        blob = b"".join(reads.slice([region]))
        got = records(blob, reference, tmp_path)
        assert got == expected(cram, reference, region_text(region)), region
