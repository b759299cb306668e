"""The network's side of a federated analysis: round trips to the nodes, sums of
their sufficient statistics, the estimates (:mod:`genomenode.analysis.federated`).
What each analysis asks in its rounds is in :mod:`.analysis_rounds` and
:mod:`.regression_rounds`; the request is checked by :mod:`.analysis_request`.

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
import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlsplit

import httpx2

from ..access.network_trust import ASSERTION_HEADER, NetworkSigner
from ..analysis.codec import MEDIA_TYPE, pack, unpack
from ..config import Secret
from ..errors import InputError
from . import analysis_rounds, regression_rounds
from .analysis_rounds import NodeFailure, Task
from .jobs import FINAL_STATES, JobStore
from .registry import RegisteredNode, Registry

__all__ = ["Coordinator"]

#: Windows whose rounds are in flight at once (a node answers them from its
#: thread pool; the network's waiting overlaps); in a logistic GWAS, the
#: windows one round serves (each request to a node carries their parts).
WINDOWS_IN_FLIGHT = 3


class _Canceled(Exception):
    pass


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

    async def round_trip(
        self, tasks: Sequence[Task], action: str, body: dict[str, Any]
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

    async def _locate(self, request: dict[str, Any], excluded: set[str]) -> list[Task]:
        """Which node holds each dataset (the one whose layout call succeeds)."""
        found: list[Task] = []
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
                found.append(Task(dataset, node, layout))
                break
            else:
                raise refused or NodeFailure(
                    dataset, "EXECUTOR_ERROR", f"no node of the network holds {dataset}"
                )
        self.round_trips += 1
        for task in found:
            self.tasks[task.dataset]["state"] = "RUNNING"
        return found

    async def progress(self, tasks: Sequence[Task], done: int, total: int) -> None:
        for task in tasks:
            self.tasks[task.dataset]["progress"] = round(done / max(total, 1), 4)
        await self._save()

    async def _analyse(
        self, request: dict[str, Any], tasks: list[Task]
    ) -> dict[str, Any]:
        analysis = request["analysis"]
        if analysis == "summary":
            return await analysis_rounds.summary(self, request, tasks)
        if analysis == "pca":
            return await analysis_rounds.pca(self, request, tasks)
        windows = analysis_rounds.windows(request, tasks)
        rows: list[dict[str, Any]] = []
        withheld = 0
        extra: dict[str, Any] = {}
        found: list[tuple[list[dict[str, Any]], int] | None] = [None] * len(windows)
        if analysis == "gwas" and request["model"] == "logistic":
            null_beta = await regression_rounds.null_model(self, request, tasks)
            # Not a task per window: each round serves several windows at once.
            found[:] = await regression_rounds.logistic_windows(
                self, request, tasks, windows, null_beta, parts=WINDOWS_IN_FLIGHT
            )
            windows = []
        gate = asyncio.Semaphore(WINDOWS_IN_FLIGHT)

        async def one(number: int, window: dict[str, Any]) -> None:
            nonlocal extra
            async with gate:
                if analysis == "gwas":
                    found[number] = await regression_rounds.linear_window(
                        self, request, tasks, window
                    )
                elif analysis == "table":
                    found[number] = await analysis_rounds.table_window(
                        self, request, tasks, window
                    )
                else:
                    rows_, hidden_, extra = await analysis_rounds.frequency_window(
                        self, request, tasks, window
                    )
                    found[number] = (rows_, hidden_)
                done = sum(item is not None for item in found)
                await self.progress(tasks, done, len(windows))

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
