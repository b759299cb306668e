"""The Shringarpure & Bustamante (2015) attack on yes/no beacon answers.

For each target the attacker knows the genome of, it asks the beacon about
alleles the target carries, the rarest first (by the attacker's reference
panel: a rare allele that the beacon has is strong evidence that the target is
in it), and scores the answers with the paper's likelihood-ratio test
(:func:`~genomenode.privacy.statistics.sb_statistic`). A beacon of N people
answers "no" to an allele of a non-member with probability ``D_N`` and to an
allele of a member only through a missed call, ``δ · D_{N-1}``.

The answers are cached for the run, as an attacker would: two targets sharing an
allele cost one query.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .cohort import VariantGenotypes
from .oracle import BeaconOracle, Variant
from .report import AttackResult, attack_result
from .statistics import (
    SB_ERROR_RATE,
    beta_from_frequencies,
    sb_no_probabilities,
    sb_statistic,
)

__all__ = ["sb_attack", "sb_queries"]


def sb_queries(
    targets: VariantGenotypes,
    reference_frequencies: np.ndarray,
    queries: int,
    *,
    seed: int = 0,
) -> list[np.ndarray]:
    """Rows of the variants to ask about, per target: alleles it carries, rarest
    in the reference first (ties in a random order), at most ``queries``."""
    rng = np.random.default_rng(seed)
    chosen = []
    for column in range(targets.dosage.shape[1]):
        carried = np.flatnonzero(targets.dosage[:, column] > 0)
        shuffled = carried[rng.permutation(carried.size)]
        order = np.argsort(reference_frequencies[shuffled], kind="stable")
        chosen.append(shuffled[order][:queries])
    return chosen


def sb_attack(
    oracle: BeaconOracle | Sequence[BeaconOracle],
    targets: VariantGenotypes,
    is_member: np.ndarray,
    reference: VariantGenotypes,
    *,
    num_individuals: int,
    queries: int,
    model: str = "sfs",
    error_rate: float = SB_ERROR_RATE,
    fpr: float = 0.05,
    seed: int = 0,
) -> AttackResult:
    """Run the SB likelihood-ratio test on every target; power at ``fpr``.

    Parameters
    ----------
    oracle
        The beacon under attack (boolean answers suffice); several oracles (one
        identity each) are used in turn, one per target: an attacker who can
        take a fresh identity for every target.
    targets
        Genomes of the targets (members and non-members, one column each).
    is_member
        Ground truth per target column, to measure the power.
    reference
        The attacker's reference panel: query order, and the frequency model.
    num_individuals
        N, the beacon's size as the attacker believes it.
    queries
        At most this many queries per target.
    model
        ``"sfs"``: the paper's test, ``D_N`` from a Beta site frequency spectrum
        fitted to the reference panel; ``"frequencies"``: ``D_N`` per query from
        the panel's frequency of that allele (add-one smoothed).
    """
    if model not in ("sfs", "frequencies"):
        raise ValueError(f"model must be 'sfs' or 'frequencies', not {model!r}")
    keys = targets.variant_keys()
    counts = reference.aligned_to(keys).sum(axis=1)
    num_reference = reference.dosage.shape[1]
    frequencies = counts / (2.0 * max(1, num_reference))
    smoothed = (counts + 1.0) / (2.0 * num_reference + 2.0)
    beta = beta_from_frequencies(frequencies) if model == "sfs" else None
    oracles = [oracle] if isinstance(oracle, BeaconOracle) else list(oracle)
    chosen = sb_queries(targets, frequencies, queries, seed=seed)
    answers: dict[int, bool | None] = {}
    # Targets in a random order, so that a budget spent halfway through the run
    # falls on members and non-members alike.
    order = np.random.default_rng([seed, 1]).permutation(len(chosen))
    for turn, target in enumerate(order):
        asking = oracles[turn % len(oracles)]
        missing = [int(row) for row in chosen[target] if int(row) not in answers]
        variants: list[Variant] = [keys[row] for row in missing]
        for row, answer in zip(missing, asking.exists_many(variants), strict=True):
            answers[row] = answer
    scores = np.zeros(len(chosen))
    for target, rows in enumerate(chosen):
        answered = np.array([row for row in rows if answers[int(row)] is not None])
        if answered.size == 0:
            continue
        x = np.array([answers[int(row)] for row in answered], dtype=bool)
        if beta is not None:
            null, alternative = sb_no_probabilities(
                num_individuals,
                beta=beta,
                num_queries=answered.size,
                error_rate=error_rate,
            )
        else:
            null, alternative = sb_no_probabilities(
                num_individuals, frequencies=smoothed[answered], error_rate=error_rate
            )
        scores[target] = sb_statistic(x, null, alternative)
    return attack_result(
        "sb",
        scores,
        np.asarray(is_member, dtype=bool),
        fpr=fpr,
        queries_asked=queries,
        num_queries=sum(one.num_queries for one in oracles),
        num_refused=sum(one.num_refused for one in oracles),
        num_unsent=sum(one.num_unsent for one in oracles),
    )
