"""The genotype-table kernel against its naive twin, and statistics by hand."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from genomenode.store.genotype_counts import (
    genotype_table,
    naive_genotype_table,
    statistics_from_table,
)


@st.composite
def genotype_blocks(draw):
    num_alleles = draw(st.integers(1, 4))
    ploidy = draw(st.sampled_from([1, 2]))
    shape = (draw(st.integers(1, 6)), draw(st.integers(1, 8)), ploidy)
    values = (
        st.integers(-2, num_alleles - 1)
        if ploidy == 2
        else st.integers(-1, num_alleles - 1)
    )
    block = draw(hnp.arrays(np.int8, shape, elements=values))
    return block, num_alleles


@settings(max_examples=200, deadline=None)
@given(genotype_blocks())
def test_kernel_equals_naive_twin(case):
    block, num_alleles = case
    np.testing.assert_array_equal(
        genotype_table(block, num_alleles), naive_genotype_table(block, num_alleles)
    )


def test_statistics_of_a_known_block():
    # One variant, alleles REF, A1, A2; calls: 0/0 0/1 1/1 1/2 ./. 2/. 1 (haploid)
    calls = [(0, 0), (0, 1), (1, 1), (1, 2), (-1, -1), (2, -1), (1, -2)]
    block = np.array([calls], dtype=np.int8)
    statistics = statistics_from_table(genotype_table(block, 3))
    assert statistics["variant_allele_count"].tolist() == [[3, 5, 2]]
    assert statistics["variant_allele_total"].tolist() == [10]
    assert statistics["variant_allele_count_hom"].tolist() == [[2, 2, 0]]
    assert statistics["variant_allele_count_het"].tolist() == [[1, 2, 1]]
    # The haploid 1 and the partly missing 2/. (haploid to bcftools +fill-tags).
    assert statistics["variant_allele_count_hemi"].tolist() == [[0, 1, 1]]
    # Every call but ./. has a called allele (bcftools NS).
    assert statistics["variant_num_called"].tolist() == [6]
    assert statistics["variant_num_hom_ref"].tolist() == [1]
    assert statistics["variant_num_het"].tolist() == [2]
    assert statistics["variant_num_hom_alt"].tolist() == [1]


def test_tables_add_across_sample_blocks():
    rng = np.random.default_rng(3)
    block = rng.integers(-1, 3, size=(20, 50, 2)).astype(np.int8)
    whole = genotype_table(block, 3)
    parts = genotype_table(block[:, :17], 3) + genotype_table(block[:, 17:], 3)
    np.testing.assert_array_equal(whole, parts)
