"""The network's analysis routes (mount with ``prefix="/analysis"``).

``POST /analysis/jobs`` accepts a job (201, its id and state) and starts it in
this process (:class:`~genomenode.network.coordinator.Coordinator`); ``GET
/analysis/jobs/{id}`` is its TES-style status with every dataset's task;
``GET /analysis/jobs/{id}/results`` its result once COMPLETE (409 before);
``GET /analysis/jobs/{id}/plots/{manhattan|qq}.{png|svg}`` a GWAS result's
plots (:mod:`genomenode.analysis.plots`); ``POST /analysis/jobs/{id}/cancel``
cancels it.

A job belongs to whoever submitted it. Every route verifies the caller's
passport itself, with the project's one verifier
(:class:`~genomenode.access.tokens.TokenVerifier`), against the brokers
NETWORK.yaml trusts (``trusted_brokers``): no passport is 401, a passport the
network cannot verify 401, and another caller's job 404, exactly as an unknown
id, so a job id reveals nothing to anyone but its owner. The nodes verify the
same passport again and decide what it may analyse; each audits who ran what.
Every submission and cancel is also in the network's audit log.

The passport lives only in the memory of the task running the job. A job whose
runner stopped (a network restart) waits for its owner
(:meth:`~genomenode.network.jobs.JobStore.recover`): the owner's next request
here, with a fresh passport, runs it again. Handlers carry no docstrings, which
FastAPI would publish in the OpenAPI.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ..access.authorize import JsonFetcher, bearer_token
from ..access.tokens import JwksCache, TokenVerifier
from ..analysis.plots import FORMATS, PLOTS, render_plot
from ..config import Secret
from ..errors import (
    AuthenticationRequired,
    ConfigError,
    ConflictError,
    NotFoundError,
    TokenError,
)
from ..web.body import read_json_object
from .analysis_request import validate_request
from .coordinator import Coordinator
from .http import MAX_AUTHORIZATION_BYTES, audit_of, registry_of, signer_of
from .jobs import FINAL_STATES, Job, JobStore, Owner

__all__ = ["job_verifier", "router", "start_job"]

router = APIRouter(tags=["analysis"])

#: Rendered plots kept in memory (a GWAS of 80,000 variants takes a second).
MAX_CACHED_PLOTS = 32
_plots: collections.OrderedDict[tuple[str, str, str, str], bytes] = (
    collections.OrderedDict()
)
_plots_lock = threading.Lock()


def _store(request: Request) -> JobStore:
    store: JobStore | None = getattr(request.app.state, "jobs", None)
    if store is None:
        raise ConfigError("this network keeps no analysis jobs")
    return store


def job_verifier(app: Any) -> TokenVerifier | None:
    """The verifier of job owners' passports (``app.state.job_verifier``, made
    on first use from NETWORK.yaml's ``trusted_brokers``; None: none trusted).

    Only the passport itself is verified (who the caller is); its visas are the
    nodes' to judge, so none is trusted here.
    """
    verifier: TokenVerifier | None = getattr(app.state, "job_verifier", None)
    if verifier is None and app.state.registry.trusted_brokers:
        verifier = TokenVerifier(
            app.state.registry.trusted_brokers,
            (),
            JwksCache(remote=JsonFetcher()),
            refuse_development=app.state.registry.environment == "prod",
        )
        app.state.job_verifier = verifier
    return verifier


async def _owner(request: Request) -> Owner:
    """The verified caller (401 without a passport, or with one the network
    cannot verify)."""
    header = request.headers.get("authorization")
    if header is not None and len(header) > MAX_AUTHORIZATION_BYTES:
        raise TokenError("the Authorization header is too long")
    token = bearer_token(header)
    if token is None:
        raise AuthenticationRequired(
            "an analysis job belongs to who submits it: send your passport "
            "(Authorization: Bearer)"
        )
    verifier = job_verifier(request.app)
    if verifier is None:
        raise AuthenticationRequired(
            "this network trusts no passport broker (trusted_brokers in "
            "NETWORK.yaml), so it cannot tell whose a job is"
        )
    await verifier.prepare(token)
    identity = await asyncio.to_thread(verifier.verify, token)
    if identity is None:
        raise TokenError("the passport is not from a broker this network trusts")
    return Owner(identity.subject, identity.issuer)


def _record(
    request: Request, action: str, job_id: str, owner: Owner, reason: str
) -> None:
    audit = audit_of(request)
    if audit is not None:
        audit.record(
            actor=owner.subject,
            action=action,
            outcome="allow",
            reason=reason,
            details={"job": job_id, "issuer": owner.issuer, "actor_verified": True},
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


def _runs(request: Request) -> dict[str, asyncio.Task]:
    runs: dict[str, asyncio.Task] = request.app.state.analysis_runs
    return runs


async def _owned(request: Request, job_id: str) -> Job:
    """The caller's job (404 for anyone else's); a job waiting for its owner
    since a restart starts again here, with the passport of this request."""
    owner = await _owner(request)
    store = _store(request)
    job = await asyncio.to_thread(store.get, job_id, owner)
    waiting = job.state not in FINAL_STATES and job_id not in _runs(request)
    if waiting and await asyncio.to_thread(store.claim, job):
        header = request.headers.get("authorization")
        start_job(request.app, job_id, Secret(header) if header else None)
        _record(request, "analysis resume", job_id, owner, "the owner came back")
        job = await asyncio.to_thread(store.get, job_id, owner)
    return job


@router.post("/jobs", status_code=201)
async def submit(request: Request) -> JSONResponse:
    store = _store(request)
    registry_of(request)
    owner = await _owner(request)
    body = await read_json_object(request)
    job_request = validate_request(body)
    header = request.headers.get("authorization")
    tasks = {
        dataset: {"state": "QUEUED", "node": None, "progress": 0.0, "reason": None}
        for dataset in job_request["datasets"]
    }
    job = await asyncio.to_thread(
        store.create, job_request["analysis"], job_request, tasks, owner=owner
    )
    _record(request, "analysis submit", job.id, owner, job_request["analysis"])
    signer_of(request)  # the runner signs with the app's signer
    start_job(request.app, job.id, Secret(header) if header else None)
    return JSONResponse(job.status(), status_code=201)


@router.get("/jobs/{job_id}")
async def status(request: Request, job_id: str) -> JSONResponse:
    job = await _owned(request, job_id)
    return JSONResponse(job.status())


@router.get("/jobs/{job_id}/results")
async def results(request: Request, job_id: str) -> JSONResponse:
    job = await _owned(request, job_id)
    if job.state != "COMPLETE" or job.result is None:
        raise ConflictError(f"job {job_id} is {job.state}: no results")
    return JSONResponse({**job.status(), "result": job.result})


def _plot(job: Job, plot: str, fmt: str) -> bytes:
    """The plot's bytes, rendered once per job (blocking: off the loop)."""
    key = (job.id, job.updated, plot, fmt)
    with _plots_lock:
        found = _plots.get(key)
    if found is not None:
        return found
    assert job.result is not None
    made = render_plot(job.result.get("rows") or [], plot, fmt)
    with _plots_lock:
        _plots[key] = made
        while len(_plots) > MAX_CACHED_PLOTS:
            _plots.popitem(last=False)
    return made


