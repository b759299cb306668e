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
the table and subset rules today (:mod:`.control`), analyses will call all four.
"""

from __future__ import annotations

from collections.abc import Iterable

from .settings import DisclosureSettings

__all__ = ["check_glm", "check_levels", "check_subset", "check_table"]


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
