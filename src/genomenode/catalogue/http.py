"""The catalogue routes: a node's own (:data:`router`) and the network's harvested
union (:data:`network_router`); both are mounted with ``prefix="/catalogue"``.

A node's ``GET /catalogue/datasets`` is its ``dcat:Catalog`` with every published
dataset; ``GET /catalogue/datasets/{id}`` one dataset. Both answer JSON-LD unless
``?format=turtle`` or an ``Accept`` header preferring ``text/turtle`` asks for
Turtle. They are public: the catalogue holds metadata only. The node is the app's
``app.state.node``; absolute IRIs are under the node's ``public_url`` (the issuer
of its visas), never under the request's ``Host``.

The network's ``GET /catalogue/datasets?q=&country=&duo=&disease=`` lists the
matching harvested datasets as JSON, or with ``?format=jsonld|turtle`` gives the
union RDF; ``POST /catalogue/harvest`` harvests now and returns each node's status
(when the app's :class:`HarvestGate` lets the caller); ``GET /catalogue/harvest``
gives the statuses of the last harvest. The harvester is ``app.state.harvester``
and the gate ``app.state.harvest_gate``.

Handlers carry no docstrings, which FastAPI would publish in the OpenAPI.
"""

from __future__ import annotations

import functools
import hmac
import math
import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ..access.callers import access_service
from ..config import Secret
from ..errors import (
    AuthenticationRequired,
    InputError,
    PermissionDenied,
    TooManyRequests,
)
from ..store.node import Node
from ..web.responses import json_response
from .dcat import SerialisationFormat, catalogue_graph, serialise
from .harvest import UNAUTHENTICATED_HARVEST_INTERVAL_SECONDS, Harvester

__all__ = [
    "MEDIA_TYPES",
    "HarvestGate",
    "catalog",
    "catalogue_node",
    "dataset",
    "datasets",
    "harvest_gate",
    "harvest_now",
    "harvester",
    "last_harvest",
    "negotiate_format",
    "network_router",
    "router",
]

#: Media type of each serialisation.
MEDIA_TYPES: dict[SerialisationFormat, str] = {
    "json-ld": "application/ld+json",
    "turtle": "text/turtle",
}
_FORMAT_NAMES: dict[str, SerialisationFormat] = {
    "json-ld": "json-ld",
    "jsonld": "json-ld",
    "turtle": "turtle",
    "ttl": "turtle",
}

#: A node's catalogue routes (mount with ``prefix="/catalogue"``).
router = APIRouter(tags=["catalogue"])
#: The network's catalogue routes (mount with ``prefix="/catalogue"``).
network_router = APIRouter(tags=["catalogue"])


def negotiate_format(
    format_name: str | None, accept: str | None
) -> SerialisationFormat:
    """The serialisation asked for by ``?format=`` or else the ``Accept`` header.

    Raises
    ------
    InputError
        If ``format_name`` names no serialisation.
    """
    if format_name:
        try:
            return _FORMAT_NAMES[format_name.lower()]
        except KeyError:
            raise InputError(
                f"unknown format {format_name!r}; use jsonld or turtle",
                field="format",
            ) from None
    # Turtle only when the client names it before (or without) JSON-LD; anything
    # else, */* included, gets the default.
    for item in (accept or "").split(","):
        media_type = item.split(";", 1)[0].strip().lower()
        if media_type == "text/turtle":
            return "turtle"
        if media_type in ("application/ld+json", "application/json"):
            return "json-ld"
    return "json-ld"


#: The query parameter naming a serialisation (else the Accept header decides).
_FORMAT_PARAMETER: dict[str, Any] = {
    "name": "format",
    "in": "query",
    "required": False,
    "description": "jsonld (default) or turtle; without it, the Accept header",
    "schema": {"type": "string", "enum": sorted(_FORMAT_NAMES)},
}


def _graph_answers(description: str, *, json_search: bool = False) -> dict[str, Any]:
    """``openapi_extra`` of a route answering with a DCAT-AP graph: JSON-LD or
    Turtle (and, ``json_search``, the network's search results as plain JSON
    when no format is named)."""
    content: dict[str, Any] = {
        "application/ld+json": {"schema": {"type": "object"}},
        "text/turtle": {"schema": {"type": "string"}},
    }
    if json_search:
        content["application/json"] = {
            "schema": {
                "type": "array",
                "description": "Datasets of the harvested catalogues that match",
                "items": {
                    "type": "object",
                    "required": ["id", "node", "country", "access_rights", "urls"],
                    "properties": {
                        "id": {"type": "string"},
                        "title": {"type": ["string", "null"]},
                        "description": {"type": ["string", "null"]},
                        "node": {"type": "string"},
                        "country": {"type": ["string", "null"]},
                        # PUBLIC, RESTRICTED or NON_PUBLIC from genomenode nodes.
                        "access_rights": {"type": ["string", "null"]},
                        "num_individuals": {"type": ["integer", "null"]},
                        "duo": {"type": "array", "items": {"type": "string"}},
                        "diseases": {"type": "array", "items": {"type": "string"}},
                        "urls": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        },
                    },
                },
            }
        }
    return {"responses": {"200": {"description": description, "content": content}}}


# -- a node's catalogue -----------------------------------------------------------


def catalogue_node(request: Request) -> Node:
    """The node of the app answering ``request`` (``app.state.node``)."""
    node: Node = request.app.state.node
    return node


