"""Explode partitions from the VCF text (ingest/sites.py) against the region query.

Every per-variant field of the ICF — CHROM to INFO and the reference length — must
be the same whether a partition read its lines as text and gave htslib only their
first eight columns, or asked cyvcf2's tabix region query, on real files (1000
Genomes slices, a GATK gVCF whose reference blocks span partitions, a Beagle
imputed file with Float and Flag INFO) and on a generated file of awkward INFO.
"""

from __future__ import annotations

import gzip
import json
import pathlib

import numpy as np
import pysam
import pytest
from bio2zarr import vcf as bio2zarr_vcf

from genomenode.ingest import calls, convert, sites, vcf_text
from genomenode.ingest.workers import Reporter

from ..conftest import CINECA_VCF, DATA
from .test_calls import _indexed

REAL = {
    "1000g-chr1-multiallelic": CINECA_VCF,
    "1000g-chr22-phased": DATA / "realvcf" / "1KG_phase3_subset_chr22.vcf.gz",
    "1000g-chrX-haploid": DATA / "realvcf" / "1KG_phase3_subset_chrX.vcf.gz",
    "gatk-gvcf-reference-blocks": DATA / "realvcf" / "CEUTrio.20.21.gatk3.4.g.vcf.bgz",
    "beagle-imputed-float-flag-info": (
        DATA / "realvcf" / "1kg_target_chr20_38_imputed_chr20_1000.vcf"
    ),
}

AWKWARD_HEADER = """##fileformat=VCFv4.3
##contig=<ID=1,length=100000>
##contig=<ID=2,length=100000>
##FILTER=<ID=PASS,Description="All filters passed">
##FILTER=<ID=q10,Description="Low quality">
##FILTER=<ID=s50,Description="Low share">
##INFO=<ID=AC,Number=A,Type=Integer,Description="Allele count">
##INFO=<ID=AN,Number=1,Type=Integer,Description="Alleles">
##INFO=<ID=AF,Number=A,Type=Float,Description="Frequency">
##INFO=<ID=END,Number=1,Type=Integer,Description="End">
##INFO=<ID=SVTYPE,Number=1,Type=String,Description="Kind">
##INFO=<ID=CSQ,Number=.,Type=String,Description="Consequences">
##INFO=<ID=DB,Number=0,Type=Flag,Description="dbSNP">
##INFO=<ID=R2,Number=R,Type=Float,Description="Per allele">
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2
"""

# Records whose site columns exercise htslib's parse: missing values in
# vectors, flags, strings with commas, END and symbolic alleles, QUAL and
# FILTER forms, several IDs, records spanning others, duplicate positions.
AWKWARD_RECORDS = [
    "1\t100\trs1;rs2\tA\tG,T\t50\tPASS\tAC=1,.;AN=4;AF=0.25,.;DB",
    "1\t100\t.\tA\tC\t.\t.\tAC=1;AN=4",
    "1\t150\t.\tACGTACGT\tA\t12.5\tq10;s50\tAC=2;AN=4;R2=0.5,.",
    "1\t200\t.\tN\t<DEL>\t.\tPASS\tEND=5000;SVTYPE=DEL;CSQ=a|b,c|d",
    "1\t300\t.\tC\t<*>\t0\t.\tEND=320",
    "1\t4000\t.\tT\tTA\t1e3\tPASS\t.",
    "1\t4500\t.\tG\tA\t99\tPASS\tAF=0.1;AC=0;AN=4",
    "1\t4600\t.\tG\tA\t9\tPASS\tAN=4",
    "1\t4700\t.\tC\tT\t9\tPASS\tAN=4",
    "2\t1\t.\tN\t<NON_REF>\t.\t.\tEND=90000",
    "2\t100\t.\tG\tGGG,G\t.\tPASS\tAC=3,1;AN=4;R2=1,0.5,0.25",
    "2\t90001\t.\tA\t.\t.\tPASS\tAN=4",
]


