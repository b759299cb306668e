"""The direct call writer (ingest/calls.py) against bio2zarr alone.

Each VCF is converted twice, with the call arrays written straight from the VCF
and with bio2zarr's explode and encode for everything (``DIRECT_CALLS = False``,
the slow twin), and every array of the two stores must be equal: values (floats
bit for bit), dtype, shape, chunks, fill value, codecs and attributes.
"""

from __future__ import annotations

import gzip
import itertools
import json
import pathlib
import shutil

import numpy as np
import pysam
import pytest
import zarr

from genomenode.ingest import calls, convert
from genomenode.ingest.workers import Reporter

from ..conftest import CINECA_VCF, DATA, write_small_cohort, write_vcf

REAL_CHR22 = DATA / "realvcf" / "1KG_phase3_subset_chr22.vcf.gz"
REAL_CHRX = DATA / "realvcf" / "1KG_phase3_subset_chrX.vcf.gz"


def _indexed(
    source: pathlib.Path, directory: pathlib.Path, *, csi: bool = True
) -> pathlib.Path:
    """``source`` (gzip or BGZF) as an indexed BGZF copy in ``directory``: a CSI
    index, or a tabix one without ``csi``."""
    directory.mkdir(parents=True, exist_ok=True)
    plain = directory / source.name.removesuffix(".gz")
    with gzip.open(source, "rb") as compressed:
        plain.write_bytes(compressed.read())
    target = directory / source.name
    pysam.tabix_compress(str(plain), str(target), force=True)
    plain.unlink()
    pysam.tabix_index(str(target), preset="vcf", force=True, csi=csi)
    return target


def _convert(
    vcf: pathlib.Path,
    directory: pathlib.Path,
    *,
    direct: bool,
    monkeypatch: pytest.MonkeyPatch,
    variants_chunk_size: int = 100,
    samples_chunk_size: int = 7,
) -> tuple[pathlib.Path, bool]:
    """The VCF Zarr of ``vcf``, and whether its ICF left the calls out."""
    monkeypatch.setattr(convert, "DIRECT_CALLS", direct)
    work = directory / ("direct" if direct else "bio2zarr")
    work.mkdir(parents=True)
    icf, vcz = work / "icf", work / "genotypes.vcz"
    arguments = {"worker_processes": 0, "reporter": Reporter(False)}
    convert.explode(vcf, icf, source=vcf, **arguments)
    without_calls = (icf / calls.CALL_FIELDS).exists()
    convert.encode(
        vcf,
        icf,
        vcz,
        variants_chunk_size=variants_chunk_size,
        samples_chunk_size=samples_chunk_size,
        drop_info_fields=(),
        **arguments,
    )
    return vcz, without_calls


def _bits(values: np.ndarray) -> np.ndarray:
    """Floats as their bit patterns: bio2zarr's missing and fill are NaNs."""
    if values.dtype.kind == "f":
        return values.view(f"u{values.dtype.itemsize}")
    return values


def assert_same_store(left: pathlib.Path, right: pathlib.Path) -> None:
    first = zarr.open_group(left, mode="r")
    second = zarr.open_group(right, mode="r")
    assert dict(first.attrs) == dict(second.attrs)
    assert sorted(first.array_keys()) == sorted(second.array_keys())
    for name in first.array_keys():
        a, b = first[name], second[name]
        assert a.dtype == b.dtype, name
        assert a.shape == b.shape, name
        assert a.chunks == b.chunks, name
        assert a.fill_value == b.fill_value or (
            np.isnan(a.fill_value) and np.isnan(b.fill_value)
        ), name
        assert a.metadata.to_dict() == b.metadata.to_dict(), name
        assert dict(a.attrs) == dict(b.attrs), name
        np.testing.assert_array_equal(_bits(a[:]), _bits(b[:]), err_msg=name)


@pytest.fixture
def cyvcf2_reads(monkeypatch) -> list[tuple[int, int]]:
    """The (start, stop) of every partition the direct writer read with cyvcf2
    rather than from the text (ingest/vcf_text.py)."""
    reads: list[tuple[int, int]] = []
    original = calls._records

    def spied(source, vcf, start, stop):
        reads.append((start, stop))
        return original(source, vcf, start, stop)

    monkeypatch.setattr(calls, "_records", spied)
    return reads


