"""The three differencing attacks of issue 12, as an attacker runs them over HTTP.

Each takes ``post(path, body) -> httpx response`` (a node's or the network's
TestClient, with the attacker's headers) and the cohort's truth, and returns what
the attacker concluded. A 429 (budget spent) leaves a question unanswered.

1. *Filter differencing* (counts, REGISTERED): "disease" minus "disease AND
   age < 86" is the count among the three people aged 86 or more, below the floor.
2. *One-person isolation* (counts): "age < 87 AND variant" minus "age < 86 AND
   variant" is the carrier status of the one person aged 86; decided when neither
   count is reported as the floor ("fewer-or-equal").
3. *Boolean differencing* (anonymous, PUBLIC): "variant" yes and "age < 88 AND
   variant" no means one of the two oldest carries the rare variant.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

from .cohort import DISEASES, ISOLATED, NUM_COMMON, NUM_RARE, OLDEST, Cohort

Post = Callable[[str, dict[str, Any]], Any]


def _age(operator: str, value: int) -> dict[str, str]:
    return {"id": "age", "operator": operator, "value": str(value)}


def _variant(cohort: Cohort, variant: int) -> dict[str, Any]:
    return {
        "referenceName": "1",
        "start": [cohort.position(variant) - 1],
        "referenceBases": cohort.references[variant],
        "alternateBases": cohort.alternates[variant],
    }


@dataclasses.dataclass(frozen=True)
class Counted:
    value: int
    adjusted: bool


def count(
    post: Post,
    filters: list[dict[str, Any]],
    *,
    dataset: str | None,
    variant: dict[str, Any] | None = None,
) -> Counted | None:
    """One count of individuals: of ``dataset`` (its result set) or the total."""
    query: dict[str, Any] = {
        "filters": filters,
        "requestedGranularity": "count",
        "includeResultsetResponses": "ALL",
    }
    if variant is not None:
        query["requestParameters"] = variant
    response = post("/api/individuals", {"meta": {"apiVersion": "2.0"}, "query": query})
    if response.status_code == 429:
        return None
    assert response.status_code == 200, response.text
    document = response.json()
    if dataset is None:
        sets = document.get("response", {}).get("resultSets", [])
        return Counted(
            document["responseSummary"].get("numTotalResults", 0),
            any("countAdjustedTo" in (item.get("info") or {}) for item in sets),
        )
    for item in document.get("response", {}).get("resultSets", []):
        if item["id"] == dataset:
            adjusted = "countAdjustedTo" in (item.get("info") or {})
            return Counted(item["resultsCount"], adjusted)
    return Counted(0, False)


def exists(
    post: Post, filters: list[dict[str, Any]], variant: dict[str, Any]
) -> bool | None:
    """One yes/no answer on individuals carrying ``variant``."""
    body = {
        "meta": {"apiVersion": "2.0"},
        "query": {
            "filters": filters,
            "requestParameters": variant,
            "requestedGranularity": "boolean",
        },
    }
    response = post("/api/individuals", body)
    if response.status_code == 429:
        return None
    assert response.status_code == 200, response.text
    return bool(response.json()["responseSummary"]["exists"])


def filter_differencing(post: Post, *, dataset: str | None) -> dict[str, int | None]:
    """Attack 1: disease -> the estimated count among people aged 86 or more."""
    estimates: dict[str, int | None] = {}
    for disease in DISEASES:
        everyone = count(post, [{"id": disease}], dataset=dataset)
        younger = count(post, [{"id": disease}, _age("<", 86)], dataset=dataset)
        if everyone is None or younger is None:
            estimates[disease] = None
        else:
            estimates[disease] = everyone.value - younger.value
    return estimates


@dataclasses.dataclass
class Decisions:
    """The attacker's carrier decisions against the truth."""

    truth: list[bool] = dataclasses.field(default_factory=list)
    guess: list[bool] = dataclasses.field(default_factory=list)
    unanswered: int = 0
    undecided: int = 0

    @property
    def decided(self) -> int:
        return len(self.truth)

    @property
    def correct(self) -> int:
        return sum(t == g for t, g in zip(self.truth, self.guess, strict=True))

    def advantage(self) -> float:
        """True-positive rate minus false-positive rate (0: the answers tell the
        attacker nothing; 1: everything)."""
        positives = [g for t, g in zip(self.truth, self.guess, strict=True) if t]
        negatives = [g for t, g in zip(self.truth, self.guess, strict=True) if not t]
        if not positives or not negatives:
            return 0.0
        return sum(positives) / len(positives) - sum(negatives) / len(negatives)

    def p_value(self) -> float:
        """One-sided binomial test: the chance of this many correct decisions for
        an attacker who always guesses the more common truth (no data at all)."""
        if not self.truth:
            return 1.0
        share = max(sum(self.truth), len(self.truth) - sum(self.truth))
        rate = share / len(self.truth)
        n, k = len(self.truth), self.correct
        return sum(
            math.comb(n, i) * rate**i * (1 - rate) ** (n - i) for i in range(k, n + 1)
        )


def isolation(post: Post, cohort: Cohort, *, dataset: str | None) -> Decisions:
    """Attack 2: the isolated person's carrier status of all 200 variants."""
    decisions = Decisions()
    for variant in range(NUM_COMMON + NUM_RARE):
        query = _variant(cohort, variant)
        older = count(post, [_age("<", 87)], dataset=dataset, variant=query)
        younger = count(post, [_age("<", 86)], dataset=dataset, variant=query)
        if older is None or younger is None:
            decisions.unanswered += 1
            continue
        if older.adjusted or younger.adjusted:
            decisions.undecided += 1
            continue
        decisions.truth.append(cohort.carries(variant, ISOLATED))
        decisions.guess.append(older.value - younger.value > 0)
    return decisions


def boolean_differencing(post: Post, cohort: Cohort) -> Decisions:
    """Attack 3: whether one of the two oldest carries each rare variant."""
    decisions = Decisions()
    for variant in range(NUM_COMMON, NUM_COMMON + NUM_RARE):
        query = _variant(cohort, variant)
        anyone = exists(post, [], query)
        younger = exists(post, [_age("<", 88)], query)
        if anyone is None or younger is None:
            decisions.unanswered += 1
            continue
        decisions.truth.append(any(cohort.carries(variant, p) for p in OLDEST))
        decisions.guess.append(anyone and not younger)
    return decisions
