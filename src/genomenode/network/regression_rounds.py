"""The rounds of a federated regression (:mod:`genomenode.network.analysis_rounds`
for the others): the logistic null model, each window's IRLS from the nodes'
information and score, Firth's penalised fit, and the linear model in one
round.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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

__all__ = ["firth", "linear_window", "logistic_windows", "null_model"]


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


async def linear_window(
    rounds: Rounds,
    request: dict[str, Any],
    tasks: list[Task],
    window: dict[str, Any],
) -> tuple[list[dict[str, Any]], int]:
    """One window's linear regressions, in one round."""
    body: dict[str, Any] = {**_model_body(request), "window": window}
    answers = await rounds.round_trip(tasks, "glm", body)
    keys, hidden = common_variants(answers)
    if not keys:
        return [], hidden
    num = gather(answers, keys, "num_observations")
    beta, se, p = federated.linear_estimates(
        gather(answers, keys, "xtx"),
        gather(answers, keys, "xty"),
        gather(answers, keys, "yty"),
        num,
    )
    return _result_rows(window, keys, num, beta, se, p, ["ok"] * len(keys)), hidden


class _Fit:
    """One window's per-variant logistic IRLS, one Newton step per round."""

    def __init__(self, window: dict[str, Any], null_beta: np.ndarray) -> None:
        self.window = window
        self.null_beta = null_beta
        self.keys: list[str] | None = None
        self.hidden = 0
        self.iteration = 0
        self.done = False

    def part(self) -> tuple[dict[str, Any], np.ndarray | None]:
        """This window's part of the next round, and its β rows (None: the
        first round, every released variant at the null model)."""
        if self.keys is None:
            return {"window": self.window}, None
        named = [self.keys[j] for j in self.active]
        return {"window": self.window, "variants": named}, self.beta[self.active]

    def take(self, answers: Mapping[str, dict[str, Any]]) -> None:
        """The nodes' answers to this window's part: one Newton step."""
        if self.keys is None:
            self.keys, self.hidden = common_variants(answers)
            count = len(self.keys)
            if not count:
                self.done = True
                return
            self.num = gather(answers, self.keys, "num_observations")
            self.beta = np.tile(np.append(self.null_beta, 0.0), (count, 1))
            width = self.beta.shape[1]
            self.information = np.zeros((count, width, width))
            self.status = np.array(["not converged"] * count, dtype=object)
            self.active = np.arange(count)
        active = self.active
        named = [self.keys[j] for j in active]
        information = gather(answers, named, "information")
        score = gather(answers, named, "score")
        previous = self.beta[active, -1]
        new, change = federated.logistic_step(self.beta[active], information, score)
        self.information[active] = information
        self.beta[active] = new
        finished = ~(change >= federated.CONVERGENCE_TOLERANCE)
        self.status[active[finished & ~np.isnan(change)]] = "ok"
        self.status[active[np.isnan(change)]] = "singular"
        # An estimate running off to the boundary is separation: it would
        # only cost round trips (the documented fallback: no numbers).
        # Newton converges quadratically near a finite optimum: still taking
        # large steps after SLOW_ITERATIONS is a fit heading for infinity.
        diverging = ~finished & (
            (np.abs(new[:, -1]) > federated.SEPARATION_BETA)
            | (
                (self.iteration >= federated.SLOW_ITERATIONS)
                & (np.abs(new[:, -1] - previous) > federated.SLOW_STEP)
            )
        )
        self.status[active[diverging]] = "separation"
        self.active = active[~finished & ~diverging]
        self.iteration += 1
        self.done = len(self.active) == 0 or self.iteration >= federated.MAX_ITERATIONS

    async def rows(
        self, rounds: Rounds, request: dict[str, Any], tasks: list[Task]
    ) -> tuple[list[dict[str, Any]], int]:
        """The window's result rows (after Firth's fit, when asked for)."""
        if not self.keys:
            return [], self.hidden
        keys, status = self.keys, self.status
        b, se, p = federated.logistic_wald(self.beta, self.information)
        # Separation (the documented fallback): a model that does not converge,
        # or whose estimate runs off to the boundary, is reported without numbers.
        separated = (
            (status != "ok")
            | ~np.isfinite(se)
            | (np.abs(b) > federated.SEPARATION_BETA)
        )
        status[separated & (status == "ok")] = "separation"
        b, se, p = (np.where(separated, np.nan, v) for v in (b, se, p))
        mode = request.get("firth", "no")
        if mode != "no":
            chosen = (
                np.arange(len(keys)) if mode == "all" else np.flatnonzero(separated)
            )
            if len(chosen):
                body = {
                    **_model_body(request),
                    "window": self.window,
                    "start": self.null_beta,
                    "log_likelihood": False,
                }
                found = await firth(
                    rounds, tasks, body, [keys[j] for j in chosen], self.null_beta
                )
                b[chosen], se[chosen], p[chosen], status[chosen] = found
        rows = _result_rows(self.window, keys, self.num, b, se, p, list(status))
        return rows, self.hidden


