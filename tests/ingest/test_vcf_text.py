"""The VCF text reader and its sample-column kernel (ingest/vcf_text.py) against
cyvcf2 (htslib): the same arrays, dtypes and values for every record, and
TextUnsupported — never a different answer — for text outside its grammar."""

from __future__ import annotations

import gzip
import pathlib

import cyvcf2
import numpy as np
import pysam
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from genomenode.ingest import vcf_text

from ..conftest import CINECA_VCF, DATA, write_vcf
from .test_calls import _indexed

REAL = {
    "1000g-chr1-multiallelic": CINECA_VCF,
    "1000g-chr22-phased": DATA / "realvcf" / "1KG_phase3_subset_chr22.vcf.gz",
    "1000g-chrX-haploid": DATA / "realvcf" / "1KG_phase3_subset_chrX.vcf.gz",
}
INTEGER_HEADER = (
    '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Read depth">',
    '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allele depths">',
    '##FORMAT=<ID=PL,Number=G,Type=Integer,Description="Likelihoods">',
    '##FORMAT=<ID=SB,Number=4,Type=Integer,Description="Strand bias">',
)
# Most values a sample may have of each field in the generated files.
WIDTHS = {"DP": 1, "AD": 5, "PL": 15, "SB": 4}


def _bgzf(source: pathlib.Path, directory: pathlib.Path) -> pathlib.Path:
    """An indexed BGZF copy of ``source`` with a tabix index (the kernel's tests
    in test_calls.py give theirs a CSI: both kinds are read)."""
    return _indexed(source, directory, csi=False)


def _assert_writer_view(genotype, array: np.ndarray, where: str) -> None:
    """What the writer takes instead of ``array()`` agrees with it: the bounds,
    and the alleles and phases stored into a wider int8 row."""
    assert genotype.bounds() == (int(array.min()), int(array.max())), where
    ploidy = genotype.ploidy
    assert ploidy == array.shape[1] - 1, where
    target = np.zeros((array.shape[0], ploidy + 1), dtype=np.int8)
    phased = np.zeros(array.shape[0], dtype=bool)
    genotype.store(target, phased)
    np.testing.assert_array_equal(target[:, :ploidy], array[:, :ploidy], where)
    assert (target[:, ploidy] == -2).all(), where
    np.testing.assert_array_equal(phased, array[:, ploidy] != 0, where)


def assert_same_records(vcf: pathlib.Path, fields: dict[str, int]) -> int:
    """Parse every record of ``vcf`` with the kernel and with cyvcf2; the number
    of records compared."""
    reader = cyvcf2.VCF(str(vcf))
    parser = vcf_text.TextRecords(len(reader.samples), list(fields.items()))
    records = (line for line in vcf_text.lines(vcf, 0) if not line.startswith(b"#"))
    compared = 0
    for expected, line in zip(reader, records, strict=True):
        chrom, position = vcf_text.locus(line)
        assert (chrom.decode(), position) == (expected.CHROM, expected.POS)
        where = f"{expected.CHROM}:{expected.POS}"
        record = parser.parse(line, expected.CHROM, position)
        assert record.FORMAT == expected.FORMAT, where
        if "GT" not in expected.FORMAT:
            assert record.genotype is None, where
        else:
            wanted = expected.genotype.array()
            found = record.genotype.array()
            _assert_writer_view(record.genotype, found, where)
            if wanted.shape[1] == 2:
                # One allele a sample: cyvcf2 reads each sample's phase from the
                # next sample's allele, and the last one's from past its buffer
                # (undefined). The kernel says 0: no phase was written.
                assert not found[:, 1].any(), where
                found, wanted = found[:-1], wanted[:-1]
            assert found.dtype == wanted.dtype, where
            np.testing.assert_array_equal(found, wanted, err_msg=where)
        for name in fields:
            wanted = expected.format(name)
            found = record.format(name)
            if wanted is None:
                assert found is None, (where, name)
                continue
            assert found.dtype == wanted.dtype, (where, name)
            np.testing.assert_array_equal(found, wanted, err_msg=f"{where} {name}")
        compared += 1
    reader.close()
    return compared


@pytest.mark.parametrize("name", list(REAL))
def test_real_1000_genomes_records_parse_as_htslib_parses_them(tmp_path, name):
    vcf = _bgzf(REAL[name], tmp_path)
    assert assert_same_records(vcf, {}) > 100


def _sample(draw, keys: list[str], num_alleles: int) -> str:
    values = []
    for key in keys:
        if key == "GT":
            ploidy = draw(st.sampled_from([1, 2, 2, 2, 3]))
            alleles = [
                draw(st.sampled_from([".", *map(str, range(num_alleles))]))
                for _ in range(ploidy)
            ]
            separators = [draw(st.sampled_from("/|")) for _ in range(ploidy - 1)]
            text = alleles[0]
            for separator, allele in zip(separators, alleles[1:], strict=True):
                text += separator + allele
            values.append(text)
            continue
        count = draw(st.integers(1, WIDTHS[key]))
        numbers = [
            draw(
                st.one_of(
                    st.just("."),
                    st.integers(-999, 10**9 - 1).map(str),
                    st.integers(0, 300).map(str),
                )
            )
            for _ in range(count)
        ]
        values.append(",".join(numbers))
    # A sample may leave out its last fields, as htslib allows.
    kept = draw(st.integers(1, len(values)))
    return ":".join(values[:kept])


