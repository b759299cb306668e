"""What each kind of caller can learn from a node's datasets under its settings
(``genomenode privacy audit``).

Plain values in: the settings and, per published dataset, its security level and
the granularity each caller kind is allowed (the access decision's, computed by
the caller of :func:`describe`). Nothing here reads the database.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from .settings import DisclosureSettings

__all__ = ["CALLER_KINDS", "DatasetView", "describe"]

CALLER_KINDS = ("anonymous", "registered", "granted")


@dataclasses.dataclass(frozen=True)
class DatasetView:
    """One published dataset as the audit sees it."""

    id: str
    security_level: str
    #: caller kind -> "boolean" | "count" | "record" | None (not visible)
    granularity: Mapping[str, str | None]


def _per_caller(
    settings: DisclosureSettings, granularity: str | None, kind: str = "registered"
) -> dict[str, Any]:
    if granularity is None:
        return {
            "granularity": None,
            "learns": "nothing: the dataset is not shown to this caller",
        }
    if granularity == "record":
        return {
            "granularity": "record",
            "learns": "the records themselves (no disclosure control applies)",
        }
    if not settings.enabled:
        return {
            "granularity": granularity,
            "budget": None,
            "epsilon_per_answer": None,
            "rare_allele_policy": None,
            "count_floor": settings.count_threshold,
            "learns": (
                "exact counts and yes/no answers (counts of people below "
                f"{settings.count_threshold} shown as {settings.count_threshold}): "
                "differencing two queries recovers small counts and single "
                "people's genotypes; disclosure control is OFF"
            ),
        }
    per_answer = settings.epsilon_per_query
    answers = math.floor(settings.epsilon_budget / per_answer + 1e-9)
    lookups = math.floor(settings.epsilon_budget / settings.presence_epsilon + 1e-9)
    window_hours = settings.budget_window_seconds / 3600
    scale = 1 / per_answer
    shown = (
        f"counts of people with Laplace noise (scale {scale:g}) drawn once per set "
        f"of people, rounded to {settings.count_rounding}, below {settings.floor} "
        f"shown as {settings.floor}"
        if granularity == "count"
        else "yes/no on people: yes when the noisy count reaches "
        f"{settings.floor} ({settings.boolean_mechanism})"
    )
    return {
        "granularity": granularity,
        "budget": {
            "epsilon": settings.epsilon_budget,
            "window_hours": window_hours,
            "answers_about_people": answers,
            "variant_lookups": lookups,
            "rare_cost": (
                f"an allele of count AC costs ceil({settings.rare_cost_allele_count}"
                "/AC) units"
            ),
            **(
                {
                    "anonymous_pool_epsilon": settings.anonymous_epsilon_budget,
                    "anonymous_pool_answers_about_people": math.floor(
                        settings.anonymous_epsilon_budget / per_answer + 1e-9
                    ),
                }
                if kind == "anonymous"
                else {}
            ),
        },
        "epsilon_per_answer": per_answer,
        "rare_allele_policy": {
            "min_allele_count": settings.rare_allele_count,
            "min_allele_frequency": settings.rare_allele_frequency,
        },
        "count_floor": settings.floor,
        "min_subset": settings.min_subset,
        "learns": (
            f"{shown}; variants with AC < {settings.rare_allele_count} or AF < "
            f"{settings.rare_allele_frequency} answered as absent; genotype "
            f"questions on fewer than {settings.min_subset} selected people "
            f"withheld; at most {answers} answers about people (or {lookups} "
            f"variant lookups) per {window_hours:g} h per dataset"
        ),
    }


def describe(
    settings: DisclosureSettings, datasets: Sequence[DatasetView]
) -> dict[str, Any]:
    """The audit: the settings, and per dataset and caller kind what is shown."""
    return {
        "disclosure_enabled": settings.enabled,
        "settings": dataclasses.asdict(settings),
        "datasets": [
            {
                "id": view.id,
                "security_level": view.security_level,
                "callers": {
                    kind: _per_caller(settings, view.granularity.get(kind), kind)
                    for kind in CALLER_KINDS
                },
            }
            for view in datasets
        ],
    }
