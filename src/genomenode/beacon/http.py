"""The Beacon v2 HTTP API: routes under ``/api``, GET and POST for every endpoint.

Each route is declared explicitly (one per entry type and nesting, by
:func:`add_beacon_routes`, the one route table the node and the network share) so
that the published OpenAPI (``/api/openapi.json``) lists every endpoint. The
handlers are module-level functions; what the app shares with them is
``app.state.beacon`` (a :class:`BeaconService`, read by :func:`beacon_service`),
and what a route's path names (entry type, id, nesting) is its
:class:`BeaconPath`, read from the matched route by the :func:`beacon_path`
dependency. Handlers are ``async`` only to read the request
(:func:`genomenode.web.body.read_json`, with the node's limits); the query itself
(SQL, Zarr, numpy, the passport check) runs in the thread pool
(:func:`genomenode.web.blocking.run_blocking`), so a slow per-person scan never
holds up a count query, and it stops when its client goes away. A request may
carry at most ``beacon_max_filters`` filters and spend
``beacon_filter_cpu_seconds`` expanding them. Scale out with ``genomenode serve
--workers``. Handlers carry no docstrings, which FastAPI would publish in the
OpenAPI.

Errors become Beacon error documents in the node's one error handler
(:mod:`genomenode.web`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from ..access import Caller, allowed_granularity
from ..access.callers import access_service, audited, caller_of
from ..access.decision import dataset_access
from ..disclosure.control import DisclosureControl
from ..disclosure.identity import client_address, identity_key
from ..errors import BeaconRequestError, TooManyRequests
from ..store.node import Node
from ..store.published import PublishedDatasets
from ..vocab import ontology
from ..web.blocking import run_blocking
from ..web.body import read_json
from ..web.openapi import answers, publish_openapi
from ..web.responses import json_response
from . import filters, framework, schemas
from .engine import COLLECTIONS, ENTRY_TYPES, Answer, PathScope, answer
from .entry_types import NESTED
from .filtering_terms import filtering_terms
from .guard import Guard
from .query import BeaconRequest
from .requests import GET_PARAMETERS, parse_get, parse_post
from .responses import result_response

__all__ = [
    "OPENAPI_SCHEMAS",
    "BeaconPath",
    "BeaconService",
    "Handler",
    "add_beacon_routes",
    "beacon_identity",
    "beacon_map",
    "beacon_path",
    "beacon_service",
    "budget_identity",
    "configuration",
    "entry_types",
    "info",
    "publish_beacon_openapi",
    "query_entries",
    "query_filtering_terms",
    "read_beacon_request",
    "router",
    "service_info",
]

#: A route handler.
Handler = Callable[..., Awaitable[JSONResponse]]


class BeaconService:
    """What the Beacon routes share (``app.state.beacon``): the node, its published
    datasets, identity and settings."""

    def __init__(
        self,
        node: Node,
        *,
        base_url: str,
        count_threshold: int = 5,
        environment: str = "dev",
        max_filters: int = 100,
        filter_cpu_seconds: float = 1.0,
        disclosure: DisclosureControl | None = None,
    ) -> None:
        self.node = node
        #: The node's disclosure layer (every count and yes/no passes it).
        self.disclosure = disclosure or DisclosureControl.off(count_threshold)
        self.max_filters = max_filters
        self.filter_cpu_seconds = filter_cpu_seconds
        self.published = PublishedDatasets(node)
        self.identity = framework.identity_from_node(
            node, base_url, environment=environment
        )
        self.count_threshold = count_threshold
        # Load HPO (about a second) while the server starts listening, rather than
        # before it listens or in the first request with a filter.
        ontology.load_hpo_in_background()

    def visible(self, caller: Caller) -> list[Any]:
        """Datasets the caller may query at all (others are never mentioned)."""
        return [
            handle
            for handle in self.published.datasets()
            if allowed_granularity(caller, dataset_access(handle)) is not None
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


def beacon_service(request: Request) -> BeaconService:
    """The Beacon of the node app answering ``request`` (``app.state.beacon``)."""
    service: BeaconService = request.app.state.beacon
    return service


def beacon_identity(request: Request) -> framework.BeaconIdentity:
    """Who answers ``request`` as a Beacon (``app.state.beacon.identity``): the node,
    or the network, which keeps its identity there too."""
    identity: framework.BeaconIdentity = request.app.state.beacon.identity
    return identity


@dataclasses.dataclass(frozen=True)
class BeaconPath:
    """What the path of a query route names, from the route's template (never from
    the URL) and its ``entry_id``.

    ``/individuals`` is ``BeaconPath("individuals")``; ``/individuals/{entry_id}``
    adds the id; ``/individuals/{entry_id}/g_variants`` adds the ``tail``
    ``"g_variants"``; ``/datasets/filtering_terms`` has the tail
    ``"filtering_terms"`` and ``/filtering_terms`` no entry at all.
    """

    entry: str | None
    entry_id: str | None = None
    tail: str | None = None

    def scope(self) -> PathScope:
        """What an entry-type query asks for (a nested path: the nested type)."""
        if self.entry is None:
            raise ValueError("the node-wide filtering terms are no entry-type query")
        if self.tail is not None:
            return PathScope(self.tail, parent_type=self.entry, parent_id=self.entry_id)
        return PathScope(self.entry, entry_id=self.entry_id)


async def beacon_path(request: Request) -> BeaconPath:
    """Route dependency: the :class:`BeaconPath` of the matched route.

    ``async`` though it awaits nothing: FastAPI runs a plain ``def`` dependency
    in a thread, which costs more than the work.
    """
    # The route's template, e.g. "/datasets/{entry_id}/g_variants" (with the
    # router's prefix or without: it is read from the end).
    parts = [part for part in request.scope["route"].path_format.split("/") if part]
    tail = None
    if parts and (
        parts[-1] == "filtering_terms" or (len(parts) > 2 and parts[-2] == "{entry_id}")
    ):
        tail = parts.pop()
    entry_id = None
    if parts and parts[-1] == "{entry_id}":
        parts.pop()
        entry_id = request.path_params["entry_id"]
    entry = parts[-1] if parts and parts[-1] in ENTRY_TYPES else None
    return BeaconPath(entry, entry_id, tail)


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
    return await read_beacon_request(
        request, max_filters=beacon_service(request).max_filters
    )


# -- the node's handlers --------------------------------------------------------


async def info(request: Request) -> JSONResponse:
    async with audited(request):
        document = await run_blocking(request, _info_document, request)
    return json_response(document)


async def configuration(request: Request) -> JSONResponse:
    async with audited(request):
        document = await run_blocking(request, _configuration_document, request)
    return json_response(document)


async def query_entries(
    request: Request, path: Annotated[BeaconPath, Depends(beacon_path)]
) -> JSONResponse:
    async with audited(request):
        beacon_request = await _beacon_request(request)
        document = await run_blocking(
            request, _answer_document, request, beacon_request, path.scope()
        )
    return json_response(document)


async def query_filtering_terms(
    request: Request, path: Annotated[BeaconPath, Depends(beacon_path)]
) -> JSONResponse:
    async with audited(request):
        await _beacon_request(request)  # rejects unknown parameters
        document = await run_blocking(
            request, _filtering_terms_document, request, path.entry_id
        )
    return json_response(document)


def _info_document(request: Request) -> dict[str, Any]:
    service = beacon_service(request)
    summaries = service.summaries(caller_of(request))
    return framework.info_response(service.identity, summaries)


def _configuration_document(request: Request) -> dict[str, Any]:
    service = beacon_service(request)
    # Only the levels of datasets this caller may query: listing CONTROLLED to
    # anyone would tell them that controlled data is here.
    visible = service.visible(caller_of(request))
    levels = sorted({handle.facts.security_level for handle in visible})
    return framework.configuration_response(service.identity, levels)


def _answer_document(
    request: Request, beacon_request: BeaconRequest, scope: PathScope
) -> dict[str, Any]:
    """The whole answer of an entry-type query (blocking: SQL, Zarr, numpy)."""
    service = beacon_service(request)
    caller = caller_of(request)
    guard = Guard(
        service.disclosure,
        identity=budget_identity(request),
        caller=caller,
        question=(beacon_request, scope),
    )
    with filters.cpu_budget(service.filter_cpu_seconds):
        found = answer(service.published, beacon_request, scope, caller, guard=guard)
    _withheld(request, found, guard)
    return result_response(
        found,
        caller=caller,
        meta=framework.informational_meta(service.identity),
        disclosure=service.disclosure,
    )


def budget_identity(request: Request) -> str:
    """The key the caller's disclosure budget is kept under
    (:func:`~genomenode.disclosure.identity.identity_key`): the passport's issuer
    and subject, else the client address (by the trusted-proxy rule), or the
    client a trusted network vouched for in its signed assertion."""
    caller_of(request)
    identity = getattr(request.state, "identity", None)
    network = getattr(request.state, "network", None)
    service = beacon_service(request)
    peer = request.client.host if request.client is not None else None
    return identity_key(
        subject=getattr(identity, "subject", None),
        issuer=getattr(identity, "issuer", None),
        client=client_address(
            peer,
            request.headers.get("x-forwarded-for"),
            service.disclosure.settings.trusted_proxies,
        ),
        network=getattr(network, "network", None),
        relayed_client=getattr(network, "client", None),
    )


def _withheld(request: Request, found: Answer, guard: Guard) -> None:
    """Audit what disclosure control withheld (budget, errors, the subset rule,
    rare alleles answered as absent); 429 when the budget withheld the answer of
    every dataset that would have answered."""
    reasons = set(found.withheld_datasets.values())
    if found.suppressed_datasets:
        reasons.add("subset")
    if guard.hidden:
        reasons.add("rare-allele")
    if not reasons:
        return
    access = access_service(request)
    caller = caller_of(request)
    if access is not None:
        details: dict[str, Any] = {"datasets": dict(found.withheld_datasets)}
        if found.suppressed_datasets:
            details["subset"] = list(found.suppressed_datasets)
        if guard.hidden:
            details["rare_alleles"] = dict(guard.hidden)
        access.audit.record(
            actor=caller.subject or "anonymous",
            action="disclosure withheld",
            outcome="withhold",
            reason=", ".join(sorted(reasons)),
            details=details,
        )
    if not found.withheld_datasets:
        return
    budget_only = set(found.withheld_datasets.values()) == {"budget"}
    if budget_only and not found.datasets:
        raise TooManyRequests(
            "the disclosure budget of this caller for "
            + ", ".join(sorted(found.withheld_datasets))
            + f" is spent; retry in {found.retry_after} s (docs/privacy.md)",
            retry_after_seconds=found.retry_after,
        )


def _filtering_terms_document(
    request: Request, dataset_id: str | None
) -> dict[str, Any]:
    """The filtering terms of the visible datasets (only ``dataset_id``, if given)."""
    service = beacon_service(request)
    ids = [handle.id for handle in service.visible(caller_of(request))]
    if dataset_id is not None:
        ids = [identifier for identifier in ids if identifier == dataset_id]
    with service.node.session() as session:
        terms, resources = filtering_terms(session, ids)
    return {
        "meta": framework.informational_meta(service.identity),
        "response": {"filteringTerms": terms, "resources": resources},
    }


# -- handlers the node and the network share --------------------------------------


async def service_info(request: Request) -> JSONResponse:
    return json_response(framework.service_info_response(beacon_identity(request)))


async def beacon_map(request: Request) -> JSONResponse:
    return json_response(framework.map_response(beacon_identity(request)))


async def entry_types(request: Request) -> JSONResponse:
    return json_response(framework.entry_types_response(beacon_identity(request)))


# -- the route table ------------------------------------------------------------


# -- the OpenAPI of the routes ----------------------------------------------------

#: The official schemas the Beacon operations reference (by name, see
#: :func:`~genomenode.beacon.schemas.openapi_components`).
OPENAPI_SCHEMAS = (*schemas.RESPONSE_SCHEMAS, "beaconRequestBody")


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{schemas.openapi_name(name)}"}


_ENTRY_ID_PARAMETER = {
    "name": "entry_id",
    "in": "path",
    "required": True,
    "description": "The id of one entry (a dataset, cohort, individual...).",
    "schema": {"type": "string"},
}

_COUNT = {"type": "integer", "minimum": 0}
_IDS = {"type": "array", "items": {"type": "string"}}
#: The schema of each GET parameter; any other is a string.
_GET_SCHEMAS: dict[str, dict[str, Any]] = {
    "skip": _COUNT,
    "limit": _COUNT,
    "variantMinLength": _COUNT,
    "variantMaxLength": _COUNT,
    "start": {"type": "array", "items": _COUNT, "maxItems": 2},
    "end": {"type": "array", "items": _COUNT, "maxItems": 2},
    "filters": _IDS,
    "requestedSchema": _IDS,
    "requestedSchemas": _IDS,
    "requestedGranularity": {"enum": ["boolean", "count", "record"]},
    "includeResultsetResponses": {"enum": ["HIT", "MISS", "ALL", "NONE"]},
    "testMode": {"type": "boolean"},
}


def _get_parameters() -> list[dict[str, Any]]:
    """The query parameters of a Beacon GET (those :func:`parse_get` reads)."""
    return [
        {
            "name": name,
            "in": "query",
            "required": False,
            # Lists are repeated (form style, exploded: filters=a&filters=b);
            # the node reads commas too (filters=a,b).
            "schema": _GET_SCHEMAS.get(name, {"type": "string"}),
        }
        for name in sorted(GET_PARAMETERS)
    ]


def _query_route(
    router: APIRouter,
    path: str,
    endpoint: Handler,
    name: str,
    summary: str,
    answer: dict[str, Any],
) -> None:
    """A route answering GET and POST (one OpenAPI operation each): the query
    in the query string or in a ``beaconRequestBody``, the 200 ``answer``."""
    # Handlers read the id through beacon_path; declare it for clients.
    path_parameters = [_ENTRY_ID_PARAMETER] if "{entry_id}" in path else []
    for method in ("GET", "POST"):
        extra: dict[str, Any] = {**answer}
        if method == "GET":
            extra["parameters"] = [*path_parameters, *_get_parameters()]
        else:
            extra["parameters"] = path_parameters
            extra["requestBody"] = {
                "required": False,
                "content": {"application/json": {"schema": _ref("beaconRequestBody")}},
            }
        router.add_api_route(
            path,
            endpoint,
            methods=[method],
            summary=summary,
            operation_id=f"{name}_{method.lower()}",
            openapi_extra=extra,
        )


def _entries_answer(collections: bool) -> dict[str, Any]:
    """The 200 of an entry-type query: boolean, count, or records."""
    records = "beaconCollectionsResponse" if collections else "beaconResultsetsResponse"
    return answers(
        "The answer, at the returned granularity",
        {
            "anyOf": [
                _ref("beaconBooleanResponse"),
                _ref("beaconCountResponse"),
                _ref(records),
            ]
        },
    )


_FILTERING_TERMS = answers("The filtering terms", _ref("beaconFilteringTermsResponse"))


def publish_beacon_openapi(app: FastAPI) -> None:
    """Publish ``app``'s OpenAPI with the official Beacon schemas the Beacon
    operations reference, and Beacon error documents under ``/api`` (the node's
    and the network's)."""
    publish_openapi(
        app,
        components=schemas.openapi_components(OPENAPI_SCHEMAS),
        errors={"/api": _ref("beaconErrorResponse")},
    )


def add_beacon_routes(
    router: APIRouter,
    *,
    info: Handler,
    configuration: Handler,
    query_entries: Handler,
    query_filtering_terms: Handler,
    who: str = "Beacon",
    scope: str = "",
) -> None:
    """Declare every Beacon v2 route on ``router``: the one route table of a node
    (:data:`router`) and of the network, which answers the same API.

    ``query_entries`` answers every entry-type path and ``query_filtering_terms``
    every filtering-terms path (each reads its :class:`BeaconPath` through
    :func:`beacon_path`); ``/service-info``, ``/map`` and ``/entry_types`` are
    this module's own handlers, which describe ``app.state.beacon.identity``.
    ``who`` and ``scope`` only word the OpenAPI summaries.
    """
    info_answer = answers(f"{who} information", _ref("beaconInfoResponse"))
    router.add_api_route(
        "",
        info,
        methods=["GET"],
        summary=f"{who} information",
        openapi_extra=info_answer,
    )
    router.add_api_route("/", info, methods=["GET"], include_in_schema=False)
    router.add_api_route(
        "/info",
        info,
        methods=["GET"],
        summary=f"{who} information",
        openapi_extra=info_answer,
    )
    for path, handler, summary, schema in (
        (
            "/service-info",
            service_info,
            "GA4GH service-info",
            "ga4gh-service-info-1-0-0-schema",
        ),
        (
            "/configuration",
            configuration,
            "Configuration",
            "beaconConfigurationResponse",
        ),
        ("/map", beacon_map, "Beacon map", "beaconMapResponse"),
        ("/entry_types", entry_types, "Entry types", "beaconEntryTypesResponse"),
    ):
        router.add_api_route(
            path,
            handler,
            methods=["GET"],
            summary=summary,
            openapi_extra=answers(summary, _ref(schema)),
        )
    _query_route(
        router,
        "/filtering_terms",
        query_filtering_terms,
        "all_filtering_terms",
        f"Filtering terms of every dataset{scope}",
        _FILTERING_TERMS,
    )
    for entry in ENTRY_TYPES:
        answer = _entries_answer(entry in COLLECTIONS)
        _query_route(
            router,
            f"/{entry}",
            query_entries,
            f"{entry}_all",
            f"Query {entry}{scope}",
            answer,
        )
        _query_route(
            router,
            f"/{entry}/filtering_terms",
            query_filtering_terms,
            f"{entry}_filtering_terms",
            f"Filtering terms for {entry}{scope}",
            _FILTERING_TERMS,
        )
        _query_route(
            router,
            f"/{entry}/{{entry_id}}",
            query_entries,
            f"{entry}_one",
            f"One of {entry} by id{scope}",
            answer,
        )
        for nested in NESTED.get(entry, ()):
            _query_route(
                router,
                f"/{entry}/{{entry_id}}/{nested}",
                query_entries,
                f"{entry}_one_{nested}",
                f"{nested} of one of {entry}{scope}",
                _entries_answer(nested in COLLECTIONS),
            )
        if entry in COLLECTIONS:
            _query_route(
                router,
                f"/{entry}/{{entry_id}}/filtering_terms",
                query_filtering_terms,
                f"{entry}_filtering_terms_one",
                f"Filtering terms of one of {entry}{scope}",
                _FILTERING_TERMS,
            )


#: Every Beacon v2 route of the node, relative to the API root (mount with
#: ``prefix="/api"``); each handler audits its request's access decisions
#: (:func:`~genomenode.access.callers.audited`).
router = APIRouter()
add_beacon_routes(
    router,
    info=info,
    configuration=configuration,
    query_entries=query_entries,
    query_filtering_terms=query_filtering_terms,
)
