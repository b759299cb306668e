"""``GET /qc/{dataset_id}``: a dataset's QC report, read-only.

The one access decision (:func:`genomenode.access.decision.authorize`), audited:
the report is a fact about the dataset's people, so it needs count granularity
(``discover`` at ``count``). A caller who may see records gets the whole report
(per-sample plots and the failing samples); any other allowed caller the
summary and declaration only, its counts of people through the disclosure
layer's floor (:meth:`~genomenode.disclosure.control.DisclosureControl.release_total`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from ..access.callers import access_service, caller_of, prepared
from ..access.decision import authorize, dataset_access
from ..disclosure.control import DisclosureControl
from ..errors import InputError, NotFoundError, PermissionDenied
from ..web.blocking import run_blocking
from ..web.responses import json_response
from .flags import load_report, load_summary, load_variant_arrays
from .report import render_html

__all__ = ["router"]

router = APIRouter()


def _released(summary: dict[str, Any], disclosure: DisclosureControl) -> dict[str, Any]:
    """The summary with its counts of people floored (a reason one person
    failed for is shown as "at most the floor")."""
    released = dict(summary)

    def total(count: int) -> Any:
        return disclosure.release_total(int(count)).value

    released["num_samples"] = total(summary["num_samples"])
    released["num_samples_passed"] = total(summary["num_samples_passed"])
    released["sample_reasons"] = {
        reason: total(count) for reason, count in summary["sample_reasons"].items()
    }
    released["num_related_pairs"] = total(summary["num_related_pairs"])
    return released


def _answer(request: Request, dataset_id: str, output: str) -> Response:
    if output not in ("html", "json"):
        raise InputError(f"format {output!r}: use html or json")
    state = request.app.state
    handle = state.published.get(dataset_id)
    if handle is None:
        raise NotFoundError(f"no published dataset {dataset_id!r}")
    caller = caller_of(request)
    decision = authorize(caller, "discover", dataset_access(handle), "count")
    service = access_service(request)
    if service is not None:
        service.audit.record(
            actor=caller.subject or "anonymous",
            action="qc.report",
            outcome="allow" if decision.allowed else "deny",
            reason=decision.reason,
            dataset_id=dataset_id,
        )
    if not decision.allowed:
        raise PermissionDenied(f"the QC report of {dataset_id!r}: {decision.reason}")
    node = state.node
    whole = decision.granularity == "record"
    report = (load_report if whole else load_summary)(node, dataset_id)
    if report is None:
        raise NotFoundError(f"no QC results for dataset {dataset_id!r}")
    if not whole:
        disclosure = DisclosureControl.for_node(
            node.config.values, node.engine, node.config.node_dir / "keys"
        )
        report = {**report, "summary": _released(report["summary"], disclosure)}
        report.pop("fingerprint", None)
    if output == "json":
        return json_response(report)
    variants = load_variant_arrays(node, dataset_id) if whole else None
    return HTMLResponse(render_html(report, variants, include_samples=whole))


@router.get(
    "/{dataset_id}",
    summary="A dataset's QC report (HTML, or JSON with ?format=json)",
    response_class=HTMLResponse,
)
async def qc_report(
    request: Request, dataset_id: str, format: str = "html"
) -> Response:
    await prepared(request)
    response: Response = await run_blocking(
        request, _answer, request, dataset_id, format
    )
    return response