async def logistic_windows(
    rounds: Rounds,
    request: dict[str, Any],
    tasks: list[Task],
    windows: Sequence[dict[str, Any]],
    null_beta: np.ndarray,
    *,
    parts: int,
) -> list[tuple[list[dict[str, Any]], int]]:
    """Every window's logistic regressions, each round serving up to ``parts``
    windows at once (one request per node, one audit entry there).

    A window joins as soon as another one is done, so the few slow variants
    of one window share their rounds with the first ones of the next, rather
    than a round each. Per window: the result rows, and how many variants
    some node withheld.
    """
    waiting = list(enumerate(windows))[::-1]
    fitting: list[tuple[int, _Fit]] = []
    found: list[tuple[list[dict[str, Any]], int] | None] = [None] * len(windows)
    while waiting or fitting:
        while waiting and len(fitting) < parts:
            number, window = waiting.pop()
            fitting.append((number, _Fit(window, null_beta)))
        # The parts in as few requests as keep each within the job's
        # chunk_variants named variants (one window's worth, as before).
        requests: list[list[tuple[int, _Fit, dict[str, Any], Any]]] = [[]]
        named = 0
        for number, fit in fitting:
            part, beta = fit.part()
            size = len(part.get("variants", ()))
            if requests[-1] and named + size > request["chunk_variants"]:
                requests.append([])
                named = 0
            requests[-1].append((number, fit, part, beta))
            named += size
        for group in requests:
            body: dict[str, Any] = {
                **_model_body(request),
                "start": null_beta,
                # The Newton steps need the information and score only.
                "log_likelihood": False,
                "parts": [part for _, _, part, _ in group],
            }
            betas = [beta for _, _, _, beta in group if beta is not None]
            if betas:
                body["beta"] = np.concatenate(betas)
            answers = await rounds.round_trip(tasks, "glm", body)
            for index, (number, fit, _, _) in enumerate(group):
                fit.take({name: _part_of(a, index) for name, a in answers.items()})
                if fit.done:
                    found[number] = await fit.rows(rounds, request, tasks)
        if any(fit.done for _, fit in fitting):
            fitting = [(number, fit) for number, fit in fitting if not fit.done]
            done = sum(item is not None for item in found)
            await rounds.progress(tasks, done, len(windows))
    return [item if item is not None else ([], 0) for item in found]


def _part_of(answer: dict[str, Any], index: int) -> dict[str, Any]:
    """Part ``index`` of a node's answer to a round of several windows: its
    variants and withheld ones, and its rows of each array."""
    sizes = [len(names) for names in answer["variants"]]
    start = sum(sizes[:index])
    stop = start + sizes[index]
    out = {}
    for key, value in answer.items():
        if isinstance(value, Mapping) and set(value) == {"dtype", "shape", "data"}:
            value = decode(value, field=key)  # a JSON answer's array
        if isinstance(value, np.ndarray):
            out[key] = value[start:stop]
    out["variants"] = answer["variants"][index]
    out["withheld"] = answer["withheld"][index]
    return out


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