def _awkward_vcf(directory: pathlib.Path, records=AWKWARD_RECORDS) -> pathlib.Path:
    directory.mkdir(parents=True, exist_ok=True)
    plain = directory / "awkward.vcf"
    plain.write_text(
        AWKWARD_HEADER + "".join(f"{record}\tGT\t0/1\t1|1\n" for record in records)
    )
    target = directory / "awkward.vcf.gz"
    pysam.tabix_compress(str(plain), str(target), force=True)
    pysam.tabix_index(str(target), preset="vcf", force=True)
    return target


@pytest.fixture
def region_reads(monkeypatch) -> list[str]:
    """The region of every explode partition read with a region query."""
    reads: list[str] = []
    original = sites._region_sites

    def spied(partition):
        reads.append(str(partition.region))
        return original(partition)

    monkeypatch.setattr(sites, "_region_sites", spied)
    return reads


def _explode(vcf: pathlib.Path, icf: pathlib.Path, *, workers: int = 4) -> None:
    """Explode ``vcf`` in-process into as many partitions as ``workers`` asks."""
    original = convert._num_partitions
    try:
        convert._num_partitions = lambda *_: original(workers)
        convert.explode(
            vcf, icf, source=vcf, worker_processes=0, reporter=Reporter(False)
        )
    finally:
        convert._num_partitions = original


def _site_columns(icf: pathlib.Path) -> dict[str, list]:
    store = bio2zarr_vcf.IntermediateColumnarFormat(icf)
    assert (icf / calls.CALL_FIELDS).exists()  # the sites-only ICF
    return {
        name: list(field.iter_values(0, store.num_records))
        for name, field in store.fields.items()
    }


def _assert_same_columns(found: dict[str, list], expected: dict[str, list]) -> None:
    assert found.keys() == expected.keys()
    for name, values in expected.items():
        assert len(found[name]) == len(values), name
        for index, (left, right) in enumerate(zip(found[name], values, strict=True)):
            where = f"{name} record {index}"
            if isinstance(right, np.ndarray) and right.dtype.kind == "f":
                np.testing.assert_array_equal(
                    left.view(np.uint32), right.view(np.uint32), where
                )
            else:
                np.testing.assert_array_equal(left, right, where)


def _both(vcf, tmp_path, monkeypatch, region_reads) -> dict[str, list]:
    """Explode from the text and with the region query; the text's columns.

    The ICF leaves the FORMAT fields out whatever they are (the gVCF's would
    send the whole file to bio2zarr's explode): only the sites are compared.
    """
    monkeypatch.setattr(
        calls,
        "direct_fields",
        lambda fields, _: [field for field in fields if field.category == "FORMAT"],
    )
    _explode(vcf, tmp_path / "text.icf")
    assert region_reads == []  # every partition read as text
    found = _site_columns(tmp_path / "text.icf")

    def refused(partition):
        raise vcf_text.TextUnsupported("test: region query wanted")

    monkeypatch.setattr(sites, "_text_sites", refused)
    _explode(vcf, tmp_path / "region.icf")
    metadata = json.loads((tmp_path / "region.icf" / "metadata.json").read_text())
    assert len(region_reads) == len(metadata["partitions"])
    _assert_same_columns(found, _site_columns(tmp_path / "region.icf"))
    return found


@pytest.mark.parametrize("name", REAL)
def test_real_files_same_as_the_region_query(tmp_path, monkeypatch, region_reads, name):
    source = REAL[name]
    if not source.name.endswith(".vcf.gz"):  # plain text, or named .bgz
        text = source.read_bytes()
        if source.suffix != ".vcf":
            text = gzip.decompress(text)
        source = tmp_path / f"{name}.vcf.gz"
        source.write_bytes(gzip.compress(text))
    vcf = _indexed(source, tmp_path / "input", csi=name.startswith("gatk"))
    found = _both(vcf, tmp_path, monkeypatch, region_reads)
    reader = pysam.VariantFile(str(vcf))
    assert len(found["POS"]) == sum(1 for _ in reader.fetch()) > 900


