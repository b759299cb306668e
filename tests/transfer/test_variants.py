"""Exact VCF and BCF slices: the records ``bcftools view -r`` returns, with a tabix
index, a CSI index and none; header-only, parts for htsget tickets, errors."""

from __future__ import annotations

import dataclasses
import functools
import gzip
import pathlib
import random
import shutil
import time

import pysam
import pysam.bcftools
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genomenode.errors import (
    InvalidRangeError,
    NotFoundError,
    StoreError,
    UnsupportedFormatError,
)
from genomenode.store import bgzf
from genomenode.transfer import variants
from genomenode.transfer.variants import Region, StoredVariants

from ..conftest import CINECA_VCF, DATA, write_vcf

CHRX_VCF = DATA / "realvcf" / "1KG_phase3_subset_chrX.vcf.gz"
INDEX_KINDS = ["tbi", "csi", None]


@dataclasses.dataclass(frozen=True)
class VcfCase:
    """A bgzipped VCF with both indexes, and its bytes."""

    path: pathlib.Path
    data: bytes
    tbi: bytes
    csi: bytes

    def stored(self, index_kind: str | None, **options) -> StoredVariants:
        index = {"tbi": self.tbi, "csi": self.csi, None: None}[index_kind]
        return StoredVariants(
            self.read, len(self.data), index=index, index_kind=index_kind, **options
        )

    def read(self, offset: int, length: int) -> bytes:
        return self.data[offset : offset + length]

    @functools.cache  # noqa: B019 - cases live for the whole session
    def bcftools_records(self, region_text: str | None) -> tuple[str, ...]:
        options = ("-r", region_text) if region_text is not None else ()
        out = pysam.bcftools.view("-H", *options, str(self.path))
        assert isinstance(out, str)
        return tuple(out.splitlines())


def indexed_case(path: pathlib.Path) -> VcfCase:
    """Index ``path`` both ways (tabix and CSI)."""
    pysam.tabix_index(str(path), preset="vcf", force=True)
    pysam.tabix_index(str(path), preset="vcf", force=True, csi=True)
    return VcfCase(
        path,
        path.read_bytes(),
        pathlib.Path(f"{path}.tbi").read_bytes(),
        pathlib.Path(f"{path}.csi").read_bytes(),
    )


def edge_records(num_samples: int = 40) -> list[str]:
    """Records that test spans: indels, symbolic deletions with INFO/END, several
    records at one position, window and bin edges, two contigs."""
    generator = random.Random(11)

    def record(contig, position, reference, alternate, info="."):
        calls = [
            f"{generator.randint(0, 1)}|{generator.randint(0, 1)}"
            for _ in range(num_samples)
        ]
        identifier = f"v{contig}_{position}_{len(reference)}"
        fields = [contig, str(position), identifier, reference, alternate, "."]
        return "\t".join([*fields, "PASS", info, "GT", *calls])

    records = [
        record("1", 1, "A", "G"),
        record("1", 100, "A", "G"),
        record("1", 100, "A", "T"),
        record("1", 101, "C", "CTTT"),
        record("1", 200, "ACGTACGT", "A"),
        record("1", 1000, "A", "<DEL>", "SVTYPE=DEL;END=5000"),
        record("1", 2000, "C", "T", "END=2000"),
        record("1", 6000, "A", "ATTT"),
        record("1", 7000, "AC", "GT"),
    ]
    position = 10_000
    while position < 200_000:
        length = generator.choice([1, 1, 1, 2, 5, 30])
        reference = "".join(generator.choice("ACGT") for _ in range(length))
        records.append(record("1", position, reference, reference[0] + "A"))
        position += 97
    records.append(record("1", 150_001, "T", "<DEL>", "END=400000"))
    for position in (
        16_383,
        16_384,
        16_385,
        32_768,
        131_072,
        262_144,
        262_145,
        2_097_152,
    ):
        records.append(record("1", position + 300_000, "G", "A"))
    records.sort(key=lambda line: int(line.split("\t")[1]))
    records += [
        record("2", 5, "T", "C"),
        record("2", 67_108_863, "TTTT", "T"),
        record("2", 67_108_864, "G", "<DEL>", "END=67108900"),
        record("2", 67_108_865, "G", "C"),
        record("2", 99_000_000, "G", "C"),
    ]
    return records