@router.get(
    "/jobs/{job_id}/plots/{plot_file}",
    response_class=Response,
    summary="A GWAS job's Manhattan or QQ plot",
    description=(
        "plot_file is manhattan.png, manhattan.svg, qq.png or qq.svg. 404 for "
        "an unknown job, another caller's, or a job that is not a GWAS; 409 "
        "before the job is COMPLETE."
    ),
    responses={
        200: {
            "description": "The plot",
            "content": {
                media_type: {"schema": {"type": "string", "format": "binary"}}
                for media_type in FORMATS.values()
            },
        }
    },
)
async def plot(request: Request, job_id: str, plot_file: str) -> Response:
    name, _, fmt = plot_file.partition(".")
    if name not in PLOTS or fmt not in FORMATS:
        raise NotFoundError(
            f"no plot {plot_file[:40]!r}: manhattan or qq, .png or .svg"
        )
    job = await _owned(request, job_id)
    if job.analysis != "gwas":
        raise NotFoundError(f"job {job_id} is a {job.analysis} job: it has no plots")
    if job.state != "COMPLETE" or job.result is None:
        raise ConflictError(f"job {job_id} is {job.state}: no plots yet")
    content = await asyncio.to_thread(_plot, job, name, fmt)
    return Response(
        content,
        media_type=FORMATS[fmt],
        headers={"Cache-Control": "private, max-age=3600"},
    )


@router.post("/jobs/{job_id}/cancel")
async def cancel(request: Request, job_id: str) -> JSONResponse:
    owner = await _owner(request)
    job = await asyncio.to_thread(_store(request).cancel, job_id, owner)
    running = request.app.state.analysis_runs.get(job_id)
    if running is not None:
        # The round in flight is abandoned: its requests to the nodes close.
        running.cancel()
    _record(request, "analysis cancel", job_id, owner, "canceled by the user")
    return JSONResponse(job.status())
