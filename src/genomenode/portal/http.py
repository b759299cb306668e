"""The portal's pages: module-level handlers on :data:`router`.

======================================  =========================================
``GET  /``                              search form (JSON index for API clients)
``GET  /search?q=``                     the answer: per node, dataset, country
``GET  /status``                        every node (the network) or the node
``GET  /datasets``                      the catalogue, with facets
``GET  /datasets/{node}/{dataset}``     one dataset: DUO in words, how to access
                                        (its QC page and a variant's reference
                                        page: :mod:`.results`)
``GET  /sign-in``, ``/sign-in/callback``  OIDC authorization code + PKCE
``POST /sign-out``                      forget the session
``GET|POST /apply/{node}/{dataset}``    apply for access
``GET  /applications``                  my applications
``GET  /applications/{node}/{id}``      one, its history; the DAC's actions
``POST /applications/{node}/{id}/act``  submit, approve, reject, return, revoke
``GET  /dac``                           applications my committees review
``GET  /my-access``                     my grants, downloads, command lines
``POST /my-access/download``            an htsget slice, Crypt4GH-encrypted
======================================  =========================================

Every POST checks the form's CSRF token first (403 without it), then sends
an anonymous visitor to sign in where it must: one helper,
:func:`.pages.form_or_refusal`. Every call to a node goes through its API with
the visitor's passport (:mod:`.backend`), so the node decides, audits and
refuses exactly as for any client; the DAC steps
are the access API's, which runs the one workflow (:mod:`genomenode.access.workflow`).
"""

from __future__ import annotations

import datetime as dt
import pathlib
import re
import shutil
import tempfile
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.background import BackgroundTask

from ..errors import GenomenodeError, InputError
from ..network.fanout import probe_nodes
from ..transfer.client import fetch as fetch_slice
from ..transfer.client import parse_region
from ..transfer.crypt4gh import public_key_from_text
from ..version import __version__
from ..web.blocking import run_blocking
from . import backend, oidc
from .charts import frequency_chart
from .duo_help import explain, modifier_choices, purpose_choices
from .pages import (
    error_page,
    form_or_refusal,
    portal_of,
    redirect,
    render,
    session_of,
    sign_in_redirect,
    wants_html,
)
from .search import parse_query
from .site import set_visitor

__all__ = ["router"]

router = APIRouter(include_in_schema=False, dependencies=[Depends(set_visitor)])

_NAME = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")
_ACTIONS = ("submit", "approve", "reject", "return", "revoke")
_SIZES = (
    ("under-100", "fewer than 100 people", 0, 99),
    ("100-1000", "100 to 1,000 people", 100, 1000),
    ("over-1000", "more than 1,000 people", 1001, None),
)
_ACCESS_WORDS = {
    "PUBLIC": "Public: anyone may search it",
    "RESTRICTED": "Registered: signed-in researchers see counts",
    "NON_PUBLIC": "Controlled: apply to its data access committee",
}


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise InputError("not a valid identifier", field="path")
    return value


async def _node_error(request: Request, answer: backend.NodeAnswer) -> Response:
    """A node's refusal as a page: its status when it is the visitor's to fix,
    502/504 when the node failed."""
    node = answer.node.node_id
    if answer.status == 401:
        return await error_page(
            request, 401, "Your sign-in is no longer accepted; sign out and in again."
        )
    if answer.status in (400, 403, 404, 409, 422):
        return await error_page(request, answer.status, f"{node}: {answer.message}")
    status = 504 if answer.message == "timed out" else 502
    return await error_page(request, status, f"{node}: {answer.message or 'no answer'}")


@router.get("/", summary="The portal's home page")
async def home(request: Request) -> Response:
    if not wants_html(request):
        index = getattr(request.app.state, "node_index", None)
        if index is not None:
            return JSONResponse(index)
        portal = portal_of(request)
        return JSONResponse(
            {
                "id": portal.name,
                "software": "genomenode",
                "version": __version__,
                "endpoints": {
                    "beacon": f"{portal.public_url}/api",
                    "catalogue": f"{portal.public_url}/catalogue/datasets",
                    "status": f"{portal.public_url}/network/status",
                    "portal": f"{portal.public_url}/",
                },
            }
        )
    return await render(request, "home.html", query="", error=None)


