"""Chromosome and assembly names (vocab/contigs.py)."""

from __future__ import annotations

import pytest

from genomenode.vocab.contigs import (
    assembly_matches,
    chromosome_name,
    find_contig,
    normalise_assembly,
    refseq_accession,
    refseq_chromosome,
)


@pytest.mark.parametrize(
    ("names", "family"),
    [
        (
            [
                "GRCh38",
                "grch38",
                "hg38",
                "GRCh38.p14",
                "HG38",
                " GRCh38.p1 ",
                "GCF_000001405.26",
                "GCF_000001405.40",
                "GCA_000001405.15",
            ],
            "GRCh38",
        ),
        (
            [
                "GRCh37",
                "hg19",
                "GRCh37.p13",
                "b37",
                "hs37d5",
                "GCF_000001405.25",
                "GCF_000001405.13",
                "gcf_000001405.25",
                "GCA_000001405.14",
            ],
            "GRCh37",
        ),
        (["NCBI36", "hg18"], "NCBI36"),
    ],
)
def test_assembly_names_normalise_to_one_family(names, family):
    for name in names:
        assert normalise_assembly(name) == family
        assert assembly_matches(name, family)
        assert assembly_matches(family, name)


def test_assembly_matches():
    assert assembly_matches(None, "GRCh37")
    assert assembly_matches("hg19", "GRCh37.p13")
    assert not assembly_matches("GRCh38", "GRCh37")
    assert not assembly_matches("hg19", "hg38")
    assert assembly_matches("CHM13", "chm13")
    assert not assembly_matches("CHM13", "GRCh38")

    assert not assembly_matches("GCF_000001405.25", "GRCh38")
    assert normalise_assembly("GCF_000001405.41") == "GCF_000001405.41"


def test_chromosome_names():
    for spelling in ("22", "chr22", "CHR22", "refseq:NC_000022.11", "NC_000022.11"):
        assert chromosome_name(spelling, "GRCh38") == "22", spelling
    for spelling in ("MT", "M", "chrM", "chrMT", "NC_012920.1", "refseq:nc_012920.1"):
        assert chromosome_name(spelling, "GRCh37") == "MT", spelling
        assert chromosome_name(spelling, "hg38") == "MT", spelling
    assert chromosome_name("NC_000023.10", "hg19") == "X"
    assert chromosome_name("chrx", None) == "X"
    # A RefSeq accession names its own assembly's chromosome only.
    assert chromosome_name("NC_000022.10", "GRCh38") is None
    assert chromosome_name("NC_000022.11", "GRCh37") is None
    assert chromosome_name("NC_000022.11", None) is None
    for other in ("23", "0", "chrUn_KI270302v1", "GL000192.1", "", "chr"):
        assert chromosome_name(other, "GRCh38") is None, other


def test_find_contig():
    names = ["chr1", "chrX", "chrM", "chrUn_KI270302v1"]
    assert find_contig(names, "1", "GRCh38") == "chr1"
    assert find_contig(names, "MT", "GRCh38") == "chrM"
    assert find_contig(names, "NC_000023.11", "GRCh38") == "chrX"
    assert find_contig(names, "NC_000023.10", "GRCh38") is None
    assert find_contig(names, "chrUn_KI270302v1", "GRCh38") == "chrUn_KI270302v1"
    assert find_contig(names, "Un_KI270302v1", "GRCh38") is None
    assert find_contig(["NC_000001.11"], "chr1", "GRCh38") == "NC_000001.11"
    assert find_contig(["NC_000001.11"], "chr1", "GRCh37") is None


def test_refseq_accessions_of_both_assemblies():
    assert refseq_accession("GRCh38", "chr22") == "NC_000022.11"
    assert refseq_accession("hg19", "22") == "NC_000022.10"
    assert refseq_accession("GRCh37", "chrM") == "NC_012920.1"
    assert refseq_chromosome("refseq:NC_000017.11") == ("17", "GRCh38")
    assert refseq_chromosome("NC_012920.1") == ("MT", None)
    assert refseq_chromosome("chr17") is None
