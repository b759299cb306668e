"""The counting kernel against its naive twin, and faf95 / grpmax against their
definitions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, stats

from genomenode.reference import kernel
from genomenode.reference.kernel import (
    biallelic_cell_table,
    cell_genotype_table,
    is_biallelic_block,
    naive_cell_genotype_table,
)
from genomenode.reference.populations import populations_of_cells
from genomenode.reference.release import PopulationFrequency, faf95, grpmax
from genomenode.store.genotype_counts import statistics_from_table


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
    monkeypatch.setattr(kernel, "_BIT_TEMPORARY_BYTES", 4096)
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


def test_bit_kernel_only_for_biallelic_diploid_blocks():
    calls = np.zeros((2, 3, 2), np.int8)
    assert is_biallelic_block(calls)
    calls[1, 2, 0] = 2
    assert not is_biallelic_block(calls)
    assert not is_biallelic_block(np.zeros((2, 3, 1), np.int8))
    assert not is_biallelic_block(np.zeros((0, 3, 2), np.int8))


def test_populations_of_cells_and_qc_masks():
    names = ["FI_M", "FI_F", "FI_U", "SE_F"]
    cells = np.array([0, 1, 2, 3, 0, -1, 1])
    populations = populations_of_cells(
        cells, names, np.array([1, 1, 1, 1, 0, 1, 1], bool)
    )
    assert populations.names == [
        "FI",
        "FI_M",
        "FI_F",
        "SE",
        "SE_M",
        "SE_F",
        "M",
        "F",
        "total",
    ]
    samples = dict(
        zip(populations.names, populations.num_samples.tolist(), strict=True)
    )
    # Sample 4 failed QC; sample 5 has no individual.
    assert samples == {
        "FI": 4,
        "FI_M": 1,
        "FI_F": 2,
        "SE": 1,
        "SE_M": 0,
        "SE_F": 1,
        "M": 1,
        "F": 3,
        "total": 5,
    }
    single = populations_of_cells(np.array([0, 1]), ["FI_M", "FI_F"])
    assert single.names == ["FI", "FI_M", "FI_F", "M", "F"]  # no total: it is FI


def _naive_faf95(allele_count: int, allele_number: int) -> float:
    """The definition: the largest AF with P(X <= AC-1 | AN x AF) >= 0.95."""
    if allele_count == 0:
        return 0.0

    def gap(frequency: float) -> float:
        return stats.poisson.cdf(allele_count - 1, allele_number * frequency) - 0.95

    return optimize.brentq(gap, 1e-12, 1.0, xtol=1e-14)


@pytest.mark.parametrize(
    ("allele_count", "allele_number"),
    [(0, 100), (1, 5008), (2, 400), (7, 1000), (150, 2000), (3000, 5008)],
)
def test_faf95_follows_gnomads_definition(allele_count, allele_number):
    expected = _naive_faf95(allele_count, allele_number)
    assert faf95(allele_count, allele_number) == pytest.approx(expected, rel=1e-6)
    assert faf95(allele_count, allele_number) <= allele_count / allele_number


def test_grpmax_is_the_country_with_the_highest_frequency():
    def row(name, count, number):
        return PopulationFrequency(name, count, number, 0, count, 0, adjusted=False)

    rows = [
        row("FI", 10, 100),
        row("IT", 30, 200),
        row("FI_M", 9, 50),
        row("M", 50, 100),
    ]
    # IT has the highest AF of the countries (0.15); sex rows are not groups.
    assert grpmax(rows).population == "IT"
    assert grpmax([row("FI", 0, 100)]) is None