EDGE_HEADER = (
    '##INFO=<ID=END,Number=1,Type=Integer,Description="End position">',
    '##INFO=<ID=SVTYPE,Number=1,Type=String,Description="Type of SV">',
    '##ALT=<ID=DEL,Description="Deletion">',
)


@pytest.fixture(scope="session")
def cases(tmp_path_factory) -> dict[str, VcfCase]:
    """The real 1000 Genomes slices and a generated VCF of edge cases."""
    directory = tmp_path_factory.mktemp("variants")
    cineca = directory / "cineca.vcf.gz"
    shutil.copy(CINECA_VCF, cineca)
    # The chrX file is plain gzip; stored files are BGZF, so recompress it.
    chrx_plain = directory / "chrx.vcf"
    chrx_plain.write_bytes(gzip.decompress(CHRX_VCF.read_bytes()))
    chrx = directory / "chrx.vcf.gz"
    pysam.tabix_compress(str(chrx_plain), str(chrx))
    edge = write_vcf(
        directory / "edge.vcf.gz",
        edge_records(),
        samples=[f"S{i}" for i in range(40)],
        contigs=("1", "2", "3"),
        extra_header=EDGE_HEADER,
        index=False,
    )
    return {
        "cineca": indexed_case(cineca),
        "chrx": indexed_case(chrx),
        "edge": indexed_case(edge),
    }


def region_text(region: Region) -> str:
    """The bcftools region (1-based, inclusive) of an htsget region."""
    if region.start is None and region.end is None:
        return region.reference_name
    start = 1 if region.start is None else region.start + 1
    end = "" if region.end is None else region.end
    return f"{region.reference_name}:{start}-{end}"


def output_records(data: bytes) -> list[str]:
    return [
        line
        for line in gzip.decompress(data).decode().splitlines()
        if not line.startswith("#")
    ]


def assert_valid_bgzf(data: bytes) -> None:
    blocks = list(bgzf.iter_blocks(data))
    assert blocks[-1].raw == bgzf.EOF_BLOCK
    assert all(block.data for block in blocks[:-1])


def regions_for(case: VcfCase, generator: random.Random) -> list[Region]:
    """Random regions and edges: at a record's POS, just before and after it,
    inside and at the end of deletions, whole references, open ends."""
    spans = []
    for line in case.bcftools_records(None):
        contig, position, _, reference, _, _, _, info = line.split("\t")[:8]
        start = int(position) - 1
        end = start + len(reference)
        for entry in info.split(";"):
            if entry.startswith("END="):
                end = max(end, int(entry[4:]))
        spans.append((contig, start, end))
    regions = []
    for contig, start, end in generator.sample(spans, min(12, len(spans))):
        regions += [
            Region(contig, start, start + 1),
            Region(contig, start - 1 if start else 0, start),
            Region(contig, start + 1, start + 2),
            Region(contig, end - 1, end),
            Region(contig, end, end + 10),
            Region(contig, max(start - 5000, 0), start + 5000),
        ]
    for contig in sorted({contig for contig, _, _ in spans}):
        starts = [start for name, start, _ in spans if name == contig]
        low, high = min(starts), max(starts)
        regions += [Region(contig), Region(contig, None, low + 1)]
        regions += [Region(contig, high, None), Region(contig, low + 1, None)]
        for _ in range(6):
            start = generator.randint(max(low - 1000, 0), high)
            regions.append(Region(contig, start, start + generator.randint(1, 30_000)))
    return regions


