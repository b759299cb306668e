"""The access API: the DAC workflow under ``/access``, and the node's JWKS.

Routes (JSON in and out; every route but the catalogue and the JWKS needs a
passport):

=======================================  ==========================================
``GET  /access/catalogue``               datasets one can apply for, their DUO terms
``POST /access/applications``            apply (``submit: true`` to submit at once)
``GET  /access/applications``            mine, and those of datasets I am DAC for
``GET  /access/applications/{id}``       one, with the DUO recommendation
``PUT  /access/applications/{id}``       edit a draft or returned application
``POST /access/applications/{id}/{act}`` ``submit`` (applicant); ``approve``
                                         (``ends_at``), ``reject``, ``return``,
                                         ``revoke`` (DAC members)
``GET  /access/grants``                  my grants
``GET  /access/permissions/{user}``      REMS-compatible: ``{"ga4gh_passport_v1":
                                         [visa, ...]}`` of the user's active grants
``GET  /.well-known/jwks.json``          the node's visa signing keys
=======================================  ==========================================

:data:`router` is mounted with ``prefix="/access"``, :data:`well_known_router`
without a prefix. Each handler reads its body (with the node's limits) on the
event loop and does its database work in the thread pool
(:func:`genomenode.web.blocking.run_blocking`); the caller is
:func:`~genomenode.access.callers.caller_of`'s, the service the app's
(:func:`~genomenode.access.callers.required_access_service`). DAC actions audit
themselves (in their own transaction): these routes add no per-request entry.
Handlers carry no docstrings, which FastAPI would publish in the OpenAPI; each
route's ``summary`` says what it does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse

from ..errors import InputError, PermissionDenied
from ..web.blocking import run_blocking
from ..web.body import read_json_object
from ..web.responses import json_response
from . import applications, workflow
from . import duo as access_duo
from .callers import access_service, identity_of, prepared, required_access_service

__all__ = ["router", "well_known_router"]

#: The ``/access`` routes (mount with ``prefix="/access"``).
router = APIRouter(tags=["access"], dependencies=[Depends(prepared)])
#: ``/.well-known/jwks.json``: the public keys of the node's visas.
well_known_router = APIRouter(tags=["access"])

#: Grants end before this year ends; later dates overflow date arithmetic.
_LAST_GRANT_YEAR = 9000
#: Application ids are 64-bit database keys.
_APPLICATION_ID = Path(ge=1, le=2**63 - 1, description="application id")
# What the routes answer, for the published OpenAPI: the top-level fields.
_APPLICATION: dict[str, Any] = {
    "type": "object",
    "required": ["id", "dataset_id", "applicant", "state", "version", "events"],
    "properties": {
        "id": {"type": "integer"},
        "dataset_id": {"type": "string"},
        "applicant": {"type": "string"},
        "members": {"type": "array", "items": {"type": "string"}},
        "project_title": {"type": "string"},
        "purpose": {"type": "object"},
        "purpose_text": {"type": "string"},
        "state": {"type": "string"},
        "version": {"type": "integer"},
        "events": {"type": "array", "items": {"type": "object"}},
        "grant": {"type": ["object", "null"]},
        "recommendation": {"type": "object"},
    },
}
_APPLICATION_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "dataset": {"type": "string"},
        "purpose": {"type": "object", "description": "A DUO research purpose"},
        "project_title": {"type": "string"},
        "purpose_text": {"type": "string"},
        "members": {"type": "array", "items": {"type": "string"}},
        "submit": {"type": "boolean"},
        "version": {"type": "integer"},
        "comment": {"type": "string"},
        "ends_at": {"type": "string"},
    },
}


def _answers(
    description: str, schema: dict[str, Any], status: int = 200
) -> dict[Any, Any]:
    return {
        status: {
            "description": description,
            "content": {"application/json": {"schema": schema}},
        }
    }


def _listing(key: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [key],
        "properties": {key: {"type": "array"}},
    }


_BODY = {
    "requestBody": {
        "required": False,
        "content": {"application/json": {"schema": _APPLICATION_BODY}},
    }
}

#: ``POST /access/applications/{id}/{action}``: the workflow step of each action.
_ACTIONS: Mapping[str, Callable[..., applications.Application]] = {
    "submit": workflow.submit,
    "approve": workflow.approve,
    "reject": workflow.reject,
    "return": workflow.return_for_changes,
    "revoke": workflow.revoke,
}


@router.get(
    "/catalogue",
    summary="Catalogue",
    responses=_answers("What may be applied for", _listing("items")),
)
async def catalogue(request: Request) -> JSONResponse:
    service = required_access_service(request)

    def items() -> list[dict[str, Any]]:
        with service.authoriser.session() as session:
            found = applications.catalogue_items(session)
        return [_public_item(item.to_json()) for item in found]

    return json_response({"items": await run_blocking(request, items)})


@router.post(
    "/applications",
    summary="Apply for a dataset",
    status_code=201,
    responses=_answers("The new application", _APPLICATION, 201),
    openapi_extra=_BODY,
)
async def create(request: Request) -> JSONResponse:
    service = required_access_service(request)
    identity = await run_blocking(request, identity_of, request)
    body = await read_json_object(request)
    dataset_id = _text(body, "dataset")
    if not dataset_id:
        raise InputError("dataset (the dataset id) is required", field="dataset")
    purpose_document = body.get("purpose")
    if not isinstance(purpose_document, dict):
        raise InputError("purpose must be an object with a DUO term", field="purpose")

    def apply() -> dict[str, Any]:
        application = workflow.create_application(
            service.authoriser.engine,
            dataset_id=dataset_id,
            applicant=identity.subject,
            project_title=_text(body, "project_title", "") or "",
            purpose=access_duo.purpose_from_json(purpose_document),
            purpose_text=_text(body, "purpose_text", "") or "",
            members=_members(body) or (),
            submit=bool(body.get("submit", False)),
        )
        return application.to_json()

    return json_response(await run_blocking(request, apply), 201)


@router.get(
    "/applications",
    summary="Applications I may see",
    responses=_answers("The applications", _listing("applications")),
)
async def listing(request: Request) -> JSONResponse:
    service = required_access_service(request)

    def visible() -> list[dict[str, Any]]:
        identity = identity_of(request)
        workflow.expire_due(service.authoriser.engine)
        found = applications.list_applications(
            service.authoriser.engine,
            viewer=identity.subject,
            dataset_id=request.query_params.get("dataset"),
            state=request.query_params.get("state"),
        )
        return [item.to_json() for item in found]

    return json_response({"applications": await run_blocking(request, visible)})


@router.get(
    "/applications/{application_id}",
    summary="One application",
    responses=_answers("The application", _APPLICATION),
)
async def show(request: Request, application_id: int = _APPLICATION_ID) -> JSONResponse:
    service = required_access_service(request)

    def one() -> dict[str, Any]:
        identity = identity_of(request)
        workflow.expire_due(service.authoriser.engine)
        application = applications.get_application(
            service.authoriser.engine, application_id, viewer=identity.subject
        )
        return application.to_json()

    return json_response(await run_blocking(request, one))


@router.put(
    "/applications/{application_id}",
    summary="Edit a draft or returned application",
    responses=_answers("The application", _APPLICATION),
    openapi_extra=_BODY,
)
async def edit(request: Request, application_id: int = _APPLICATION_ID) -> JSONResponse:
    service = required_access_service(request)
    identity = await run_blocking(request, identity_of, request)
    body = await read_json_object(request)
    purpose_document = body.get("purpose")

    def change() -> dict[str, Any]:
        application = workflow.edit_application(
            service.authoriser.engine,
            application_id,
            actor=identity.subject,
            project_title=_text(body, "project_title"),
            purpose=(
                access_duo.purpose_from_json(purpose_document)
                if isinstance(purpose_document, dict)
                else None
            ),
            purpose_text=_text(body, "purpose_text"),
            members=_members(body),
        )
        return application.to_json()

    return json_response(await run_blocking(request, change))


@router.post(
    "/applications/{application_id}/{action}",
    summary="submit, approve, reject, return or revoke",
    responses=_answers("The application", _APPLICATION),
    openapi_extra=_BODY,
)
async def act(
    request: Request, action: str, application_id: int = _APPLICATION_ID
) -> JSONResponse:
    service = required_access_service(request)
    identity = await run_blocking(request, identity_of, request)
    function = _ACTIONS.get(action)
    if function is None:
        raise InputError(
            f"unknown action {action[:40]!r} (one of {', '.join(_ACTIONS)})",
            field="action",
        )
    body = await read_json_object(request)

    def perform() -> dict[str, Any]:
        keywords: dict[str, Any] = {"actor": identity.subject}
        try:
            if action != "submit":
                keywords["comment"] = _text(body, "comment")
            if action == "approve":
                keywords["ends_at"] = _ends_at(body)
                keywords["override_reason"] = _text(body, "override_reason")
        except InputError as error:
            # A refused DAC step is an access decision too: audit it.
            service.audit.record(
                actor=identity.subject,
                action=f"access.{action}",
                outcome="deny",
                reason=str(error),
                details={"application": application_id},
            )
            request.state.audited = True
            raise
        application = function(service.authoriser.engine, application_id, **keywords)
        return application.to_json()

    return json_response(await run_blocking(request, perform))


@router.get(
    "/grants", summary="My grants", responses=_answers("The grants", _listing("grants"))
)
async def my_grants(request: Request) -> JSONResponse:
    service = required_access_service(request)

    def found() -> list[dict[str, Any]]:
        identity = identity_of(request)
        with service.authoriser.session() as session:
            grants = applications.grants(
                session,
                subject=identity.subject,
                include_inactive=request.query_params.get("all") == "true",
            )
        return [grant.to_json() for grant in grants]

    return json_response({"grants": await run_blocking(request, found)})


@router.get(
    "/permissions/{user}",
    summary="REMS-compatible: the user's grants as signed visas",
    responses=_answers(
        "The visas",
        {
            "type": "object",
            "required": ["ga4gh_passport_v1"],
            "properties": {
                "ga4gh_passport_v1": {"type": "array", "items": {"type": "string"}}
            },
        },
    ),
)
async def permissions(request: Request, user: str) -> JSONResponse:
    service = required_access_service(request)

    def visas() -> list[str]:
        identity = identity_of(request)
        if identity.subject != user:
            service.audit.record(
                actor=identity.subject,
                action="access.permissions",
                outcome="deny",
                reason="permissions of another user",
                details={"user": user[:200]},
            )
            request.state.audited = True
            raise PermissionDenied(
                "only the user themselves may read their permissions"
            )
        signed = service.grant_visas(user)
        service.audit.record(
            actor=identity.subject,
            action="access.permissions",
            outcome="allow",
            reason=f"{len(signed)} ControlledAccessGrants visas issued",
        )
        return signed

    return json_response({"ga4gh_passport_v1": await run_blocking(request, visas)})


@well_known_router.get(
    "/.well-known/jwks.json",
    summary="Visa signing keys",
    responses=_answers("A JWK Set", _listing("keys")),
)
async def jwks(request: Request) -> JSONResponse:
    service = access_service(request)
    if service is None:
        return json_response({"keys": []})
    return json_response(service.signing_keys.jwks())


# -- reading request bodies ------------------------------------------------------


def _text(body: Mapping[str, Any], name: str, default: str | None = None) -> str | None:
    value = body.get(name, default)
    if value is not None and not isinstance(value, str):
        raise InputError(f"{name} must be a string", field=name)
    return value


def _members(body: Mapping[str, Any]) -> tuple[str, ...] | None:
    value = body.get("members")
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(item, str) and item for item in value
    ):
        raise InputError("members must be a list of user ids", field="members")
    return tuple(value)


def _ends_at(body: Mapping[str, Any]) -> dt.datetime:
    value = body.get("ends_at")
    if not isinstance(value, str):
        raise InputError(
            "ends_at (ISO 8601 date or date-time) is required to approve",
            field="ends_at",
        )
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            moment = dt.datetime.combine(day, dt.time(), dt.UTC)
            moment += dt.timedelta(days=1)  # the whole day named
        else:
            moment = dt.datetime.fromisoformat(value)
    except (ValueError, OverflowError):
        raise InputError(
            f"ends_at {value[:40]!r} is not an ISO 8601 date before 9999-12-31",
            field="ends_at",
        ) from None
    if moment.tzinfo is None:
        raise InputError("ends_at needs a time zone (e.g. Z)", field="ends_at")
    if moment.year > _LAST_GRANT_YEAR:
        raise InputError(
            f"ends_at must be before {_LAST_GRANT_YEAR + 1}", field="ends_at"
        )
    return moment


def _public_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """A catalogue item without the DAC members' user ids."""
    public = {key: value for key, value in item.items() if key != "dac_members"}
    members = item.get("dac_members")
    if isinstance(members, list):
        public["num_dac_members"] = len(members)
    return public
