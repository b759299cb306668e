"""The network's analysis routes (mount with ``prefix="/analysis"``).

``POST /analysis/jobs`` accepts a job (201, its id and state) and starts it in
this process (:class:`~genomenode.network.coordinator.Coordinator`); ``GET
/analysis/jobs/{id}`` is its TES-style status with every dataset's task;
``GET /analysis/jobs/{id}/results`` its result once COMPLETE (409 before);
``POST /analysis/jobs/{id}/cancel`` cancels it. A job id is a 128-bit random
capability: whoever holds it may follow the job (its result is aggregates that
every node's disclosure control released; each node audits who ran it). Every
submission and cancel is also in the network's audit log. Handlers carry no
docstrings, which FastAPI would publish in the OpenAPI.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..config import Secret
from ..errors import ConfigError, ConflictError
from ..web.body import read_json_object
from .coordinator import Coordinator, validate_request
from .http import _actor, audit_of, registry_of, signer_of
from .jobs import JobStore

__all__ = ["router", "start_job"]

router = APIRouter(tags=["analysis"])


def _store(request: Request) -> JobStore:
    store: JobStore | None = getattr(request.app.state, "jobs", None)
    if store is None:
        raise ConfigError("this network keeps no analysis jobs")
    return store


def _record(request: Request, action: str, job_id: str, reason: str) -> None:
    audit = audit_of(request)
    if audit is not None:
        audit.record(
            actor=_actor(request),
            action=action,
            outcome="allow",
            reason=reason,
            details={"job": job_id, "actor_verified": False},
        )


def start_job(app: Any, job_id: str, authorization: Secret | None) -> asyncio.Task:
    """Run ``job_id`` in this process (its task kept in ``app.state.analysis_runs``)."""
    coordinator = Coordinator(
        app.state.jobs,
        app.state.registry,
        app.state.client,
        app.state.signer,
        authorization,
        timeout_seconds=max(app.state.registry.timeout_seconds, 600.0),
    )
    runs: dict[str, asyncio.Task] = app.state.analysis_runs
    task = asyncio.create_task(coordinator.run(job_id))
    runs[job_id] = task
    task.add_done_callback(lambda _done: runs.pop(job_id, None))
    return task


@router.post("/jobs", status_code=201)
async def submit(request: Request) -> JSONResponse:
    store = _store(request)
    registry_of(request)
    body = await read_json_object(request)
    job_request = validate_request(body)
    header = request.headers.get("authorization")
    tasks = {
        dataset: {"state": "QUEUED", "node": None, "progress": 0.0, "reason": None}
        for dataset in job_request["datasets"]
    }
    job = await asyncio.to_thread(
        store.create,
        job_request["analysis"],
        job_request,
        tasks,
        submitter=_actor(request),
    )
    _record(request, "analysis submit", job.id, job_request["analysis"])
    signer_of(request)  # the runner signs with the app's signer
    start_job(request.app, job.id, Secret(header) if header else None)
    return JSONResponse(job.status(), status_code=201)


@router.get("/jobs/{job_id}")
async def status(request: Request, job_id: str) -> JSONResponse:
    job = await asyncio.to_thread(_store(request).get, job_id)
    return JSONResponse(job.status())


@router.get("/jobs/{job_id}/results")
async def results(request: Request, job_id: str) -> JSONResponse:
    job = await asyncio.to_thread(_store(request).get, job_id)
    if job.state != "COMPLETE" or job.result is None:
        raise ConflictError(f"job {job_id} is {job.state}: no results")
    return JSONResponse({**job.status(), "result": job.result})


@router.post("/jobs/{job_id}/cancel")
async def cancel(request: Request, job_id: str) -> JSONResponse:
    job = await asyncio.to_thread(_store(request).cancel, job_id)
    running = request.app.state.analysis_runs.get(job_id)
    if running is not None:
        # The round in flight is abandoned: its requests to the nodes close.
        running.cancel()
    _record(request, "analysis cancel", job_id, "canceled by the user")
    return JSONResponse(job.status())
