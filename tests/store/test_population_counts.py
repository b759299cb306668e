"""One-variant kernels (population counts, carriers) against their naive twins."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from genomenode.store.genotype_counts import genotype_table, statistics_from_table
from genomenode.store.population_counts import (
    PopulationCounts,
    carrier_calls,
    naive_carrier_calls,
    naive_population_counts,
    population_counts,
)

from ..conftest import fill_tags


@st.composite
def variants(draw):
    """One variant's calls: missing, haploid fill, multi-allelic; groups and allele."""
    num_alleles = draw(st.integers(1, 4))
    ploidy = draw(st.sampled_from([1, 2]))
    num_samples = draw(st.integers(1, 30))
    values = (
        st.integers(-2, num_alleles - 1)
        if ploidy == 2
        else st.integers(-1, num_alleles - 1)
    )
    calls = draw(hnp.arrays(np.int8, (num_samples, ploidy), elements=values))
    num_groups = draw(st.integers(1, 5))
    groups = draw(
        hnp.arrays(np.int64, num_samples, elements=st.integers(-1, num_groups - 1))
    )
    allele = draw(st.integers(0, num_alleles - 1))
    return calls, num_alleles, allele, groups, num_groups


def _as_dict(counts: PopulationCounts) -> dict[str, list[int]]:
    return {
        field.name: getattr(counts, field.name).tolist()
        for field in dataclasses.fields(counts)
    }


@settings(max_examples=300, deadline=None)
@given(variants())
def test_population_counts_equal_naive_twin(case):
    calls, _num_alleles, allele, groups, num_groups = case
    assert _as_dict(population_counts(calls, allele, groups, num_groups)) == _as_dict(
        naive_population_counts(calls, allele, groups, num_groups)
    )


@settings(max_examples=300, deadline=None)
@given(variants())
def test_carrier_calls_equal_naive_twin(case):
    calls, _num_alleles, allele, _groups, _num_groups = case
    fast, naive = carrier_calls(calls, allele), naive_carrier_calls(calls, allele)
    for field in dataclasses.fields(fast):
        assert getattr(fast, field.name).tolist() == getattr(naive, field.name).tolist()
    assert fast.zygosity() == naive.zygosity()


@settings(max_examples=200, deadline=None)
@given(variants())
def test_groups_add_up_to_the_dataset_wide_statistics(case):
    calls, num_alleles, allele, _groups, _num_groups = case
    statistics = statistics_from_table(genotype_table(calls[None], num_alleles))
    # Every sample in one of three groups, none left out.
    groups = np.arange(len(calls)) % 3
    counts = population_counts(calls, allele, groups, 3)
    assert counts.allele_count.sum() == statistics["variant_allele_count"][0, allele]
    assert counts.allele_total.sum() == statistics["variant_allele_total"][0]
    for name in ("hom", "het", "hemi"):
        stored = statistics[f"variant_allele_count_{name}"][0, allele]
        assert getattr(counts, f"allele_count_{name}").sum() == stored, name
    assert counts.num_called.sum() == statistics["variant_num_called"][0]


def test_counts_of_a_known_variant():
    # Alleles REF, A1, A2. Calls 0/0 0/1 1/1 1/2 ./. 1/. 1 (haploid) 1/1 0/1
    calls = np.array(
        [(0, 0), (0, 1), (1, 1), (1, 2), (-1, -1), (1, -1), (1, -2), (1, 1), (0, 1)],
        dtype=np.int8,
    )
    # Group 0: the first five; group 1: the next three; the last one left out.
    groups = np.array([0, 0, 0, 0, 0, 1, 1, 1, -1])
    counts = population_counts(calls, 1, groups, 2)
    assert counts.allele_count.tolist() == [4, 4]
    assert counts.allele_total.tolist() == [8, 4]
    assert counts.allele_count_hom.tolist() == [2, 2]
    assert counts.num_hom.tolist() == [1, 1]
    assert counts.allele_count_het.tolist() == [2, 0]
    # 1/. counts as haploid, as bcftools +fill-tags counts it.
    assert counts.allele_count_hemi.tolist() == [0, 2]
    assert counts.num_called.tolist() == [4, 3]

    carriers = carrier_calls(calls, 1)
    assert carriers.samples.tolist() == [1, 2, 3, 5, 6, 7, 8]
    assert carriers.copies.tolist() == [1, 2, 1, 1, 1, 2, 1]
    assert carriers.zygosity() == [
        "heterozygous",
        "homozygous",
        "heterozygous",
        "hemizygous",
        "hemizygous",
        "homozygous",
        "heterozygous",
    ]


