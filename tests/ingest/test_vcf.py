"""VCF checks: BGZF container, header parser and record checks."""

from __future__ import annotations

import gzip
import pathlib

import numpy as np
import pysam
import pytest

from genomenode.errors import InputError, VcfError
from genomenode.ingest.vcf import VcfHeader, check_bgzf, check_records, read_header
from tests.conftest import CINECA_VCF, write_vcf

FIXED = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"


def bgzip_lines(path: pathlib.Path, lines: list[str]) -> pathlib.Path:
    """Write ``lines`` as a BGZF file, without any checks (for broken headers)."""
    plain = path.with_suffix("")
    plain.write_text("\n".join(lines) + "\n")
    pysam.tabix_compress(str(plain), str(path), force=True)
    plain.unlink()
    return path


def header_failure(path: pathlib.Path) -> VcfError:
    with pytest.raises(VcfError) as caught:
        read_header(path)
    error = caught.value
    assert isinstance(error, InputError)
    assert error.path == str(path)
    assert str(error).startswith(str(path))
    return error


def assert_line(error: VcfError, line: int) -> None:
    assert error.line == line
    assert f"line {line}" in str(error)


# --- read_header ------------------------------------------------------------------


def test_read_header_of_the_real_1000_genomes_file():
    with gzip.open(CINECA_VCF, "rt") as lines:
        header_lines = []
        for line in lines:
            if not line.startswith("#"):
                break
            header_lines.append(line.rstrip("\n"))
    naive_contigs = [
        line.removeprefix("##contig=<ID=").split(",")[0].rstrip(">")
        for line in header_lines
        if line.startswith("##contig=<")
    ]
    naive_samples = header_lines[-1].split("\t")[9:]

    header = read_header(CINECA_VCF)

    assert header.path == CINECA_VCF
    assert header.num_header_lines == len(header_lines)
    assert header_lines[header.num_header_lines - 1].startswith("#CHROM\t")
    assert len(header.samples) == 2504
    assert header.samples == tuple(naive_samples)
    assert header.samples[0] == "HG00096"
    assert header.contigs == tuple(naive_contigs)
    assert header.contigs[:3] == ("1", "2", "3")
    assert "22" in header.contigs
    assert "X" in header.contigs


def test_read_header_of_a_generated_file(tmp_path):
    path = write_vcf(
        tmp_path / "cohort.vcf.gz",
        ["1\t100\t.\tA\tG\t.\tPASS\t.\tGT\t0/1\t1/1\t0/0"],
        contigs=("chr1", "chr2", "chrM"),
        extra_header=(
            '##INFO=<ID=AF,Number=A,Type=Float,Description="Allele, \\"frequency\\"">',
            '##INFO=<ID=GL,Number=G,Type=Float,Description="Likelihoods">',
            '##INFO=<ID=DB,Number=0,Type=Flag,Description="dbSNP">',
            '##FILTER=<ID=q10,Description="Quality below 10">',
            '##ALT=<ID=DEL,Description="Deletion">',
            "##source=tests",
        ),
        index=False,
    )

    header = read_header(path)

    # fileformat, 3 contigs, FORMAT=GT, 6 extra lines and #CHROM.
    assert header.num_header_lines == 12
    assert header.contigs == ("chr1", "chr2", "chrM")
    assert header.samples == ("S1", "S2", "S3")
    assert header.info_number_g == ("GL",)


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ('##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth"', "##KEY=<ID="),
        ('##INFO=<ID=DP,Number=1,Description="Depth">', "Type= is missing"),
        ("##FORMAT=<ID=DP,Number=1,Type=Integer>", "Description= is missing"),
        ("##contig=<length=1000>", "ID= is missing"),
        ('##INFO=<ID=DP,Number=X,Type=Integer,Description="Depth">', "Number=X"),
        ('##INFO=<ID=DP,Number=-1,Type=Integer,Description="Depth">', "Number=-1"),
        ('##INFO=<ID=DP,Number=1,Type=Double,Description="Depth">', "Type=Double"),
        ('##FORMAT=<ID=FT,Number=0,Type=Flag,Description="Flag">', "Type=Flag"),
        ("##nonsense", "##key=value"),
        ("##contig=<ID=1,length=100000000>", "declared twice"),
    ],
)
def test_malformed_meta_line(tmp_path, line, words):
    path = write_vcf(tmp_path / "bad.vcf.gz", [], extra_header=(line,), index=False)

    error = header_failure(path)

    # fileformat, two contigs and FORMAT=GT come first.
    assert_line(error, 5)
    assert words in str(error)