@st.composite
def _records(draw) -> list[str]:
    lines = []
    for index in range(draw(st.integers(1, 6))):
        num_alleles = draw(st.integers(2, 5))
        others = draw(st.lists(st.sampled_from(list(WIDTHS)), unique=True, max_size=4))
        if draw(st.booleans()):
            others = draw(st.permutations(others))
        # GT first, as the spec says (cyvcf2 ends the process on a record
        # listing GT later that no sample gives: test_genotypes_no_sample_gives).
        keys = others if draw(st.booleans()) and others else ["GT", *others]
        samples = [_sample(draw, keys, num_alleles) for _ in range(4)]
        alt = ",".join("CGTN"[: num_alleles - 1])
        site = ["1", str(100 + index), ".", "A", alt, ".", "PASS", "."]
        lines.append("\t".join([*site, ":".join(keys), *samples]))
    return lines


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(records=_records())
def test_generated_records_parse_as_htslib_parses_them(tmp_path_factory, records):
    """Random key orders and subsets, absent trailing fields, missing values and
    alleles, short vectors, haploid to triploid, negative and nine-digit values."""
    note("\n".join(records))
    directory = tmp_path_factory.mktemp("generated")
    vcf = write_vcf(
        directory / "generated.vcf.gz",
        records,
        samples=["A", "B", "C", "D"],
        extra_header=INTEGER_HEADER,
    )
    assert assert_same_records(vcf, WIDTHS) == len(records)


def test_genotypes_no_sample_gives_are_missing():
    parser = vcf_text.TextRecords(2, [("DP", 1)])
    record = parser.parse(_line("3\t.", keys="DP:GT"), "1", 100)
    np.testing.assert_array_equal(record.genotype.array(), [[-1, 0], [-1, 0]])
    np.testing.assert_array_equal(record.format("DP"), [[3], [-(2**31)]])


def _line(samples: str, keys: str = "GT:DP") -> bytes:
    site = "1\t100\t.\tA\tC\t.\tPASS\t.\t"
    return (site + keys + "\t" + samples).encode()


@pytest.mark.parametrize(
    "samples",
    [
        "0/1:+5\t0/1:3",  # a sign htslib takes and the kernel does not
        "0/1:\t0/1:3",  # an empty value
        "0/1:3.5\t0/1:3",  # a decimal in an Integer field
        "0/1:1234567890\t0/1:3",  # ten digits
        "0/1:3,4\t0/1:3",  # more values than DP holds
        "0/1:3:9\t0/1:3",  # more fields than FORMAT keys
        "0/1:3",  # a sample short
        "0/1:3\t0/1:3\t0/1:3",  # a sample too many
        "0/1:3\t",  # an empty last sample
        "|0/1:3\t0/1:3",  # VCF 4.4's leading phase
        "0//1:3\t0/1:3",  # an empty allele
        "0/12345:3\t0/1:3",  # a five-digit allele
        "0/1/0/1/0/1/0/1/0:3\t0/1:3",  # nine alleles
        "0/x:3\t0/1:3",
    ],
)
def test_text_outside_the_grammar_is_refused(samples):
    parser = vcf_text.TextRecords(2, [("DP", 1)])
    with pytest.raises(vcf_text.TextUnsupported, match="1:100"):
        parser.parse(_line(samples), "1", 100)


def test_a_format_key_twice_is_refused():
    parser = vcf_text.TextRecords(2, [("DP", 1)])
    with pytest.raises(vcf_text.TextUnsupported, match="twice"):
        parser.parse(_line("0/1:3:3\t0/1:3:3", keys="GT:DP:DP"), "1", 100)


def test_lines_from_where_the_index_puts_a_position(tmp_path):
    """Reading from the index's offset for a position gives the file's lines from
    a record at or before it: nothing of the position is skipped."""
    vcf = _bgzf(REAL["1000g-chr22-phased"], tmp_path)
    with gzip.open(vcf, "rb") as plain:
        records = [line for line in plain if not line.startswith(b"#")]
    target = records[len(records) * 2 // 3]
    contig, position = vcf_text.locus(target)
    offset = vcf_text.first_offset(vcf, contig.decode(), position)
    assert offset > 0
    read = vcf_text.lines(vcf, offset)
    first = next(read)
    start = records.index(first)
    assert vcf_text.locus(first)[1] <= position
    assert [first, *read] == records[start:]


def test_a_contig_the_index_does_not_know_is_refused(tmp_path):
    vcf = _bgzf(REAL["1000g-chr22-phased"], tmp_path)
    with pytest.raises(vcf_text.TextUnsupported, match="no records of 7"):
        vcf_text.first_offset(vcf, "7", 100)


def test_bcf_is_left_to_cyvcf2(tmp_path):
    vcf = _bgzf(REAL["1000g-chr22-phased"], tmp_path)
    bcf = tmp_path / "subset.bcf"
    pysam.bcftools.view("-Ob", "-o", str(bcf), str(vcf), catch_stdout=False)
    pysam.bcftools.index(str(bcf), catch_stdout=False)
    with pytest.raises(vcf_text.TextUnsupported, match="not bgzipped VCF text"):
        vcf_text.first_offset(bcf, "22", 100)
