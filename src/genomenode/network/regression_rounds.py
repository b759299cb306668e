"""The rounds of a federated regression (:mod:`genomenode.network.analysis_rounds`
for the others): the logistic null model, each window's IRLS from the nodes'
information and score, Firth's penalised fit, and the linear model in one
round.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..analysis import federated
from ..analysis.codec import decode
from .analysis_rounds import (
    Rounds,
    Task,
    common_variants,
    gather,
    json_number,
    result_site,
)

__all__ = ["firth", "gwas_window", "null_model"]


def _model_body(request: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": request["model"],
        "outcome": request["phenotype"],
        "covariates": request["covariates"],
    }


async def null_model(
    rounds: Rounds, request: dict[str, Any], tasks: list[Task]
) -> np.ndarray:
    """The covariates-only logistic model (the start of every variant's IRLS)."""
    beta = np.zeros(len(request["covariates"]) + 1)
    for _ in range(federated.MAX_ITERATIONS):
        answers = await rounds.round_trip(
            tasks, "glm", {**_model_body(request), "start": beta}
        )
        information = sum(
            decode(a["information"], field="information") for a in answers.values()
        )
        score = sum(decode(a["score"], field="score") for a in answers.values())
        step = np.linalg.solve(information, score)
        beta = beta + step
        if (
            np.max(np.abs(step) / np.maximum(1, np.abs(beta)))
            < federated.CONVERGENCE_TOLERANCE
        ):
            break
    return beta


def _result_rows(
    window: dict[str, Any],
    keys: list[str],
    num: np.ndarray,
    beta: np.ndarray,
    se: np.ndarray,
    p: np.ndarray,
    flags: Sequence[str],
) -> list[dict[str, Any]]:
    """The result rows of a window's variants."""
    rows = []
    for j, key in enumerate(keys):
        rows.append(
            {
                **result_site(window, key),
                "num_observations": int(num[j]),
                "beta": json_number(beta[j]),
                "se": json_number(se[j]),
                "p": json_number(p[j]),
                "status": flags[j],
            }
        )
    return rows


async def gwas_window(
    rounds: Rounds,
    request: dict[str, Any],
    tasks: list[Task],
    window: dict[str, Any],
    null_beta: np.ndarray | None,
) -> tuple[list[dict[str, Any]], int]:
    """One window's regressions: the linear model in one round, the logistic
    IRLS from the null model in as many as the slowest variant needs."""
    body: dict[str, Any] = {**_model_body(request), "window": window}
    if null_beta is not None:
        body["start"] = null_beta
        # The Newton steps need the information and score only.
        body["log_likelihood"] = False
    answers = await rounds.round_trip(tasks, "glm", body)
    keys, hidden = common_variants(answers)
    if not keys:
        return [], hidden
    num = gather(answers, keys, "num_observations")
    if request["model"] == "linear":
        beta, se, p = federated.linear_estimates(
            gather(answers, keys, "xtx"),
            gather(answers, keys, "xty"),
            gather(answers, keys, "yty"),
            num,
        )
        return _result_rows(window, keys, num, beta, se, p, ["ok"] * len(keys)), hidden
    assert null_beta is not None  # a logistic model starts from the null model
    beta_all = np.tile(np.append(null_beta, 0.0), (len(keys), 1))
    information_all = np.zeros((len(keys), beta_all.shape[1], beta_all.shape[1]))
    status = np.array(["not converged"] * len(keys), dtype=object)
    active = np.arange(len(keys))
    information = gather(answers, keys, "information")
    score = gather(answers, keys, "score")
    for iteration in range(federated.MAX_ITERATIONS):
        previous = beta_all[active, -1]
        new, change = federated.logistic_step(beta_all[active], information, score)
        information_all[active] = information
        beta_all[active] = new
        finished = ~(change >= federated.CONVERGENCE_TOLERANCE)
        status[active[finished & ~np.isnan(change)]] = "ok"
        status[active[np.isnan(change)]] = "singular"
        # An estimate running off to the boundary is separation: it would
        # only cost round trips (the documented fallback: no numbers).
        # Newton converges quadratically near a finite optimum: still taking
        # large steps after SLOW_ITERATIONS is a fit heading for infinity.
        diverging = ~finished & (
            (np.abs(new[:, -1]) > federated.SEPARATION_BETA)
            | (
                (iteration >= federated.SLOW_ITERATIONS)
                & (np.abs(new[:, -1] - previous) > federated.SLOW_STEP)
            )
        )
        status[active[diverging]] = "separation"
        active = active[~finished & ~diverging]
        if len(active) == 0:
            break
        active_keys = [keys[j] for j in active]
        answers = await rounds.round_trip(
            tasks,
            "glm",
            {**body, "variants": active_keys, "beta": beta_all[active]},
        )
        information = gather(answers, active_keys, "information")
        score = gather(answers, active_keys, "score")
    b, se, p = federated.logistic_wald(beta_all, information_all)
    # Separation (the documented fallback): a model that does not converge, or
    # whose estimate runs off to the boundary, is reported without numbers.
    separated = (
        (status != "ok") | ~np.isfinite(se) | (np.abs(b) > federated.SEPARATION_BETA)
    )
    status[separated & (status == "ok")] = "separation"
    b, se, p = (np.where(separated, np.nan, v) for v in (b, se, p))
    mode = request.get("firth", "no")
    if mode != "no":
        chosen = np.arange(len(keys)) if mode == "all" else np.flatnonzero(separated)
        if len(chosen):
            found = await firth(
                rounds, tasks, body, [keys[j] for j in chosen], null_beta
            )
            b[chosen], se[chosen], p[chosen], status[chosen] = found
    return _result_rows(window, keys, num, b, se, p, list(status)), hidden


async def firth(
    rounds: Rounds,
    tasks: list[Task],
    body: dict[str, Any],
    keys: list[str],
    null_beta: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Firth's penalised fit of ``keys``: β, SE, p and status per variant.

    Exact from aggregates: two rounds per iteration at the same β — the
    information and score, then, given the pooled information's inverse,
    each node's Σ xᵢ hᵢ (½ − μᵢ) (the pooled hat matrix's diagonal is
    wᵢ xᵢᵀ I⁻¹ xᵢ, so every node computes its people's terms). The step is
    I⁻¹ (U + that), at most FIRTH_MAX_STEP; SE from I⁻¹ at the estimate,
    two-sided Wald p (as plink2 --glm firth reports).
    """
    count = len(keys)
    beta = np.tile(np.append(null_beta, 0.0), (count, 1))
    width = beta.shape[1]
    information_all = np.full((count, width, width), np.nan)
    status = np.array(["not converged"] * count, dtype=object)
    active = np.arange(count)
    for _ in range(federated.MAX_ITERATIONS):
        named = [keys[j] for j in active]
        here = {**body, "variants": named, "beta": beta[active]}
        answers = await rounds.round_trip(tasks, "glm", here)
        information = gather(answers, named, "information")
        score = gather(answers, named, "score")
        inverse = federated.inverses(information)
        singular = np.isnan(inverse).any(axis=(1, 2))
        inverse[singular] = 0.0
        answers = await rounds.round_trip(tasks, "glm", {**here, "inverse": inverse})
        penalised = score + gather(answers, named, "firth_score")
        step = np.einsum("vij,vj->vi", inverse, penalised)
        largest = np.max(np.abs(step), axis=1, keepdims=True)
        step *= np.minimum(1.0, federated.FIRTH_MAX_STEP / np.maximum(largest, 1e-300))
        new = beta[active] + step
        change = np.max(np.abs(step) / np.maximum(1.0, np.abs(new)), axis=1)
        information_all[active] = information
        beta[active] = new
        finished = (change < federated.CONVERGENCE_TOLERANCE) & ~singular
        status[active[finished]] = "firth"
        status[active[singular]] = "singular"
        active = active[~finished & ~singular]
        if len(active) == 0:
            break
    b, se, p = federated.logistic_wald(beta, information_all)
    failed = status != "firth"
    b, se, p = (np.where(failed, np.nan, v) for v in (b, se, p))
    return b, se, p, status