def _both(vcf, tmp_path, monkeypatch, **chunks) -> tuple[pathlib.Path, bool]:
    """Convert both ways and compare; the direct store and whether it was direct."""
    direct, without_calls = _convert(
        vcf, tmp_path, direct=True, monkeypatch=monkeypatch, **chunks
    )
    reference, _ = _convert(
        vcf, tmp_path, direct=False, monkeypatch=monkeypatch, **chunks
    )
    assert_same_store(direct, reference)
    return direct, without_calls


@pytest.mark.parametrize(
    "source",
    [CINECA_VCF, REAL_CHR22, REAL_CHRX],
    ids=["1000g-chr1-multiallelic", "1000g-chr22-phased", "1000g-chrX-haploid"],
)
def test_real_1000_genomes_slices(tmp_path, monkeypatch, cyvcf2_reads, source):
    vcf = _indexed(source, tmp_path / "input")
    # Sample chunks of 400: several per array, and a last one cut short.
    _, without_calls = _both(vcf, tmp_path, monkeypatch, samples_chunk_size=400)
    assert without_calls
    assert cyvcf2_reads == []


def test_simulated_cohort(tmp_path, monkeypatch, cyvcf2_reads):
    dataset_yaml = write_small_cohort(tmp_path / "cohort", num_variants=450)
    vcf = dataset_yaml.parent / "cohort.vcf.gz"
    _, without_calls = _both(vcf, tmp_path, monkeypatch, variants_chunk_size=50)
    assert without_calls
    assert cyvcf2_reads == []


FORMAT_HEADER = (
    '##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">',
    '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Read depth">',
    '##FORMAT=<ID=GQ,Number=1,Type=Integer,Description="Genotype quality">',
    '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allele depths">',
    '##FORMAT=<ID=AB,Number=A,Type=Float,Description="Allele balance">',
    '##FORMAT=<ID=PL,Number=G,Type=Integer,Description="Likelihoods">',
    '##FORMAT=<ID=SB,Number=4,Type=Integer,Description="Strand bias">',
    '##FORMAT=<ID=HQ,Number=2,Type=Float,Description="Haplotype qualities">',
)
FLOAT_KEYS = ("AB", "HQ")


def _calls_record(
    rng, contig, position, *, num_samples, max_depth, ploidy=None, floats=True
):
    """A record with a random subset of the FORMAT fields (the Float ones only
    with ``floats``), random missing values, short vectors, haploid and missing
    genotypes."""
    num_alleles = int(rng.integers(2, 5))
    alleles = rng.choice(list("ACGT"), size=num_alleles, replace=False)
    keys = [
        "GT",
        *[
            key
            for key in ("DP", "GQ", "AD", "AB", "PL", "SB", "HQ")
            if rng.random() < 0.7 and (floats or key not in FLOAT_KEYS)
        ],
    ]
    samples = []
    for _ in range(num_samples):
        sample_ploidy = ploidy or (1 if rng.random() < 0.2 else 2)
        values = []
        for key in keys:
            if key == "GT":
                calls_ = [
                    "." if rng.random() < 0.1 else str(rng.integers(0, num_alleles))
                    for _ in range(sample_ploidy)
                ]
                values.append(("|" if rng.random() < 0.5 else "/").join(calls_))
                continue
            if rng.random() < 0.1:
                values.append(".")
                continue
            if key in ("DP", "GQ"):
                values.append(str(rng.integers(0, max_depth if key == "DP" else 99)))
                continue
            length = {
                "AD": num_alleles,
                "AB": num_alleles - 1,
                "PL": num_alleles * (num_alleles + 1) // 2
                if sample_ploidy == 2
                else num_alleles,
                "SB": int(rng.integers(1, 5)),
                "HQ": 2,
            }[key]
            if key in ("AB", "HQ"):
                numbers = [f"{value:.3g}" for value in rng.random(length) * 60]
            else:
                numbers = [str(value) for value in rng.integers(0, 120, length)]
            numbers = ["." if rng.random() < 0.1 else n for n in numbers]
            values.append(",".join(numbers))
        samples.append(":".join(values))
    info = f"DP={rng.integers(0, 5000)}" if rng.random() < 0.8 else "."
    site = [contig, str(position), ".", alleles[0], ",".join(alleles[1:])]
    return "\t".join([*site, "50", "PASS", info, ":".join(keys), *samples])


