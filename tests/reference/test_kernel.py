"""Populations of cells, and faf95 / grpmax against their definitions (the
counting kernels are tested in tests/store/test_genotype_counts.py)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, stats

from genomenode.reference.populations import populations_of_cells
from genomenode.reference.release import PopulationFrequency, faf95, grpmax


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
