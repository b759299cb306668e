"""The node's analysis routes (mount with ``prefix="/analysis"``): the whitelist.

Every call is decided by :func:`genomenode.access.decision.authorize` with the
action ``analyse`` on the dataset and audited (one entry per call: who, which
analysis, the job and round it belongs to, allowed / denied / refused by
disclosure control, why). The body is read on the event loop; authorisation,
the database and the genotypes are read in the thread pool. Arrays travel as
exact float64 (:mod:`.codec`). Handlers carry no docstrings, which FastAPI
would publish in the OpenAPI.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from ..access.audit import append
from ..access.callers import caller_of, network_of, prepared, required_access_service
from ..access.decision import authorize, dataset_access
from ..access.duo import purpose_from_json, purpose_to_json
from ..config import SETTINGS
from ..disclosure.settings import DisclosureSettings
from ..errors import GenomenodeError, InputError, NotFoundError, PermissionDenied
from ..store.published import PublishedDataset
from ..web.blocking import run_blocking
from ..web.body import limits_of, parse_json, read_body, read_json_object
from . import service
from .blas import one_thread
from .codec import MEDIA_TYPE, decode, encode_all, pack, unpack

__all__ = ["AnalysisSettings", "router"]

router = APIRouter(dependencies=[Depends(prepared)], tags=["analysis"])

_DEFAULTS = {setting.name: setting.default for setting in SETTINGS}
_MODELS = ("logistic", "linear")


@dataclasses.dataclass(frozen=True)
class AnalysisSettings:
    """What the routes apply (``app.state.analysis``)."""

    disclosure: DisclosureSettings
    min_minor_allele_count: int = _DEFAULTS["disclosure_min_minor_allele_count"]
    max_window_variants: int = _DEFAULTS["analysis_max_window_variants"]
    dask_scheduler: str | None = None

    @classmethod
    def from_values(cls, values: Any) -> AnalysisSettings:
        return cls(
            disclosure=DisclosureSettings.from_values(values),
            min_minor_allele_count=values.get(
                "disclosure_min_minor_allele_count", cls.min_minor_allele_count
            ),
            max_window_variants=values.get(
                "analysis_max_window_variants", cls.max_window_variants
            ),
            dask_scheduler=values.get("dask_scheduler"),
        )


def _settings(request: Request) -> AnalysisSettings:
    found: AnalysisSettings | None = getattr(request.app.state, "analysis", None)
    if found is None:
        found = AnalysisSettings.from_values(request.app.state.node.config.values)
    return found


def _text(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= 128:
        raise InputError("a string of 1 to 128 characters", field=name)
    return value


def _names(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(
        isinstance(item, str) and 0 < len(item) <= 64 for item in value
    ):
        raise InputError("a list of names", field=name)
    return value


def _window(body: dict[str, Any], settings: AnalysisSettings, *, required=True):
    value = body.get("window")
    if value is None and not required:
        return None
    if not isinstance(value, dict):
        raise InputError("{contig, start, end}", field="window")
    contig, start, end = value.get("contig"), value.get("start"), value.get("end")
    if not isinstance(contig, str) or not isinstance(start, int):
        raise InputError("contig (string) and start (integer)", field="window")
    if not isinstance(end, int) or not 0 <= start < end:
        raise InputError("end (integer) after start", field="window")
    return service.Window(contig, start, end)


def _keys(body: dict[str, Any], settings: AnalysisSettings) -> list[str] | None:
    value = body.get("variants")
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(item, str) and len(item) <= 512 for item in value
    ):
        raise InputError("a list of POS:REF:ALT", field="variants")
    if len(value) > settings.max_window_variants:
        raise InputError(
            f"at most {settings.max_window_variants} variants (setting "
            "analysis_max_window_variants)",
            field="variants",
        )
    return value


def _decide(
    request: Request, dataset_id: str, analysis: str, body: dict[str, Any]
) -> tuple[PublishedDataset, Callable[[str, str], None]]:
    """The dataset if the caller may analyse it; the audit writer of the call."""
    access = required_access_service(request)
    caller = caller_of(request)
    declared = body.get("purpose")
    if declared is not None:
        # Weighed only where the dataset permits analyses without a grant.
        caller = dataclasses.replace(caller, purpose=purpose_from_json(declared))
    published = request.app.state.published
    handle: PublishedDataset | None = published.get(dataset_id)
    job = body.get("job")
    details: dict[str, Any] = {
        "analysis": analysis,
        "job": str(job)[:64] if job is not None else None,
        "round": body.get("round") if isinstance(body.get("round"), int) else None,
    }
    if caller.purpose is not None:
        details["purpose"] = purpose_to_json(caller.purpose)
    network = getattr(request.state, "network", None)
    if network is not None:
        details["network"] = getattr(network, "issuer", None)

    def audit(outcome: str, reason: str) -> None:
        entry: dict[str, Any] = {
            "actor": caller.subject or "anonymous",
            "action": f"analyse {analysis}",
            "outcome": outcome,
            "reason": reason[:500],
            "dataset_id": dataset_id,
            "details": details,
        }
        if outcome == "allow":
            # Allowed rounds (dozens per job and node) go through the batched
            # writer, as Beacon decisions do: written within 50 ms, and a log
            # that cannot take them fails the request (fail closed). Denials,
            # refusals and errors are committed before the answer leaves.
            access.audit.record(**entry)
        else:
            append(access.authoriser.engine, **entry)

    if handle is None:
        audit("deny", "no such published dataset")
        raise NotFoundError(f"no published dataset {dataset_id!r}")
    decision = authorize(caller, "analyse", dataset_access(handle))
    if not decision.allowed:
        audit("deny", decision.reason)
        if caller.purpose is not None and handle is not None:
            raise PermissionDenied(decision.reason)
        raise PermissionDenied(
            f"no grant to analyse dataset {dataset_id!r}: apply to its data access "
            "committee (/access/catalogue)"
        )
    return handle, audit


def _answer(
    request: Request,
    dataset_id: str,
    analysis: str,
    body: dict[str, Any],
    compute: Callable[[PublishedDataset, AnalysisSettings], dict[str, Any]],
) -> dict[str, Any]:
    settings = _settings(request)
    handle, audit = _decide(request, dataset_id, analysis, body)
    try:
        with one_thread():
            result = compute(handle, settings)
    except service.AggregateRefused as refused:
        audit("deny", str(refused))
        raise
    except GenomenodeError as error:
        audit("error", str(error))
        raise
    withheld = result.get("withheld", [])
    if withheld and isinstance(withheld[0], list):  # a round of several windows
        withheld = [key for part in withheld for key in part]
    audit("allow", f"{len(withheld)} variant(s) withheld")
    return result


async def _run(
    request: Request,
    dataset_id: str,
    analysis: str,
    compute: Callable[[PublishedDataset, AnalysisSettings, dict[str, Any]], Any],
) -> Response:
    await network_of(request)
    body = await _body(request)
    result = await run_blocking(
        request,
        _answer,
        request,
        dataset_id,
        analysis,
        body,
        lambda handle, settings: compute(handle, settings, body),
    )
    if MEDIA_TYPE in request.headers.get("accept", ""):
        return Response(pack(result), media_type=MEDIA_TYPE)
    return JSONResponse(encode_all(result))


async def _body(request: Request) -> dict[str, Any]:
    """The request's JSON object, or its :func:`~.codec.pack` message (the
    header parsed within the same JSON limits)."""
    if request.headers.get("content-type", "").startswith(MEDIA_TYPE):
        raw = await read_body(request)
        if not raw:
            return {}
        limits = limits_of(request)
        return unpack(raw, parse_header=lambda text: parse_json(text, limits))
    return await read_json_object(request)


@router.get("/datasets/{dataset_id}/layout")
async def layout(request: Request, dataset_id: str) -> Response:
    return await _run(
        request, dataset_id, "layout", lambda handle, _s, _b: service.layout(handle)
    )


def _parts(body: dict[str, Any], settings: AnalysisSettings):
    """A round of several windows: each part's window and variants (or None)."""
    value = body.get("parts")
    if not isinstance(value, list) or not 1 <= len(value) <= service.MAX_PARTS:
        raise InputError(f"a list of 1 to {service.MAX_PARTS} parts", field="parts")
    if "window" in body or "variants" in body or "inverse" in body:
        raise InputError("parts, or one window (not both)", field="parts")
    parts = []
    for part in value:
        if not isinstance(part, dict):
            raise InputError("each part is {window, variants}", field="parts")
        parts.append((_window(part, settings), _keys(part, settings)))
    return parts