def _header(floats: bool) -> tuple[str, ...]:
    if floats:
        return FORMAT_HEADER
    return tuple(line for line in FORMAT_HEADER if "Type=Float" not in line)


def _calls_vcf(
    path, *, num_records=320, num_samples=9, ploidy=None, seed=3, floats=True
):
    """Records over two contigs; DP passes 127 only in the last few, so the
    partitions before them guess too narrow a dtype and are encoded again.
    Without ``floats``, the FORMAT fields are GT and Integer ones: the text
    kernel reads them."""
    rng = np.random.default_rng(seed)
    records = []
    positions = itertools.count(100, 7)
    for index in range(num_records):
        contig = "1" if index < num_records // 2 else "2"
        position = next(positions)
        # Some positions twice, one of them across a partition boundary.
        if index % 50 in (10, 11):
            position = 100 + 7 * (index - index % 50 + 10)
        records.append(
            _calls_record(
                rng,
                contig,
                position,
                num_samples=num_samples,
                max_depth=400 if index > num_records - 5 else 100,
                ploidy=ploidy,
                floats=floats,
            )
        )
    samples = [f"S{index}" for index in range(num_samples)]
    return write_vcf(path, records, samples=samples, extra_header=_header(floats))


@pytest.mark.parametrize("floats", [True, False], ids=["cyvcf2", "text"])
def test_numeric_format_fields_of_every_number(
    tmp_path, monkeypatch, cyvcf2_reads, floats
):
    vcf = _calls_vcf(tmp_path / "calls.vcf.gz", floats=floats)
    direct, without_calls = _both(vcf, tmp_path, monkeypatch, variants_chunk_size=40)
    assert without_calls
    # Float fields are read with cyvcf2, the others from the text.
    assert bool(cyvcf2_reads) == floats
    # The guess (int8) was too narrow for DP: settled to bio2zarr's int16.
    assert zarr.open_group(direct, mode="r")["call_DP"].dtype == np.int16


@pytest.mark.parametrize("floats", [True, False], ids=["cyvcf2", "text"])
def test_duplicate_positions_on_partition_boundaries(
    tmp_path, monkeypatch, cyvcf2_reads, floats
):
    """Records at one position on both sides of a chunk boundary: each encode
    partition must start at the right one of them."""
    rng = np.random.default_rng(5)
    records = [
        _calls_record(
            rng, "1", 1000 + index // 3, num_samples=4, max_depth=50, floats=floats
        )
        for index in range(60)
    ]
    vcf = write_vcf(
        tmp_path / "duplicates.vcf.gz",
        records,
        samples=["A", "B", "C", "D"],
        extra_header=_header(floats),
    )
    _, without_calls = _both(vcf, tmp_path, monkeypatch, variants_chunk_size=10)
    assert without_calls
    assert bool(cyvcf2_reads) == floats


def test_text_the_kernel_does_not_parse_is_read_with_cyvcf2(
    tmp_path, monkeypatch, cyvcf2_reads
):
    """A value htslib takes and the kernel does not (``+7``): that partition
    alone is read with cyvcf2, and the store is still bio2zarr's."""
    rng = np.random.default_rng(8)
    records = [
        _calls_record(rng, "1", 100 + index, num_samples=3, max_depth=90, floats=False)
        for index in range(50)
    ]
    site = records[33].split("\t")
    records[33] = "\t".join([*site[:8], "GT:DP", "0/1:+7", "1|1:3", "0/0:."])
    vcf = write_vcf(
        tmp_path / "sign.vcf.gz", records, extra_header=_header(floats=False)
    )
    _, without_calls = _both(vcf, tmp_path, monkeypatch, variants_chunk_size=10)
    assert without_calls
    assert len(cyvcf2_reads) == 1
    start, stop = cyvcf2_reads[0]
    assert start <= 33 < stop


