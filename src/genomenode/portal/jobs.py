"""The network portal's analysis pages, over the network's ``/analysis/jobs`` API.

=========================================  ======================================
``GET  /jobs``                             submit a GWAS, a contingency table or
                                           allele frequencies; follow a job by id
``POST /jobs``                             the submission (CSRF-checked), then a
                                           303 to the job's page
``GET  /jobs/{job_id}``                    the job: each dataset's task (TES
                                           states), then its result, plots and
                                           downloads
``GET  /jobs/{job_id}/plots/{plot_file}``  a GWAS plot (``manhattan.png``,
                                           ``qq.svg``...), through the portal
``GET  /jobs/{job_id}/results.tsv``        the result's rows as TSV
``GET  /jobs/{job_id}/results.json``       the whole result
=========================================  ======================================

A job belongs to whoever submitted it: every page here is for a signed-in
visitor (others are sent to sign in) and asks the API with the visitor's
passport, so the network answers only their own jobs (404 for anyone else's).
The plots and downloads go through the portal because a browser's ``<img>``
or link carries the session cookie, never the passport the API needs. The
forms work without JavaScript; a running job's page is reloaded by hand.
"""

from __future__ import annotations

import io
import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ..analysis.client import tsv_rows
from ..web.blocking import run_blocking
from . import backend
from .pages import (
    error_page,
    form_or_refusal,
    portal_of,
    redirect,
    render,
    session_of,
    sign_in_redirect,
)
from .search import mapping
from .site import set_visitor

__all__ = ["ANALYSES", "MAX_RESULT_ROWS", "job_request", "router"]

router = APIRouter(include_in_schema=False, dependencies=[Depends(set_visitor)])

_JOB = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_PLOT = re.compile(r"^(manhattan|qq)\.(png|svg)$")
_REGION = re.compile(r"^([A-Za-z0-9._]{1,40})(?::([0-9,]{1,15})-([0-9,]{1,15}))?$")
#: Result rows shown on the page (the download carries them all).
MAX_RESULT_ROWS = 500
#: What the page submits: (value, label, help).
ANALYSES = (
    (
        "gwas",
        "Genome-wide association (GWAS)",
        "A regression of the phenotype on each variant and the covariates; "
        "exact as if the data were pooled. Manhattan and QQ plots.",
    ),
    (
        "table",
        "Contingency tables",
        "Cases and controls of the phenotype by genotype at each variant, with "
        "allelic and genotypic chi-square and Fisher exact tests.",
    ),
    (
        "frequencies",
        "Allele frequencies",
        "Allele counts and frequencies at each variant, per stratum (for "
        "example sex) if you name any.",
    ),
)


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def job_request(form: dict[str, str]) -> dict[str, Any]:
    """The ``POST /analysis/jobs`` body of the submit form's fields (the API
    checks it; this only arranges it).

    Raises
    ------
    ValueError
        A field the form itself can tell is wrong (no dataset, a region that
        is not ``CONTIG`` or ``CONTIG:START-END``).
    """
    analysis = form.get("analysis", "gwas")
    datasets = [
        name.partition(":")[2]
        for name, value in form.items()
        if name.startswith("dataset:") and value == "on"
    ]
    if not datasets:
        raise ValueError("Choose at least one dataset.")
    body: dict[str, Any] = {
        "analysis": analysis,
        "datasets": datasets,
        "on_node_failure": form.get("on_node_failure", "fail"),
    }
    region = form.get("region", "").strip()
    if region:
        found = _REGION.match(region)
        if found is None:
            raise ValueError(
                "A region is a chromosome, or CHROMOSOME:START-END (1:1000000-2000000)."
            )
        contig, start, end = found.groups()
        body["region"] = {"contig": contig}
        if start is not None:
            body["region"] |= {
                "start": int(start.replace(",", "")),
                "end": int(end.replace(",", "")) + 1,
            }
    if analysis in ("gwas", "table"):
        body["phenotype"] = form.get("phenotype", "").strip()
    if analysis == "gwas":
        body["model"] = form.get("model", "logistic")
        body["covariates"] = _names(form.get("covariates", ""))
    if analysis == "frequencies":
        body["strata"] = _names(form.get("strata", ""))
    return body