def test_awkward_info_same_as_the_region_query(tmp_path, monkeypatch, region_reads):
    vcf = _awkward_vcf(tmp_path / "input")
    found = _both(vcf, tmp_path, monkeypatch, region_reads)
    assert [int(value[0]) for value in found["POS"]] == [
        int(record.split("\t")[1]) for record in AWKWARD_RECORDS
    ]
    # The reference length follows END, as htslib's does.
    assert [int(value[0]) for value in found["rlen"]][3:5] == [4801, 21]


def _swap_lines(vcf: pathlib.Path, first: int, second: int) -> None:
    """Swap two record lines of a one-block BGZF file, keeping every byte offset
    (the old index stays valid for the new layout but not for the order)."""
    text = gzip.decompress(vcf.read_bytes()).decode()
    header = [line for line in text.splitlines(True) if line.startswith("#")]
    records = [line for line in text.splitlines(True) if not line.startswith("#")]
    assert len(records[first]) == len(records[second])
    records[first], records[second] = records[second], records[first]
    plain = vcf.with_suffix("")
    plain.write_text("".join(header + records))
    index = vcf.with_name(vcf.name + ".tbi")
    kept = index.read_bytes()
    pysam.tabix_compress(str(plain), str(vcf), force=True)
    index.write_bytes(kept)


def test_records_out_of_order_are_left_to_the_region_query(tmp_path, region_reads):
    vcf = _awkward_vcf(tmp_path / "input")
    # 1:4600 and 1:4700 have lines of the same length.
    _swap_lines(vcf, 7, 8)
    with pytest.raises(vcf_text.TextUnsupported, match="out of order"):
        list(vcf_text.region_lines(vcf, "1", 1, None))
    _explode(vcf, tmp_path / "icf")
    assert any(region.startswith("1") for region in region_reads)
    assert not any(region.startswith("2") for region in region_reads)


def test_region_lines_bounds(tmp_path):
    vcf = _awkward_vcf(tmp_path / "input")

    def positions(contig, first, last):
        return [
            vcf_text.locus(line)[1]
            for line in vcf_text.region_lines(vcf, contig, first, last)
        ]

    assert positions("1", 100, 300) == [100, 100, 150, 200, 300]
    # Records starting before the region are left out even when they span it.
    assert positions("1", 201, None) == [300, 4000, 4500, 4600, 4700]
    assert positions("2", 2, 100) == [100]
    assert positions("2", 90001, None) == [90001]
    with pytest.raises(vcf_text.TextUnsupported):
        list(vcf_text.region_lines(vcf, "3", 1, None))


def test_site_columns():
    assert vcf_text.site_columns(b"1\t2\t.\tA\tG\t.\t.\tAN=2\tGT\t0/1\n") == (
        b"1\t2\t.\tA\tG\t.\t.\tAN=2"
    )
    assert vcf_text.site_columns(b"1\t2\t.\tA\tG\t.\t.\tAN=2\n") == (
        b"1\t2\t.\tA\tG\t.\t.\tAN=2"
    )
    with pytest.raises(vcf_text.TextUnsupported):
        vcf_text.site_columns(b"1\t2\t.\tA\tG\n")


def test_crlf_lines_are_left_to_the_region_query(tmp_path):
    directory = tmp_path / "input"
    directory.mkdir()
    plain = directory / "crlf.vcf"
    plain.write_bytes(
        (AWKWARD_HEADER + "1\t100\t.\tA\tG\t.\tPASS\tAN=4\tGT\t0/1\t1|1\n")
        .replace("\n", "\r\n")
        .encode()
    )
    vcf = directory / "crlf.vcf.gz"
    pysam.tabix_compress(str(plain), str(vcf), force=True)
    pysam.tabix_index(str(vcf), preset="vcf", force=True)
    with pytest.raises(vcf_text.TextUnsupported, match="CR LF"):
        list(vcf_text.region_lines(vcf, "1", 1, None))
