"""The network's side of a federated analysis: round trips to the nodes, sums of
their sufficient statistics, the estimates (:mod:`genomenode.analysis.federated`).

One job runs as one asyncio task in the network process that accepted it. Every
request to a node carries the caller's ``Authorization`` header unchanged (the
node verifies the passport and decides, :func:`~genomenode.access.decision.authorize`
with ``analyse``) and, when the network signs, its ``GA4GH-Network-Assertion``,
exactly as a forwarded Beacon query (:mod:`genomenode.network.fanout`). The token
lives in this task's memory only.

A node that cannot be reached (connection, timeout, 5xx) puts its task in
SYSTEM_ERROR; one that refuses (401/403/4xx: no grant, a disclosure filter) in
EXECUTOR_ERROR, with the node's reason. With ``on_node_failure: fail`` the job
ends in that state; with ``continue`` the analysis starts again without that
dataset (the answer stays exact, over the datasets left) and the failed task is
listed in the job.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

import httpx2
import numpy as np

from ..access.duo import purpose_from_json, purpose_to_json
from ..access.network_trust import ASSERTION_HEADER, NetworkSigner
from ..analysis import federated
from ..analysis.codec import MEDIA_TYPE, decode, encode, pack, unpack
from ..config import Secret
from ..errors import InputError
from .jobs import FINAL_STATES, JobStore
from .registry import RegisteredNode, Registry

__all__ = ["ANALYSES", "Coordinator", "NodeFailure", "validate_request"]

ANALYSES = ("gwas", "table", "frequencies", "summary", "pca")
_MODELS = ("logistic", "linear")
#: Variants per window (one round trip per window, per IRLS iteration).
DEFAULT_CHUNK_VARIANTS = 3000
#: Windows whose rounds are in flight at once (a node answers them from its
#: thread pool; the network's waiting overlaps).
WINDOWS_IN_FLIGHT = 3
MAX_DATASETS = 64
#: LD pruning of the PCA's variants: pooled r² at which the later of two
#: variants at most DEFAULT_LD_WINDOW apart is dropped (plink's common
#: ``--indep-pairwise 50 5 0.2``, one pass).
DEFAULT_LD_R2 = 0.2
#: Firth's penalised logistic regression: never (separated variants get no
#: numbers), for the variants the plain fit finds separated, or for all.
FIRTH_MODES = ("no", "fallback", "all")
DEFAULT_LD_WINDOW = 50


class NodeFailure(Exception):
    """A node's part failed: ``state`` SYSTEM_ERROR or EXECUTOR_ERROR."""

    def __init__(self, dataset: str, state: str, reason: str) -> None:
        super().__init__(reason)
        self.dataset, self.state, self.reason = dataset, state, reason


class _Canceled(Exception):
    pass


def _strings(value: Any, field: str, *, most: int = 64) -> list[str]:
    if not isinstance(value, list) or not all(
        isinstance(item, str) and 0 < len(item) <= 128 for item in value
    ):
        raise InputError("a list of names", field=field)
    if len(value) > most:
        raise InputError(f"at most {most}", field=field)
    return value