@pytest.mark.parametrize("index_kind", INDEX_KINDS)
@pytest.mark.parametrize("name", ["cineca", "chrx", "edge"])
def test_slices_hold_the_records_bcftools_returns(cases, name, index_kind):
    case = cases[name]
    stored = case.stored(index_kind)
    regions = regions_for(case, random.Random(f"{name}"))
    assert len(regions) > 40
    for region in regions:
        out = b"".join(stored.slice([region]))
        assert output_records(out) == list(
            case.bcftools_records(region_text(region))
        ), region
        assert_valid_bgzf(out)


@pytest.mark.parametrize("index_kind", INDEX_KINDS)
def test_several_regions_each_record_once_in_file_order(cases, index_kind):
    case = cases["edge"]
    stored = case.stored(index_kind)
    region_sets = [
        [Region("1", 99, 300), Region("1", 150, 1200)],
        [Region("1", 4000, 12_000), Region("1", 100, 110), Region("1", 11_000, 11_500)],
        [Region("2", 0, 10), Region("1", 0, 1000)],
        [Region("1", 150_000, 160_000), Region("1", 350_000, 350_001)],
        [Region("1", 0, 50), Region("1", 50, 100), Region("1", 100, 101)],
        [Region("2", 67_108_862, 67_108_866), Region("2")],
        [Region("3"), Region("2", 0, 100)],
    ]
    file_order = {"1": 0, "2": 1, "3": 2}
    for regions in region_sets:
        # Our slices are in file order whatever the order of the regions; bcftools
        # goes through references in the order it is given them.
        in_file_order = sorted(regions, key=lambda r: file_order[r.reference_name])
        text = ",".join(region_text(region) for region in in_file_order)
        out = b"".join(stored.slice(regions))
        assert output_records(out) == list(case.bcftools_records(text)), regions
        assert len(set(output_records(out))) == len(output_records(out))


@pytest.mark.parametrize("index_kind", INDEX_KINDS)
def test_everything_and_the_header(cases, index_kind):
    case = cases["cineca"]
    stored = case.stored(index_kind)
    out = b"".join(stored.slice(None))
    assert output_records(out) == list(case.bcftools_records(None))
    assert gzip.decompress(out) == gzip.decompress(case.data)
    header_text = pysam.bcftools.view("-h", str(case.path))
    assert isinstance(header_text, str)
    header = header_text.encode()
    # bcftools adds its own command lines; everything else is the file's header.
    assert [
        line for line in header.splitlines() if not line.startswith(b"##bcftools")
    ] == stored.header().splitlines()
    only_header = b"".join(stored.slice(None, include_body=False))
    assert gzip.decompress(only_header) == stored.header()
    assert_valid_bgzf(only_header)
    empty = b"".join(stored.slice([Region("1", 5, 6)]))
    assert gzip.decompress(empty) == stored.header()


def test_pysam_reads_the_slice(cases, tmp_path):
    case = cases["chrx"]
    stored = case.stored("tbi")
    path = tmp_path / "slice.vcf.gz"
    path.write_bytes(b"".join(stored.slice([Region("X", 2_000_000, 3_000_000)])))
    with pysam.VariantFile(str(path)) as vcf:
        positions = [record.pos for record in vcf]
        assert len(vcf.header.samples) == 1126
    assert positions
    assert all(2_000_000 < position <= 3_000_000 for position in positions)


@pytest.mark.parametrize("output_format", ["VCF", "BCF"])
def test_ticket_parts_concatenate_into_the_file(cases, tmp_path, output_format):
    case = cases["edge"]
    stored = case.stored("csi")
    regions = [Region("1", 0, 1000), Region("1", 50_000, 60_000), Region("2")]
    parts = [stored.header_part(output_format)]
    for region in regions:
        parts += list(stored.body_part(region, output_format))
    parts.append(stored.eof())
    joined = b"".join(parts)
    assert_valid_bgzf(joined)
    whole = b"".join(stored.slice(regions, output_format=output_format))
    assert records_read_by_pysam(joined, tmp_path) == records_read_by_pysam(
        whole, tmp_path
    )
    assert len(records_read_by_pysam(joined, tmp_path)) == sum(
        len(case.bcftools_records(region_text(region))) for region in regions
    )
    if output_format == "VCF":
        assert not stored.header_part().endswith(bgzf.EOF_BLOCK)
        assert gzip.decompress(stored.header_part() + stored.eof()) == stored.header()


