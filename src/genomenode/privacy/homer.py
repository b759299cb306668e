"""A Homer et al. (2008) allele-frequency attack through a beacon's counts.

The attacker asks, for common SNPs of its reference panel, how many people in
the beacon carry the ALT allele (count granularity: ``/individuals`` with the
variant), and how many people the beacon holds; the carrier frequencies are the
"mixture". Each target is then scored with Homer's D statistic against the
mixture and the reference panel
(:func:`~genomenode.privacy.statistics.homer_statistic`), on the carrier scale
the counts are on. This is the attack of GDI's gdi-node-standalone threat model
through ``g_variants`` counts: a floor on small counts does not touch it, since
the SNPs it uses are common.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .cohort import VariantGenotypes
from .oracle import BeaconOracle, Variant
from .report import AttackResult, attack_result
from .statistics import homer_statistic

__all__ = ["homer_attack", "homer_snps"]


def homer_snps(
    reference: VariantGenotypes,
    queries: int,
    *,
    min_frequency: float = 0.05,
    seed: int = 0,
) -> np.ndarray:
    """Rows of ``reference`` to ask about: common in the panel (ALT frequency
    within ``[min_frequency, 1 - min_frequency]``), at most ``queries``, drawn at
    random and kept in genome order."""
    frequencies = reference.frequencies()
    common = np.flatnonzero(
        (frequencies >= min_frequency) & (frequencies <= 1 - min_frequency)
    )
    rng = np.random.default_rng(seed)
    if common.size > queries:
        common = np.sort(rng.choice(common, size=queries, replace=False))
    return common


def homer_attack(
    oracle: BeaconOracle | Sequence[BeaconOracle],
    targets: VariantGenotypes,
    is_member: np.ndarray,
    reference: VariantGenotypes,
    *,
    queries: int,
    min_frequency: float = 0.05,
    fpr: float = 0.05,
    seed: int = 0,
) -> AttackResult:
    """Run Homer's test on every target; power at ``fpr``.

    Parameters
    ----------
    oracle
        The beacon under attack (needs count access); several oracles (one
        identity each) share the SNPs in equal runs.
    targets
        Genomes of the targets (one column each).
    is_member
        Ground truth per target column.
    reference
        The attacker's reference panel: which SNPs, and Pop_j.
    queries
        At most this many queries in all: one for the beacon's size, the rest
        one per SNP.
    """
    rows = homer_snps(reference, max(0, queries - 1), min_frequency=min_frequency)
    keys = reference.variant_keys()
    snps: list[Variant] = [keys[row] for row in rows]
    oracles = [oracle] if isinstance(oracle, BeaconOracle) else list(oracle)
    num_individuals = oracles[0].num_individuals()
    carriers: list[float | None] = []
    runs = np.array_split(np.arange(len(snps)), len(oracles))
    for asking, run in zip(oracles, runs, strict=True):
        carriers += asking.carriers_many([snps[index] for index in run])
    mixture = np.full(len(snps), np.nan)
    if num_individuals:
        for index, count in enumerate(carriers):
            if count is not None:
                mixture[index] = min(1.0, count / num_individuals)
    panel = (reference.dosage[rows] > 0).mean(axis=1)
    carried = targets.aligned_to(snps) > 0
    scores = homer_statistic(carried.T, mixture, panel)
    return attack_result(
        "homer",
        scores,
        np.asarray(is_member, dtype=bool),
        fpr=fpr,
        queries_asked=queries,
        num_queries=sum(one.num_queries for one in oracles),
        num_refused=sum(one.num_refused for one in oracles),
        num_unsent=sum(one.num_unsent for one in oracles),
    )
