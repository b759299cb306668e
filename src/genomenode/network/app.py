"""The network aggregator's ASGI app: the nodes' Beacon v2 API as one.

Every Beacon route a node serves (``genomenode.beacon.http``) is served here under
``/api``, GET and POST: an entry-type request is parsed (a malformed one gets the
400 here, without asking anyone), sent unchanged with the caller's passport to
every registered node (:func:`~genomenode.network.fanout.fan_out`) and the answers
are merged (:mod:`~genomenode.network.merge`). Framework documents describe the
network itself. ``GET /network/status`` reports when each node last answered, and
``/catalogue`` serves the nodes' DCAT catalogues, harvested every five minutes
(:mod:`genomenode.catalogue.harvest`).

Errors raised by routes become Beacon error documents in the node's one error
handler (:mod:`genomenode.web`), as documents of the network's Beacon identity.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import os
import pathlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx2
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from genomenode import __version__
from genomenode.beacon import framework
from genomenode.beacon.http import add_beacon_routes
from genomenode.beacon.query import BeaconRequest
from genomenode.beacon.requests import parse_get, parse_post
from genomenode.beacon.responses import received_request_summary
from genomenode.catalogue.harvest import (
    CatalogueSource,
    Harvester,
    catalogue_network_router,
)
from genomenode.errors import ConfigError
from genomenode.web import install_error_handlers, read_json

from ..access.network_trust import NetworkSigner
from . import merge
from .fanout import NodeAnswer, fan_out, probe_nodes
from .registry import Registry, load_registry

__all__ = [
    "NETWORK_ENVIRONMENT_VARIABLE",
    "app_from_environment",
    "create_network_app",
    "network_status",
    "new_client",
]

#: Names the NETWORK.yaml that ``genomenode network serve`` hands its workers.
NETWORK_ENVIRONMENT_VARIABLE = "GENOMENODE_NETWORK"
_JSON = "application/json"
#: How often the network re-harvests the nodes' DCAT catalogues.
CATALOGUE_HARVEST_INTERVAL_SECONDS = 300.0


@dataclasses.dataclass(frozen=True)
class _NetworkBeacon:
    """What the shared error handler needs of the Beacon answering: its identity."""

    identity: framework.BeaconIdentity


def new_client(registry: Registry) -> httpx2.AsyncClient:
    """The pooled client a network app shares across all its requests.

    The client's own timeout is a backstop a little beyond the per-node timeout
    that :func:`fan_out` enforces (and that cancels the request).
    """
    num_nodes = max(len(registry.nodes), 1)
    return httpx2.AsyncClient(
        timeout=httpx2.Timeout(registry.timeout_seconds + 1.0),
        limits=httpx2.Limits(
            max_connections=64 * num_nodes, max_keepalive_connections=16 * num_nodes
        ),
        follow_redirects=False,
    )


def _json(document: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(document, status_code=status, media_type=_JSON)


async def _parsed(request: Request) -> tuple[BeaconRequest, bytes | None]:
    if request.method == "POST":
        body = await read_json(request, empty={})
        return parse_post(body), request.state.body_bytes
    params: dict[str, str | list[str]] = {}
    for key in request.query_params:
        values = request.query_params.getlist(key)
        params[key] = values if len(values) > 1 else values[0]
    return parse_get(params), None


async def _ask_nodes(
    request: Request, path: str, body: bytes | None = None
) -> list[NodeAnswer]:
    registry: Registry = request.app.state.registry
    answers = await fan_out(
        registry.nodes,
        request.method,
        path,
        params=list(request.query_params.multi_items()) or None,
        body=body,
        headers=request.headers,
        timeout_seconds=registry.timeout_seconds,
        client=request.app.state.client,
        signer=request.app.state.signer,
    )
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    last_seen: dict[str, str] = request.app.state.last_seen
    for answer in answers:
        # A node that answered with a Beacon document (even a refusal) is up.
        if answer.document is not None:
            last_seen[answer.node.id] = now
    return answers


def _path_of(request: Request) -> str:
    return request.url.path.removeprefix("/api").strip("/")


def _entry_handler(endpoint: str) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def handler(request: Request) -> JSONResponse:
        registry: Registry = request.app.state.registry
        beacon_request, body = await _parsed(request)
        summary = received_request_summary(beacon_request, framework.API_VERSION)
        answers = await _ask_nodes(request, _path_of(request), body)
        status, document = merge.merge_results(
            registry, answers, endpoint=endpoint, summary=summary
        )
        return _json(document, status)

    return handler


async def _filtering_terms(request: Request) -> JSONResponse:
    _, body = await _parsed(request)  # refuses unknown parameters here
    answers = await _ask_nodes(request, _path_of(request), body)
    return _json(merge.merge_filtering_terms(request.app.state.registry, answers))


def network_beacon_router() -> APIRouter:
    """Every Beacon v2 route of a node, answered by the network."""
    router = APIRouter()

    async def info(request: Request) -> JSONResponse:
        answers = await _ask_nodes(request, "info")
        return _json(merge.merge_info(request.app.state.registry, answers))

    async def service_info(request: Request) -> JSONResponse:
        identity = request.app.state.beacon.identity
        return _json(framework.service_info_response(identity))

    async def configuration(request: Request) -> JSONResponse:
        answers = await _ask_nodes(request, "configuration")
        return _json(merge.merge_configuration(request.app.state.registry, answers))

    async def beacon_map(request: Request) -> JSONResponse:
        return _json(framework.map_response(request.app.state.beacon.identity))

    async def entry_types(request: Request) -> JSONResponse:
        return _json(framework.entry_types_response(request.app.state.beacon.identity))

    add_beacon_routes(
        router,
        info=info,
        service_info=service_info,
        configuration=configuration,
        beacon_map=beacon_map,
        entry_types=entry_types,
        # A nested path asks for the nested entry type, merged as such.
        entry_handler=lambda entry, _with_id, nested: _entry_handler(nested or entry),
        filtering_terms_handler=lambda _entry, _with_id: _filtering_terms,
        who="Network",
        scope=", on every node",
    )
    return router


def network_status_router() -> APIRouter:
    """``GET /network/status``: each node and when it last answered this network."""
    router = APIRouter()

    async def status(request: Request) -> JSONResponse:
        registry: Registry = request.app.state.registry
        last_seen: dict[str, str] = request.app.state.last_seen
        return _json(
            {
                "networkId": registry.network_id,
                "nodes": [
                    {
                        "id": node.id,
                        "country": node.country,
                        "url": node.url,
                        "lastSeen": last_seen.get(node.id),
                    }
                    for node in registry.nodes
                ],
            }
        )

    router.add_api_route("/status", status, methods=["GET"], summary="Node status")
    return router


def create_network_app(
    registry: Registry,
    *,
    client: httpx2.AsyncClient | None = None,
    signer: NetworkSigner | None = None,
) -> FastAPI:
    """The ASGI app of a Beacon network over the registry's nodes.

    Parameters
    ----------
    registry
        The network and its nodes (``load_registry("NETWORK.yaml")``).
    client
        The client to ask nodes with (tests pass one over a mock or ASGI
        transport); by default one pooled client is created for the app's
        lifetime and closed when it shuts down. A client passed in stays the
        caller's to close.
    signer
        Signs every request forwarded to a node (``GA4GH-Network-Assertion``);
        its public keys are served at ``/.well-known/jwks.json`` for the nodes'
        ``trusted_networks`` setting. None: requests go unsigned.

    Returns
    -------
    FastAPI
        ``app.state.registry``, ``app.state.client``, ``app.state.harvester``
        and ``app.state.last_seen`` (node id → ISO time of its last answer) are
        set.
    """
    owned = client is None
    shared = client if client is not None else new_client(registry)

    harvester = Harvester(
        [
            CatalogueSource(node_id=node.id, country=node.country, url=node.url)
            for node in registry.nodes
        ],
        timeout_seconds=registry.timeout_seconds,
        client=shared,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        harvesting = asyncio.create_task(
            harvester.run_periodically(CATALOGUE_HARVEST_INTERVAL_SECONDS)
        )
        try:
            yield
        finally:
            harvesting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await harvesting
            if owned:
                await shared.aclose()

    app = FastAPI(
        lifespan=lifespan,
        title=f"genomenode network {registry.network_id}",
        version=__version__,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.registry = registry
    app.state.client = shared
    app.state.last_seen = {}
    app.state.beacon = _NetworkBeacon(merge.network_identity(registry))
    app.include_router(network_beacon_router(), prefix="/api")
    app.include_router(network_status_router(), prefix="/network")
    app.state.harvester = harvester
    app.state.signer = signer
    app.include_router(catalogue_network_router(harvester))

    async def jwks() -> dict[str, Any]:
        return signer.jwks() if signer is not None else {"keys": []}

    app.add_api_route(
        "/.well-known/jwks.json", jwks, methods=["GET"], summary="Network signing keys"
    )
    identity = app.state.beacon.identity
    install_error_handlers(
        app,
        {
            "/api": lambda status, message: framework.error_response(
                identity, status, message
            )
        },
    )
    return app


async def network_status(
    registry: Registry, *, client: httpx2.AsyncClient | None = None
) -> list[dict[str, Any]]:
    """Probe every node now; add when the running network last heard from it.

    Parameters
    ----------
    registry
        The network.
    client
        The client to use (default: a fresh one, closed afterwards).

    Returns
    -------
    list of dict
        :func:`~genomenode.network.fanout.probe_nodes` rows plus ``lastSeen``: from
        the network's ``/network/status`` at its ``public_url`` when it answers,
        else the time of this probe for the nodes that answered it (``None`` for
        the others).
    """
    owned = client is None
    client = client if client is not None else new_client(registry)
    try:
        rows = await probe_nodes(
            registry.nodes, timeout_seconds=registry.timeout_seconds, client=client
        )
        network_seen: dict[str, Any] = {}
        try:
            response = await client.get(
                f"{registry.public_url}/network/status",
                timeout=min(registry.timeout_seconds, 2.0),
            )
            listed = response.json().get("nodes", []) if response.is_success else []
            network_seen = {
                item["id"]: item.get("lastSeen")
                for item in listed
                if isinstance(item, dict) and "id" in item
            }
        except (httpx2.HTTPError, ValueError, AttributeError):
            network_seen = {}  # the network is not running: this probe is all we know
    finally:
        if owned:
            await client.aclose()
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    for row in rows:
        probed = now if row["status"] in ("ok", "error") and row["reachable"] else None
        row["lastSeen"] = network_seen.get(row["id"]) or probed
    return rows


def app_from_environment() -> FastAPI:
    """The network app of ``$GENOMENODE_NETWORK`` (uvicorn factory, per worker)."""
    path = os.environ.get(NETWORK_ENVIRONMENT_VARIABLE)
    if not path:
        raise ConfigError(
            f"{NETWORK_ENVIRONMENT_VARIABLE} is not set: which NETWORK.yaml?"
        )
    registry = load_registry(path)
    # The network's signing keys live beside its registry (rotatable, 0600).
    signer = NetworkSigner(
        pathlib.Path(path).resolve().parent / "network-keys", issuer=registry.public_url
    )
    return create_network_app(registry, signer=signer)