def _glm(handle, settings: AnalysisSettings, body) -> dict[str, Any]:
    model = body.get("model")
    if model not in _MODELS:
        raise InputError(f"one of {', '.join(_MODELS)}", field="model")
    beta = body.get("beta")
    start = body.get("start")
    inverse = body.get("inverse")
    log_likelihood = body.get("log_likelihood", True)
    if not isinstance(log_likelihood, bool):
        raise InputError("true or false", field="log_likelihood")
    common: dict[str, Any] = {
        "min_minor_allele_count": settings.min_minor_allele_count,
        "model": model,
        "outcome": _text(body, "outcome") or "",
        "covariates": _names(body, "covariates"),
        "beta": None if beta is None else decode(beta, field="beta"),
        "start": None if start is None else decode(start, field="start"),
        "scheduler": settings.dask_scheduler,
        "max_window_variants": settings.max_window_variants,
        "log_likelihood": log_likelihood,
    }
    if "parts" in body:
        return service.glm_parts(
            handle, settings.disclosure, parts=_parts(body, settings), **common
        )
    return service.glm(
        handle,
        settings.disclosure,
        window=_window(body, settings, required=False),
        variants=_keys(body, settings),
        inverse=None if inverse is None else decode(inverse, field="inverse"),
        **common,
    )


