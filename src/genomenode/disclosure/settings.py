"""The disclosure settings of a node, read once from its configuration.

Every value is a setting in :data:`genomenode.config.SETTINGS`; what each one
means for privacy is ``docs/privacy.md``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..config import SETTINGS

__all__ = ["DisclosureSettings"]

_DEFAULTS = {setting.name: setting.default for setting in SETTINGS}


@dataclasses.dataclass(frozen=True)
class DisclosureSettings:
    """The values the disclosure layer applies (see ``docs/privacy.md``)."""

    enabled: bool = _DEFAULTS["disclosure_enabled"]
    count_threshold: int = _DEFAULTS["beacon_count_threshold"]
    epsilon_per_query: float = _DEFAULTS["disclosure_epsilon_per_query"]
    epsilon_budget: float = _DEFAULTS["disclosure_epsilon_budget"]
    anonymous_epsilon_budget: float = _DEFAULTS["disclosure_anonymous_epsilon_budget"]
    presence_epsilon: float = _DEFAULTS["disclosure_presence_epsilon"]
    budget_window_seconds: int = _DEFAULTS["disclosure_budget_window_seconds"]
    rare_cost_allele_count: int = _DEFAULTS["disclosure_rare_cost_allele_count"]
    small_dataset_individuals: int = _DEFAULTS["disclosure_small_dataset_individuals"]
    count_rounding: int = _DEFAULTS["disclosure_count_rounding"]
    rare_allele_count: int = _DEFAULTS["disclosure_rare_allele_count"]
    rare_allele_frequency: float = _DEFAULTS["disclosure_rare_allele_frequency"]
    boolean_mechanism: str = _DEFAULTS["disclosure_boolean_mechanism"]
    trusted_proxies: tuple[str, ...] = _DEFAULTS["disclosure_trusted_proxies"]
    nfilter_tab: int = _DEFAULTS["disclosure_nfilter_tab"]
    nfilter_subset: int = _DEFAULTS["disclosure_nfilter_subset"]
    nfilter_glm: float = _DEFAULTS["disclosure_nfilter_glm"]
    nfilter_levels_max: int = _DEFAULTS["disclosure_nfilter_levels_max"]
    nfilter_levels_density: float = _DEFAULTS["disclosure_nfilter_levels_density"]

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> DisclosureSettings:
        """From a node's resolved settings (:attr:`NodeConfig.values`); missing
        names keep their defaults (tests build partial configurations)."""
        names = {
            "enabled": "disclosure_enabled",
            "count_threshold": "beacon_count_threshold",
        }
        found: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            name = names.get(field.name, f"disclosure_{field.name}")
            if name in values:
                found[field.name] = values[name]
        return cls(**found)

    @property
    def floor(self) -> int:
        """The smallest non-zero count released below record granularity."""
        return max(self.count_threshold, self.nfilter_tab)

    @property
    def min_subset(self) -> int:
        """The fewest people a filtered genotype answer may be computed on."""
        return max(self.count_threshold, self.nfilter_subset)

    def is_rare(self, allele_count: int, allele_number: int) -> bool:
        """Whether the rare-allele policy hides a variant (AC/AN in the dataset)."""
        if allele_count <= 0:
            return False
        if allele_count < self.rare_allele_count:
            return True
        return (
            allele_number > 0
            and allele_count / allele_number < self.rare_allele_frequency
        )

    def are_rare(
        self, allele_counts: np.ndarray, allele_numbers: np.ndarray
    ) -> np.ndarray:
        """:meth:`is_rare` of many variants at once (boolean array)."""
        counts = np.asarray(allele_counts, dtype=np.int64)
        numbers = np.asarray(allele_numbers, dtype=np.int64)
        frequency_low = (numbers > 0) & (
            counts < self.rare_allele_frequency * np.maximum(numbers, 1)
        )
        return (counts > 0) & ((counts < self.rare_allele_count) | frequency_low)

    def cost(self, allele_count: int | None, individuals: int | None = None) -> int:
        """Units of ``epsilon_per_query`` an answer costs: one about a rarer
        variant costs more (Raisaro et al. 2017), and so does one about people in
        a smaller dataset (``individuals``), where each person is a larger part
        of every answer (Homer's test gains with the ratio of answers to
        people). ``None``: no variant, or not an answer about people."""
        units = 1
        if allele_count is not None and allele_count < self.rare_cost_allele_count:
            units = -(-self.rare_cost_allele_count // max(allele_count, 1))
        if individuals is not None and 0 < individuals < self.small_dataset_individuals:
            units = max(units, -(-self.small_dataset_individuals // individuals))
        return units