def test_info_without_type_names_the_field(tmp_path):
    path = write_vcf(
        tmp_path / "bad.vcf.gz",
        [],
        extra_header=('##INFO=<ID=DP,Number=1,Description="Depth">',),
        index=False,
    )

    error = header_failure(path)

    assert_line(error, 5)
    assert error.field == "INFO"
    assert "malformed ##INFO header line" in str(error)


@pytest.mark.parametrize("line", ["#comment", "fileDate=20240101", "", "# ##x=y"])
def test_line_not_starting_with_two_hashes_before_chrom(tmp_path, line):
    path = write_vcf(tmp_path / "bad.vcf.gz", [], extra_header=(line,), index=False)

    error = header_failure(path)

    assert_line(error, 5)
    assert "expected a ## meta line or the #CHROM header line" in str(error)


def test_first_line_must_be_fileformat(tmp_path):
    path = bgzip_lines(
        tmp_path / "bad.vcf.gz",
        ["##source=tests", "##fileformat=VCFv4.3", f"{FIXED}\tFORMAT\tS1"],
    )

    error = header_failure(path)

    assert_line(error, 1)
    assert "##fileformat=VCFv4.x" in str(error)


@pytest.mark.parametrize(
    "chrom_line",
    [
        "#CHROM\tPOS\tID\tREF\tALT\tFILTER\tINFO\tFORMAT\tS1",  # no QUAL
        "#CHROM POS ID REF ALT QUAL FILTER INFO FORMAT S1",  # spaces
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER",  # too short
        "#CHROM\tPOS\tID\tALT\tREF\tQUAL\tFILTER\tINFO\tFORMAT\tS1",  # swapped
    ],
)
def test_chrom_line_with_wrong_fixed_columns(tmp_path, chrom_line):
    path = bgzip_lines(
        tmp_path / "bad.vcf.gz",
        ["##fileformat=VCFv4.3", "##contig=<ID=1>", chrom_line],
    )

    error = header_failure(path)

    assert_line(error, 3)
    assert "8 tab-separated fixed columns" in str(error)


def test_chrom_line_column_9_must_be_format(tmp_path):
    path = bgzip_lines(
        tmp_path / "bad.vcf.gz", ["##fileformat=VCFv4.3", f"{FIXED}\tS1\tS2"]
    )

    error = header_failure(path)

    assert_line(error, 2)
    assert "FORMAT" in str(error)


@pytest.mark.parametrize("chrom_line", [FIXED, f"{FIXED}\tFORMAT"])
def test_vcf_without_samples_is_sites_only(tmp_path, chrom_line):
    path = bgzip_lines(tmp_path / "sites.vcf.gz", ["##fileformat=VCFv4.3", chrom_line])

    header = read_header(path)

    # Accepted as an aggregate-only file (tests/ingest/test_sites_only.py).
    assert header.samples == ()
    assert header.sites_only


def test_duplicate_sample_ids(tmp_path):
    path = write_vcf(
        tmp_path / "bad.vcf.gz", [], samples=["S1", "S2", "S3", "S2"], index=False
    )

    error = header_failure(path)

    assert_line(error, 5)
    assert error.field == "#CHROM"
    assert "field '#CHROM'" in str(error)
    assert "duplicate sample id 'S2'" in str(error)


def test_header_without_chrom_line(tmp_path):
    path = bgzip_lines(
        tmp_path / "bad.vcf.gz", ["##fileformat=VCFv4.3", "##contig=<ID=1>"]
    )

    error = header_failure(path)

    assert "no #CHROM header line" in str(error)


def test_header_of_a_file_that_is_not_gzip(tmp_path):
    path = tmp_path / "plain.vcf.gz"
    path.write_text(f"##fileformat=VCFv4.3\n{FIXED}\tFORMAT\tS1\n")

    error = header_failure(path)

    assert "cannot read the header" in str(error)


# --- check_bgzf -------------------------------------------------------------------


def bgzf_failure(path: pathlib.Path) -> VcfError:
    with pytest.raises(VcfError) as caught:
        check_bgzf(path)
    error = caught.value
    assert error.path == str(path)
    assert str(error).startswith(f"{path}: ")
    return error


def test_check_bgzf_accepts_real_and_generated_files(tmp_path):
    check_bgzf(CINECA_VCF)
    check_bgzf(write_vcf(tmp_path / "ok.vcf.gz", [], index=False))


def test_check_bgzf_plain_text(tmp_path):
    path = tmp_path / "cohort.vcf.gz"
    path.write_text(f"##fileformat=VCFv4.3\n{FIXED}\tFORMAT\tS1\n")

    error = bgzf_failure(path)

    assert "not compressed" in str(error)
    assert "bgzip" in str(error)


