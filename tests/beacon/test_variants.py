"""Variant lookup by binary search equals a full scan, and agrees with bcftools."""

from __future__ import annotations

import dataclasses
import json
import random

import pysam
import pysam.bcftools
import pytest

from genomenode.beacon.requests import parse_get
from genomenode.beacon.variants import (
    allele_length,
    allele_type,
    matching_variants,
    naive_matching_variants,
    resolve_hgvs,
    type_matches,
)
from genomenode.errors import BeaconRequestError
from genomenode.ingest import ingest
from genomenode.store.genotypes import GenotypeStore
from genomenode.store.node import init_node

from ..conftest import (
    CINECA_INDIVIDUALS,
    CINECA_VCF,
    write_dataset_yaml,
    write_vcf,
)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cineca")
    (directory / "cohort.vcf.gz").write_bytes(CINECA_VCF.read_bytes())
    (directory / "individuals.json").write_bytes(CINECA_INDIVIDUALS.read_bytes())
    dataset_yaml = write_dataset_yaml(directory, id="cineca-1kg")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GENOMENODE_WORKER_PROCESSES", "0")
        with init_node(directory / "node", node_id="n", country="FI") as node:
            ingest(node, dataset_yaml)
            manifest = node.dataset_manifest("cineca-1kg")
            yield GenotypeStore(
                node.datasets_dir / "cineca-1kg" / "genotypes.vcz",
                manifest["genotypes"]["contigs"],
            )


def _bcftools_types(vcf) -> list[set[str]]:
    """bcftools' TYPE of each allele, per record (snp, mnp, indel, other, ...)."""
    out = pysam.bcftools.query("-f", "%TYPE\n", str(vcf))
    return [set(line.lower().split(",")) for line in out.splitlines()]


def _records():
    out = pysam.bcftools.query("-f", "%POS\t%REF\t%ALT\n", str(CINECA_VCF))
    return [
        (int(position), reference, alternates.split(","))
        for position, reference, alternates in (
            line.split("\t") for line in out.splitlines()
        )
    ]


def test_every_record_is_found_by_a_sequence_query(store):
    for row, (position, reference, alternates) in enumerate(_records()):
        for index, alternate in enumerate(alternates, start=1):
            query = parse_get(
                {
                    "referenceName": "chr1",
                    "start": str(position - 1),
                    "referenceBases": reference,
                    "alternateBases": alternate,
                }
            ).variant
            assert (row, index) in matching_variants(store, query)


def test_range_queries_equal_a_full_scan(store):
    generator = random.Random(7)
    positions = [position for position, _, _ in _records()]
    for _ in range(300):
        start = generator.randint(positions[0] - 50, positions[-1] + 50)
        end = start + generator.choice([1, 2, 10, 100, 1_000, 20_000])
        parameters = {"referenceName": "1", "start": str(start), "end": str(end)}
        if generator.random() < 0.2:
            parameters["alternateBases"] = generator.choice("ACGT")
        query = parse_get(parameters).variant
        assert matching_variants(store, query) == naive_matching_variants(store, query)


def test_range_query_finds_a_deletion_that_starts_before_the_range(store):
    # Pick the record with the longest REF; query only its last base.
    row, (position, reference, _) = max(
        enumerate(_records()), key=lambda item: len(item[1][1])
    )
    assert len(reference) > 1
    last_base = position - 1 + len(reference) - 1
    query = parse_get(
        {"referenceName": "1", "start": str(last_base), "end": str(last_base + 1)}
    ).variant
    assert row in {match_row for match_row, _ in matching_variants(store, query)}


def test_range_matches_bcftools_region_view(store):
    # bcftools regions are 1-based inclusive; overlap 1 selects records overlapping.
    start, end = 10_500, 60_000
    out = pysam.bcftools.query(
        "-t", f"1:{start + 1}-{end}", "--targets-overlap", "1", "-f", "%ALT\n",
        str(CINECA_VCF),
    )  # fmt: skip
    expected = sum(len(line.split(",")) for line in out.splitlines())
    assert expected > 0
    query = parse_get(
        {"referenceName": "1", "start": str(start), "end": str(end)}
    ).variant
    assert len(matching_variants(store, query)) == expected