async def _not_here(request: Request) -> Response | None:
    """The page for a visitor who cannot have it: the node's portal (jobs are
    the network's), or anyone not signed in (sent to sign in)."""
    if portal_of(request).kind != "network":
        return await error_page(
            request, 404, "Analyses are run from the network's portal."
        )
    if session_of(request).subject is None:
        return sign_in_redirect(request)
    return None


async def _datasets(request: Request) -> tuple[list[dict[str, Any]], dict[str, str]]:
    harvester = getattr(request.app.state, "harvester", None)
    items, failed = await backend.catalogue_items(portal_of(request), harvester)
    return sorted(items, key=lambda item: str(item.get("id"))), failed


async def _form(
    request: Request,
    *,
    values: dict[str, str],
    error: str | None,
    status: int = 200,
    job_id: str = "",
) -> Response:
    datasets, failed = await _datasets(request)
    return await render(
        request,
        "jobs.html",
        status=status,
        analyses=ANALYSES,
        datasets=datasets,
        failed=failed,
        values=values,
        error=error,
        job_id=job_id,
    )


@router.get("/jobs", summary="Analyses")
async def jobs_page(request: Request, id: str = "") -> Response:
    """The submit form, and a job id asked for in the follow form."""
    refused = await _not_here(request)
    if refused is not None:
        return refused
    job_id = id.strip()
    if job_id:
        if not _JOB.match(job_id):
            return await _form(
                request, values={}, error="Not a job id.", status=400, job_id=""
            )
        return redirect(request, f"/jobs/{job_id}")
    return await _form(request, values={}, error=None)


@router.post("/jobs", summary="Submit an analysis")
async def submit(request: Request) -> Response:
    form = await form_or_refusal(request, signed_in=False)
    if isinstance(form, Response):
        return form
    refused = await _not_here(request)
    if refused is not None:
        return refused
    try:
        body = job_request(form)
    except ValueError as error:
        return await _form(request, values=form, error=str(error), status=400)
    answer = await backend.ask_own_api(
        portal_of(request),
        "/analysis/jobs",
        token=session_of(request).access_token,
        method="POST",
        json=body,
    )
    if not answer.ok or not isinstance(answer.document, dict):
        status = answer.status if answer.status in (400, 401, 403, 413) else 502
        return await _form(
            request,
            values=form,
            error=f"The network refused the job: {answer.message or 'no answer'}",
            status=status,
        )
    return redirect(request, f"/jobs/{answer.document['id']}")


def _result_parts(result: Any) -> dict[str, Any]:
    """The result's scalars, its tables (lists of rows, the first
    :data:`MAX_RESULT_ROWS`, with the columns of their rows) and its lists."""
    scalars: list[tuple[str, Any]] = []
    tables: list[tuple[str, list[str], list[dict[str, Any]], int]] = []
    lists: list[tuple[str, list[Any]]] = []
    for key, value in mapping(result).items():
        name = str(key)[:100]
        if (
            isinstance(value, list)
            and value
            and all(isinstance(item, dict) for item in value)
        ):
            rows = value[:MAX_RESULT_ROWS]
            columns: list[str] = []
            for row in rows:
                columns += [str(c) for c in row if str(c) not in columns]
            tables.append((name, columns[:30], rows, len(value)))
        elif isinstance(value, list):
            lists.append((name, value[:MAX_RESULT_ROWS]))
        elif isinstance(value, dict):
            scalars += [(f"{name}.{k}", v) for k, v in list(value.items())[:50]]
        else:
            scalars.append((name, value))
    return {"scalars": scalars, "tables": tables, "lists": lists}


async def _job_answer(
    request: Request, job_id: str, part: str = ""
) -> tuple[dict[str, Any] | None, Response | None]:
    """The API's ``/analysis/jobs/{job_id}{part}`` as the visitor, or the page
    saying why not."""
    if not _JOB.match(job_id):
        return None, await error_page(request, 404, "Not a job id.")
    asked = await backend.ask_own_api(
        portal_of(request),
        f"/analysis/jobs/{job_id}{part}",
        token=session_of(request).access_token,
    )
    if asked.ok and isinstance(asked.document, dict):
        return asked.document, None
    if asked.status == 401:
        return None, await error_page(
            request, 401, "Your sign-in is no longer accepted; sign out and in again."
        )
    status = asked.status if asked.status in (400, 404, 409) else 502
    return None, await error_page(
        request, status, asked.message or "The network did not answer."
    )


