"""Variant lookup by binary search equals a full scan, and agrees with bcftools."""

from __future__ import annotations

import random

import pysam
import pysam.bcftools
import pytest

from genomenode.beacon.requests import parse_get
from genomenode.beacon.variants import matching_variants, naive_matching_variants
from genomenode.errors import BeaconRequestError
from genomenode.ingest import ingest
from genomenode.node import init_node
from genomenode.store.genotypes import GenotypeStore

from ..conftest import CINECA_INDIVIDUALS, CINECA_VCF, write_dataset_yaml


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


def test_gene_queries_are_refused_here(store):
    query = parse_get({"geneId": "BRCA1"}).variant
    with pytest.raises(BeaconRequestError):
        matching_variants(store, query)