def records_read_by_pysam(data: bytes, directory: pathlib.Path) -> list[str]:
    path = directory / "records.out"
    path.write_bytes(data)
    with pysam.VariantFile(str(path)) as vcf:
        return [str(record) for record in vcf]


@pytest.mark.parametrize("name", ["cineca", "edge"])
def test_bcf_holds_the_same_records(cases, tmp_path, name):
    case = cases[name]
    stored = case.stored("tbi")
    region = Region("1", 60_000, 120_000) if name == "cineca" else Region("1")
    bcf = b"".join(stored.slice([region], output_format="BCF"))
    assert gzip.decompress(bcf).startswith(b"BCF\x02\x02")
    assert_valid_bgzf(bcf)
    vcf = b"".join(stored.slice([region]))
    from_bcf = records_read_by_pysam(bcf, tmp_path)
    assert from_bcf == records_read_by_pysam(vcf, tmp_path)
    assert len(from_bcf) == len(case.bcftools_records(region_text(region))) > 0
    header_only = b"".join(stored.slice(None, output_format="BCF", include_body=False))
    assert records_read_by_pysam(header_only, tmp_path) == []


def bcftools_text(path: pathlib.Path, *options: str) -> list[str]:
    out = pysam.bcftools.view("-H", *options, str(path))
    assert isinstance(out, str)
    return out.splitlines()


@pytest.mark.parametrize("index_kind", INDEX_KINDS)
def test_bcf_keeps_an_info_end_within_ref(tmp_path, index_kind):
    # pysam's writer deletes an INFO/END equal to POS + len(REF) - 1 on a
    # non-symbolic record (bcf_sync_end); bcftools keeps it, and so must a slice.
    records = [
        "1\t100\t.\tACG\tA\t.\tPASS\tEND=102;DP=5\tGT\t0|1\t1|1\t0|0",
        "1\t200\t.\tA\tG\t.\tPASS\tEND=200\tGT\t0|1\t1|1\t0|0",
        "1\t300\t.\tA\t<DEL>\t.\tPASS\tEND=350\tGT\t0|1\t1|1\t0|0",
        "1\t400\t.\tA\tG\t.\tPASS\tEND=450\tGT\t0|1\t1|1\t0|0",
        "1\t500\t.\tA\tG\t.\tPASS\tDP=3\tGT\t0|1\t1|1\t0|0",
    ]
    declarations = (
        '##INFO=<ID=END,Number=1,Type=Integer,Description="End">',
        '##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">',
    )
    path = write_vcf(
        tmp_path / "end.vcf.gz", records, extra_header=declarations, index=False
    )
    case = indexed_case(path)
    stored = case.stored(index_kind)
    for region, text in [(Region("1", 99, 101), "1:100-101"), (Region("1"), "1")]:
        bcf = tmp_path / "slice.bcf"
        bcf.write_bytes(b"".join(stored.slice([region], output_format="BCF")))
        expected = tmp_path / "expected.bcf"
        pysam.bcftools.view(
            "-r", text, "-Ob", "-o", str(expected), str(path), catch_stdout=False
        )
        assert bcftools_text(bcf) == bcftools_text(expected)
        assert any("END=" in line for line in bcftools_text(bcf))
    everything = bcftools_text(tmp_path / "slice.bcf")
    assert [line.split("\t")[7] for line in everything] == [
        "END=102;DP=5",
        "END=200",
        "END=350",
        "END=450",
        "DP=3",
    ]