def test_bracket_and_unknown_contig(store):
    records = _records()
    position, reference, _ = records[10]
    begin = position - 1
    query = parse_get(
        {
            "referenceName": "1",
            "start": f"{begin - 5},{begin}",
            "end": f"{begin + len(reference)},{begin + len(reference) + 5}",
        }
    ).variant
    found = matching_variants(store, query)
    assert (10, 1) in found
    assert found == naive_matching_variants(store, query)
    elsewhere = parse_get({"referenceName": "22", "start": "100", "end": "200"}).variant
    assert matching_variants(store, elsewhere) == []


def test_gene_query_without_a_gene_table_matches_nothing(store):
    query = parse_get({"geneId": "BRCA1"}).variant
    assert matching_variants(store, query) == []
    assert naive_matching_variants(store, query) == []


def test_amino_acid_change_is_refused(store):
    query = parse_get({"geneId": "BRCA1", "aminoacidChange": "V600E"}).variant
    with pytest.raises(BeaconRequestError) as caught:
        matching_variants(store, query)
    assert caught.value.field == "aminoacidChange"


def test_variant_type_range_queries_agree_with_bcftools_on_1000_genomes(store):
    # Record level: a record matches when one of its alleles has the type.
    records = _records()
    query = parse_get({"referenceName": "1", "start": "0", "end": "300000000"})
    for beacon_type, bcftools_types in (
        ("SNP", {"snp"}),
        ("MNP", {"mnp"}),
        ("INDEL", {"indel", "other"}),
    ):
        typed = dataclasses.replace(query.variant, variant_type=beacon_type)
        found = {row for row, _ in matching_variants(store, typed)}
        expected = {
            row
            for row, kinds in enumerate(_bcftools_types(CINECA_VCF))
            if kinds & bcftools_types
        }
        assert found == expected, beacon_type
        if beacon_type != "MNP":  # the slice has no MNPs; the others must be there
            assert found, beacon_type
        assert len(found) <= len(records)


# ------------------------------------------------------------- hand-made variants

# (POS, REF, ALT, INFO); every allele's expected type and length is in TYPED below.
TYPED_RECORDS = [
    (100, "A", "G", "."),
    (200, "AC", "AT", "."),  # a SNP once the shared A is trimmed (as bcftools)
    (300, "AC", "GT", "."),
    (400, "ACGT", "A", "."),
    (500, "A", "ACGTT", "."),
    (600, "ACGT", "GC", "."),  # delins: bcftools "other"
    (700, "G", "A,GTT", "."),  # multi-allelic: a SNP and an insertion
    (1000, "N", "<DEL>", "END=1500"),
    (2000, "N", "<DUP:TANDEM>", "END=2300"),
    (3000, "N", "<INV>", "END=3100"),
    (4000, "N", "<CNV>", "END=9000"),
    (5000, "N", "<INS>", "END=5000"),
    (5500, "N", "<DEL:ME:ALU>", "END=5800"),
    (6000, "G", "G]2:500]", "."),
    (7000, "A", "*", "."),
]
TYPED = {
    (100, "G"): ("SNP", 1),
    (200, "AT"): ("SNP", 1),
    (300, "GT"): ("MNP", 2),
    (400, "A"): ("DEL", 3),
    (500, "ACGTT"): ("INS", 4),
    (600, "GC"): ("DELINS", 2),
    (700, "A"): ("SNP", 1),
    (700, "GTT"): ("INS", 2),
    (1000, "<DEL>"): ("<DEL>", 500),
    (2000, "<DUP:TANDEM>"): ("<DUP:TANDEM>", 300),
    (3000, "<INV>"): ("<INV>", 100),
    (4000, "<CNV>"): ("<CNV>", 5000),
    (5000, "<INS>"): ("<INS>", None),  # END = POS: length unknown
    (5500, "<DEL:ME:ALU>"): ("<DEL:ME:ALU>", 300),
    (6000, "G]2:500]"): ("BND", None),
    (7000, "*"): (None, None),
}
# variantType query -> the (POS, ALT) alleles it must find.
TYPE_QUERIES = {
    "SNP": {(100, "G"), (200, "AT"), (700, "A")},
    "snv": {(100, "G"), (200, "AT"), (700, "A")},
    "MNP": {(300, "GT")},
    "DEL": {(400, "A"), (1000, "<DEL>"), (5500, "<DEL:ME:ALU>")},
    "<DEL>": {(400, "A"), (1000, "<DEL>"), (5500, "<DEL:ME:ALU>")},
    "DEL:ME": {(5500, "<DEL:ME:ALU>")},
    "INS": {(500, "ACGTT"), (700, "GTT"), (5000, "<INS>")},
    "INDEL": {(400, "A"), (500, "ACGTT"), (600, "GC"), (700, "GTT")},
    "DUP": {(2000, "<DUP:TANDEM>")},
    "DUP:TANDEM": {(2000, "<DUP:TANDEM>")},
    "INV": {(3000, "<INV>")},
    "CNV": {
        (1000, "<DEL>"),
        (2000, "<DUP:TANDEM>"),
        (4000, "<CNV>"),
        (5500, "<DEL:ME:ALU>"),
    },
    "BND": {(6000, "G]2:500]")},
    "SV": {
        (1000, "<DEL>"),
        (2000, "<DUP:TANDEM>"),
        (3000, "<INV>"),
        (4000, "<CNV>"),
        (5000, "<INS>"),
        (5500, "<DEL:ME:ALU>"),
        (6000, "G]2:500]"),
    },
    "TRANSLOCATION": set(),
}
_SV_HEADER = (
    '##INFO=<ID=END,Number=1,Type=Integer,Description="End position">',
    '##ALT=<ID=DEL,Description="Deletion">',
)


