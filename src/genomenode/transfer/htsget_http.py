"""The htsget routes (mount with ``prefix="/htsget"``); the protocol itself is
:mod:`genomenode.transfer.htsget`.

Each handler reads the request on the event loop and does everything else (the
authorisation, the database, reading and slicing the file) in the thread pool
(:func:`genomenode.web.blocking.run_blocking`); a block's bytes are streamed from
the pool by ``StreamingResponse``. What the app shares with the routes is
``app.state.htsget_files`` (:func:`htsget_files`) and the
``htsget_max_regions`` setting (:func:`max_regions`). Handlers carry no
docstrings, which FastAPI would publish in the OpenAPI.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse

from ..access.callers import prepared
from ..errors import InputError, NotFoundError, TokenError
from ..version import __version__
from ..web.blocking import run_blocking
from ..web.body import read_json_object
from ..web.openapi import SERVICE_INFO_SCHEMA, answers
from ..web.responses import json_response
from .htsget import (
    FORMATS,
    HTSGET_MEDIA_TYPE,
    MAX_REGIONS,
    HtsgetFiles,
    Kind,
    block_chunks,
    block_resource,
    parse_query,
    service_info,
    ticket,
)

__all__ = [
    "block",
    "htsget_files",
    "max_regions",
    "reads_service_info",
    "reads_ticket",
    "router",
    "variants_service_info",
    "variants_ticket",
]

#: The htsget routes (mount with ``prefix="/htsget"``).
router = APIRouter(tags=["htsget"], dependencies=[Depends(prepared)])

#: The parameters of a block URL (:func:`~genomenode.transfer.htsget.ticket`).
_BLOCK_PARAMETERS = ("format", "region", "fields", "tags", "notags")


def htsget_files(request: Request) -> HtsgetFiles:
    """The files and slicers of the app answering ``request``
    (``app.state.htsget_files``)."""
    files: HtsgetFiles = request.app.state.htsget_files
    return files


def max_regions(request: Request) -> int:
    """The most regions one POST may name (``app.state.htsget_max_regions``, the
    ``htsget_max_regions`` setting)."""
    limit: int = getattr(request.app.state, "htsget_max_regions", MAX_REGIONS)
    return limit


# Literal paths before /{kind}/{object_id}, which would take "service-info".
@router.get(
    "/variants/service-info",
    summary="htsget variants service-info",
    operation_id="htsget_variants_service_info",
    openapi_extra=answers(
        "GA4GH service-info, with htsget 1.3's htsget", SERVICE_INFO_SCHEMA
    ),
)
async def variants_service_info(request: Request) -> JSONResponse:
    return json_response(_service_info(request, "variants"))


@router.get(
    "/reads/service-info",
    summary="htsget reads service-info",
    operation_id="htsget_reads_service_info",
    openapi_extra=answers(
        "GA4GH service-info, with htsget 1.3's htsget", SERVICE_INFO_SCHEMA
    ),
)
async def reads_service_info(request: Request) -> JSONResponse:
    return json_response(_service_info(request, "reads"))


def _service_info(request: Request, kind: Kind) -> dict[str, Any]:
    # Nothing here reads the database or a file: built on the event loop.
    files = htsget_files(request)
    config = files.service.node.config
    identity = getattr(getattr(request.app.state, "beacon", None), "identity", None)
    public_url = files.service.access.issuer.rstrip("/")
    return service_info(
        kind,
        node_id=config.node_id,
        version=__version__,
        organisation_name=getattr(
            identity, "organisation_name", f"genomenode node {config.node_id}"
        ),
        organisation_url=getattr(identity, "organisation_url", public_url),
        environment=getattr(identity, "environment", "dev"),
    )


def _string(description: str, **schema: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **schema}


#: The ticket (htsget 1.3 "Response JSON"): 200 of every ticket request.
_TICKET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["htsget"],
    "properties": {
        "htsget": {
            "type": "object",
            "required": ["format", "urls"],
            "properties": {
                "format": _string("The format of the data the URLs return."),
                "urls": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["url"],
                        "properties": {
                            "url": _string("A block: https URL or data: URI."),
                            "headers": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                            },
                            "class": _string("Header or body", enum=["header", "body"]),
                        },
                    },
                },
                "md5": _string("MD5 of the whole answer, when known."),
            },
        }
    },
}


def _ticket_openapi(kind: Kind, post: bool) -> dict[str, Any]:
    """``openapi_extra`` of a ticket operation: its query parameters (GET) or body
    (POST), as :func:`~genomenode.transfer.htsget.parse_query` reads them, and
    the ticket it answers with."""
    names: dict[str, dict[str, Any]] = {
        "format": _string("Output format.", enum=list(FORMATS[kind])),
        "class": _string("Only the header (no other parameter).", enum=["header"]),
    }
    if kind == "reads":
        names |= {
            "fields": _string("Comma-separated SAM fields to keep."),
            "tags": _string("Comma-separated tags to keep."),
            "notags": _string("Comma-separated tags to drop."),
        }
    region = {
        "referenceName": _string("The reference sequence (e.g. 22, chr22, *)."),
        "start": {"type": "integer", "minimum": 0, "description": "0-based start."},
        "end": {"type": "integer", "minimum": 0, "description": "Exclusive end."},
    }
    extra: dict[str, Any] = {
        "responses": {
            "200": {
                "description": "The ticket: the URLs whose bodies, concatenated, "
                "are the answer",
                "content": {HTSGET_MEDIA_TYPE: {"schema": _TICKET_SCHEMA}},
            }
        }
    }
    if post:
        body_names = {
            name: {"type": "array", "items": {"type": "string"}}
            if name in ("fields", "tags", "notags")
            else schema
            for name, schema in names.items()
        }
        body_names["regions"] = {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["referenceName"],
                "properties": region,
            },
        }
        extra["requestBody"] = {
            "required": False,
            "content": {
                "application/json": {
                    "schema": {"type": "object", "properties": body_names}
                }
            },
        }
    else:
        extra["parameters"] = [
            {"name": name, "in": "query", "required": False, "schema": schema}
            for name, schema in (names | region).items()
        ]
    return extra


# Decorators apply bottom-up: GET is the first route, as in the OpenAPI.
@router.post(
    "/variants/{object_id}",
    summary="htsget ticket for variants",
    operation_id="htsget_variants_post",
    openapi_extra=_ticket_openapi("variants", post=True),
)
@router.get(
    "/variants/{object_id}",
    summary="htsget ticket for variants",
    operation_id="htsget_variants_get",
    openapi_extra=_ticket_openapi("variants", post=False),
)
async def variants_ticket(request: Request, object_id: str) -> JSONResponse:
    return await _ticket(request, "variants", object_id)


@router.post(
    "/reads/{object_id}",
    summary="htsget ticket for reads",
    operation_id="htsget_reads_post",
    openapi_extra=_ticket_openapi("reads", post=True),
)
@router.get(
    "/reads/{object_id}",
    summary="htsget ticket for reads",
    operation_id="htsget_reads_get",
    openapi_extra=_ticket_openapi("reads", post=False),
)
async def reads_ticket(request: Request, object_id: str) -> JSONResponse:
    return await _ticket(request, "reads", object_id)


@router.get("/blocks/{kind}/{object_id}", summary="Ticket blocks")
async def block(request: Request, kind: str, object_id: str) -> StreamingResponse:
    # Checking the link and opening the slicer are blocking; the stream itself is
    # iterated in the thread pool by StreamingResponse.
    return await run_blocking(request, _block_response, request, kind, object_id)


async def _ticket(request: Request, kind: Kind, object_id: str) -> JSONResponse:
    parameters, post = await _parameters(request)
    document = await run_blocking(
        request, _ticket_document, request, kind, object_id, parameters, post
    )
    return json_response(document, media_type=HTSGET_MEDIA_TYPE)


async def _parameters(request: Request) -> tuple[dict[str, Any], bool]:
    """A ticket request's parameters (POST: the body; GET: the query string),
    and whether it was a POST.

    Raises
    ------
    InputError
        A POST with parameters in its URL (they belong in the body, and taking
        either would answer a request other than the one the body states), or a
        GET naming a parameter twice.
    """
    if request.method == "POST":
        if request.query_params:
            name = next(iter(request.query_params))
            raise InputError(
                f"a POST takes its parameters in the body, not the URL ({name!r})",
                field=name,
            )
        return await read_json_object(request), True
    repeated = sorted(
        {name for name, _ in request.query_params.multi_items()}
        - {
            name
            for name in request.query_params
            if len(request.query_params.getlist(name)) == 1
        }
    )
    if repeated:
        raise InputError(f"parameter {repeated[0]!r} is given twice", field=repeated[0])
    return dict(request.query_params), False


def _ticket_document(
    request: Request,
    kind: Kind,
    object_id: str,
    parameters: dict[str, Any],
    post: bool,
) -> dict[str, Any]:
    files = htsget_files(request)
    query = parse_query(kind, parameters, post=post, max_regions=max_regions(request))
    if kind == "variants":
        stored = files.variants_object(object_id)
    else:
        stored = files.reads_object(object_id)
    caller = files.service.require(request, stored.dataset_id, what=f"htsget.{kind}")
    return ticket(files, caller, stored, query, object_id=object_id)


def _block_response(request: Request, kind: str, object_id: str) -> StreamingResponse:
    if kind not in FORMATS:
        raise NotFoundError(f"no {kind!r} blocks")
    files = htsget_files(request)
    parameters = {
        name: request.query_params[name]
        for name in _BLOCK_PARAMETERS
        if name in request.query_params
    }
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise TokenError("a block needs the Authorization header of its ticket URL")
    files.service.require_link(
        token.strip(),
        resource=block_resource(kind, object_id, parameters),
        what=f"htsget.{kind}.block",
    )
    stream = block_chunks(files, kind, object_id, parameters)
    return StreamingResponse(stream, media_type="application/octet-stream")