@router.get("/search", summary="Search variants")
async def search_page(request: Request, q: str = "") -> Response:
    portal = portal_of(request)
    session = session_of(request)
    try:
        kind, parameters = parse_query(q)
    except InputError as error:
        return await render(
            request, "home.html", status=400, query=q[:200], error=error
        )
    answer = await backend.search(portal, parameters, token=session.access_token)
    charts = [
        (
            variant,
            frequency_chart(
                variant.variant_id, variant.countries, chart_id=f"chart-{index}"
            ),
        )
        for index, variant in enumerate(answer.variants)
    ]
    # A variant's page in every population (the reference API): the variant
    # asked for, even when its datasets only answered "yes or no".
    reference_link = (
        "/variants/{}-{}-{}-{}".format(
            parameters["referenceName"],
            parameters["start"][0] + 1,
            parameters["referenceBases"],
            parameters["alternateBases"],
        )
        if kind == "variant"
        else None
    )
    return await render(
        request,
        "search.html",
        query=q,
        kind=kind,
        answer=answer,
        charts=charts,
        reference_link=reference_link,
    )


@router.get("/status", summary="Status")
async def status_page(request: Request) -> Response:
    portal = portal_of(request)
    if portal.kind == "network":
        registry = request.app.state.registry
        rows = await probe_nodes(
            registry.nodes,
            timeout_seconds=portal.timeout_seconds,
            client=request.app.state.client,
        )
        last_seen = request.app.state.last_seen
        breakers = request.app.state.breakers
        for row in rows:
            row["lastSeen"] = last_seen.get(row["id"])
            row["circuit"] = breakers.state(row["id"])
        return await render(request, "status.html", rows=rows, node=None)
    service = await portal.api.get("/api/service-info")
    info = await portal.api.get("/api/info")
    node = portal.nodes[0]
    response = info.json().get("response", {}) if info.is_success else {}
    return await render(
        request,
        "status.html",
        rows=None,
        node={
            "id": node.node_id,
            "country": node.country,
            "url": portal.public_url,
            "status": "ok" if service.is_success and info.is_success else "error",
            "version": service.json().get("version") if service.is_success else None,
            "environment": (
                service.json().get("environment") if service.is_success else None
            ),
            "datasets": [
                item for item in response.get("datasets", []) if isinstance(item, dict)
            ],
        },
    )


def _duo_name(term: str) -> str:
    explained = explain(term)
    return f"{explained['label']} ({explained['shorthand']})"


def _size_bucket(size: Any) -> str | None:
    if not isinstance(size, int):
        return None
    for key, _label, low, high in _SIZES:
        if size >= low and (high is None or size <= high):
            return key
    return None


@router.get("/datasets", summary="Datasets")
async def datasets_page(request: Request) -> Response:
    portal = portal_of(request)
    harvester = getattr(request.app.state, "harvester", None)
    items, failed = await backend.catalogue_items(portal, harvester)
    chosen = {
        name: request.query_params.get(name, "")[:100]
        for name in ("q", "country", "duo", "disease", "access", "size")
    }
    words = chosen["q"].lower().split()

    def keep(item: dict[str, Any], skip: str | None = None) -> bool:
        text = " ".join(str(item.get(k) or "") for k in ("id", "title", "description"))
        checks = {
            "country": lambda v: item.get("country") == v,
            "duo": lambda v: v in item.get("duo", []),
            "disease": lambda v: any(v.lower() in d.lower() for d in item["diseases"]),
            "access": lambda v: item.get("access_rights") == v,
            "size": lambda v: _size_bucket(item.get("num_individuals")) == v,
        }
        if not all(word in text.lower() for word in words):
            return False
        return all(
            check(chosen[name])
            for name, check in checks.items()
            if chosen[name] and name != skip
        )

    shown = [item for item in items if keep(item)]

    def facet(name: str, values_of: Any) -> list[tuple[str, int]]:
        counts: dict[str, int] = {}
        for item in items:
            if keep(item, skip=name):
                for value in values_of(item):
                    counts[value] = counts.get(value, 0) + 1
        return sorted(counts.items())

    facets = {
        "country": facet("country", lambda i: [i["country"]] if i["country"] else []),
        "duo": facet("duo", lambda i: i.get("duo", [])),
        "disease": facet("disease", lambda i: i.get("diseases", [])),
        "access": facet("access", lambda i: [i["access_rights"]]),
        "size": facet(
            "size",
            lambda i: [b] if (b := _size_bucket(i.get("num_individuals"))) else [],
        ),
    }
    return await render(
        request,
        "datasets.html",
        items=shown,
        facets=facets,
        chosen=chosen,
        failed=failed,
        sizes={key: label for key, label, _low, _high in _SIZES},
        access_words=_ACCESS_WORDS,
        duo_words={term: _duo_name(term) for term, _count in facets["duo"]},
    )


