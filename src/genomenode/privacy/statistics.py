"""The attacks' statistics: vectorised kernels, each with an obviously correct twin.

- :func:`sb_statistic`: the Shringarpure & Bustamante (2015) log-likelihood ratio
  of one person's membership from a beacon's yes/no answers;
- :func:`homer_statistic`: Homer et al. (2008)'s D statistic of one person against
  a mixture's and a reference panel's frequencies, as a t statistic over SNPs;
- :func:`power_at_fpr`: detection power at a false-positive rate, the threshold
  taken from non-members' statistics.

Every statistic is oriented so that a *higher* score means "more likely a member".
The ``naive_*`` twins loop in plain Python over the same formulas; the tests hold
the kernels to them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "PowerResult",
    "beta_from_frequencies",
    "homer_statistic",
    "naive_homer_statistic",
    "naive_power_at_fpr",
    "naive_sb_statistic",
    "power_at_fpr",
    "sb_no_probabilities",
    "sb_statistic",
]

#: The paper's default probability that a member's allele is missed (sequencing
#: or calling error), which makes a "no" possible under the alternative.
SB_ERROR_RATE = 1e-6


def beta_from_frequencies(frequencies: np.ndarray) -> tuple[float, float]:
    """Beta(a, b) fitted by moments to a site frequency spectrum.

    Shringarpure & Bustamante model the alternate-allele frequency of a queried
    site as Beta(a, b); the attacker fits it to a reference panel. Frequencies
    that leave no variance (all equal) fall back to a flat prior's shape.
    """
    values = np.asarray(frequencies, dtype=float)
    values = values[(values > 0) & (values < 1)]
    if values.size < 2:
        return 1.0, 1.0
    mean, variance = float(values.mean()), float(values.var())
    if variance <= 0 or variance >= mean * (1 - mean):
        return 1.0, 1.0
    common = mean * (1 - mean) / variance - 1
    return mean * common, (1 - mean) * common


def _log_no_under_beta(a: float, b: float, num_individuals: int) -> float:
    """log D_N = log E[(1-f)^(2N)] for f ~ Beta(a, b): no one of N carries it."""
    two_n = 2 * num_individuals
    return (
        math.lgamma(a + b)
        + math.lgamma(b + two_n)
        - math.lgamma(b)
        - math.lgamma(a + b + two_n)
    )


def sb_no_probabilities(
    num_individuals: int,
    *,
    frequencies: np.ndarray | None = None,
    beta: tuple[float, float] | None = None,
    num_queries: int | None = None,
    error_rate: float = SB_ERROR_RATE,
) -> tuple[np.ndarray, np.ndarray]:
    """Probability of a "no" per query, under the null and the alternative.

    Null (the person is not in the beacon of N): ``D_N``, the chance that none of
    the 2N haplotypes carries the allele. Alternative (the person is one of the
    N): ``δ · D_{N-1}``, their copy missed with probability δ and none of the
    other N-1 carrying it.

    Parameters
    ----------
    num_individuals
        N, the beacon's size.
    frequencies
        Per-query allele frequencies known to the attacker (a reference panel):
        ``D_N = (1 - f)^(2N)``; the frequency-aware form of the test.
    beta
        ``(a, b)`` of the site frequency spectrum: ``D_N = B(a, b + 2N) / B(a, b)``
        for every query, as in the paper. Exactly one of ``frequencies`` and
        ``beta`` is given; with ``beta``, ``num_queries`` says how many.
    error_rate
        δ.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``P(no | null)`` and ``P(no | alternative)``, one value per query.
    """
    if (frequencies is None) == (beta is None):
        raise ValueError("give exactly one of frequencies and beta")
    if beta is not None:
        a, b = beta
        size = num_queries if num_queries is not None else 1
        null = math.exp(_log_no_under_beta(a, b, num_individuals))
        others = math.exp(_log_no_under_beta(a, b, num_individuals - 1))
        return np.full(size, null), np.full(size, error_rate * others)
    assert frequencies is not None
    f = np.clip(np.asarray(frequencies, dtype=float), 0.0, 1.0 - 1e-12)
    null = np.exp(2 * num_individuals * np.log1p(-f))
    others = np.exp(2 * (num_individuals - 1) * np.log1p(-f))
    return null, error_rate * others


def sb_statistic(
    answers: np.ndarray, no_null: np.ndarray, no_alternative: np.ndarray
) -> float:
    """Membership score ``-Λ`` from one person's queries.

    ``Λ = Σ_i x_i log[(1-D0_i)/(1-D1_i)] + (1-x_i) log[D0_i/D1_i]`` is the log of
    the likelihood ratio null/alternative (x_i = 1 for "yes"); the paper rejects
    the null (declares membership) for small Λ, so the score is ``-Λ``.

    Parameters
    ----------
    answers
        The beacon's answers to the queries it did answer (True: yes).
    no_null, no_alternative
        ``P(no)`` per query under each hypothesis (:func:`sb_no_probabilities`).
    """
    x = np.asarray(answers, dtype=bool)
    if x.size == 0:
        return 0.0
    tiny = np.finfo(float).tiny
    d0 = np.clip(no_null, tiny, 1.0)
    d1 = np.clip(no_alternative, tiny, 1.0)
    yes_term = np.log1p(-np.minimum(d0, 1 - 1e-16)) - np.log1p(
        -np.minimum(d1, 1 - 1e-16)
    )
    no_term = np.log(d0) - np.log(d1)
    statistic = np.where(x, yes_term, no_term).sum()
    return float(-statistic)


def naive_sb_statistic(
    answers: list[bool], no_null: list[float], no_alternative: list[float]
) -> float:
    """The obviously correct twin of :func:`sb_statistic` (one query at a time)."""
    log_ratio = 0.0
    for answer, d0, d1 in zip(answers, no_null, no_alternative, strict=True):
        if answer:
            log_ratio += math.log(1 - d0) - math.log(1 - d1)
        else:
            log_ratio += math.log(d0) - math.log(d1)
    return -log_ratio


def homer_statistic(
    target: np.ndarray, mixture: np.ndarray, reference: np.ndarray
) -> np.ndarray:
    """Homer's membership t statistic for each target (rows of ``target``).

    ``D_j = |Y_j - Pop_j| - |Y_j - M_j|`` per SNP j, with Y the target's value,
    M the mixture's (the beacon's) frequency and Pop the reference panel's; a
    member pulls M towards itself, so D is positive on average. The score is the
    one-sample t statistic ``mean(D) / (sd(D) / sqrt(m))`` over the m SNPs.

    Parameters
    ----------
    target
        ``(targets, snps)``: each target's value per SNP on the frequencies'
        scale (here carrier status, 0 or 1, as counts of carriers are what a
        beacon releases).
    mixture, reference
        ``(snps,)`` frequencies; NaN marks a SNP the beacon did not answer, left
        out for every target.
    """
    keep = ~(np.isnan(mixture) | np.isnan(reference))
    y = np.asarray(target, dtype=float)[:, keep]
    m = y.shape[1]
    if m < 2:
        return np.zeros(y.shape[0])
    d = np.abs(y - reference[keep]) - np.abs(y - mixture[keep])
    mean = d.mean(axis=1)
    sd = d.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = mean / (sd / math.sqrt(m))
    return np.where(sd > 0, t, 0.0)


def naive_homer_statistic(
    target: list[float], mixture: list[float], reference: list[float]
) -> float:
    """The obviously correct twin of :func:`homer_statistic` for one target."""
    d = [
        abs(y - pop) - abs(y - mix)
        for y, mix, pop in zip(target, mixture, reference, strict=True)
        if not (math.isnan(mix) or math.isnan(pop))
    ]
    if len(d) < 2:
        return 0.0
    mean = sum(d) / len(d)
    variance = sum((value - mean) ** 2 for value in d) / (len(d) - 1)
    if variance == 0:
        return 0.0
    return mean / math.sqrt(variance / len(d))


@dataclass(frozen=True)
class PowerResult:
    """Detection power at a false-positive rate.

    ``threshold`` is the score non-members reach with probability at most
    ``fpr`` (their empirical quantile); a member is detected when its score is
    strictly above it. ``observed_fpr`` is the share of non-members above it.
    """

    fpr: float
    threshold: float
    power: float
    observed_fpr: float
    num_members: int
    num_non_members: int


def power_at_fpr(
    member_scores: np.ndarray, non_member_scores: np.ndarray, fpr: float = 0.05
) -> PowerResult:
    """Power of the test "score > threshold" at false-positive rate ``fpr``.

    The threshold is the smallest non-member score such that at most
    ``floor(fpr · n)`` non-members lie strictly above it (ties never push the
    false-positive rate past ``fpr``).
    """
    members = np.asarray(member_scores, dtype=float)
    controls = np.sort(np.asarray(non_member_scores, dtype=float))
    if controls.size == 0 or members.size == 0:
        raise ValueError("need members' and non-members' scores")
    allowed = math.floor(fpr * controls.size + 1e-9)
    threshold = float(controls[controls.size - 1 - allowed])
    return PowerResult(
        fpr=fpr,
        threshold=threshold,
        power=float(np.mean(members > threshold)),
        observed_fpr=float(np.mean(controls > threshold)),
        num_members=int(members.size),
        num_non_members=int(controls.size),
    )


def naive_power_at_fpr(
    member_scores: list[float], non_member_scores: list[float], fpr: float = 0.05
) -> tuple[float, float]:
    """Twin of :func:`power_at_fpr`: try every non-member score as the threshold
    and keep the lowest whose false-positive rate is at most ``fpr``; returns
    ``(power, observed_fpr)``."""
    best: tuple[float, float] | None = None
    for candidate in sorted(set(non_member_scores)):
        above = sum(score > candidate for score in non_member_scores)
        if above <= fpr * len(non_member_scores) + 1e-9:
            power = sum(score > candidate for score in member_scores)
            best = (power / len(member_scores), above / len(non_member_scores))
            break
    assert best is not None
    return best
