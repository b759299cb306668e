"""Numeric kernels of the node's analyses: sufficient statistics, vectorised over
variants, each with an obviously-correct twin (``naive_*``) for the tests.

A per-variant model's design matrix is ``X_j = [covariates | dosage_j]`` (the
covariates include the intercept column). Its blocks are shared by all variants
except those touching the dosage, so one matrix product per block serves a
whole chunk of variants:

- ``covariatesᵀ W_j covariates`` for every ``j`` is ``W @ outer(covariates)``
  (``W``: variants × samples, one row of IRLS weights per variant);
- ``covariatesᵀ W_j dosage_j`` is ``(W * dosages) @ covariates``;
- ``dosage_jᵀ W_j dosage_j`` is a row sum.

A missing dosage (NaN) gives that person weight 0 in that variant's model only:
per-variant complete cases, as plink2 does.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "dosages_of",
    "genotype_counts",
    "linear_statistics",
    "logistic_statistics",
    "naive_firth_score",
    "naive_linear_statistics",
    "naive_logistic_statistics",
]


def dosages_of(calls: np.ndarray) -> np.ndarray:
    """ALT dosage (0, 1, 2; NaN when any allele is missing) from calls of shape
    ``(variants, samples, ploidy)`` as in ``call_genotype`` (biallelic rows)."""
    missing = (calls < 0).any(axis=2)
    dosage = (calls > 0).sum(axis=2).astype(np.float64)
    dosage[missing] = np.nan
    return dosage


def _blocks(
    dosages: np.ndarray, covariates: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``XᵀWX`` per variant, and the filled dosages / the complete-case mask."""
    present = ~np.isnan(dosages)
    filled = np.where(present, dosages, 0.0)
    weights = np.where(present, weights, 0.0)
    return _information(filled, covariates, weights), filled, weights, present