@router.get("/jobs/{job_id}", summary="An analysis job")
async def job_page(request: Request, job_id: str) -> Response:
    """The network's ``GET /analysis/jobs/{id}``: the job's state and each
    dataset's task (TES states); once COMPLETE, ``/results`` as well."""
    refused = await _not_here(request)
    if refused is not None:
        return refused
    job, failed = await _job_answer(request, job_id)
    if job is None:
        assert failed is not None
        return failed
    result = None
    if job.get("state") == "COMPLETE":
        results = await backend.ask_own_api(
            portal_of(request),
            f"/analysis/jobs/{job_id}/results",
            token=session_of(request).access_token,
        )
        if results.ok and isinstance(results.document, dict):
            result = await run_blocking(
                request, _result_parts, results.document.get("result")
            )
    tasks = [
        {
            "dataset": str(dataset)[:200],
            "node": task.get("node"),
            "state": task.get("state"),
            "progress": task.get("progress")
            if isinstance(task.get("progress"), (int, float))
            else None,
            "reason": task.get("reason"),
        }
        for dataset, task in mapping(job.get("tasks")).items()
        if isinstance(task, dict)
    ]
    return await render(
        request,
        "job.html",
        job={
            key: job.get(key)
            for key in ("id", "analysis", "state", "reason", "created", "updated")
        },
        request_fields=[
            (key, value)
            for key, value in mapping(job.get("request")).items()
            if key not in ("analysis", "chunk_variants")
        ],
        tasks=tasks,
        result=result,
        plots=result is not None and job.get("analysis") == "gwas",
        max_rows=MAX_RESULT_ROWS,
    )


@router.get("/jobs/{job_id}/plots/{plot_file}", summary="A GWAS plot")
async def plot(request: Request, job_id: str, plot_file: str) -> Response:
    """The network's ``/analysis/jobs/{id}/plots/{plot_file}``, as the visitor."""
    refused = await _not_here(request)
    if refused is not None:
        return refused
    if not _JOB.match(job_id) or not _PLOT.match(plot_file):
        return await error_page(request, 404, "No such plot.")
    status, content, media_type = await backend.fetch_own_file(
        portal_of(request),
        f"/analysis/jobs/{job_id}/plots/{plot_file}",
        token=session_of(request).access_token,
    )
    if status != 200 or not media_type.startswith("image/"):
        return await error_page(
            request, status if status in (401, 404, 409) else 502, "No such plot."
        )
    return Response(
        content,
        media_type=media_type,
        headers={
            "Cache-Control": "private, max-age=3600",
            "X-Content-Type-Options": "nosniff",
        },
    )


def _tsv(result: Any) -> bytes:
    out = io.StringIO(newline="")
    tsv_rows(mapping(result), out)
    return out.getvalue().encode()


@router.get("/jobs/{job_id}/results.{suffix}", summary="A job's result")
async def result_file(request: Request, job_id: str, suffix: str) -> Response:
    """The result as TSV (its rows) or JSON (all of it), as a download."""
    refused = await _not_here(request)
    if refused is not None:
        return refused
    if suffix not in ("tsv", "json"):
        return await error_page(request, 404, "Results are .tsv or .json.")
    document, failed = await _job_answer(request, job_id, "/results")
    if document is None:
        assert failed is not None
        return failed
    result = document.get("result")
    if suffix == "json":
        import json

        content = json.dumps(result, indent=1).encode()
        media_type = "application/json"
    else:
        try:
            content = await run_blocking(request, _tsv, result)
        except (KeyError, TypeError, ValueError):
            return await error_page(request, 409, "This result has no rows.")
        media_type = "text/tab-separated-values; charset=utf-8"
    return Response(
        content,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{job_id}.{suffix}"',
            "Cache-Control": "no-store",
        },
    )