@router.post("/datasets/{dataset_id}/glm")
async def glm(request: Request, dataset_id: str) -> Response:
    return await _run(request, dataset_id, "glm", _glm)


def _frequencies(handle, settings: AnalysisSettings, body) -> dict[str, Any]:
    return service.frequencies(
        handle,
        settings.disclosure,
        min_minor_allele_count=settings.min_minor_allele_count,
        window=_window(body, settings),
        strata=_names(body, "strata"),
        scheduler=settings.dask_scheduler,
        max_window_variants=settings.max_window_variants,
    )


@router.post("/datasets/{dataset_id}/frequencies")
async def frequencies(request: Request, dataset_id: str) -> Response:
    return await _run(request, dataset_id, "frequencies", _frequencies)


def _tables(handle, settings: AnalysisSettings, body) -> dict[str, Any]:
    return service.tables(
        handle,
        settings.disclosure,
        min_minor_allele_count=settings.min_minor_allele_count,
        window=_window(body, settings),
        outcome=_text(body, "outcome") or "",
        scheduler=settings.dask_scheduler,
        max_window_variants=settings.max_window_variants,
    )


@router.post("/datasets/{dataset_id}/tables")
async def tables(request: Request, dataset_id: str) -> Response:
    return await _run(request, dataset_id, "tables", _tables)


def _summary(handle, settings: AnalysisSettings, body) -> dict[str, Any]:
    quantiles = body.get("quantiles", False)
    if not isinstance(quantiles, bool):
        raise InputError("true or false", field="quantiles")
    return service.summary(
        handle,
        settings.disclosure,
        names=_names(body, "variables"),
        quantiles=quantiles,
    )


@router.post("/datasets/{dataset_id}/summary")
async def summary(request: Request, dataset_id: str) -> Response:
    return await _run(request, dataset_id, "summary", _summary)


def _pca_input(body, settings: AnalysisSettings):
    keys = _keys(body, settings)
    if not keys:
        raise InputError("the variants of the PCA", field="variants")
    return keys, decode(body.get("frequencies"), field="frequencies")


def _pca_gram(handle, settings: AnalysisSettings, body) -> dict[str, Any]:
    keys, frequencies_ = _pca_input(body, settings)
    return service.pca_gram(
        handle,
        settings.disclosure,
        window=_window(body, settings),
        variants=keys,
        frequencies_=frequencies_,
        scheduler=settings.dask_scheduler,
    )


@router.post("/datasets/{dataset_id}/pca/gram")
async def pca_gram(request: Request, dataset_id: str) -> Response:
    return await _run(request, dataset_id, "pca-gram", _pca_gram)


def _pca_scores(handle, settings: AnalysisSettings, body) -> dict[str, Any]:
    keys, frequencies_ = _pca_input(body, settings)
    return service.pca_scores(
        handle,
        window=_window(body, settings),
        variants=keys,
        frequencies_=frequencies_,
        loadings=decode(body.get("loadings"), field="loadings"),
        scheduler=settings.dask_scheduler,
    )


@router.post("/datasets/{dataset_id}/pca/scores")
async def pca_scores(request: Request, dataset_id: str) -> Response:
    return await _run(request, dataset_id, "pca-scores", _pca_scores)


def _pca_linkage(handle, settings: AnalysisSettings, body) -> dict[str, Any]:
    keys, frequencies_ = _pca_input(body, settings)
    band = body.get("band")
    if not isinstance(band, int) or isinstance(band, bool):
        raise InputError("an integer from 1 to 200", field="band")
    return service.pca_linkage(
        handle,
        settings.disclosure,
        window=_window(body, settings),
        variants=keys,
        frequencies_=frequencies_,
        band=band,
        scheduler=settings.dask_scheduler,
        max_window_variants=settings.max_window_variants,
    )


@router.post("/datasets/{dataset_id}/pca/linkage")
async def pca_linkage(request: Request, dataset_id: str) -> Response:
    return await _run(request, dataset_id, "pca-linkage", _pca_linkage)
