"""The coordinator's side of the analyses: sums of the nodes' sufficient
statistics turned into estimates, exactly as if the data were pooled.

Pure functions over arrays (no HTTP): the network's job runner
(:mod:`genomenode.network.jobs`) calls them between round trips.

- logistic regression: the Newton (IRLS) step from the summed information and
  score, the Wald standard error and two-sided normal p-value at convergence
  (what statsmodels' ``Logit`` and ``plink2 --glm`` report);
- linear regression: β = (XᵀX)⁻¹Xᵀy, σ² = (yᵀy − βᵀXᵀy) / (n − p), t test;
- tests on summed 2×3 genotype tables: genotypic (2 df) and allelic (1 df)
  chi-square without continuity correction, Fisher's exact test on the allelic
  2×2 table (what ``scipy.stats`` gives on the pooled counts);
- PCA: eigenvectors of the summed Gram matrix of standardised genotypes.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = [
    "CONVERGENCE_TOLERANCE",
    "FIRTH_MAX_STEP",
    "MAX_ITERATIONS",
    "SEPARATION_BETA",
    "SLOW_ITERATIONS",
    "SLOW_STEP",
    "inverses",
    "linear_estimates",
    "logistic_step",
    "logistic_wald",
    "pca_from_gram",
    "prune_linkage",
    "table_tests",
]

#: Largest change of any coefficient (relative to max(1, |β|)) at convergence.
CONVERGENCE_TOLERANCE = 1e-10
#: Rounds after which a variant that has not converged is reported as such
#: (separation: the documented fallback, see docs/analysis.md).
MAX_ITERATIONS = 25
#: |β| of the dosage (log odds ratio) beyond which a logistic fit is taken to
#: run off to infinity: complete or quasi-complete separation.
SEPARATION_BETA = 15.0
#: After this many rounds a dosage coefficient still moving by more than
#: SLOW_STEP per round is taken to diverge (separation) too.
SLOW_ITERATIONS = 10
SLOW_STEP = 0.05
#: Largest change of any coefficient in one step of Firth's fit (as logistf's
#: ``maxstep``): keeps the first steps of a separated variant in range.
FIRTH_MAX_STEP = 5.0


def _solve(matrices: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Per-variant solves; a singular system gives NaN for that variant."""
    try:
        # One stacked LAPACK call; only when some system is singular, one by one.
        return np.linalg.solve(matrices, vectors[..., None])[..., 0]
    except np.linalg.LinAlgError:
        pass
    out = np.full(vectors.shape, np.nan)
    for j in range(matrices.shape[0]):
        try:
            out[j] = np.linalg.solve(matrices[j], vectors[j])
        except np.linalg.LinAlgError:
            continue
    return out