@pytest.fixture(scope="module")
def typed(tmp_path_factory):
    """A store of TYPED_RECORDS, and its VCF."""
    directory = tmp_path_factory.mktemp("typed")
    records = [
        f"1\t{pos}\t.\t{ref}\t{alt}\t.\tPASS\t{info}\tGT\t0/1\t0/0\t1/1"
        for pos, ref, alt, info in TYPED_RECORDS
    ]
    vcf = write_vcf(directory / "cohort.vcf.gz", records, extra_header=_SV_HEADER)
    individuals = [{"id": s, "sex": {"id": "NCIT:C20197"}} for s in ("S1", "S2", "S3")]
    (directory / "individuals.json").write_text(json.dumps(individuals))
    dataset_yaml = write_dataset_yaml(directory, id="typed")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GENOMENODE_WORKER_PROCESSES", "0")
        with init_node(directory / "node", node_id="n", country="FI") as node:
            ingest(node, dataset_yaml)
            manifest = node.dataset_manifest("typed")
            yield (
                GenotypeStore(
                    node.datasets_dir / "typed" / "genotypes.vcz",
                    manifest["genotypes"]["contigs"],
                ),
                vcf,
            )


def _alleles(store, matches):
    """(POS, ALT) of each match."""
    found = set()
    for row, allele in matches:
        position = int(store.positions(row, row + 1)[0])
        found.add((position, str(store.alleles(row, row + 1)[0][allele])))
    return found


def test_every_allele_is_classified_as_expected():
    for pos, ref, alts, info in TYPED_RECORDS:
        end = int(info[4:]) if info.startswith("END=") else pos + len(ref) - 1
        for alt in alts.split(","):
            assert (allele_type(ref, alt), allele_length(ref, alt, end - pos + 1)) == (
                TYPED[(pos, alt)]
            ), (pos, alt)


@pytest.mark.parametrize("variant_type", sorted(TYPE_QUERIES))
def test_variant_type_queries_on_hand_made_variants(typed, variant_type):
    store, _ = typed
    query = parse_get(
        {
            "referenceName": "1",
            "start": "0",
            "end": "100000",
            "variantType": variant_type,
        }
    ).variant
    found = matching_variants(store, query)
    assert _alleles(store, found) == TYPE_QUERIES[variant_type]
    assert found == naive_matching_variants(store, query)


def test_sequence_types_agree_with_bcftools(typed):
    store, vcf = typed
    kinds = _bcftools_types(vcf)
    for beacon_type, bcftools_type in (("SNP", "snp"), ("MNP", "mnp")):
        query = parse_get(
            {
                "referenceName": "1",
                "start": "0",
                "end": "100000",
                "variantType": beacon_type,
            }
        ).variant
        rows = {row for row, _ in matching_variants(store, query)}
        assert rows == {row for row, k in enumerate(kinds) if bcftools_type in k}
    pure = parse_get(
        {"referenceName": "1", "start": "0", "end": "100000", "variantType": "INDEL"}
    ).variant
    rows = {row for row, _ in matching_variants(store, pure)}
    # bcftools' "indel" is our DEL and INS; our INDEL adds the delins ("other").
    assert {row for row, k in enumerate(kinds) if "indel" in k} < rows
    assert rows - {row for row, k in enumerate(kinds) if "indel" in k} == {5}