@router.get("/datasets/{node_id}/{dataset_id}", summary="One dataset")
async def dataset_page(request: Request, node_id: str, dataset_id: str) -> Response:
    portal = portal_of(request)
    harvester = getattr(request.app.state, "harvester", None)
    items, _failed = await backend.catalogue_items(portal, harvester)
    item = next(
        (i for i in items if i["node"] == node_id and i["id"] == dataset_id), None
    )
    if item is None:
        return await error_page(
            request, 404, f"No dataset {dataset_id[:100]} on this network."
        )
    conditions: list[dict[str, Any]] = []
    answer = await backend.ask_node(
        portal, node_id, "GET", "/access/catalogue", token=None
    )
    if answer.ok and isinstance(answer.document, dict):
        for entry in answer.document.get("items", []):
            if isinstance(entry, dict) and entry.get("dataset_id") == dataset_id:
                conditions = [
                    c for c in entry.get("conditions", []) if isinstance(c, dict)
                ]
    terms = [explain(term) for term in item.get("duo", [])]
    controlled = item.get("access_rights") == "NON_PUBLIC"
    return await render(
        request,
        "dataset.html",
        item=item,
        terms=terms,
        conditions=conditions,
        controlled=controlled,
        size_words=dict((k, label) for k, label, _l, _h in _SIZES).get(
            _size_bucket(item.get("num_individuals")) or "", "not published"
        ),
        access_words=_ACCESS_WORDS,
    )


@router.get("/sign-in", summary="Sign in")
async def sign_in(request: Request, next: str = "/") -> Response:
    portal = portal_of(request)
    if portal.broker is None:
        return await error_page(
            request, 404, "Sign-in is not configured here (no identity broker)."
        )
    try:
        discovery = await oidc.discover(portal.remote, portal.broker)
    except oidc.SignInError as error:
        return await error_page(request, error.status, error.message)
    pending = oidc.start_sign_in(next)
    session_of(request).set("pending", pending.to_json())
    location = oidc.authorization_url(discovery, pending, _callback_url(request))
    return redirect(request, location)


def _callback_url(request: Request) -> str:
    return f"{portal_of(request).public_url}/sign-in/callback"


@router.get("/sign-in/callback", summary="Sign-in callback")
async def sign_in_callback(
    request: Request, code: str = "", state: str = "", error: str = ""
) -> Response:
    portal = portal_of(request)
    session = session_of(request)
    pending = oidc.PendingSignIn.from_json(session.pop("pending"))
    if error:
        return await error_page(
            request, 400, f"The sign-in was not completed ({error[:100]})."
        )
    if pending is None or not state or state != pending.state or not code:
        return await error_page(
            request,
            400,
            "This sign-in does not match one started in this browser; sign in again.",
        )
    if portal.broker is None:
        return await error_page(request, 404, "Sign-in is not configured here.")
    try:
        discovery = await oidc.discover(portal.remote, portal.broker)
        subject, token, expires_in = await oidc.redeem(
            portal.remote,
            discovery,
            pending,
            code=code[:2000],
            redirect_uri=_callback_url(request),
        )
    except oidc.SignInError as failure:
        return await error_page(request, failure.status, failure.message)
    session.sign_in(subject, token, expires_in)
    try:
        portal.sealer.seal(session)
    except ValueError as too_large:
        session.sign_out()
        return await error_page(request, 502, f"Cannot keep this sign-in: {too_large}.")
    return redirect(request, pending.next_path)


@router.post("/sign-out", summary="Sign out")
async def sign_out(request: Request) -> Response:
    form = await form_or_refusal(request, signed_in=False)
    if isinstance(form, Response):
        return form
    session_of(request).sign_out()
    return redirect(request, "/")


@router.get("/apply/{node_id}/{dataset_id}", summary="Apply for access")
async def apply_page(request: Request, node_id: str, dataset_id: str) -> Response:
    if session_of(request).subject is None:
        return sign_in_redirect(request)
    return await _apply_form(request, node_id, dataset_id, values={}, error=None)


