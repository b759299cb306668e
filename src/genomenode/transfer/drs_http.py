"""The DRS routes (mount with ``prefix="/ga4gh/drs/v1"``); the protocol itself is
:mod:`genomenode.transfer.drs`.

Each handler reads the request (and a POST's body, with the node's limits) on the
event loop, fetches the keys a passport in the body needs without blocking, and
does everything else (authorisation, database, files) in the thread pool
(:func:`genomenode.web.blocking.run_blocking`); a download streams from the pool.
Handlers carry no docstrings, which FastAPI would publish in the OpenAPI.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from ..access.callers import prepared
from ..web.blocking import run_blocking
from ..web.body import read_json_object
from ..web.openapi import SERVICE_INFO_SCHEMA, answers
from ..web.responses import json_response
from . import drs

__all__ = [
    "bulk_access",
    "bulk_objects",
    "download",
    "get_access",
    "get_object",
    "post_access",
    "post_object",
    "router",
    "service_info",
]

# The DRS 1.4 answers as its OpenAPI defines them (required fields and types), for
# the node's published OpenAPI.
_ACCESS_URL: dict[str, Any] = {
    "type": "object",
    "required": ["url"],
    "properties": {
        "url": {"type": "string"},
        "headers": {"type": "array", "items": {"type": "string"}},
    },
}
_DRS_OBJECT: dict[str, Any] = {
    "type": "object",
    "required": ["id", "self_uri", "size", "created_time", "checksums"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "self_uri": {"type": "string"},
        "size": {"type": "integer", "minimum": 0},
        "created_time": {"type": "string", "format": "date-time"},
        "updated_time": {"type": "string", "format": "date-time"},
        "mime_type": {"type": "string"},
        "checksums": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["checksum", "type"],
                "properties": {
                    "checksum": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
        "access_methods": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type"],
                "properties": {
                    "type": {"type": "string"},
                    "access_id": {"type": "string"},
                    "access_url": _ACCESS_URL,
                },
            },
        },
        "contents": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}, "id": {"type": "string"}},
            },
        },
    },
}
_SUMMARY: dict[str, Any] = {
    "type": "object",
    "required": ["requested", "resolved", "unresolved"],
    "properties": {
        key: {"type": "integer", "minimum": 0}
        for key in ("requested", "resolved", "unresolved")
    },
}
_UNRESOLVED: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "error_code": {"type": "integer"},
            "object_ids": {"type": "array", "items": {"type": "string"}},
        },
    },
}


def _answers(description: str, schema: dict[str, Any]) -> dict[Any, Any]:
    return {
        200: {
            "description": description,
            "content": {"application/json": {"schema": schema}},
        }
    }


_OBJECT = _answers("A DrsObject", _DRS_OBJECT)
_ACCESS = _answers("An AccessURL", _ACCESS_URL)

#: The DRS routes (mount with ``prefix="/ga4gh/drs/v1"``).
router = APIRouter(tags=["drs"], dependencies=[Depends(prepared)])


@router.get(
    "/service-info",
    summary="DRS service-info",
    openapi_extra=answers(
        "GA4GH service-info, with DRS 1.4's drs", SERVICE_INFO_SCHEMA
    ),
)
async def service_info(request: Request) -> JSONResponse:
    # Counting what the caller may fetch reads the database and may verify a
    # passport: off the event loop.
    return json_response(
        await run_blocking(request, drs.service_info_document, request)
    )


# Literal paths before /objects/{object_id}, which would take "access".
@router.post(
    "/objects/access",
    summary="Access URLs of several objects",
    responses=_answers(
        "The AccessURLs resolved and the ids that were not",
        {
            "type": "object",
            "required": ["summary", "resolved_drs_object_access_urls"],
            "properties": {
                "summary": _SUMMARY,
                "resolved_drs_object_access_urls": {
                    "type": "array",
                    "items": {
                        **_ACCESS_URL,
                        "required": ["url", "drs_object_id", "drs_access_id"],
                    },
                },
                "unresolved_drs_objects": _UNRESOLVED,
            },
        },
    ),
)
async def bulk_access(request: Request) -> JSONResponse:
    body = await read_json_object(request)
    await drs.prepare_passports(request, body)
    return json_response(
        await run_blocking(request, drs.resolve_access_urls, request, body)
    )


@router.post(
    "/objects",
    summary="Several DrsObjects",
    responses=_answers(
        "The DrsObjects resolved and the ids that were not",
        {
            "type": "object",
            "required": ["summary", "resolved_drs_object"],
            "properties": {
                "summary": _SUMMARY,
                "resolved_drs_object": {"type": "array", "items": _DRS_OBJECT},
                "unresolved_drs_objects": _UNRESOLVED,
            },
        },
    ),
)
async def bulk_objects(request: Request) -> JSONResponse:
    body = await read_json_object(request)
    await drs.prepare_passports(request, body)
    document = await run_blocking(request, drs.resolve_objects, request, body)
    return json_response(document)


@router.get("/objects/{object_id}", summary="A DrsObject", responses=_OBJECT)
async def get_object(request: Request, object_id: str) -> JSONResponse:
    # A dataset bundle holds only blobs: expand is validated, nothing nests.
    drs.check_expand(request.query_params.get("expand"))
    return json_response(
        await run_blocking(request, drs.object_document, request, object_id)
    )


@router.post(
    "/objects/{object_id}",
    summary="A DrsObject, with passports in the body",
    responses=_OBJECT,
)
async def post_object(request: Request, object_id: str) -> JSONResponse:
    body = await read_json_object(request)
    drs.check_expand(body.get("expand", request.query_params.get("expand")))
    await drs.prepare_passports(request, body)
    return json_response(
        await run_blocking(request, _with_passports, request, body, object_id, None)
    )


@router.get(
    "/objects/{object_id}/access/{access_id}",
    summary="An AccessURL for the bytes",
    responses=_ACCESS,
)
async def get_access(request: Request, object_id: str, access_id: str) -> JSONResponse:
    return json_response(
        await run_blocking(request, drs.access_url, request, object_id, access_id)
    )


@router.post(
    "/objects/{object_id}/access/{access_id}",
    summary="An AccessURL, with passports in the body",
    responses=_ACCESS,
)
async def post_access(request: Request, object_id: str, access_id: str) -> JSONResponse:
    body = await read_json_object(request)
    await drs.prepare_passports(request, body)
    document = await run_blocking(
        request, _with_passports, request, body, object_id, access_id
    )
    return json_response(document)


@router.get(
    "/download/{object_id}",
    name=drs.DOWNLOAD_ROUTE,
    summary="The bytes behind an AccessURL, Crypt4GH-encrypted to the caller",
    response_class=Response,
    responses={
        200: {
            "description": "The Crypt4GH file (a range of it, with Range)",
            "content": {"application/octet-stream": {}},
        }
    },
)
async def download(request: Request, object_id: str) -> Response:
    # Checking the link and opening the file are blocking; the body is streamed
    # from the thread pool.
    return await run_blocking(request, drs.download_response, request, object_id)


def _with_passports(
    request: Request, body: dict[str, Any], object_id: str, access_id: str | None
) -> dict[str, Any]:
    """The object (or, with ``access_id``, its AccessURL) for the caller whose
    passport is in the body, if there is one there."""
    drs.use_passports(request, body)
    if access_id is None:
        return drs.object_document(request, object_id)
    return drs.access_url(request, object_id, access_id)