def test_haploid_file_settles_to_ploidy_one(tmp_path, monkeypatch):
    vcf = _calls_vcf(tmp_path / "haploid.vcf.gz", num_records=120, ploidy=1)
    direct, _ = _both(vcf, tmp_path, monkeypatch, variants_chunk_size=30)
    root = zarr.open_group(direct, mode="r")
    assert root["call_genotype"].shape[2] == 1
    assert root["call_genotype_phased"][:].all()


def test_ploidy_three_falls_back_to_bio2zarr(tmp_path, monkeypatch):
    records = [
        "\t".join(["1", str(100 + index), ".", "A", "C", ".", "PASS", ".", "GT"])
        + "\t0/1\t"
        + ("0/1/1" if index == 70 else "1/1")
        for index in range(90)
    ]
    vcf = write_vcf(tmp_path / "triploid.vcf.gz", records, samples=["A", "B"])
    direct, _ = _both(vcf, tmp_path, monkeypatch, variants_chunk_size=20)
    fallback = json.loads((tmp_path / "direct" / "calls-fallback.json").read_text())
    assert fallback["vcf"] == str(vcf)
    assert zarr.open_group(direct, mode="r")["call_genotype"].shape[2] == 3


def test_string_format_field_is_left_to_bio2zarr(tmp_path, monkeypatch):
    header = ('##FORMAT=<ID=FT,Number=1,Type=String,Description="Filter">',)
    records = [
        "\t".join(["1", str(100 + index), ".", "A", "G", ".", "PASS", ".", "GT:FT"])
        + "\t0/1:PASS\t1/1:LowQual"
        for index in range(30)
    ]
    vcf = write_vcf(
        tmp_path / "strings.vcf.gz", records, samples=["A", "B"], extra_header=header
    )
    _, without_calls = _both(vcf, tmp_path, monkeypatch, variants_chunk_size=10)
    assert not without_calls


def test_direct_fields_decides_per_file():
    from bio2zarr import vcf as bio2zarr_vcf

    def field(name, number, kind):
        definition = {
            "HeaderType": "FORMAT",
            "ID": name,
            "Number": number,
            "Type": kind,
            "Description": "",
        }
        return bio2zarr_vcf.VcfField.from_header(definition)

    gt = field("GT", ".", "Integer")
    numeric = [field("DP", "1", "Integer"), field("AD", "R", "Integer")]
    assert calls.direct_fields([gt, *numeric], num_samples=3) == [gt, *numeric]
    assert calls.direct_fields([gt, *numeric], num_samples=0) is None
    assert calls.direct_fields(numeric, num_samples=3) is None
    assert calls.direct_fields([gt, field("X", ".", "Integer")], num_samples=3) is None
    assert calls.direct_fields([gt, field("FT", "1", "String")], num_samples=3) is None


def test_partition_left_half_written_is_encoded_again(tmp_path, monkeypatch):
    """A killed encode partition leaves its wip directory: the rerun starts it
    afresh and the store is still bio2zarr's."""
    vcf = _calls_vcf(tmp_path / "calls.vcf.gz", num_records=100)
    original = calls.encode_partition
    killed = []

    def dies_once(vcz, index):
        if index == 1 and not killed:
            killed.append(index)
            original(vcz, index)
            # Put the finished partition back to the state a kill leaves.
            writer_path = pathlib.Path(vcz) / "wip" / "partitions"
            shutil.move(writer_path / "p1", writer_path / "wip_p1")
            raise KeyboardInterrupt
        original(vcz, index)

    monkeypatch.setattr(calls, "encode_partition", dies_once)
    with pytest.raises(KeyboardInterrupt):
        _convert(
            vcf, tmp_path, direct=True, monkeypatch=monkeypatch, variants_chunk_size=20
        )
    work = tmp_path / "direct"
    convert.encode(
        vcf,
        work / "icf",
        work / "genotypes.vcz",
        variants_chunk_size=20,
        samples_chunk_size=7,
        drop_info_fields=(),
        worker_processes=0,
        reporter=Reporter(False),
    )
    reference, _ = _convert(
        vcf, tmp_path, direct=False, monkeypatch=monkeypatch, variants_chunk_size=20
    )
    assert_same_store(work / "genotypes.vcz", reference)