def validate_request(body: Mapping[str, Any]) -> dict[str, Any]:
    """The job request, checked (InputError naming the field)."""
    analysis = body.get("analysis")
    if analysis not in ANALYSES:
        raise InputError(f"one of {', '.join(ANALYSES)}", field="analysis")
    request: dict[str, Any] = {
        "analysis": analysis,
        "datasets": _strings(body.get("datasets"), "datasets", most=MAX_DATASETS),
    }
    if not request["datasets"]:
        raise InputError("at least one dataset", field="datasets")
    failure = body.get("on_node_failure", "fail")
    if failure not in ("fail", "continue"):
        raise InputError("fail or continue", field="on_node_failure")
    request["on_node_failure"] = failure
    purpose = body.get("purpose")
    if purpose is not None:
        # The caller's declared research purpose, sent to every node: a node
        # whose dataset permits analyses without a grant weighs it against the
        # dataset's DUO terms (access.decision.authorize).
        request["purpose"] = purpose_to_json(purpose_from_json(purpose))
    chunk = body.get("chunk_variants", DEFAULT_CHUNK_VARIANTS)
    if not isinstance(chunk, int) or not 100 <= chunk <= 20_000:
        raise InputError("an integer from 100 to 20000", field="chunk_variants")
    request["chunk_variants"] = chunk
    region = body.get("region")
    if region is not None:
        if not isinstance(region, dict) or not isinstance(region.get("contig"), str):
            raise InputError("{contig, start, end}", field="region")
        start, end = region.get("start", 1), region.get("end", 2**31 - 1)
        if not isinstance(start, int) or not isinstance(end, int) or start >= end:
            raise InputError("integers start < end", field="region")
        request["region"] = {"contig": region["contig"], "start": start, "end": end}
    if analysis in ("gwas", "table"):
        phenotype = body.get("phenotype")
        if not isinstance(phenotype, str) or not phenotype:
            raise InputError(
                "the outcome variable (ICD10:I25.1, age...)", field="phenotype"
            )
        request["phenotype"] = phenotype
    if analysis == "gwas":
        model = body.get("model", "logistic")
        if model not in _MODELS:
            raise InputError("logistic or linear", field="model")
        request["model"] = model
        request["covariates"] = _strings(
            body.get("covariates", []), "covariates", most=30
        )
        firth = body.get("firth", "no")
        if firth not in FIRTH_MODES:
            raise InputError(f"one of {', '.join(FIRTH_MODES)}", field="firth")
        request["firth"] = firth
    if analysis == "frequencies":
        request["strata"] = _strings(body.get("strata", []), "strata", most=3)
    if analysis == "summary":
        request["variables"] = _strings(body.get("variables"), "variables", most=32)
        quantiles = body.get("quantiles", False)
        if not isinstance(quantiles, bool):
            raise InputError("true or false", field="quantiles")
        request["quantiles"] = quantiles
    if analysis == "pca":
        components = body.get("components", 4)
        most = body.get("max_variants", 500)
        maf = body.get("min_frequency", 0.05)
        if not isinstance(components, int) or not 1 <= components <= 20:
            raise InputError("1 to 20", field="components")
        if not isinstance(most, int) or not components <= most <= 5000:
            raise InputError("components to 5000", field="max_variants")
        if not isinstance(maf, (int, float)) or not 0 < maf < 0.5:
            raise InputError("in (0, 0.5)", field="min_frequency")
        if "region" not in request:
            raise InputError("the PCA needs a region", field="region")
        r2 = body.get("ld_r2", DEFAULT_LD_R2)
        band = body.get("ld_window", DEFAULT_LD_WINDOW)
        if r2 is not None and (
            not isinstance(r2, (int, float)) or isinstance(r2, bool) or not 0 < r2 < 1
        ):
            raise InputError("in (0, 1), or null for no pruning", field="ld_r2")
        if not isinstance(band, int) or isinstance(band, bool) or not 1 <= band <= 200:
            raise InputError("1 to 200 variants", field="ld_window")
        request |= {
            "components": components,
            "max_variants": most,
            "min_frequency": maf,
            "ld_r2": r2,
            "ld_window": band,
        }
    return request


@dataclasses.dataclass
class _Task:
    dataset: str
    node: RegisteredNode
    layout: dict[str, Any]


