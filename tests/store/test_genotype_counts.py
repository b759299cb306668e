"""The genotype-table kernels (whole cohort, per cell, with bits) against their
naive twins, and statistics by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from genomenode.store import genotype_counts
from genomenode.store.genotype_counts import (
    biallelic_cell_table,
    block_cell_table,
    cell_genotype_table,
    genotype_table,
    is_biallelic_block,
    naive_cell_genotype_table,
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


@pytest.mark.parametrize("ploidy", [1, 2])
@pytest.mark.parametrize("num_alleles", [2, 4])
def test_cell_table_equals_its_naive_twin(ploidy, num_alleles):
    rng = np.random.default_rng(ploidy * 10 + num_alleles)
    calls = rng.integers(-1, num_alleles, size=(37, 53, ploidy)).astype(np.int8)
    if ploidy == 2:
        calls[:, ::7, 1] = -2  # haploid calls in a diploid array
    cells = rng.integers(-1, 5, size=53)
    fast = cell_genotype_table(calls, cells, 5, num_alleles)
    assert np.array_equal(fast, naive_cell_genotype_table(calls, cells, 5, num_alleles))
    counted = (cells >= 0).sum()
    assert fast.sum(axis=(1, 2, 3)).tolist() == [counted] * 37


def _statistics(table: np.ndarray) -> dict[str, np.ndarray]:
    rows, cells, width, _ = table.shape
    return statistics_from_table(table.reshape(rows * cells, width, width))


@pytest.mark.parametrize("num_alleles", [2, 3])
@pytest.mark.parametrize("num_samples", [1, 31, 32, 33, 200])
@pytest.mark.parametrize("num_cells", [1, 4, 70])
def test_bit_kernel_statistics_equal_the_naive_table(
    num_alleles, num_samples, num_cells, monkeypatch
):
    # A small temporary budget: many cells are counted in several groups.
    monkeypatch.setattr(genotype_counts, "_BIT_TEMPORARY_BYTES", 4096)
    rng = np.random.default_rng(num_samples * 7 + num_cells)
    calls = rng.integers(-1, 2, size=(23, num_samples, 2)).astype(np.int8)
    calls[:, ::5, 1] = -2  # haploid calls in a diploid array
    calls[3] = 0
    calls[4] = -1
    cells = rng.integers(-1, num_cells, size=num_samples)
    assert is_biallelic_block(calls)
    fast = biallelic_cell_table(calls, cells, num_cells, num_alleles)
    naive = naive_cell_genotype_table(calls, cells, num_cells, num_alleles)
    expected, got = _statistics(naive), _statistics(fast)
    for name, values in expected.items():
        assert np.array_equal(got[name], values), name


@pytest.mark.parametrize("num_samples", [1, 31, 32, 33, 100])
def test_bit_kernel_of_blocks_without_missing_calls(num_samples, monkeypatch):
    # Values 0 and 1 only take the kernel's shortcut (no comparisons); the
    # statistics are the naive table's, and the general path's.
    rng = np.random.default_rng(num_samples)
    calls = rng.integers(0, 2, size=(9, num_samples, 2)).astype(np.int8)
    calls[0] = 0
    calls[1] = 1
    cells = rng.integers(-1, 3, size=num_samples)
    assert is_biallelic_block(calls)
    fast = biallelic_cell_table(calls, cells, 3, 2)
    naive = naive_cell_genotype_table(calls, cells, 3, 2)
    monkeypatch.setattr(genotype_counts, "_only_ref_and_alt", lambda _calls: False)
    general = biallelic_cell_table(calls, cells, 3, 2)
    expected = _statistics(naive)
    for name, values in expected.items():
        assert np.array_equal(_statistics(fast)[name], values), name
        assert np.array_equal(_statistics(general)[name], values), name


@pytest.mark.parametrize("kind", ["clean", "missing", "multiallelic", "haploid"])
def test_block_cell_table_counts_every_kind_of_block(kind):
    rng = np.random.default_rng(len(kind))
    calls = rng.integers(0, 2, size=(11, 37, 2)).astype(np.int8)
    if kind == "missing":
        calls[2, 5, 1] = -1
    elif kind == "multiallelic":
        calls[4, 7, 0] = 2
    elif kind == "haploid":
        calls = calls[:, :, :1]
    cells = rng.integers(-1, 4, size=37)
    counted = block_cell_table(calls, cells, 4, 3)
    naive = naive_cell_genotype_table(calls, cells, 4, 3)
    for name, values in _statistics(naive).items():
        assert np.array_equal(_statistics(counted)[name], values), name


def test_bit_kernel_only_for_biallelic_diploid_blocks():
    calls = np.zeros((2, 3, 2), np.int8)
    assert is_biallelic_block(calls)
    calls[1, 2, 0] = 2
    assert not is_biallelic_block(calls)
    assert not is_biallelic_block(np.zeros((2, 3, 1), np.int8))
    assert not is_biallelic_block(np.zeros((0, 3, 2), np.int8))