def test_bcf_of_a_contig_missing_from_the_header(tmp_path):
    records = ["7\t10\t.\tA\tC\t.\tPASS\t.\tGT\t0|1\t1|1\t0|0"]
    case = indexed_case(write_vcf(tmp_path / "nocontig.vcf.gz", records, index=False))
    stored = case.stored(None)
    assert stored.reference_names() == ["1", "2", "7"]
    bcf = b"".join(stored.slice([Region("7")], output_format="BCF"))
    assert len(records_read_by_pysam(bcf, tmp_path)) == 1


def test_bcf_of_tags_the_header_does_not_declare(tmp_path, monkeypatch):
    records = [
        "1\t10\t.\tA\tC\t.\tPASS\tFOO=3\tGT:XX\t0|1:5\t1|1:2\t0|0:1",
        "1\t20\t.\tA\tC\t.\tPASS\t.\tGT\t0|1\t1|1\t0|0",
        "2\t30\t.\tA\tC\t.\tPASS\tBAR\tGT\t0|1\t1|1\t0|0",
    ]
    stored = indexed_case(
        write_vcf(tmp_path / "undeclared.vcf.gz", records, index=False)
    ).stored("tbi")
    vcf = b"".join(stored.slice(None))
    bcf = b"".join(stored.slice(None, output_format="BCF"))
    assert records_read_by_pysam(bcf, tmp_path) == records_read_by_pysam(vcf, tmp_path)
    # A body part alone cannot declare them for the header part.
    with pytest.raises(UnsupportedFormatError, match="declare"):
        b"".join(stored.body_part(Region("1"), "BCF"))
    assert list(stored.body_part(Region("1", 15, 25), "BCF"))
    # In batches (one record each), a tag first seen after the header went out
    # cannot be declared any more.
    monkeypatch.setattr(variants, "_BCF_BATCH", 10)
    assert (
        len(
            records_read_by_pysam(
                b"".join(stored.slice([Region("1")], output_format="BCF")), tmp_path
            )
        )
        == 2
    )
    with pytest.raises(UnsupportedFormatError, match="declare"):
        b"".join(stored.slice([Region("1", 15), Region("2")], output_format="BCF"))


def test_bcf_in_batches_and_stopped_early(cases, tmp_path, monkeypatch):
    case = cases["cineca"]
    stored = case.stored("tbi")
    whole = records_read_by_pysam(b"".join(stored.slice(None)), tmp_path)
    # Batches of about 1 MB of VCF text: the records of every batch follow the
    # one header.
    monkeypatch.setattr(variants, "_BCF_BATCH", 1 << 20)
    bcf = b"".join(stored.slice(None, output_format="BCF"))
    assert records_read_by_pysam(bcf, tmp_path) == whole
    descriptors = len(list(pathlib.Path("/proc/self/fd").iterdir()))
    stream = stored.slice(None, output_format="BCF")
    assert next(stream)
    stream.close()
    assert len(list(pathlib.Path("/proc/self/fd").iterdir())) == descriptors


def test_info_end_counts_only_when_declared_an_integer(tmp_path):
    # htslib takes INFO/END for the span only with an Integer declaration.
    records = [
        "1\t100\tlong\tA\t<DEL>\t.\tPASS\tEND=900\tGT\t0|1\t1|1\t0|0",
        "1\t500\tshort\tA\tC\t.\tPASS\t.\tGT\t0|1\t1|1\t0|0",
    ]
    for declared, expected in ((True, ["long", "short"]), (False, ["short"])):
        header = EDGE_HEADER if declared else EDGE_HEADER[1:]
        path = write_vcf(
            tmp_path / f"end{declared}.vcf.gz",
            records,
            extra_header=header,
            index=False,
        )
        case = indexed_case(path)
        region = Region("1", 450, 600)
        assert [
            line.split("\t")[2] for line in case.bcftools_records(region_text(region))
        ] == expected
        for index_kind in INDEX_KINDS:
            out = b"".join(case.stored(index_kind).slice([region]))
            assert [line.split("\t")[2] for line in output_records(out)] == expected