def test_check_bgzf_plain_gzip(tmp_path):
    path = tmp_path / "cohort.vcf.gz"
    with gzip.open(CINECA_VCF, "rb") as source:
        path.write_bytes(gzip.compress(source.read()))

    error = bgzf_failure(path)

    assert "gzip but not BGZF" in str(error)
    assert "bgzip" in str(error)


@pytest.mark.parametrize("cut", [1, 28, 5000])
def test_check_bgzf_truncated(tmp_path, cut):
    data = CINECA_VCF.read_bytes()
    path = tmp_path / "cohort.vcf.gz"
    path.write_bytes(data[: len(data) - cut])

    error = bgzf_failure(path)

    assert "truncated BGZF file" in str(error)
    assert "end-of-file block is missing" in str(error)


def test_check_bgzf_too_short(tmp_path):
    path = tmp_path / "cohort.vcf.gz"
    path.write_bytes(CINECA_VCF.read_bytes()[:20])

    error = bgzf_failure(path)

    assert "truncated BGZF file (too short)" in str(error)


def test_check_bgzf_empty_file(tmp_path):
    path = tmp_path / "cohort.vcf.gz"
    path.write_bytes(b"")

    error = bgzf_failure(path)

    assert "not compressed" in str(error)


# --- check_records ----------------------------------------------------------------

HEADER_LINES = 20
HEADER = VcfHeader(
    path=pathlib.Path("/data/cohort.vcf.gz"),
    num_header_lines=HEADER_LINES,
    contigs=("1", "2"),
    samples=("S1", "S2"),
    info_number_g=(),
)


def records(contigs, positions, alleles, contig_ids=("1", "2")):
    """check_records on arrays shaped and typed like the VCF Zarr ones."""
    check_records(
        HEADER,
        list(contig_ids),
        np.array(contigs, dtype=np.int8),
        np.array(positions, dtype=np.int32),
        np.array(alleles, dtype=np.dtypes.StringDType()),
    )


def records_failure(*args, **kwargs) -> VcfError:
    with pytest.raises(VcfError) as caught:
        records(*args, **kwargs)
    error = caught.value
    assert error.path == str(HEADER.path)
    assert str(error).startswith(f"{HEADER.path}, line {error.line}")
    return error


def test_check_records_accepts_valid_records():
    records(
        [0, 0, 0, 0, 1, 1],
        [100, 100, 200, 300, 5, 50],
        [
            ["A", "G", ""],
            ["C", "<DEL>", ""],
            ["G", "*", "T"],
            ["acgtn", "<INS:ME>", "<*>"],
            ["G", "G]2:300]", ".G"],
            ["T", "", ""],  # no ALT: the padding is empty
        ],
    )


def test_check_records_accepts_no_records():
    records([], [], np.empty((0, 2), dtype=np.dtypes.StringDType()))


def test_check_records_undeclared_contig():
    error = records_failure(
        [0, 0, 2, 2],
        [100, 200, 5, 6],
        [["A", "G"]] * 4,
        contig_ids=("1", "2", "chrUn"),
    )

    assert_line(error, HEADER_LINES + 2 + 1)
    assert error.field == "CHROM"
    assert "contig 'chrUn' is not declared in the header" in str(error)


def test_check_records_unsorted_positions():
    error = records_failure([0, 0, 0, 0, 1], [100, 300, 400, 200, 1], [["A", "G"]] * 5)

    # Record 3 (0-based) is on the line after the header and records 0-2.
    assert_line(error, HEADER_LINES + 3 + 1)
    assert error.field == "POS"
    assert "position 200 comes after 400" in str(error)


def test_check_records_positions_may_restart_on_a_new_contig():
    records([0, 0, 1, 1], [100, 900, 1, 2], [["A", "G"]] * 4)


def test_check_records_contig_appearing_again():
    error = records_failure([0, 0, 1, 1, 0], [100, 200, 1, 2, 300], [["A", "G"]] * 5)

    assert_line(error, HEADER_LINES + 4 + 1)
    assert error.field == "CHROM"
    assert "contig '1' appears again after other contigs" in str(error)


@pytest.mark.parametrize("reference", ["X", "A-G", "<DEL>", "*", ""])
def test_check_records_bad_ref(reference):
    error = records_failure([0, 0], [100, 200], [["A", "G"], [reference, "G"]])

    assert_line(error, HEADER_LINES + 1 + 1)
    assert error.field == "REF"
    assert f"REF {reference!r}" in str(error)


@pytest.mark.parametrize("alternate", ["X", "<DEL", "A C", "**"])
def test_check_records_bad_alt(alternate):
    error = records_failure([0], [100], [["A", alternate]])

    assert_line(error, HEADER_LINES + 1)
    assert error.field == "ALT"
    assert f"ALT {alternate!r}" in str(error)
