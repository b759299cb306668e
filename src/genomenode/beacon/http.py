"""The Beacon v2 HTTP API: routes under ``/api``, GET and POST for every endpoint.

Each route is declared explicitly (one per entry type and nesting) so that the
published OpenAPI (``/api/openapi.json``) lists every endpoint. Routes are
``async`` only to read the request (:func:`genomenode.web.read_json`, with the
node's limits); the query itself (SQL, Zarr, numpy, the passport check) runs in
the thread pool (:func:`genomenode.web.run_blocking`), so a slow per-person scan
never holds up a count query, and it stops when its client goes away. A request
may carry at most ``beacon_max_filters`` filters and spend
``beacon_filter_cpu_seconds`` expanding them. Scale out with
``genomenode serve --workers``.

Errors become Beacon error documents in the node's one error handler
(:mod:`genomenode.web`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from ..access import Caller, allowed_granularity
from ..access.callers import audited, caller_of
from ..errors import BeaconRequestError
from ..node import Node
from ..web import json_response, read_json, run_blocking
from . import filters, framework, ontology
from .catalog import Catalog
from .engine import ENTRY_TYPES, PathScope, answer
from .filtering_terms import filtering_terms
from .requests import BeaconRequest, parse_get, parse_post
from .responses import result_response

__all__ = [
    "BeaconService",
    "add_beacon_routes",
    "beacon_router",
    "caller_of",
    "read_beacon_request",
]

_log = logging.getLogger(__name__)


class BeaconService:
    """What the routes share: the node, its catalog, identity and settings."""

    def __init__(
        self,
        node: Node,
        *,
        base_url: str,
        count_threshold: int = 5,
        environment: str = "dev",
        max_filters: int = 100,
        filter_cpu_seconds: float = 1.0,
    ) -> None:
        self.node = node
        self.max_filters = max_filters
        self.filter_cpu_seconds = filter_cpu_seconds
        self.catalog = Catalog(node)
        self.identity = framework.identity_from_node(
            node, base_url, environment=environment
        )
        self.count_threshold = count_threshold
        # Load HPO now (about 1.5 s) rather than in the first request with a filter.
        ontology.is_known("HP:0000118")

    def visible(self, caller: Caller) -> list[Any]:
        """Datasets the caller may query at all (others are never mentioned)."""
        return [
            handle
            for handle in self.catalog.datasets()
            if allowed_granularity(caller, handle.access) is not None
        ]

    def summaries(self, caller: Caller) -> list[framework.DatasetSummary]:
        return [
            framework.DatasetSummary(
                id=handle.facts.id,
                name=handle.facts.name,
                description=handle.facts.description,
                security_level=handle.facts.security_level,
                created_at=handle.facts.created_at,
                published_at=handle.facts.published_at,
                num_individuals=handle.facts.num_individuals,
                num_variants=handle.facts.num_variants,
            )
            for handle in self.visible(caller)
        ]


def _service(request: Request) -> BeaconService:
    service: BeaconService = request.app.state.beacon
    return service


async def read_beacon_request(request: Request, *, max_filters: int) -> BeaconRequest:
    """The request's Beacon query (POST body or GET parameters), read within the
    app's limits and with at most ``max_filters`` filters; the node and the
    network read requests through this.

    Raises
    ------
    BeaconRequestError
        A parameter is wrong, or there are too many filters (HTTP 400).
    """
    if request.method == "POST":
        parsed = parse_post(await read_json(request, empty={}))
    else:
        params: dict[str, str | list[str]] = {}
        for key in request.query_params:
            values = request.query_params.getlist(key)
            params[key] = values if len(values) > 1 else values[0]
        parsed = parse_get(params)
    if len(parsed.filters) > max_filters:
        raise BeaconRequestError(
            f"{len(parsed.filters)} filters; at most {max_filters} in one request "
            "(beacon_max_filters)",
            field="filters",
        )
    return parsed


async def _beacon_request(request: Request) -> BeaconRequest:
    return await read_beacon_request(request, max_filters=_service(request).max_filters)


def _answer_document(
    request: Request, beacon_request: BeaconRequest, scope: PathScope
) -> dict[str, Any]:
    """The whole answer of an entry-type query (blocking: SQL, Zarr, numpy)."""
    service = _service(request)
    caller = caller_of(request)
    with filters.cpu_budget(service.filter_cpu_seconds):
        found = answer(
            service.catalog,
            beacon_request,
            scope,
            caller,
            threshold=service.count_threshold,
        )
    return result_response(
        found,
        caller=caller,
        meta=framework.informational_meta(service.identity),
        threshold=service.count_threshold,
    )


def _entry_handler(
    entry: str, *, with_id: bool, nested: str | None = None
) -> Callable[..., Awaitable[JSONResponse]]:
    target = nested or entry

    async def handler(request: Request) -> JSONResponse:
        beacon_request = await _beacon_request(request)
        entry_id = request.path_params.get("entry_id")
        if nested is not None:
            scope = PathScope(target, parent_type=entry, parent_id=entry_id)
        else:
            scope = PathScope(target, entry_id=entry_id if with_id else None)
        document = await run_blocking(
            request, _answer_document, request, beacon_request, scope
        )
        return json_response(document)

    return handler


def _filtering_terms_document(request: Request, with_id: bool) -> dict[str, Any]:
    service = _service(request)
    ids = [handle.id for handle in service.visible(caller_of(request))]
    if with_id:
        wanted = request.path_params["entry_id"]
        ids = [identifier for identifier in ids if identifier == wanted]
    with service.node.session() as session:
        terms, resources = filtering_terms(session, ids)
    return {
        "meta": framework.informational_meta(service.identity),
        "response": {"filteringTerms": terms, "resources": resources},
    }


def _filtering_terms_handler(
    entry: str | None, *, with_id: bool
) -> Callable[..., Awaitable[JSONResponse]]:
    async def handler(request: Request) -> JSONResponse:
        await _beacon_request(request)  # rejects unknown parameters
        document = await run_blocking(
            request, _filtering_terms_document, request, with_id
        )
        return json_response(document)

    return handler


Handler = Callable[..., Awaitable[JSONResponse]]


def _query_route(
    router: APIRouter, path: str, endpoint: Handler, name: str, summary: str
) -> None:
    """A route answering GET and POST (one OpenAPI operation each)."""
    # Handlers read the id from the path themselves; declare it for clients.
    extra = {"parameters": [_ENTRY_ID_PARAMETER]} if "{entry_id}" in path else None
    for method in ("GET", "POST"):
        router.add_api_route(
            path,
            endpoint,
            methods=[method],
            summary=summary,
            operation_id=f"{name}_{method.lower()}",
            openapi_extra=extra,
        )


_ENTRY_ID_PARAMETER = {
    "name": "entry_id",
    "in": "path",
    "required": True,
    "description": "The id of one entry (a dataset, cohort, individual...).",
    "schema": {"type": "string"},
}


def add_beacon_routes(
    router: APIRouter,
    *,
    info: Handler,
    service_info: Handler,
    configuration: Handler,
    beacon_map: Handler,
    entry_types: Handler,
    entry_handler: Callable[[str, bool, str | None], Handler],
    filtering_terms_handler: Callable[[str | None, bool], Handler],
    who: str = "Beacon",
    scope: str = "",
) -> None:
    """Declare every Beacon v2 route on ``router``: the one route table of a node
    (:func:`beacon_router`) and of the network, which answers the same API.

    ``entry_handler(entry, with_id, nested)`` and
    ``filtering_terms_handler(entry, with_id)`` make the query handlers; ``who``
    and ``scope`` only word the OpenAPI summaries.
    """
    router.add_api_route("", info, methods=["GET"], summary=f"{who} information")
    router.add_api_route("/", info, methods=["GET"], include_in_schema=False)
    router.add_api_route("/info", info, methods=["GET"], summary=f"{who} information")
    router.add_api_route(
        "/service-info", service_info, methods=["GET"], summary="GA4GH service-info"
    )
    router.add_api_route(
        "/configuration", configuration, methods=["GET"], summary="Configuration"
    )
    router.add_api_route("/map", beacon_map, methods=["GET"], summary="Beacon map")
    router.add_api_route(
        "/entry_types", entry_types, methods=["GET"], summary="Entry types"
    )
    _query_route(
        router,
        "/filtering_terms",
        filtering_terms_handler(None, False),
        "all_filtering_terms",
        f"Filtering terms of every dataset{scope}",
    )
    for entry in ENTRY_TYPES:
        _query_route(
            router,
            f"/{entry}",
            entry_handler(entry, False, None),
            f"{entry}_all",
            f"Query {entry}{scope}",
        )
        _query_route(
            router,
            f"/{entry}/filtering_terms",
            filtering_terms_handler(entry, False),
            f"{entry}_filtering_terms",
            f"Filtering terms for {entry}{scope}",
        )
        _query_route(
            router,
            f"/{entry}/{{entry_id}}",
            entry_handler(entry, True, None),
            f"{entry}_one",
            f"One of {entry} by id{scope}",
        )
        for nested in framework.NESTED.get(entry, ()):
            _query_route(
                router,
                f"/{entry}/{{entry_id}}/{nested}",
                entry_handler(entry, True, nested),
                f"{entry}_one_{nested}",
                f"{nested} of one of {entry}{scope}",
            )
        if entry in ("datasets", "cohorts"):
            _query_route(
                router,
                f"/{entry}/{{entry_id}}/filtering_terms",
                filtering_terms_handler(entry, True),
                f"{entry}_filtering_terms_one",
                f"Filtering terms of one of {entry}{scope}",
            )


def beacon_router() -> APIRouter:
    """Every Beacon v2 route, relative to the API root."""
    router = APIRouter(dependencies=[Depends(audited)])

    async def info(request: Request) -> JSONResponse:
        service = _service(request)

        def document() -> dict[str, Any]:
            summaries = service.summaries(caller_of(request))
            return framework.info_response(service.identity, summaries)

        return json_response(await run_blocking(request, document))

    async def service_info(request: Request) -> JSONResponse:
        return json_response(
            framework.service_info_response(_service(request).identity)
        )

    async def configuration(request: Request) -> JSONResponse:
        service = _service(request)

        def document() -> dict[str, Any]:
            # Only the levels of datasets this caller may query: listing
            # CONTROLLED to anyone would tell them that controlled data is here.
            visible = service.visible(caller_of(request))
            levels = sorted({handle.facts.security_level for handle in visible})
            return framework.configuration_response(service.identity, levels)

        return json_response(await run_blocking(request, document))

    async def beacon_map(request: Request) -> JSONResponse:
        return json_response(framework.map_response(_service(request).identity))

    async def entry_types(request: Request) -> JSONResponse:
        return json_response(framework.entry_types_response(_service(request).identity))

    add_beacon_routes(
        router,
        info=info,
        service_info=service_info,
        configuration=configuration,
        beacon_map=beacon_map,
        entry_types=entry_types,
        entry_handler=lambda entry, with_id, nested: _entry_handler(
            entry, with_id=with_id, nested=nested
        ),
        filtering_terms_handler=lambda entry, with_id: _filtering_terms_handler(
            entry, with_id=with_id
        ),
    )
    return router