def test_positions_beyond_the_reach_of_tabix(tmp_path):
    positions = (100, 600_000_000, 900_000_000, 1_500_000_000)
    records = [f"1\t{p}\t.\tA\tT\t.\tPASS\t.\tGT\t0/1\t0/0\t0/0" for p in positions]
    path = write_vcf(tmp_path / "far.vcf.gz", records, contigs=("1",))
    data = path.read_bytes()
    csi = pathlib.Path(f"{path}.csi").read_bytes()
    for index in (csi, None):
        stored = StoredVariants(lambda o, n: data[o : o + n], len(data), index=index)
        for start, end, expected in [
            (599_999_999, 600_000_000, [600_000_000]),
            (0, None, list(positions)),
            (800_000_000, None, [900_000_000, 1_500_000_000]),
        ]:
            out = b"".join(stored.slice([Region("1", start, end)]))
            assert [
                int(line.split("\t")[1]) for line in output_records(out)
            ] == expected


@st.composite
def small_vcfs(draw):
    """Sorted records on two references: SNVs, indels, symbolic deletions with
    INFO/END, several at one position; and a few regions."""
    records = []
    for contig in ("1", "2"):
        position = 0
        for _ in range(draw(st.integers(0, 25))):
            position += draw(st.integers(0, 40_000))
            if draw(st.booleans()):
                reference = "A" * draw(st.integers(1, 12))
                alternate, info = "T", "."
                if draw(st.integers(0, 3)) == 0:
                    # END on a plain allele: htslib's span is the longer one.
                    info = f"END={position + 1 + draw(st.integers(-2, 20))}"
            else:
                reference, alternate = "A", "<DEL>"
                info = f"END={position + 1 + draw(st.integers(0, 50_000))}"
            records.append(
                f"{contig}\t{position + 1}\t.\t{reference}\t{alternate}\t.\tPASS\t"
                f"{info}\tGT\t0|1\t1|1\t0|0"
            )
    regions = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["1", "2"]),
                st.integers(0, 400_000),
                st.integers(1, 60_000),
            ),
            min_size=1,
            max_size=3,
        )
    )
    # Regions at the edges of records: their first, last and next bases.
    starts = [(line.split("\t")[0], int(line.split("\t")[1]) - 1) for line in records]
    if starts:
        for _ in range(draw(st.integers(1, 4))):
            contig, start = draw(st.sampled_from(starts))
            regions.append(
                (contig, start + draw(st.integers(-2, 14)), draw(st.integers(1, 3)))
            )
    block_sizes = draw(st.lists(st.integers(1, 300), min_size=1, max_size=5))
    regions = [Region(c, max(s, 0), max(s, 0) + n) for c, s, n in regions]
    return records, regions, block_sizes


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(vcf=small_vcfs())
def test_generated_vcfs_in_tiny_blocks(tmp_path, vcf):
    """Lines cut across many small BGZF blocks; the three indexes; bcftools."""
    records, regions, block_sizes = vcf
    path = write_vcf(
        tmp_path / "generated.vcf.gz", records, extra_header=EDGE_HEADER, index=False
    )
    text = gzip.decompress(path.read_bytes())
    blocks: list[bytes] = []
    position = 0
    while position < len(text):
        size = block_sizes[len(blocks) % len(block_sizes)]
        blocks.append(bgzf.compress_block(text[position : position + size]))
        position += size
    path.write_bytes(b"".join(blocks) + bgzf.EOF_BLOCK)
    case = indexed_case(path)
    in_file_order = sorted(regions, key=lambda region: region.reference_name)
    expected = case.bcftools_records(
        ",".join(region_text(region) for region in in_file_order)
    )
    for index_kind in INDEX_KINDS:
        out = b"".join(case.stored(index_kind).slice(regions))
        assert output_records(out) == list(expected)


