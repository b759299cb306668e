"""DataSHIELD-style disclosure filters, as the node's settings.

DataSHIELD's server-side checks, under the names of its options:

- ``nfilter.tab`` (:func:`check_table`): no released table cell may hold fewer than
  this many people, unless it holds none;
- ``nfilter.subset`` (:func:`check_subset`): no aggregate is computed on a subset
  of fewer people;
- ``nfilter.glm`` (:func:`check_glm`): a model may have at most this fraction of
  parameters per observation (a saturated model returns the data);
- ``nfilter.levels.max`` / ``nfilter.levels.density`` (:func:`check_levels`): a
  factor may have at most so many levels, and at most this fraction of levels per
  observation (a factor with one level per person is an identifier).

Each returns None when the check passes and the reason otherwise; the Beacon uses
the table and subset rules today (:mod:`.control`), analyses call all four.

Quantiles (:func:`coarse_quantiles`) follow DataSHIELD's ``quantileMeanDS``
(refused below ``nfilter.tab`` values) and go one step further: each released
quantile is the mean of the ``nfilter.tab`` values nearest its rank, never one
person's value — noise-free, coarsened to a block of people.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from .settings import DisclosureSettings

__all__ = [
    "QUANTILE_PROBABILITIES",
    "check_glm",
    "check_levels",
    "check_subset",
    "check_table",
    "coarse_quantiles",
]

#: The quantiles released (DataSHIELD's ``quantileMean`` set).
QUANTILE_PROBABILITIES = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)


def check_table(settings: DisclosureSettings, cells: Iterable[int]) -> str | None:
    """``nfilter.tab``: every non-zero cell holds at least the floor."""
    floor = settings.floor if settings.enabled else settings.count_threshold
    small = [cell for cell in cells if 0 < cell < floor]
    if small:
        return f"{len(small)} cell(s) below {floor} (nfilter.tab)"
    return None


def check_subset(settings: DisclosureSettings, size: int) -> str | None:
    """``nfilter.subset``: a non-empty subset holds at least the minimum."""
    least = settings.min_subset if settings.enabled else settings.count_threshold
    if 0 < size < least:
        return f"a subset of fewer than {least} people (nfilter.subset)"
    return None


def check_glm(
    settings: DisclosureSettings, num_parameters: int, num_observations: int
) -> str | None:
    """``nfilter.glm``: parameters / observations at most the setting."""
    if not settings.enabled:
        return None
    if num_observations <= 0 or num_parameters > settings.nfilter_glm * (
        num_observations
    ):
        return (
            f"{num_parameters} parameters for {num_observations} observations "
            f"(more than {settings.nfilter_glm} per observation, nfilter.glm)"
        )
    return None


def check_levels(
    settings: DisclosureSettings, num_levels: int, num_observations: int
) -> str | None:
    """``nfilter.levels.max`` and ``nfilter.levels.density``."""
    if not settings.enabled:
        return None
    if num_levels > settings.nfilter_levels_max:
        return (
            f"{num_levels} levels (more than {settings.nfilter_levels_max}, "
            "nfilter.levels.max)"
        )
    if num_observations <= 0 or num_levels > (
        settings.nfilter_levels_density * num_observations
    ):
        return (
            f"{num_levels} levels for {num_observations} observations "
            f"(more than {settings.nfilter_levels_density} per observation, "
            "nfilter.levels.density)"
        )
    return None


def coarse_quantiles(
    settings: DisclosureSettings,
    values: Iterable[float],
    probabilities: Sequence[float] = QUANTILE_PROBABILITIES,
) -> tuple[list[float] | None, str | None]:
    """Quantiles of ``values`` safe to release, or None and the reason.

    The rule (docs/analysis.md): refused when fewer than
    ``nfilter.tab`` values are given (DataSHIELD's ``quantileMeanDS``); else the
    quantile at probability ``q`` is the mean of the ``nfilter.tab`` sorted
    values whose ranks are nearest ``q·(n − 1)`` (a block of consecutive ranks,
    ties to the lower ranks, moved inside the data at the ends). So no released
    number is one person's value, and the minimum and maximum are never
    released alone; there is no noise, so the same data give the same answer.
    With the filters off, the block is ``beacon_count_threshold`` values (as
    :func:`check_table` uses).
    """
    ordered = np.sort(np.asarray(list(values), dtype=np.float64))
    block = settings.floor if settings.enabled else settings.count_threshold
    block = max(int(block), 1)
    if len(ordered) < block:
        return None, (
            f"quantiles of {len(ordered)} value(s), fewer than {block} (nfilter.tab)"
        )
    out = []
    for probability in probabilities:
        centre = probability * (len(ordered) - 1)
        # The block whose middle is nearest the centre; a tie to the lower ranks.
        first = int(np.ceil(centre - (block - 1) / 2 - 0.5))
        first = min(max(first, 0), len(ordered) - block)
        out.append(float(ordered[first : first + block].mean()))
    return out, None
