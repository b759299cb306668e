"""What an attack run reports: scores, power at the false-positive rate, queries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .statistics import PowerResult, power_at_fpr

__all__ = ["AttackResult", "attack_result"]


@dataclass(frozen=True)
class AttackResult:
    """One run of a membership attack against one beacon.

    Attributes
    ----------
    attack
        ``"sb"`` or ``"homer"``.
    member_scores, non_member_scores
        The statistic of each target (higher: more likely a member).
    power
        Power at the false-positive rate, threshold from the non-members.
    queries_asked
        Queries the attacker meant to send per target (SB) or in all (Homer).
    num_queries
        Requests sent to the beacon.
    num_refused
        Of those, how many the beacon refused (429: a spent budget).
    num_unsent
        Queries not sent because the budget was known to be spent.
    """

    attack: str
    member_scores: np.ndarray
    non_member_scores: np.ndarray
    power: PowerResult
    queries_asked: int
    num_queries: int
    num_refused: int
    num_unsent: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready values (no per-target scores)."""
        return {
            "attack": self.attack,
            "fpr": self.power.fpr,
            "power": self.power.power,
            "observed_fpr": self.power.observed_fpr,
            "threshold": self.power.threshold,
            "num_members": self.power.num_members,
            "num_non_members": self.power.num_non_members,
            "queries_asked": self.queries_asked,
            "num_queries": self.num_queries,
            "num_refused": self.num_refused,
            "num_unsent": self.num_unsent,
        }


def attack_result(
    attack: str,
    scores: np.ndarray,
    is_member: np.ndarray,
    *,
    fpr: float,
    queries_asked: int,
    num_queries: int,
    num_refused: int,
    num_unsent: int = 0,
) -> AttackResult:
    """Split the targets' scores by membership and measure the power at ``fpr``."""
    members = scores[is_member]
    controls = scores[~is_member]
    return AttackResult(
        attack=attack,
        member_scores=members,
        non_member_scores=controls,
        power=power_at_fpr(members, controls, fpr),
        queries_asked=queries_asked,
        num_queries=num_queries,
        num_refused=num_refused,
        num_unsent=num_unsent,
    )
