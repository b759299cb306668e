"""The node's catalogue routes (mount with ``prefix="/catalogue"``).

``GET /catalogue/datasets`` is the node's ``dcat:Catalog`` with every published
dataset; ``GET /catalogue/datasets/{id}`` one dataset. Both answer JSON-LD unless
``?format=turtle`` or an ``Accept`` header preferring ``text/turtle`` asks for
Turtle. They are public: the catalogue holds metadata only.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ..errors import InputError
from ..node import Node
from .dcat import SerialisationFormat, catalogue_graph, serialise

__all__ = ["MEDIA_TYPES", "catalogue_router", "negotiate_format"]

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


def _node_and_base_url(request: Request) -> tuple[Node, str]:
    node: Node = request.app.state.beacon.node
    # The node's configured public URL (as the access service issues visas
    # under it), not the request's Host, which a proxy may rewrite.
    access = getattr(request.app.state, "access", None)
    base_url = getattr(access, "issuer", None) or node.config.public_url
    return node, str(base_url).rstrip("/")


def catalogue_router() -> APIRouter:
    """The catalogue routes of a node app."""
    router = APIRouter(tags=["catalogue"])

    async def respond(request: Request, dataset_id: str | None) -> Response:
        serialisation = negotiate_format(
            request.query_params.get("format"), request.headers.get("accept")
        )
        node, base_url = _node_and_base_url(request)
        graph = await run_in_threadpool(
            catalogue_graph, node, base_url=base_url, dataset_id=dataset_id
        )
        return Response(
            serialise(graph, serialisation),
            media_type=MEDIA_TYPES[serialisation],
            headers={"Vary": "Accept"},
        )

    async def catalog(request: Request) -> Response:
        return await respond(request, None)

    async def dataset(request: Request, dataset_id: str) -> Response:
        return await respond(request, dataset_id)

    router.add_api_route(
        "/datasets",
        catalog,
        methods=["GET"],
        summary="The node's DCAT-AP catalogue of published datasets",
    )
    router.add_api_route(
        "/datasets/{dataset_id}",
        dataset,
        methods=["GET"],
        summary="One published dataset as DCAT-AP",
    )
    return router