@router.get(
    "/datasets",
    summary="The node's DCAT-AP catalogue of published datasets",
    openapi_extra={
        "parameters": [_FORMAT_PARAMETER],
        **_graph_answers("The catalogue (DCAT-AP 3 / HealthDCAT-AP)"),
    },
)
async def catalog(request: Request) -> Response:
    return await _catalogue_response(request, None)


@router.get(
    "/datasets/{dataset_id}",
    summary="One published dataset as DCAT-AP",
    openapi_extra={
        "parameters": [_FORMAT_PARAMETER],
        **_graph_answers("The dataset's record (DCAT-AP 3 / HealthDCAT-AP)"),
    },
)
async def dataset(request: Request, dataset_id: str) -> Response:
    return await _catalogue_response(request, dataset_id)


async def _catalogue_response(request: Request, dataset_id: str | None) -> Response:
    serialisation = negotiate_format(
        request.query_params.get("format"), request.headers.get("accept")
    )
    node = catalogue_node(request)
    beacon = getattr(request.app.state, "beacon", None)
    graph = await run_in_threadpool(
        functools.partial(
            catalogue_graph,
            node,
            base_url=_base_url(request),
            dataset_id=dataset_id,
            disclosure=getattr(beacon, "disclosure", None),
        )
    )
    return Response(
        serialise(graph, serialisation),
        media_type=MEDIA_TYPES[serialisation],
        headers={"Vary": "Accept"},
    )


def _base_url(request: Request) -> str:
    # The node's configured public URL (as the access service issues visas
    # under it), not the request's Host, which a proxy may rewrite.
    access = access_service(request)
    base_url = access.issuer if access is not None else ""
    return (base_url or catalogue_node(request).config.public_url).rstrip("/")


# -- the network's harvested catalogue --------------------------------------------


class HarvestGate:
    """Who may start a harvest now.

    Parameters
    ----------
    operator_token
        The credential ``POST /catalogue/harvest`` requires (401 without it, 403
        with another, compared in constant time). None: anyone may, once per
        ``unauthenticated_interval_seconds`` (429 in between, per process).
    unauthenticated_interval_seconds
        See ``operator_token``.
    clock
        Monotonic seconds (tests pass a fake one).
    """

    def __init__(
        self,
        operator_token: Secret | None = None,
        *,
        unauthenticated_interval_seconds: float = (
            UNAUTHENTICATED_HARVEST_INTERVAL_SECONDS
        ),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._token = operator_token.reveal().encode() if operator_token else None
        self._interval = unauthenticated_interval_seconds
        self._clock = clock
        self._last: float | None = None

    def check(self, request: Request) -> None:
        """Let ``request`` start a harvest, or raise.

        Raises
        ------
        AuthenticationRequired
            An operator token is needed and none was sent.
        PermissionDenied
            Another token was sent.
        TooManyRequests
            Without an operator token: the last harvest was too recent.
        """
        if self._token is not None:
            presented = _bearer(request)
            if presented is None:
                raise AuthenticationRequired(
                    "an on-demand harvest needs the network's operator token "
                    "(Authorization: Bearer <token>)"
                )
            # Constant time: the comparison must not tell how much was right.
            if not hmac.compare_digest(presented.encode(), self._token):
                raise PermissionDenied("not the network's operator token")
            return
        now = self._clock()
        if self._last is not None and now - self._last < self._interval:
            wait = self._interval - (now - self._last)
            raise TooManyRequests(
                f"the nodes were harvested on demand {now - self._last:.0f} s ago; "
                f"retry in {wait:.0f} s (or configure an operator token)",
                retry_after_seconds=math.ceil(wait),
            )
        self._last = now


def _bearer(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip()


def harvester(request: Request) -> Harvester:
    """The harvester of the network app answering ``request``
    (``app.state.harvester``)."""
    found: Harvester = request.app.state.harvester
    return found


def harvest_gate(request: Request) -> HarvestGate:
    """Who may harvest on demand, in the app answering ``request``
    (``app.state.harvest_gate``)."""
    gate: HarvestGate = request.app.state.harvest_gate
    return gate


@network_router.get(
    "/datasets",
    summary="Search the harvested datasets of the network",
    openapi_extra=_graph_answers(
        "Matching datasets (JSON); with format, the union of the harvested "
        "catalogues as a graph",
        json_search=True,
    ),
)
async def datasets(
    request: Request,
    q: str | None = None,
    country: str | None = None,
    duo: str | None = None,
    disease: str | None = None,
    format_name: Annotated[str | None, Query(alias="format")] = None,
) -> Response:
    if format_name:
        serialisation = negotiate_format(format_name, None)
        return Response(
            serialise(harvester(request).union_graph(), serialisation),
            media_type=MEDIA_TYPES[serialisation],
        )
    return json_response(
        harvester(request).search(q=q, country=country, duo=duo, disease=disease)
    )


@network_router.post("/harvest", summary="Harvest every node's catalogue now")
async def harvest_now(request: Request) -> JSONResponse:
    harvest_gate(request).check(request)
    statuses = await harvester(request).harvest()
    return json_response(
        {node_id: status.to_json() for node_id, status in statuses.items()}
    )


@network_router.get("/harvest", summary="How the last harvest of each node went")
async def last_harvest(request: Request) -> JSONResponse:
    return json_response(
        {
            node_id: status.to_json()
            for node_id, status in harvester(request).statuses().items()
        }
    )