def _information(
    filled: np.ndarray, covariates: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """``XᵀWX`` per variant from weights already 0 where the dosage is missing.

    The covariate block is symmetric: one product with the k(k+1)/2 distinct
    columns of ``covariates ⊗ covariates`` serves every variant.
    """
    num_variants = filled.shape[0]
    k = covariates.shape[1]
    upper, lower = np.triu_indices(k)
    distinct = covariates[:, upper] * covariates[:, lower]
    hessian = np.empty((num_variants, k + 1, k + 1))
    block = weights @ distinct
    hessian[:, upper, lower] = block
    hessian[:, lower, upper] = block
    weighted = weights * filled
    cross = weighted @ covariates
    hessian[:, :k, k] = cross
    hessian[:, k, :k] = cross
    hessian[:, k, k] = np.einsum("ij,ij->i", weighted, filled)
    return hessian


def logistic_statistics(
    dosages: np.ndarray,
    covariates: np.ndarray,
    outcome: np.ndarray,
    beta: np.ndarray,
    *,
    log_likelihood: bool = True,
    inverse: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """One IRLS round of per-variant logistic models at ``beta``.

    Parameters
    ----------
    dosages
        Variants × samples (NaN: missing), float64 or float32 (0, 1, 2 are
        exact in either; arithmetic is float64).
    covariates
        Samples × k, the first column all ones.
    outcome
        0/1 per sample.
    beta
        Variants × (k + 1): the current coefficients (dosage last).
    log_likelihood
        Whether to compute the log-likelihoods (a tenth of the work; the
        network's IRLS does not use them).
    inverse
        Variants × p × p: the inverse of the *pooled* information at ``beta``.
        With it, ``firth_score`` is returned too: Σᵢ xᵢ hᵢ (½ − μᵢ), with hᵢ =
        wᵢ xᵢᵀ inverse xᵢ the diagonal of the pooled hat matrix — the term
        Firth's penalty adds to the score, a sum over this node's people.

    Returns
    -------
    dict
        ``information`` (XᵀWX, variants × p × p), ``score`` (Xᵀ(y − μ), the
        gradient: XᵀWz − XᵀWXβ), ``log_likelihood`` (when asked for) and
        ``num_observations`` per variant. The Newton step
        ``β + information⁻¹ score`` is the IRLS step.
    """
    k = covariates.shape[1]
    present: np.ndarray | None = None
    filled = dosages
    if np.isnan(dosages).any():
        present = ~np.isnan(dosages)
        filled = np.where(present, dosages, 0.0)
    if not log_likelihood and inverse is None and _shared_start(beta, k):
        return _at_shared_start(filled, present, covariates, outcome, beta[0, :k])
    eta = beta[:, :k] @ covariates.T
    eta += beta[:, k : k + 1] * filled
    # μ = 1 / (1 + e^−η), in place; log(1 + e^−η) is kept for the likelihood.
    mu = np.negative(eta)
    with np.errstate(over="ignore"):  # e^−η = inf is handled below
        np.exp(mu, out=mu)
    mu += 1.0
    log_one_plus = np.log(mu) if log_likelihood else None
    np.reciprocal(mu, out=mu)
    weights = mu * (1.0 - mu)
    residual = outcome[None, :] - mu
    if present is not None:
        weights[~present] = 0.0
        residual[~present] = 0.0
    hessian = _information(filled, covariates, weights)
    score = np.empty((dosages.shape[0], k + 1))
    score[:, :k] = residual @ covariates
    score[:, k] = np.einsum("ij,ij->i", residual, filled)
    num = present.sum(axis=1) if present is not None else dosages.shape[1]
    out = {
        "information": hessian,
        "score": score,
        "num_observations": np.broadcast_to(num, (dosages.shape[0],)).astype(np.int64),
    }
    if inverse is not None:
        out["firth_score"] = _firth_score(
            filled, covariates, weights, mu, present, inverse
        )
    if log_one_plus is None:
        return out
    # Each person's log-likelihood y·η − log(1 + e^η) is (y − 1)·η − log(1 + e^−η).
    per_person = (outcome[None, :] - 1.0) * eta - log_one_plus
    overflowed = ~np.isfinite(log_one_plus).all(axis=1)
    if overflowed.any():
        # e^−η beyond float64 (η < −709): the same without overflow, those rows.
        rows = eta[overflowed]
        per_person[overflowed] = outcome[None, :] * rows - np.logaddexp(0.0, rows)
    if present is not None:
        per_person[~present] = 0.0
    return out | {"log_likelihood": per_person.sum(axis=1)}


def _shared_start(beta: np.ndarray, k: int) -> bool:
    """Whether every variant is at the same covariate β with a dosage β of 0 (an
    IRLS's first round, from the null model)."""
    return (
        len(beta) > 0
        and not beta[:, k].any()
        and bool((beta[:, :k] == beta[0, :k]).all())
    )


def _at_shared_start(
    filled: np.ndarray,
    present: np.ndarray | None,
    covariates: np.ndarray,
    outcome: np.ndarray,
    start: np.ndarray,
) -> dict[str, np.ndarray]:
    """:func:`logistic_statistics` where every variant's β is ``(start, 0)``.

    The linear predictor does not involve the dosage, so μ and the weights are
    one vector for all variants: one exponential per person instead of one per
    person and variant, and the covariate block of XᵀWX and of the score is
    one product (per variant only where a dosage is missing).
    """
    k = covariates.shape[1]
    num_variants = filled.shape[0]
    mu = 1.0 / (1.0 + np.exp(-(covariates @ start)))
    weights = mu * (1.0 - mu)
    residual = outcome - mu
    if present is not None:
        # Complete cases per variant: the general kernel, minus the exponentials.
        weights_each = np.where(present, weights[None, :], 0.0)
        residual_each = np.where(present, residual[None, :], 0.0)
        score = np.empty((num_variants, k + 1))
        score[:, :k] = residual_each @ covariates
        score[:, k] = np.einsum("ij,ij->i", residual_each, filled)
        return {
            "information": _information(filled, covariates, weights_each),
            "score": score,
            "num_observations": present.sum(axis=1).astype(np.int64),
        }
    dosages = np.asarray(filled, dtype=np.float64)
    upper, lower = np.triu_indices(k)
    hessian = np.empty((num_variants, k + 1, k + 1))
    block = weights @ (covariates[:, upper] * covariates[:, lower])
    hessian[:, upper, lower] = block
    hessian[:, lower, upper] = block
    cross = dosages @ (covariates * weights[:, None])
    hessian[:, :k, k] = cross
    hessian[:, k, :k] = cross
    hessian[:, k, k] = (dosages * dosages) @ weights
    score = np.empty((num_variants, k + 1))
    score[:, :k] = residual @ covariates
    score[:, k] = dosages @ residual
    return {
        "information": hessian,
        "score": score,
        "num_observations": np.full(num_variants, filled.shape[1], dtype=np.int64),
    }


def _firth_score(
    filled: np.ndarray,
    covariates: np.ndarray,
    weights: np.ndarray,
    mu: np.ndarray,
    present: np.ndarray | None,
    inverse: np.ndarray,
) -> np.ndarray:
    """Σᵢ xᵢ hᵢ (½ − μᵢ) per variant, hᵢ = wᵢ xᵢᵀ Aⱼ xᵢ (Aⱼ: ``inverse[j]``)."""
    k = covariates.shape[1]
    upper, lower = np.triu_indices(k)
    distinct = covariates[:, upper] * covariates[:, lower]
    # cᵀ A_cc c through the distinct products (off-diagonal terms twice).
    coefficients = inverse[:, upper, lower] * np.where(upper == lower, 1.0, 2.0)
    quadratic = coefficients @ distinct.T
    quadratic += 2.0 * filled * (inverse[:, :k, k] @ covariates.T)
    quadratic += filled * filled * inverse[:, k, k][:, None]
    residual = weights * quadratic * (0.5 - mu)
    if present is not None:
        residual[~present] = 0.0
    out = np.empty((filled.shape[0], k + 1))
    out[:, :k] = residual @ covariates
    out[:, k] = np.einsum("ij,ij->i", residual, filled)
    return out


def linear_statistics(
    dosages: np.ndarray, covariates: np.ndarray, outcome: np.ndarray
) -> dict[str, np.ndarray]:
    """XᵀX, Xᵀy, yᵀy and n per variant of per-variant least squares: the whole
    model in one round."""
    k = covariates.shape[1]
    hessian, filled, _, present = _blocks(dosages, covariates, np.ones_like(dosages))
    kept = np.where(present, outcome[None, :], 0.0)
    moment = np.empty((dosages.shape[0], k + 1))
    moment[:, :k] = kept @ covariates
    moment[:, k] = (kept * filled).sum(axis=1)
    return {
        "xtx": hessian,
        "xty": moment,
        "yty": (kept * kept).sum(axis=1),
        "num_observations": present.sum(axis=1),
    }


def genotype_counts(dosages: np.ndarray, groups: np.ndarray, num_groups: int):
    """Counts of dosage 0, 1, 2 per variant and group: variants × groups × 3."""
    out = np.zeros((dosages.shape[0], num_groups, 3), dtype=np.int64)
    for group in range(num_groups):
        chosen = dosages[:, groups == group]
        for dosage in range(3):
            out[:, group, dosage] = (chosen == dosage).sum(axis=1)
    return out


# -- the slow twins ----------------------------------------------------------------


def naive_logistic_statistics(dosages, covariates, outcome, beta):
    """:func:`logistic_statistics`, one variant at a time with explicit matrices."""
    rows = []
    for j in range(dosages.shape[0]):
        keep = ~np.isnan(dosages[j])
        x = np.column_stack([covariates[keep], dosages[j, keep]])
        y = outcome[keep]
        mu = 1.0 / (1.0 + np.exp(-(x @ beta[j])))
        w = mu * (1 - mu)
        rows.append(
            (
                x.T @ (w[:, None] * x),
                x.T @ (y - mu),
                float(np.sum(y * np.log(mu) + (1 - y) * np.log(1 - mu))),
                int(keep.sum()),
            )
        )
    return {
        "information": np.array([r[0] for r in rows]),
        "score": np.array([r[1] for r in rows]),
        "log_likelihood": np.array([r[2] for r in rows]),
        "num_observations": np.array([r[3] for r in rows]),
    }


def naive_firth_score(dosages, covariates, outcome, beta, inverse):
    """``firth_score`` of :func:`logistic_statistics`, one variant at a time
    with the explicit hat matrix."""
    rows = []
    for j in range(dosages.shape[0]):
        keep = ~np.isnan(dosages[j])
        x = np.column_stack([covariates[keep], dosages[j, keep]])
        mu = 1.0 / (1.0 + np.exp(-(x @ beta[j])))
        root = np.sqrt(mu * (1 - mu))[:, None] * x
        hat = np.diag(root @ inverse[j] @ root.T)
        rows.append(x.T @ (hat * (0.5 - mu)))
    return np.array(rows)


def naive_linear_statistics(dosages, covariates, outcome):
    """:func:`linear_statistics`, one variant at a time."""
    rows = []
    for j in range(dosages.shape[0]):
        keep = ~np.isnan(dosages[j])
        x = np.column_stack([covariates[keep], dosages[j, keep]])
        y = outcome[keep]
        rows.append((x.T @ x, x.T @ y, float(y @ y), int(keep.sum())))
    return {
        "xtx": np.array([r[0] for r in rows]),
        "xty": np.array([r[1] for r in rows]),
        "yty": np.array([r[2] for r in rows]),
        "num_observations": np.array([r[3] for r in rows]),
    }
