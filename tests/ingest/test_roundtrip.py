"""Property: small valid VCFs round-trip to the store with exact per-variant counts."""

from __future__ import annotations

import itertools
import json

import numpy as np
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genomenode.ingest import ingest
from genomenode.store.node import init_node

from ..conftest import write_dataset_yaml, write_vcf

_counter = itertools.count()


@st.composite
def cohorts(draw):
    num_samples = draw(st.integers(1, 6))
    contigs = draw(st.sampled_from([("1",), ("1", "2"), ("chr3", "X")]))
    records = []
    for contig in contigs:
        positions = draw(
            st.lists(st.integers(1, 10_000), min_size=1, max_size=8, unique=True)
        )
        for position in sorted(positions):
            reference = draw(st.sampled_from(["A", "C", "G", "T", "AC", "GTT"]))
            alternates = draw(
                st.lists(
                    st.sampled_from(["A", "C", "G", "T", "CA", "TTG"]).filter(
                        lambda allele, reference=reference: allele != reference
                    ),
                    min_size=1,
                    max_size=3,
                    unique=True,
                )
            )
            num_alleles = 1 + len(alternates)
            calls = []
            for _ in range(num_samples):
                allele = st.one_of(st.just(None), st.integers(0, num_alleles - 1))
                first, second = draw(allele), draw(allele)
                separator = draw(st.sampled_from("/|"))
                calls.append((first, second, separator))
            records.append((contig, position, reference, alternates, calls))
    return num_samples, contigs, records


def _text(allele):
    return "." if allele is None else str(allele)


def _naive_counts(record):
    _contig, _position, _reference, alternates, calls = record
    allele_count = [0] * (1 + len(alternates))
    called = 0
    for first, second, _separator in calls:
        for allele in (first, second):
            if allele is not None:
                allele_count[allele] += 1
        # A call with one called allele (1/.) is called, as bcftools counts NS.
        called += first is not None or second is not None
    return allele_count, called


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(cohort=cohorts())
def test_vcf_to_store_counts_equal_naive_count(tmp_path, cohort):
    num_samples, contigs, records = cohort
    run = next(_counter)
    directory = tmp_path / f"case{run}"
    directory.mkdir()
    samples = [f"S{index}" for index in range(num_samples)]
    lines = [
        "\t".join(
            [contig, str(position), ".", reference, ",".join(alternates), ".", "PASS"]
            + [".", "GT"]
            + [f"{_text(a)}{separator}{_text(b)}" for a, b, separator in calls]
        )
        for contig, position, reference, alternates, calls in records
    ]
    write_vcf(directory / "cohort.vcf.gz", lines, samples=samples, contigs=contigs)
    (directory / "individuals.json").write_text(
        json.dumps(
            [
                {"id": s, "sex": {"id": "NCIT:C17998", "label": "unknown"}}
                for s in samples
            ]
        )
    )
    dataset_yaml = write_dataset_yaml(directory, id=f"case{run}")
    with init_node(directory / "node", node_id="n", country="FI") as node:
        result = ingest(node, dataset_yaml)
        assert result.num_variants == len(records)
        root = zarr.open_group(
            node.datasets_dir / f"case{run}" / "genotypes.vcz", mode="r"
        )
        allele_count = root["variant_allele_count"][:]
        num_called = root["variant_num_called"][:]
        positions = root["variant_position"][:]
        for row, record in enumerate(records):
            expected, called = _naive_counts(record)
            assert positions[row] == record[1]
            assert allele_count[row][: len(expected)].tolist() == expected
            assert not np.any(allele_count[row][len(expected) :])
            assert num_called[row] == called