def test_type_matches_is_case_insensitive_and_hierarchical():
    assert type_matches("del", "<DEL:ME:ALU>")
    assert type_matches("<dup>", "<DUP:TANDEM>")
    assert not type_matches("DUP:TANDEM", "<DUP>")
    assert not type_matches("DEL", "DELINS")
    assert not type_matches("SNP", None)


@pytest.mark.parametrize(
    ("bounds", "expected"),
    [
        (
            {"variantMinLength": "2"},
            {300, 400, 500, 600, 700, 1000, 2000, 3000, 4000, 5500},
        ),
        ({"variantMaxLength": "1"}, {100, 200, 700}),
        ({"variantMinLength": "0", "variantMaxLength": "1"}, {100, 200, 700}),
        ({"variantMinLength": "3", "variantMaxLength": "4"}, {400, 500}),
        ({"variantMinLength": "301"}, {1000, 4000}),
    ],
)
def test_length_bounds(typed, bounds, expected):
    store, _ = typed
    query = parse_get(
        {"referenceName": "1", "start": "0", "end": "100000", **bounds}
    ).variant
    found = matching_variants(store, query)
    assert {pos for pos, _ in _alleles(store, found)} == expected
    assert found == naive_matching_variants(store, query)


def test_lengths_combine_with_types(typed):
    store, _ = typed
    query = parse_get(
        {
            "referenceName": "1",
            "start": "0",
            "end": "100000",
            "variantType": "INS",
            "variantMinLength": "3",
        }
    ).variant
    assert _alleles(store, matching_variants(store, query)) == {(500, "ACGTT")}


def test_a_range_inside_a_structural_variant_finds_it(typed):
    # <CNV> at POS 4000 with END 9000 covers 0-based [3999, 9000): far from its POS.
    store, _ = typed
    query = parse_get(
        {"referenceName": "1", "start": "8990", "end": "8995", "variantType": "CNV"}
    ).variant
    assert _alleles(store, matching_variants(store, query)) == {(4000, "<CNV>")}
    assert matching_variants(store, query) == naive_matching_variants(store, query)


def test_bracket_query_uses_the_end_of_a_structural_variant(typed):
    store, _ = typed
    query = parse_get(
        {"referenceName": "1", "start": "990,1000", "end": "1490,1510"}
    ).variant
    assert _alleles(store, matching_variants(store, query)) == {(1000, "<DEL>")}


def test_random_typed_range_queries_equal_a_full_scan(typed):
    store, _ = typed
    generator = random.Random(3)
    for _ in range(200):
        start = generator.randint(0, 10_000)
        parameters = {
            "referenceName": "1",
            "start": str(start),
            "end": str(start + generator.choice([1, 10, 300, 3000])),
        }
        if generator.random() < 0.5:
            parameters["variantType"] = generator.choice(sorted(TYPE_QUERIES))
        if generator.random() < 0.3:
            parameters["variantMinLength"] = str(generator.randint(0, 400))
        query = parse_get(parameters).variant
        assert matching_variants(store, query) == naive_matching_variants(store, query)


# ------------------------------------------------------------ assemblies and HGVS