async def _apply_form(
    request: Request,
    node_id: str,
    dataset_id: str,
    *,
    values: dict[str, str],
    error: str | None,
    status: int = 200,
) -> Response:
    portal = portal_of(request)
    answer = await backend.ask_node(
        portal, node_id, "GET", "/access/catalogue", token=None
    )
    entry = None
    if answer.ok and isinstance(answer.document, dict):
        entry = next(
            (
                i
                for i in answer.document.get("items", [])
                if isinstance(i, dict) and i.get("dataset_id") == dataset_id
            ),
            None,
        )
    if entry is None:
        message = answer.message or f"{dataset_id[:100]} takes no applications here"
        return await error_page(request, 404, f"Cannot apply: {message}.")
    return await render(
        request,
        "apply.html",
        status=status,
        node_id=node_id,
        entry=entry,
        conditions=[
            explain(str(c.get("term"))) | {"disease": c.get("disease")}
            for c in entry.get("conditions", [])
            if isinstance(c, dict)
        ],
        purposes=purpose_choices(),
        modifiers=modifier_choices(),
        values=values,
        error=error,
    )


@router.post("/apply/{node_id}/{dataset_id}", summary="Apply for access")
async def apply(request: Request, node_id: str, dataset_id: str) -> Response:
    form = await form_or_refusal(request)
    if isinstance(form, Response):
        return form
    session = session_of(request)
    purpose: dict[str, Any] = {"term": form.get("purpose", "")}
    if form.get("disease", "").strip():
        purpose["disease"] = form["disease"].strip()
    accepted = [value for name, value in request_multi(form, "accepted")]
    if accepted:
        purpose["accepted"] = accepted
    for flag in ("commercial", "for_profit", "methods_development", "clinical_care"):
        if form.get(flag) == "yes":
            purpose[flag] = True
    body = {
        "dataset": dataset_id,
        "project_title": form.get("project_title", "").strip(),
        "purpose_text": form.get("purpose_text", "").strip(),
        "purpose": purpose,
        "submit": True,
    }
    if not body["project_title"]:
        return await _apply_form(
            request,
            node_id,
            dataset_id,
            values=form,
            error="Give your project a title.",
            status=400,
        )
    answer = await backend.ask_node(
        portal_of(request),
        node_id,
        "POST",
        "/access/applications",
        token=session.access_token,
        json=body,
    )
    if not answer.ok or not isinstance(answer.document, dict):
        return await _apply_form(
            request,
            node_id,
            dataset_id,
            values=form,
            error=answer.message or "the node refused",
            status=400,
        )
    return redirect(request, f"/applications/{node_id}/{answer.document['id']}")


def request_multi(form: dict[str, str], prefix: str) -> list[tuple[str, str]]:
    """Checkbox groups post ``prefix:VALUE=on`` (one field per box)."""
    return [
        (name, name.partition(":")[2])
        for name, value in form.items()
        if name.startswith(f"{prefix}:") and value == "on"
    ]


async def _applications(request: Request) -> tuple[list[dict[str, Any]], list[Any]]:
    portal = portal_of(request)
    answers = await backend.ask_each_node(
        portal, "/access/applications", token=session_of(request).access_token
    )
    found = []
    for answer in answers:
        if answer.ok and isinstance(answer.document, dict):
            for item in answer.document.get("applications", []):
                if isinstance(item, dict):
                    found.append(item | {"node_id": answer.node.node_id})
    found.sort(
        key=lambda item: str(item.get("updated_at") or item.get("id")), reverse=True
    )
    return found, backend.nodes_failed(answers)


@router.get("/applications", summary="My applications")
async def applications_page(request: Request) -> Response:
    subject = session_of(request).subject
    if subject is None:
        return sign_in_redirect(request)
    found, failed = await _applications(request)
    mine = [item for item in found if item.get("applicant") == subject]
    return await render(request, "applications.html", applications=mine, failed=failed)


@router.get("/dac", summary="DAC inbox")
async def dac_page(request: Request) -> Response:
    subject = session_of(request).subject
    if subject is None:
        return sign_in_redirect(request)
    found, failed = await _applications(request)
    others = [item for item in found if item.get("applicant") != subject]
    waiting = [item for item in others if item.get("state") == "submitted"]
    decided = [item for item in others if item.get("state") != "submitted"]
    return await render(
        request, "dac.html", waiting=waiting, decided=decided, failed=failed
    )