def test_regions_that_cannot_be(cases):
    stored = cases["edge"].stored("tbi")
    assert stored.reference_names() == ["1", "2", "3"]
    with pytest.raises(NotFoundError, match="'chr1'"):
        stored.slice([Region("chr1", 0, 10)])
    with pytest.raises(InvalidRangeError) as error:
        stored.slice([Region("1", 10, 5)])
    assert error.value.field == "start"
    with pytest.raises(InvalidRangeError) as error:
        stored.slice([Region("1", -1, 5)])
    assert error.value.field == "start"
    with pytest.raises(InvalidRangeError) as error:
        stored.slice([Region("1", None, -5)])
    assert error.value.field == "end"
    for output_format in ("BAM", "vcf", "CRAM"):
        with pytest.raises(UnsupportedFormatError) as format_error:
            stored.slice(None, output_format=output_format)
        assert format_error.value.field == "format"
    with pytest.raises(NotFoundError):
        stored.estimated_size([Region("MT")])
    # A reference of the header without records: an empty slice, not an error.
    assert output_records(b"".join(stored.slice([Region("3")]))) == []
    # Past the reach of tabix (2**29), and empty regions: nothing either.
    for region in (Region("1", 1 << 30), Region("1", 1 << 30, 1 << 31)):
        assert output_records(b"".join(stored.slice([region]))) == []
    assert output_records(b"".join(stored.slice([Region("1", 99, 99)]))) == []


def test_files_that_are_not_bgzf_vcf(tmp_path, cases):
    plain_gzip = CHRX_VCF.read_bytes()
    with pytest.raises(StoreError, match="BGZF"):
        StoredVariants(lambda o, n: plain_gzip[o : o + n], len(plain_gzip))
    records = [
        "1\t500\t.\tA\tC\t.\tPASS\t.\tGT\t0|1\t1|1\t0|0",
        "1\t100\t.\tA\tC\t.\tPASS\t.\tGT\t0|1\t1|1\t0|0",
    ]
    unsorted = write_vcf(tmp_path / "unsorted.vcf.gz", records, index=False)
    data = unsorted.read_bytes()
    with pytest.raises(StoreError, match="not sorted"):
        StoredVariants(lambda o, n: data[o : o + n], len(data))
    case = cases["cineca"]
    with pytest.raises(StoreError):
        StoredVariants(case.read, len(case.data), index=b"not an index")


def test_a_small_region_reads_little_and_quickly(cases):
    case = cases["cineca"]
    requested = []

    def read(offset, length):
        requested.append(length)
        return case.data[offset : offset + length]

    stored = StoredVariants(read, len(case.data), index=case.tbi, index_kind="tbi")
    requested.clear()
    out = b"".join(stored.slice([Region("1", 99_000, 99_700)]))
    assert output_records(out) == list(case.bcftools_records("1:99001-99700"))
    assert len(output_records(out)) == 9
    # The header is kept; the body needs a block or two, not the 165 kB file.
    assert sum(requested) < 3 * bgzf.MAX_BLOCK_SIZE
    assert stored.estimated_size([Region("1", 99_000, 99_700)]) < len(case.data)
    assert stored.estimated_size(None) == len(case.data)
    # A 100 kb region of this 2,504-sample VCF (891 records, 6 MB of text).
    timings = []
    for _ in range(3):
        began = time.perf_counter()
        out = b"".join(stored.slice([Region("1", 50_000, 150_000)]))
        timings.append(time.perf_counter() - began)
    assert len(output_records(out)) == 891
    assert min(timings) < 0.5


def test_the_scan_reads_a_bounded_amount_at_once(cases):
    case = cases["chrx"]
    requested = []

    def read(offset, length):
        requested.append(length)
        return case.data[offset : offset + length]

    stored = StoredVariants(read, len(case.data))
    assert stored.index.kind == "built"
    assert max(requested) <= (1 << 20) + bgzf.MAX_BLOCK_SIZE
    assert stored.index.reference_names == ("X",)
    assert "X" in stored.reference_names()
