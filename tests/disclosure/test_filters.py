"""The DataSHIELD-style filters, as settings."""

from __future__ import annotations

from genomenode.disclosure.filters import (
    check_glm,
    check_levels,
    check_subset,
    check_table,
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