def test_hgvs_substitution_is_a_sequence_query(store):
    position, reference, alternates = _records()[5]
    assert len(reference) == 1 and len(alternates[0]) == 1
    # The slice is GRCh37 chromosome 1: NC_000001.10.
    text = f"NC_000001.10:g.{position}{reference}>{alternates[0]}"
    query = parse_get({"genomicAlleleShortForm": text}).variant
    resolved = resolve_hgvs(query)
    assert (resolved.kind, resolved.reference_name, resolved.start) == (
        "sequence",
        "1",
        (position - 1,),
    )
    assert resolved.assembly_id == "GRCh37"
    assert (5, 1) in matching_variants(store, query)
    assert matching_variants(store, query) == naive_matching_variants(store, query)
    grch38 = parse_get({"genomicAlleleShortForm": "NC_000001.11:g.100A>G"}).variant
    assert resolve_hgvs(grch38).assembly_id == "GRCh38"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("NC_000001.10:g.100_102del", "genomicAlleleShortForm"),
        ("NC_000001.10:g.100_101insA", "genomicAlleleShortForm"),
        ("NM_004006.2:c.4375C>T", "genomicAlleleShortForm"),
        ("NC_000001.9:g.100A>G", "genomicAlleleShortForm"),
        ("NC_000001.10:g.0A>G", "genomicAlleleShortForm"),
    ],
)
def test_other_hgvs_is_refused(store, text, field):
    query = parse_get({"genomicAlleleShortForm": text}).variant
    with pytest.raises(BeaconRequestError) as caught:
        matching_variants(store, query)
    assert caught.value.field == field


def test_hgvs_with_a_contradicting_assembly_is_refused():
    query = parse_get(
        {"genomicAlleleShortForm": "NC_000001.10:g.100A>G", "assemblyId": "hg38"}
    ).variant
    with pytest.raises(BeaconRequestError) as caught:
        resolve_hgvs(query)
    assert caught.value.field == "assemblyId"


def test_refseq_reference_name(store):
    position, _, alternates = _records()[3]
    query = parse_get(
        {
            "referenceName": "NC_000001.10",
            "start": str(position - 1),
            "alternateBases": alternates[0],
        }
    ).variant
    # The slice is GRCh37: NC_000001.10 is its chromosome 1, not GRCh38's.
    assert (3, 1) in matching_variants(store, query, assembly="GRCh37")
    assert (3, 1) in matching_variants(store, query, assembly="GCF_000001405.25")
    assert matching_variants(store, query, assembly="GRCh38") == []
    assert matching_variants(store, query) == []


def test_n_in_bases_is_a_wildcard(store):
    """``N`` matches any base, position by position (Beacon's wildcard)."""
    with pysam.VariantFile(str(CINECA_VCF)) as vcf:
        snvs = [
            (record.pos, record.ref, alternate)
            for record in vcf
            for alternate in record.alts or ()
            if len(record.ref) == 1 and len(alternate) == 1
        ]
    position, _reference, _alternate = snvs[0]
    request = parse_get(
        {"referenceName": "1", "start": str(position - 1), "alternateBases": "N"}
    )
    found = matching_variants(store, request.variant)
    expected = [snv for snv in snvs if snv[0] == position]
    assert len(found) == len(expected) >= 1
    request = parse_get(
        {
            "referenceName": "1",
            "start": str(position - 1),
            "referenceBases": "N",
            "alternateBases": "NN",
        }
    )
    assert matching_variants(store, request.variant) == []


def test_mate_name_is_refused_not_ignored(store):
    request = parse_get(
        {"referenceName": "1", "start": "10000", "end": "20000", "mateName": "2"}
    )
    with pytest.raises(BeaconRequestError, match="mateName"):
        matching_variants(store, request.variant)


def test_spanning_deletions_are_not_variants(typed):
    """``*`` (Beacon's alternateBases cannot name it) is found by no query and no
    id, though its record is in a range that finds its neighbours."""
    from genomenode.beacon.variants import alleles_with_id

    store, _ = typed
    queries = [
        {"referenceName": "1", "start": "6999", "end": "7000"},
        {"referenceName": "1", "start": "0", "end": "100000"},
        {"referenceName": "1", "start": "6999,6999", "end": "7000,7000"},
        {"referenceName": "1", "start": "6999", "alternateBases": "N"},
    ]
    for parameters in queries:
        query = parse_get(parameters).variant
        found = matching_variants(store, query)
        assert (7000, "*") not in _alleles(store, found), parameters
        assert found == naive_matching_variants(store, query)
    whole = parse_get(queries[1]).variant
    assert len(matching_variants(store, whole)) == len(TYPED) - 1
    assert alleles_with_id(store, "1", 7000, "A", "*") == []
    assert alleles_with_id(store, "1", 100, "A", "G") != []
    with pytest.raises(BeaconRequestError) as caught:
        parse_get({"referenceName": "1", "start": "6999", "alternateBases": "*"})
    assert caught.value.field == "alternateBases"