class Coordinator:
    """Runs one job (see the module docstring).

    Parameters
    ----------
    store
        The jobs.
    registry
        The network's nodes.
    client
        The pooled HTTP client.
    signer
        Signs each request (None: unsigned).
    authorization
        The caller's ``Authorization`` header, or None.
    timeout_seconds
        How long one node may take for one round.
    """

    def __init__(
        self,
        store: JobStore,
        registry: Registry,
        client: httpx2.AsyncClient,
        signer: NetworkSigner | None,
        authorization: Secret | None,
        *,
        timeout_seconds: float = 600.0,
    ) -> None:
        self.store = store
        self.registry = registry
        self.client = client
        self.signer = signer
        self.authorization = authorization
        self.timeout_seconds = timeout_seconds
        self.round_trips = 0
        self.job_id = ""
        self.purpose: dict[str, Any] | None = None
        self.tasks: dict[str, dict[str, Any]] = {}

    # -- node calls -------------------------------------------------------------

    async def _call(
        self,
        node: RegisteredNode,
        dataset: str,
        method: str,
        action: str,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        path = f"/analysis/datasets/{quote(dataset, safe='')}/{action}"
        url = node.url + path
        content = b""
        if body is not None:
            # Binary both ways (analysis.codec): the arrays are exact bytes with
            # no base64, and neither side parses megabytes of JSON text.
            extra: dict[str, Any] = {"job": self.job_id}
            if self.purpose is not None:
                extra["purpose"] = self.purpose
            content = pack({**body, **extra})
        headers = {"accept": f"{MEDIA_TYPE}, application/json"}
        if content:
            headers["content-type"] = MEDIA_TYPE
        if self.authorization is not None:
            headers["authorization"] = self.authorization.reveal()
        if self.signer is not None:
            headers[ASSERTION_HEADER] = self.signer.assertion(
                audience=node.url,
                method=method,
                path_and_query=urlsplit(url).path,
                body=content,
            )
        try:
            response = await self.client.request(
                method,
                url,
                content=content or None,
                headers=headers,
                timeout=self.timeout_seconds,
            )
        except httpx2.TimeoutException:
            raise NodeFailure(
                dataset, "SYSTEM_ERROR", f"{node.id}: no answer in time"
            ) from None
        except httpx2.HTTPError as error:
            raise NodeFailure(
                dataset,
                "SYSTEM_ERROR",
                f"{node.id}: {type(error).__name__}: {error}"[:300],
            ) from None
        if response.status_code >= 500:
            raise NodeFailure(
                dataset, "SYSTEM_ERROR", f"{node.id}: HTTP {response.status_code}"
            )
        try:
            if response.headers.get("content-type", "").startswith(MEDIA_TYPE):
                document = unpack(response.content)
            else:
                document = response.json()
        except (ValueError, InputError):
            raise NodeFailure(
                dataset, "SYSTEM_ERROR", f"{node.id}: not an analysis answer"
            ) from None
        if response.status_code >= 400:
            detail = document.get("detail") if isinstance(document, dict) else None
            if not isinstance(detail, str):
                detail = json.dumps(document)[:300]
            raise NodeFailure(
                dataset,
                "EXECUTOR_ERROR",
                f"{node.id}: HTTP {response.status_code}: {detail}"[:500],
            )
        if not isinstance(document, dict):
            raise NodeFailure(dataset, "SYSTEM_ERROR", f"{node.id}: not an object")
        return document

    async def _round(
        self, tasks: Sequence[_Task], action: str, body: dict[str, Any]
    ) -> dict[str, dict[str, Any]]:
        """One round trip to every task's node, in parallel (the same body)."""
        await self._check_canceled()
        answers = await asyncio.gather(
            *(
                self._call(task.node, task.dataset, "POST", action, body)
                for task in tasks
            ),
            return_exceptions=True,
        )
        self.round_trips += 1
        out = {}
        for task, answer in zip(tasks, answers, strict=True):
            if isinstance(answer, NodeFailure):
                raise answer
            if isinstance(answer, BaseException):
                raise NodeFailure(task.dataset, "SYSTEM_ERROR", repr(answer)[:300])
            out[task.dataset] = answer
        return out

    async def _check_canceled(self) -> None:
        state = await asyncio.to_thread(self.store.state, self.job_id)
        if state == "CANCELED":
            raise _Canceled

    async def _save(self, **values: Any) -> None:
        await asyncio.to_thread(
            self.store.update,
            self.job_id,
            tasks=self.tasks,
            round_trips=self.round_trips,
            **values,
        )

    # -- the job ----------------------------------------------------------------

    async def run(self, job_id: str) -> None:
        """Run the job to its end; never raises (the job records the outcome)."""
        self.job_id = job_id
        job = await asyncio.to_thread(self.store.get, job_id)
        request = job.request
        self.purpose = request.get("purpose")
        self.tasks = {
            dataset: {"state": "QUEUED", "node": None, "progress": 0.0, "reason": None}
            for dataset in request["datasets"]
        }
        excluded: set[str] = set()
        try:
            await self._save(state="INITIALIZING")
            while True:
                try:
                    tasks = await self._locate(request, excluded)
                    await self._save(state="RUNNING")
                    result = await self._analyse(request, tasks)
                    break
                except NodeFailure as failure:
                    self.tasks[failure.dataset] |= {
                        "state": failure.state,
                        "reason": failure.reason,
                    }
                    excluded.add(failure.dataset)
                    left = [d for d in request["datasets"] if d not in excluded]
                    if request["on_node_failure"] == "fail" or not left:
                        for task in self.tasks.values():
                            if task["state"] not in FINAL_STATES:
                                task["state"] = "CANCELED"
                        await self._save(state=failure.state, reason=failure.reason)
                        return
                    for dataset in left:
                        self.tasks[dataset]["progress"] = 0.0
            for dataset in request["datasets"]:
                if dataset not in excluded:
                    self.tasks[dataset] |= {"state": "COMPLETE", "progress": 1.0}
            result["datasets"] = [d for d in request["datasets"] if d not in excluded]
            result["round_trips"] = self.round_trips
            await self._save(state="COMPLETE", result=result)
        except _Canceled:
            return
        except Exception as error:  # the job records it; nothing escapes the task
            await self._save(
                state="SYSTEM_ERROR", reason=f"coordinator: {error!r}"[:500]
            )

    async def _locate(self, request: dict[str, Any], excluded: set[str]) -> list[_Task]:
        """Which node holds each dataset (the one whose layout call succeeds)."""
        found: list[_Task] = []
        for dataset in request["datasets"]:
            if dataset in excluded:
                continue
            refused: NodeFailure | None = None
            for node in self.registry.nodes:
                await self._check_canceled()
                try:
                    # A body (the job, the declared purpose) even on this GET:
                    # the node decides on it as on every later round.
                    layout = await self._call(node, dataset, "GET", "layout", {})
                except NodeFailure as failure:
                    if "HTTP 404" in failure.reason:
                        continue
                    refused = refused or failure
                    continue
                self.tasks[dataset] |= {"state": "INITIALIZING", "node": node.id}
                found.append(_Task(dataset, node, layout))
                break
            else:
                raise refused or NodeFailure(
                    dataset, "EXECUTOR_ERROR", f"no node of the network holds {dataset}"
                )
        self.round_trips += 1
        for task in found:
            self.tasks[task.dataset]["state"] = "RUNNING"
        return found

    def _windows(
        self, request: dict[str, Any], tasks: Sequence[_Task]
    ) -> list[dict[str, Any]]:
        """Position windows of about ``chunk_variants`` variants each."""
        spans: dict[str, list[int]] = {}
        for task in tasks:
            for contig in task.layout["contigs"]:
                span = spans.setdefault(contig["contig"], [2**62, 0, 0])
                span[0] = min(span[0], contig["first_position"])
                span[1] = max(span[1], contig["last_position"] + 1)
                span[2] = max(span[2], contig["num_variants"])
        region = request.get("region")
        windows = []
        for contig, (first, last, count) in spans.items():
            if region is not None:
                if contig != region["contig"]:
                    continue
                first, last = max(first, region["start"]), min(last, region["end"])
                if first >= last:
                    continue
            pieces = max(1, math.ceil(count / request["chunk_variants"]))
            edges = np.linspace(first, last, pieces + 1).round().astype(int)
            for start, end in itertools.pairwise(edges):
                if end > start:
                    windows.append(
                        {"contig": contig, "start": int(start), "end": int(end)}
                    )
        return windows

    async def _progress(self, tasks: Sequence[_Task], done: int, total: int) -> None:
        for task in tasks:
            self.tasks[task.dataset]["progress"] = round(done / max(total, 1), 4)
        await self._save()

    async def _analyse(
        self, request: dict[str, Any], tasks: list[_Task]
    ) -> dict[str, Any]:
        analysis = request["analysis"]
        if analysis == "summary":
            return await self._summary(request, tasks)
        if analysis == "pca":
            return await self._pca(request, tasks)
        windows = self._windows(request, tasks)
        rows: list[dict[str, Any]] = []
        withheld = 0
        null_beta = None
        if analysis == "gwas" and request["model"] == "logistic":
            null_beta = await self._null_model(request, tasks)
        extra: dict[str, Any] = {}
        found: list[tuple[list[dict[str, Any]], int] | None] = [None] * len(windows)
        gate = asyncio.Semaphore(WINDOWS_IN_FLIGHT)

        async def one(number: int, window: dict[str, Any]) -> None:
            nonlocal extra
            async with gate:
                if analysis == "gwas":
                    found[number] = await self._gwas_window(
                        request, tasks, window, null_beta
                    )
                elif analysis == "table":
                    found[number] = await self._table_window(request, tasks, window)
                else:
                    rows_, hidden_, extra = await self._frequency_window(
                        request, tasks, window
                    )
                    found[number] = (rows_, hidden_)
                done = sum(item is not None for item in found)
                await self._progress(tasks, done, len(windows))

        try:
            async with asyncio.TaskGroup() as group:
                for number, window in enumerate(windows):
                    group.create_task(one(number, window))
        except ExceptionGroup as failed:
            # The first node failure (or the cancel) is the job's outcome.
            for error in failed.exceptions:
                if isinstance(error, (NodeFailure, _Canceled)):
                    raise error from None
            raise failed.exceptions[0] from None
        for item in found:
            assert item is not None
            rows.extend(item[0])
            withheld += item[1]
        return {"analysis": analysis, "rows": rows, "num_withheld": withheld, **extra}

    # -- regressions ----------------------------------------------------------------

    def _model_body(self, request: dict[str, Any]) -> dict[str, Any]:
        return {
            "model": request["model"],
            "outcome": request["phenotype"],
            "covariates": request["covariates"],
        }

    async def _null_model(
        self, request: dict[str, Any], tasks: list[_Task]
    ) -> np.ndarray:
        """The covariates-only logistic model (the start of every variant's IRLS)."""
        beta = np.zeros(len(request["covariates"]) + 1)
        for _ in range(federated.MAX_ITERATIONS):
            answers = await self._round(
                tasks, "glm", {**self._model_body(request), "start": beta}
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

    @staticmethod
    def _common(answers: Mapping[str, dict[str, Any]]) -> tuple[list[str], int]:
        """Variants every node released, in position order; how many others."""
        released = [set(a["variants"]) for a in answers.values()]
        every = set().union(*released, *(set(a["withheld"]) for a in answers.values()))
        common = set.intersection(*released) if released else set()
        ordered = sorted(common, key=lambda key: (int(key.split(":")[0]), key))
        return ordered, len(every) - len(common)

    @staticmethod
    def _gather(
        answers: Mapping[str, dict[str, Any]], keys: list[str], name: str
    ) -> np.ndarray:
        total = None
        for answer in answers.values():
            index = {key: row for row, key in enumerate(answer["variants"])}
            values = decode(answer[name], field=name)[[index[key] for key in keys]]
            total = values if total is None else total + values
        assert total is not None
        return total

    def _result_rows(
        self,
        window: dict[str, Any],
        keys: list[str],
        num: np.ndarray,
        beta: np.ndarray,
        se: np.ndarray,
        p: np.ndarray,
        flags: Sequence[str],
    ) -> list[dict[str, Any]]:
        rows = []
        for j, key in enumerate(keys):
            rows.append(
                {
                    **_site(window, key),
                    "num_observations": int(num[j]),
                    "beta": _number(beta[j]),
                    "se": _number(se[j]),
                    "p": _number(p[j]),
                    "status": flags[j],
                }
            )
        return rows

    async def _gwas_window(
        self,
        request: dict[str, Any],
        tasks: list[_Task],
        window: dict[str, Any],
        null_beta: np.ndarray | None,
    ) -> tuple[list[dict[str, Any]], int]:
        body: dict[str, Any] = {**self._model_body(request), "window": window}
        if null_beta is not None:
            body["start"] = null_beta
            # The Newton steps need the information and score only.
            body["log_likelihood"] = False
        answers = await self._round(tasks, "glm", body)
        keys, hidden = self._common(answers)
        if not keys:
            return [], hidden
        num = self._gather(answers, keys, "num_observations")
        if request["model"] == "linear":
            beta, se, p = federated.linear_estimates(
                self._gather(answers, keys, "xtx"),
                self._gather(answers, keys, "xty"),
                self._gather(answers, keys, "yty"),
                num,
            )
            return self._result_rows(
                window, keys, num, beta, se, p, ["ok"] * len(keys)
            ), hidden
        assert null_beta is not None  # a logistic model starts from the null model
        beta_all = np.tile(np.append(null_beta, 0.0), (len(keys), 1))
        information_all = np.zeros((len(keys), beta_all.shape[1], beta_all.shape[1]))
        status = np.array(["not converged"] * len(keys), dtype=object)
        active = np.arange(len(keys))
        information = self._gather(answers, keys, "information")
        score = self._gather(answers, keys, "score")
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
            answers = await self._round(
                tasks,
                "glm",
                {**body, "variants": active_keys, "beta": beta_all[active]},
            )
            information = self._gather(answers, active_keys, "information")
            score = self._gather(answers, active_keys, "score")
        b, se, p = federated.logistic_wald(beta_all, information_all)
        # Separation (the documented fallback): a model that does not converge, or
        # whose estimate runs off to the boundary, is reported without numbers.
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
                found = await self._firth(
                    tasks, body, [keys[j] for j in chosen], null_beta
                )
                b[chosen], se[chosen], p[chosen], status[chosen] = found
        return self._result_rows(window, keys, num, b, se, p, list(status)), hidden

    async def _firth(
        self,
        tasks: list[_Task],
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
            answers = await self._round(tasks, "glm", here)
            information = self._gather(answers, named, "information")
            score = self._gather(answers, named, "score")
            inverse = federated.inverses(information)
            singular = np.isnan(inverse).any(axis=(1, 2))
            inverse[singular] = 0.0
            answers = await self._round(tasks, "glm", {**here, "inverse": inverse})
            penalised = score + self._gather(answers, named, "firth_score")
            step = np.einsum("vij,vj->vi", inverse, penalised)
            largest = np.max(np.abs(step), axis=1, keepdims=True)
            step *= np.minimum(
                1.0, federated.FIRTH_MAX_STEP / np.maximum(largest, 1e-300)
            )
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

    # -- tables and frequencies ----------------------------------------------------

    async def _table_window(
        self, request: dict[str, Any], tasks: list[_Task], window: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], int]:
        answers = await self._round(
            tasks, "tables", {"outcome": request["phenotype"], "window": window}
        )
        keys, hidden = self._common(answers)
        if not keys:
            return [], hidden
        counts = self._gather(answers, keys, "counts").astype(np.int64)
        tests = federated.table_tests(counts)
        rows = []
        for j, key in enumerate(keys):
            rows.append(
                {
                    **_site(window, key),
                    "cases": counts[j, 0].tolist(),
                    "controls": counts[j, 1].tolist(),
                    **{name: _number(values[j]) for name, values in tests.items()},
                }
            )
        return rows, hidden

    async def _frequency_window(
        self, request: dict[str, Any], tasks: list[_Task], window: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], int, dict[str, Any]]:
        answers = await self._round(
            tasks, "frequencies", {"strata": request["strata"], "window": window}
        )
        keys, hidden = self._common(answers)
        strata = sorted({s for a in answers.values() for s in a["strata"]})
        counts = np.zeros((len(keys), len(strata)))
        numbers = np.zeros((len(keys), len(strata)))
        people = dict.fromkeys(strata, 0)
        for answer in answers.values():
            index = {key: row for row, key in enumerate(answer["variants"])}
            rows = [index[key] for key in keys]
            columns = [strata.index(s) for s in answer["strata"]]
            ac = np.asarray(answer["allele_count"], dtype=float).reshape(
                -1, len(columns)
            )
            an = np.asarray(answer["allele_number"], dtype=float).reshape(
                -1, len(columns)
            )
            counts[:, columns] += ac[rows]
            numbers[:, columns] += an[rows]
            for name, size in zip(
                answer["strata"], answer["num_individuals"], strict=True
            ):
                people[name] += size
        out = []
        for j, key in enumerate(keys):
            out.append(
                {
                    **_site(window, key),
                    "allele_count": counts[j].astype(int).tolist(),
                    "allele_number": numbers[j].astype(int).tolist(),
                    "frequency": [
                        _number(c / n) if n else None
                        for c, n in zip(counts[j], numbers[j], strict=True)
                    ],
                }
            )
        return out, hidden, {"strata": strata, "num_individuals": people}

    # -- summaries and PCA ------------------------------------------------------------

    async def _summary(
        self, request: dict[str, Any], tasks: list[_Task]
    ) -> dict[str, Any]:
        answers = await self._round(
            tasks,
            "summary",
            {
                "variables": request["variables"],
                "quantiles": request.get("quantiles", False),
            },
        )
        out: dict[str, Any] = {}
        for name in request["variables"]:
            parts = [a[name] for a in answers.values()]
            if all(part["kind"] == "binary" for part in parts):
                cells = np.sum([part["counts"] for part in parts], axis=0)
                out[name] = {"kind": "binary", "counts": cells.tolist()}
                continue
            num = sum(part.get("num", sum(part.get("counts", []))) for part in parts)
            total = sum(
                part.get("sum", part.get("counts", [0, 0])[-1]) for part in parts
            )
            squares = sum(
                part.get("sum_of_squares", part.get("counts", [0, 0])[-1])
                for part in parts
            )
            mean = total / num if num else None
            variance = (
                (squares - num * total / num * total / num) / (num - 1)
                if num > 1
                else None
            )
            out[name] = {
                "kind": "numeric",
                "num": num,
                "mean": mean,
                "variance": variance,
            }
            found = {
                dataset: answer[name]["quantiles"]
                for dataset, answer in answers.items()
                if "quantiles" in answer[name]
            }
            if found:
                # Each node's coarsened quantiles, and their mean weighted by
                # each node's number of values (DataSHIELD's ``combine``: an
                # estimate of the pooled quantiles, not the exact ones).
                weights = {d: answers[d][name]["num"] for d in found}
                values = np.array([found[d]["values"] for d in found], float)
                combined = np.average(values, axis=0, weights=list(weights.values()))
                out[name]["quantiles"] = {
                    "probabilities": next(iter(found.values()))["probabilities"],
                    "combined": combined.tolist(),
                    "per_dataset": {d: q["values"] for d, q in found.items()},
                }
        await self._progress(tasks, 1, 1)
        return {"analysis": "summary", "variables": out}

    async def _pruned(
        self,
        request: dict[str, Any],
        tasks: list[_Task],
        window: dict[str, Any],
        keys: list[str],
        frequency: np.ndarray,
    ) -> np.ndarray:
        """Which of a window's common ``keys`` LD pruning keeps (indices)."""
        band = min(request["ld_window"], len(keys) - 1)
        body = {
            "window": window,
            "variants": keys,
            "frequencies": frequency,
            "band": band,
        }
        answers = await self._round(tasks, "pca/linkage", body)
        products = sum(
            decode(a["products"], field="products") for a in answers.values()
        )
        return federated.prune_linkage(np.asarray(products), request["ld_r2"])

    async def _pca(self, request: dict[str, Any], tasks: list[_Task]) -> dict[str, Any]:
        region = request["region"]
        window = {
            "contig": region["contig"],
            "start": region["start"],
            "end": region["end"],
        }
        keys: list[str] = []
        frequencies: list[float] = []
        # Pooled frequencies window by window (each node reads one at a time),
        # then the window's common variants pruned for LD (pooled r²).
        for piece in self._windows(request, tasks):
            answers = await self._round(
                tasks, "frequencies", {"strata": [], "window": piece}
            )
            found, _ = self._common(answers)
            count, number = np.zeros(len(found)), np.zeros(len(found))
            for answer in answers.values():
                index = {key: row for row, key in enumerate(answer["variants"])}
                rows = [index[key] for key in found]
                count += np.asarray(answer["allele_count"], float).reshape(-1)[rows]
                number += np.asarray(answer["allele_number"], float).reshape(-1)[rows]
            frequency = count / np.maximum(number, 1)
            minor = np.minimum(frequency, 1 - frequency)
            picked = np.flatnonzero(minor >= request["min_frequency"])
            if request.get("ld_r2") is not None and len(picked) > 1:
                candidates = [found[j] for j in picked]
                kept = await self._pruned(
                    request, tasks, piece, candidates, frequency[picked]
                )
                picked = picked[kept]
            keys += [found[j] for j in picked]
            frequencies += frequency[picked].tolist()
        frequency = np.asarray(frequencies)
        common = list(range(len(keys)))
        # Then thinned to evenly spaced ones, keeping the Gram matrix small.
        if len(common) > request["max_variants"]:
            picks = np.linspace(0, len(common) - 1, request["max_variants"]).round()
            common = [common[int(i)] for i in picks]
        chosen = [keys[j] for j in common]
        if len(chosen) < request["components"]:
            raise NodeFailure(
                request["datasets"][0], "EXECUTOR_ERROR", "too few common variants"
            )
        base = {
            "window": window,
            "variants": chosen,
            "frequencies": encode(frequency[common]),
        }
        answers = await self._round(tasks, "pca/gram", base)
        gram = np.sum(
            [decode(a["gram"], field="gram") for a in answers.values()], axis=0
        )
        values, loadings = federated.pca_from_gram(gram, request["components"])
        await self._round(tasks, "pca/scores", {**base, "loadings": encode(loadings)})
        await self._progress(tasks, 1, 1)
        total = sum(a["num_individuals"] for a in answers.values())
        return {
            "analysis": "pca",
            "variants": chosen,
            "frequencies": frequency[common].tolist(),
            "eigenvalues": values.tolist(),
            "variance_explained": (values / np.trace(gram)).tolist(),
            "ld_r2": request.get("ld_r2"),
            "ld_window": request.get("ld_window"),
            "loadings": loadings.tolist(),
            "num_individuals": total,
        }


def _number(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _site(window: dict[str, Any], key: str) -> dict[str, Any]:
    """A result row's variant: the window's contig and the key's ``POS:REF:ALT``."""
    position, reference, alternate = key.split(":", 2)
    return {
        "contig": window["contig"],
        "position": int(position),
        "reference": reference,
        "alternate": alternate,
    }