def logistic_step(
    beta: np.ndarray, information: np.ndarray, score: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The next β and the size of the step (relative, per variant)."""
    step = _solve(information, score)
    new = beta + step
    singular = np.isnan(step).any(axis=1)
    change = np.full(len(step), np.nan)
    change[~singular] = np.max(
        np.abs(step[~singular]) / np.maximum(1.0, np.abs(new[~singular])), axis=1
    )
    return new, change


def _inverse_diagonal(matrices: np.ndarray) -> np.ndarray:
    try:
        return np.diagonal(np.linalg.inv(matrices), axis1=1, axis2=2).copy()
    except np.linalg.LinAlgError:
        pass
    out = np.full(matrices.shape[:2], np.nan)
    for j in range(matrices.shape[0]):
        try:
            out[j] = np.diag(np.linalg.inv(matrices[j]))
        except np.linalg.LinAlgError:
            continue
    return out


def logistic_wald(
    beta: np.ndarray, information: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """β, SE and two-sided p of the last coefficient (the dosage)."""
    variance = _inverse_diagonal(information)[:, -1]
    se = np.sqrt(variance)
    z = beta[:, -1] / se
    return beta[:, -1], se, 2 * stats.norm.sf(np.abs(z))


def linear_estimates(
    xtx: np.ndarray, xty: np.ndarray, yty: np.ndarray, num_observations: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """β, SE and two-sided t-test p of the dosage in per-variant least squares."""
    beta = _solve(xtx, xty)
    num_parameters = xtx.shape[1]
    residual = yty - np.einsum("vp,vp->v", beta, xty)
    dof = num_observations - num_parameters
    sigma2 = residual / np.maximum(dof, 1)
    variance = sigma2 * _inverse_diagonal(xtx)[:, -1]
    se = np.sqrt(variance)
    t = beta[:, -1] / se
    p = 2 * stats.t.sf(np.abs(t), np.maximum(dof, 1))
    return beta[:, -1], se, p


def table_tests(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Per-variant tests on summed genotype tables.

    ``counts``: variants × 2 (case, control) × 3 (dosage 0, 1, 2).
    """
    num = counts.shape[0]
    out = {
        name: np.full(num, np.nan)
        for name in (
            "chi2_genotypic",
            "p_genotypic",
            "chi2_allelic",
            "p_allelic",
            "odds_ratio",
            "p_fisher",
        )
    }
    for j in range(num):
        table = counts[j].astype(np.float64)
        genotypic = table[:, table.sum(axis=0) > 0]
        if genotypic.shape[1] >= 2 and (genotypic.sum(axis=1) > 0).all():
            chi2, p, _, _ = stats.chi2_contingency(genotypic, correction=False)
            out["chi2_genotypic"][j], out["p_genotypic"][j] = chi2, p
        alleles = np.column_stack(
            [2 * table[:, 2] + table[:, 1], 2 * table[:, 0] + table[:, 1]]
        )
        if (alleles.sum(axis=0) > 0).all() and (alleles.sum(axis=1) > 0).all():
            chi2, p, _, _ = stats.chi2_contingency(alleles, correction=False)
            out["chi2_allelic"][j], out["p_allelic"][j] = chi2, p
            odds, p_exact = stats.fisher_exact(alleles.astype(np.int64))
            out["odds_ratio"][j], out["p_fisher"][j] = odds, p_exact
    return out


def pca_from_gram(
    gram: np.ndarray, num_components: int
) -> tuple[np.ndarray, np.ndarray]:
    """Top eigenvalues and eigenvectors (loadings, variants × components) of the
    summed Gram matrix ZᵀZ; each vector's sign is fixed (largest |entry| > 0)."""
    values, vectors = np.linalg.eigh(gram)
    order = np.argsort(values)[::-1][:num_components]
    values, vectors = values[order], vectors[:, order]
    signs = np.sign(vectors[np.abs(vectors).argmax(axis=0), range(vectors.shape[1])])
    return values, vectors * np.where(signs == 0, 1.0, signs)


def prune_linkage(products: np.ndarray, threshold: float) -> np.ndarray:
    """Indices of the variants kept by LD pruning, in order.

    ``products`` is the sum of the nodes' :func:`genomenode.analysis.service.
    pca_linkage` answers (variants × (band + 1)). Greedy along the variants:
    one is kept unless its pooled r² with a kept variant at most ``band``
    variants before it reaches ``threshold`` (the pairwise rule of plink's
    ``--indep-pairwise``, one pass).
    """
    num, width = products.shape
    band = width - 1
    squares = products[:, 0]
    kept: list[int] = []
    for j in range(num):
        linked = False
        for i in reversed(kept):
            distance = j - i
            if distance > band:
                break
            denominator = squares[i] * squares[j]
            if (
                denominator > 0
                and products[i, distance] ** 2 / denominator >= threshold
            ):
                linked = True
                break
        if not linked:
            kept.append(j)
    return np.asarray(kept, dtype=np.int64)


def inverses(matrices: np.ndarray) -> np.ndarray:
    """Per-variant inverses; a singular matrix gives NaN for that variant."""
    try:
        return np.linalg.inv(matrices)
    except np.linalg.LinAlgError:
        pass
    out = np.full(matrices.shape, np.nan)
    for j in range(matrices.shape[0]):
        try:
            out[j] = np.linalg.inv(matrices[j])
        except np.linalg.LinAlgError:
            continue
    return out
