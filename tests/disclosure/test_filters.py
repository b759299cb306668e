"""The DataSHIELD-style filters, as settings."""

from __future__ import annotations

import numpy as np
import pytest

from genomenode.disclosure.filters import (
    QUANTILE_PROBABILITIES,
    check_glm,
    check_levels,
    check_subset,
    check_table,
    coarse_quantiles,
)
from genomenode.disclosure.settings import DisclosureSettings

ON = DisclosureSettings()
OFF = DisclosureSettings(enabled=False, count_threshold=2)


def test_table_cells():
    assert check_table(ON, [0, 5, 12]) is None
    assert "nfilter.tab" in check_table(ON, [0, 4, 12])
    assert (
        check_table(DisclosureSettings(count_threshold=1, nfilter_tab=3), [3]) is None
    )
    assert check_table(OFF, [2, 3]) is None


def test_subsets():
    assert check_subset(ON, 0) is None
    assert "nfilter.subset" in check_subset(ON, 4)
    assert check_subset(ON, 5) is None


def test_models_and_factors():
    assert check_glm(ON, 3, 100) is None
    assert "nfilter.glm" in check_glm(ON, 40, 100)
    assert check_levels(ON, 5, 100) is None
    assert "nfilter.levels.max" in check_levels(ON, 41, 1000)
    assert "nfilter.levels.density" in check_levels(ON, 34, 100)
    assert check_glm(OFF, 40, 100) is None


def test_settings_from_a_node_configuration():
    settings = DisclosureSettings.from_values(
        {
            "disclosure_enabled": False,
            "beacon_count_threshold": 7,
            "disclosure_nfilter_tab": 9,
        }
    )
    assert (settings.enabled, settings.count_threshold, settings.floor) == (False, 7, 9)
    assert settings.cost(None) == 1
    assert settings.cost(40) == 1
    assert settings.cost(10) == 2
    assert settings.cost(1) == 20
    assert settings.is_rare(9, 10_000)
    assert settings.is_rare(20, 10_000)  # AF 0.002 < 0.005
    assert not settings.is_rare(60, 10_000)
    assert not settings.is_rare(0, 10_000)


def _naive_quantile(values, probability, block):
    """The rule read literally: sort, take the ``block`` ranks nearest
    ``probability·(n − 1)`` (ties to the lower rank), average them."""
    ordered = sorted(values)
    centre = probability * (len(ordered) - 1)
    ranks = sorted(range(len(ordered)), key=lambda rank: (abs(rank - centre), rank))[
        :block
    ]
    return sum(ordered[rank] for rank in ranks) / block


def test_quantiles_are_block_means_and_a_small_group_is_refused():
    settings = DisclosureSettings(count_threshold=1, nfilter_tab=5)
    generator = np.random.default_rng(4)
    for size in (5, 6, 17, 200):
        values = generator.normal(50, 10, size=size).round(1).tolist()
        found, reason = coarse_quantiles(settings, values)
        assert reason is None
        for probability, value in zip(QUANTILE_PROBABILITIES, found, strict=True):
            assert value == pytest.approx(_naive_quantile(values, probability, 5))
            # Never one person's value when the values are distinct.
            if len(set(values)) == len(values):
                assert value not in values
    refused, reason = coarse_quantiles(settings, [1.0, 2.0, 3.0, 4.0])
    assert refused is None and "nfilter.tab" in reason