@router.get("/applications/{node_id}/{application_id}", summary="One application")
async def application_page(
    request: Request, node_id: str, application_id: int
) -> Response:
    session = session_of(request)
    if session.subject is None:
        return sign_in_redirect(request)
    answer = await backend.ask_node(
        portal_of(request),
        node_id,
        "GET",
        f"/access/applications/{application_id}",
        token=session.access_token,
    )
    if not answer.ok or not isinstance(answer.document, dict):
        return await error_page(
            request,
            answer.status if answer.status in (403, 404) else 502,
            answer.message or "the node did not answer",
        )
    application = answer.document
    reviewer = application.get("applicant") != session.subject
    default_end = (dt.date.today() + dt.timedelta(days=365)).isoformat()
    return await render(
        request,
        "application.html",
        node_id=node_id,
        application=application,
        reviewer=reviewer,
        default_end=default_end,
        done=request.query_params.get("done", "")[:20],
        purpose=explain(str((application.get("purpose") or {}).get("term", ""))),
    )


@router.post("/applications/{node_id}/{application_id}/act", summary="DAC step")
async def application_act(
    request: Request, node_id: str, application_id: int
) -> Response:
    form = await form_or_refusal(request)
    if isinstance(form, Response):
        return form
    session = session_of(request)
    action = form.get("action", "")
    if action not in _ACTIONS:
        return await error_page(request, 400, f"Unknown action {action[:40]!r}.")
    body: dict[str, Any] = {}
    if form.get("comment", "").strip():
        body["comment"] = form["comment"].strip()
    if action == "approve":
        body["ends_at"] = form.get("ends_at", "")
        if form.get("override_reason", "").strip():
            body["override_reason"] = form["override_reason"].strip()
    answer = await backend.ask_node(
        portal_of(request),
        node_id,
        "POST",
        f"/access/applications/{application_id}/{action}",
        token=session.access_token,
        json=body,
    )
    if not answer.ok:
        return await error_page(
            request,
            answer.status if answer.status in (400, 403, 404, 409) else 502,
            answer.message or "the node did not answer",
        )
    return redirect(request, f"/applications/{node_id}/{application_id}?done={action}")


@router.get("/my-access", summary="My access")
async def my_access_page(request: Request) -> Response:
    session = session_of(request)
    if session.subject is None:
        return sign_in_redirect(request)
    portal = portal_of(request)
    answers = await backend.ask_each_node(
        portal, "/access/grants", token=session.access_token
    )
    grants = []
    for answer in answers:
        if answer.ok and isinstance(answer.document, dict):
            for grant in answer.document.get("grants", []):
                if isinstance(grant, dict):
                    target = portal.client_for(answer.node.node_id)
                    server = target[1] if target else answer.node.url
                    grants.append(
                        grant | {"node_id": answer.node.node_id, "server": server}
                    )
    return await render(
        request, "my_access.html", grants=grants, failed=backend.nodes_failed(answers)
    )


@router.post("/my-access/download", summary="Download a slice")
async def download(request: Request) -> Response:
    form = await form_or_refusal(request)
    if isinstance(form, Response):
        return form
    token = session_of(request).access_token
    if token is None:
        return sign_in_redirect(request)
    portal = portal_of(request)
    target = portal.client_for(form.get("node", ""))
    dataset_id = form.get("dataset", "")
    if target is None or not _NAME.match(dataset_id):
        return await error_page(
            request, 400, "Choose one of your grants to download from."
        )
    try:
        recipient = public_key_from_text(form.get("public_key", "").strip())
        region = form.get("region", "").strip() or None
        if region is not None:
            parse_region(region)
    except (GenomenodeError, ValueError) as error:
        return await error_page(request, 400, f"Cannot download: {error}")
    directory = pathlib.Path(tempfile.mkdtemp(prefix="genomenode-portal-"))
    out = directory / f"{dataset_id}.vcf.gz.c4gh"
    try:
        await run_blocking(
            request,
            fetch_slice,
            target[1],
            dataset_id,
            out,
            region=region,
            token=token,
            recipient_public_key=recipient,
        )
    except GenomenodeError as error:
        shutil.rmtree(directory, ignore_errors=True)
        return await error_page(request, 400, f"The node refused the download: {error}")
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return FileResponse(
        out,
        media_type="application/octet-stream",
        filename=out.name,
        headers={"Cache-Control": "no-store"},
        background=BackgroundTask(shutil.rmtree, directory, ignore_errors=True),
    )