def test_counts_need_one_group_per_sample():
    calls = np.zeros((4, 2), dtype=np.int8)
    with pytest.raises(ValueError, match="3 groups for 4 samples"):
        population_counts(calls, 1, np.zeros(3, dtype=np.int64), 1)


# Every call shape of a diploid array: haploid, partly missing either side, phased,
# multi-allelic, wholly missing.
_CALLS = [
    ["1/.", "./1", "0/.", "1", "1/1", "0/1", "./.", ".", "0", "0/0"],
    ["1/2", "2/.", "./.", "2", "2/2", "0/2", "1|.", ".|2", "0/0", "1|2"],
    ["0/0", "0/.", ".", "0", "./0", "0|0", "0/0", "0/0", "./.", "0/0"],
    ["3/1", "3", "./3", "2/3", "3|3", "0/1", "1/.", "0", "2", "./."],
]


def _genotypes(calls: list[str]) -> np.ndarray:
    """GT strings → one variant's diploid calls (-1 missing, -2 haploid fill)."""
    rows = []
    for call in calls:
        parts = [
            -1 if part == "." else int(part)
            for part in call.replace("|", "/").split("/")
        ]
        rows.append(parts if len(parts) == 2 else [parts[0], -2])
    return np.array(rows, dtype=np.int8)


def _write_vcf(path, calls: list[list[str]]) -> None:
    samples = [f"s{index}" for index in range(len(calls[0]))]
    header = [
        "##fileformat=VCFv4.2",
        "##contig=<ID=X,length=1000>",
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"])
        + "\tFORMAT\t"
        + "\t".join(samples),
    ]
    lines = [
        f"X\t{10 * (row + 1)}\t.\tA\tC,G,T\t.\t.\t.\tGT\t" + "\t".join(record)
        for row, record in enumerate(calls)
    ]
    path.write_text("\n".join(header + lines) + "\n")


def test_kernels_equal_bcftools_fill_tags(tmp_path):
    """AC, AN, NS, AC_Hom, AC_Het, AC_Hemi of both kernels are bcftools'."""
    vcf = tmp_path / "calls.vcf"
    _write_vcf(vcf, _CALLS)
    num_samples = len(_CALLS[0])
    groups = np.arange(num_samples) % 2
    members = [[f"s{index}" for index in range(g, num_samples, 2)] for g in (0, 1)]
    expected_all = fill_tags(vcf)
    expected_groups = [fill_tags(vcf, samples) for samples in members]
    names = {"AC_Hom": "hom", "AC_Het": "het", "AC_Hemi": "hemi"}
    for row, record in enumerate(_CALLS):
        genotypes = _genotypes(record)
        statistics = statistics_from_table(genotype_table(genotypes[None], 4))
        expected = expected_all[row]
        assert statistics["variant_allele_total"][0] == expected["AN"]
        assert statistics["variant_num_called"][0] == expected["NS"]
        assert statistics["variant_allele_count"][0, 1:].tolist() == expected["AC"]
        for tag, name in names.items():
            stored = statistics[f"variant_allele_count_{name}"][0, 1:].tolist()
            assert stored == expected[tag], (row, tag)
        for allele in (1, 2, 3):
            for kernel in (population_counts, naive_population_counts):
                counts = kernel(genotypes, allele, groups, 2)
                for group in (0, 1):
                    tags = expected_groups[group][row]
                    index = allele - 1
                    assert (
                        counts.allele_count[group],
                        counts.allele_total[group],
                        counts.num_called[group],
                        counts.allele_count_hom[group],
                        counts.allele_count_het[group],
                        counts.allele_count_hemi[group],
                    ) == (
                        tags["AC"][index],
                        tags["AN"],
                        tags["NS"],
                        tags["AC_Hom"][index],
                        tags["AC_Het"][index],
                        tags["AC_Hemi"][index],
                    ), (row, allele, group, kernel.__name__)
        # Case-level zygosity names the same calls the counts count.
        for allele in (1, 2, 3):
            zygosity = carrier_calls(genotypes, allele).zygosity()
            index = allele - 1
            assert zygosity.count("hemizygous") == expected["AC_Hemi"][index]
            assert zygosity.count("heterozygous") == expected["AC_Het"][index]
            assert 2 * zygosity.count("homozygous") == expected["AC_Hom"][index]
