"""The network aggregator's ASGI app: the nodes' Beacon v2 API as one.

Every Beacon route a node serves (``genomenode.beacon.http``) is served here under
``/api``, GET and POST: an entry-type request is parsed (a malformed one gets the
400 here, without asking anyone), sent unchanged with the caller's passport to
every registered node (:func:`~genomenode.network.fanout.fan_out`) and the answers
are merged (:mod:`~genomenode.network.merge`). Framework documents describe the
network itself. ``GET /network/status`` reports when each node last answered, and
``/catalogue`` serves the nodes' DCAT catalogues, harvested every five minutes
(:mod:`genomenode.catalogue.harvest`).

Everything the caller controls is checked before any node is asked (a 400, or
413 for a body over ``max_body_bytes``): entry ids in the path, the query string,
the body, the ``Authorization`` header. The path asked of the nodes is built from
the route, never copied from the URL. A node whose circuit breaker is open is not
asked (:mod:`~genomenode.network.breaker`), and when the caller disconnects the
fan-out is cancelled (:func:`genomenode.web.cancel_on_disconnect`).
Each forwarded query is answered through one function, ``_forwarded``, which
records it in ``app.state.audit`` when the app has an audit writer.

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
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol
from urllib.parse import quote

import httpx2
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from genomenode import __version__
from genomenode.beacon import framework
from genomenode.beacon.http import add_beacon_routes, read_beacon_request
from genomenode.beacon.query import BeaconRequest
from genomenode.beacon.responses import received_request_summary
from genomenode.catalogue import http as catalogue_http
from genomenode.catalogue.harvest import CatalogueSource, Harvester
from genomenode.catalogue.http import HarvestGate
from genomenode.config import Secret
from genomenode.errors import BeaconRequestError, ClientDisconnected, ConfigError
from genomenode.web import (
    HttpLimits,
    cancel_on_disconnect,
    install_error_handlers,
    json_response,
)

from ..access import jws
from ..access.network_trust import NetworkSigner
from . import merge
from .audit import open_network_audit
from .breaker import Breakers
from .fanout import NodeAnswer, PerOriginTransport, fan_out, probe_nodes
from .registry import MIN_OPERATOR_TOKEN_LENGTH, Registry, load_registry

__all__ = [
    "MAX_AUTHORIZATION_BYTES",
    "MAX_ENTRY_ID_LENGTH",
    "NETWORK_ENVIRONMENT_VARIABLE",
    "OPERATOR_TOKEN_ENVIRONMENT_VARIABLE",
    "NetworkAudit",
    "app_from_environment",
    "create_network_app",
    "network_status",
    "new_client",
    "operator_token_from_environment",
]

#: Most filters in one request (a node's ``beacon_max_filters`` default).
MAX_FILTERS = 100
#: A database URL for the network's audit log (default: SQLite beside NETWORK.yaml).
AUDIT_DB_URL_ENVIRONMENT_VARIABLE = "GENOMENODE_NETWORK_AUDIT_DB_URL"
#: Names the NETWORK.yaml that ``genomenode network serve`` hands its workers.
NETWORK_ENVIRONMENT_VARIABLE = "GENOMENODE_NETWORK"
#: The operator token for on-demand harvests; wins over NETWORK.yaml's.
OPERATOR_TOKEN_ENVIRONMENT_VARIABLE = "GENOMENODE_NETWORK_OPERATOR_TOKEN"
#: The longest entry id in a path the network forwards.
MAX_ENTRY_ID_LENGTH = 256
#: The longest ``Authorization`` header (a passport with its visas) forwarded.
MAX_AUTHORIZATION_BYTES = 64 * 1024
# Unreserved URI characters and a few more that ids use; never "/" or "%".
_ENTRY_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._~:@+=-]*")
# Printable ASCII without space and "#": what a query string may hold unencoded.
_QUERY = re.compile(rb"[\x21-\x22\x24-\x7e]*")
_HEADER_VALUE = re.compile(rb"[\x20-\x7e]*")
#: How often the network re-harvests the nodes' DCAT catalogues.
CATALOGUE_HARVEST_INTERVAL_SECONDS = 300.0


class NetworkAudit(Protocol):
    """What the network needs of an audit writer (``AuditWriter.record``)."""

    def record(
        self,
        *,
        actor: str,
        action: str,
        outcome: str,
        reason: str,
        details: dict[str, Any] | None = None,
    ) -> None: ...


@dataclasses.dataclass(frozen=True)
class _NetworkBeacon:
    """What the shared error handler needs of the Beacon answering: its identity."""

    identity: framework.BeaconIdentity


def new_client(registry: Registry) -> httpx2.AsyncClient:
    """The pooled client a network app shares across all its requests.

    One pool per node, of at most ``max_connections_per_node`` connections
    (:class:`~genomenode.network.fanout.PerOriginTransport`). The client's own
    timeout is a backstop a little beyond the per-node timeout that
    :func:`fan_out` enforces (and that cancels the request).
    """
    per_node = registry.max_connections_per_node
    limits = httpx2.Limits(max_connections=per_node, max_keepalive_connections=per_node)
    return httpx2.AsyncClient(
        timeout=httpx2.Timeout(registry.timeout_seconds + 1.0),
        limits=limits,
        transport=PerOriginTransport(limits),
        follow_redirects=False,
    )


# -- what the caller controls, checked before any node is asked ---------------


def _entry_id(request: Request) -> str:
    """The path's entry id, if it is one a node could have (else a 400)."""
    value: str = request.path_params["entry_id"]
    # The path is percent-decoded by now: "%2e%2e" is "..", "%2F" is "/".
    if len(value) > MAX_ENTRY_ID_LENGTH:
        raise BeaconRequestError(
            f"is {len(value)} characters long; at most {MAX_ENTRY_ID_LENGTH}",
            field="entry id",
        )
    if not _ENTRY_ID.fullmatch(value) or value in (".", ".."):
        raise BeaconRequestError(
            f"{value[:64]!r} is not an entry id: letters, digits and . _ ~ : @ + = - "
            "only, starting with a letter, digit or _",
            field="entry id",
        )
    return value


def _query(request: Request) -> str:
    """The query string to forward as sent: bounded, printable ASCII."""
    raw: bytes = request.scope.get("query_string", b"")
    registry: Registry = request.app.state.registry
    if len(raw) > registry.max_query_bytes:
        raise BeaconRequestError(
            f"is {len(raw)} bytes long; this network takes at most "
            f"{registry.max_query_bytes}",
            field="query string",
        )
    if not _QUERY.fullmatch(raw):
        raise BeaconRequestError(
            "has characters that must be percent-encoded (spaces, controls, non-ASCII)",
            field="query string",
        )
    return raw.decode("ascii")


def _check_authorization(request: Request) -> None:
    """The passport is forwarded as is: it must be one a node can be sent."""
    for name, value in request.headers.raw:
        if name.lower() != b"authorization":
            continue
        # Never repeat the value: it is a credential.
        if len(value) > MAX_AUTHORIZATION_BYTES:
            raise BeaconRequestError(
                f"is {len(value)} bytes long; at most {MAX_AUTHORIZATION_BYTES}",
                field="Authorization",
            )
        if not _HEADER_VALUE.fullmatch(value):
            raise BeaconRequestError("must be printable ASCII", field="Authorization")


async def _parsed(request: Request) -> tuple[BeaconRequest, bytes | None, str]:
    """The request as the network understands it (or a 400), the body and the
    query string to forward."""
    query = _query(request)
    _check_authorization(request)
    # Too many filters are refused here rather than fanned out for every node to
    # refuse.
    parsed = await read_beacon_request(request, max_filters=MAX_FILTERS)
    raw = request.state.body_bytes if request.method == "POST" else None
    return parsed, raw, query


# -- asking the nodes ---------------------------------------------------------


async def _ask_nodes(
    request: Request, path: str, body: bytes | None = None, query: str = ""
) -> list[NodeAnswer]:
    registry: Registry = request.app.state.registry
    asking = fan_out(
        registry.nodes,
        request.method,
        path,
        query=query,
        body=body,
        headers=request.headers,
        timeout_seconds=registry.timeout_seconds,
        client=request.app.state.client,
        signer=request.app.state.signer,
        breakers=request.app.state.breakers,
    )
    try:
        # Starlette would let the fan-out run on for a caller who has gone.
        answers = await cancel_on_disconnect(request, asking)
    except ClientDisconnected:
        _audit(request, path, [], outcome="cancelled", reason="the caller went away")
        raise
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    last_seen: dict[str, str] = request.app.state.last_seen
    for answer in answers:
        # A node that answered with a Beacon document (even a refusal) is up.
        if answer.document is not None:
            last_seen[answer.node.id] = now
    return answers


def _actor(request: Request) -> str:
    """Who the passport says the caller is (``sub``), or ``anonymous``.

    Read without verifying: the network holds no trust in brokers; each node
    verifies the passport itself, and its audit log names the verified caller.
    """
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return "anonymous"
    peeked = jws.peek(token.strip())
    if peeked is None:
        return "unknown"
    subject = peeked[1].get("sub")
    return subject if isinstance(subject, str) and subject else "unknown"


def _audit(
    request: Request,
    path: str,
    answers: Sequence[NodeAnswer],
    *,
    outcome: str,
    reason: str,
) -> None:
    """One entry in the network's audit log (``app.state.audit``, if set)."""
    audit = getattr(request.app.state, "audit", None)
    if audit is None:
        return
    audit.record(
        actor=_actor(request),
        action=f"{request.method} /api/{path}".rstrip("/"),
        outcome=outcome,
        reason=reason,
        details={
            "nodes": {answer.node.id: answer.status for answer in answers},
            "actor_verified": False,
        },
    )


def _forwarded(
    request: Request,
    path: str,
    answers: Sequence[NodeAnswer],
    status: int,
    document: dict[str, Any],
) -> JSONResponse:
    """The answer to a forwarded query: audited here, once, then sent."""
    answered = sum(answer.status == "ok" for answer in answers)
    if status < 400:
        outcome = "ok"
    elif status < 500:
        outcome = "refused"
    else:
        outcome = "error"
    _audit(
        request,
        path,
        answers,
        outcome=outcome,
        reason=f"HTTP {status}; {answered} of {len(answers)} nodes answered",
    )
    return json_response(document, status)


def _forwarded_path(
    request: Request, entry: str | None, with_id: bool, tail: str | None
) -> str:
    """The path asked of the nodes, from the route's parts (never the raw URL)."""
    parts = [entry] if entry else []
    if with_id:
        parts.append(quote(_entry_id(request), safe=""))
    if tail:
        parts.append(tail)
    return "/".join(parts)


def _entry_handler(
    entry: str, with_id: bool, nested: str | None
) -> Callable[[Request], Awaitable[JSONResponse]]:
    endpoint = nested or entry  # a nested path asks for the nested entry type

    async def handler(request: Request) -> JSONResponse:
        registry: Registry = request.app.state.registry
        path = _forwarded_path(request, entry, with_id, nested)
        beacon_request, body, query = await _parsed(request)
        summary = received_request_summary(beacon_request, framework.API_VERSION)
        answers = await _ask_nodes(request, path, body, query)
        status, document = merge.merge_results(
            registry, answers, endpoint=endpoint, summary=summary
        )
        return _forwarded(request, path, answers, status, document)

    return handler


def _filtering_terms_handler(
    entry: str | None, with_id: bool
) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def handler(request: Request) -> JSONResponse:
        path = _forwarded_path(request, entry, with_id, "filtering_terms")
        _, body, query = await _parsed(request)  # refuses unknown parameters here
        answers = await _ask_nodes(request, path, body, query)
        document = merge.merge_filtering_terms(request.app.state.registry, answers)
        return _forwarded(request, path, answers, 200, document)

    return handler


def network_beacon_router() -> APIRouter:
    """Every Beacon v2 route of a node, answered by the network."""
    router = APIRouter()

    async def info(request: Request) -> JSONResponse:
        _check_authorization(request)
        answers = await _ask_nodes(request, "info")
        document = merge.merge_info(request.app.state.registry, answers)
        return _forwarded(request, "info", answers, 200, document)

    async def service_info(request: Request) -> JSONResponse:
        identity = request.app.state.beacon.identity
        return json_response(framework.service_info_response(identity))

    async def configuration(request: Request) -> JSONResponse:
        _check_authorization(request)
        answers = await _ask_nodes(request, "configuration")
        document = merge.merge_configuration(request.app.state.registry, answers)
        return _forwarded(request, "configuration", answers, 200, document)

    async def beacon_map(request: Request) -> JSONResponse:
        return json_response(framework.map_response(request.app.state.beacon.identity))

    async def entry_types(request: Request) -> JSONResponse:
        return json_response(
            framework.entry_types_response(request.app.state.beacon.identity)
        )

    add_beacon_routes(
        router,
        info=info,
        service_info=service_info,
        configuration=configuration,
        beacon_map=beacon_map,
        entry_types=entry_types,
        entry_handler=_entry_handler,
        filtering_terms_handler=_filtering_terms_handler,
        who="Network",
        scope=", on every node",
    )
    return router


def network_status_router() -> APIRouter:
    """``GET /network/status``: each node, when it last answered this network and
    the state of its circuit breaker (in this process)."""
    router = APIRouter()

    async def status(request: Request) -> JSONResponse:
        registry: Registry = request.app.state.registry
        last_seen: dict[str, str] = request.app.state.last_seen
        breakers: Breakers = request.app.state.breakers
        return json_response(
            {
                "networkId": registry.network_id,
                "nodes": [
                    {
                        "id": node.id,
                        "country": node.country,
                        "url": node.url,
                        "lastSeen": last_seen.get(node.id),
                        "circuit": breakers.state(node.id),
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
    audit: NetworkAudit | None = None,
    operator_token: Secret | None = None,
    breakers: Breakers | None = None,
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
    audit
        Records every forwarded query (an ``AuditWriter``; its ``record`` is
        called once per query, see :class:`NetworkAudit`). None: not recorded.
    operator_token
        The credential for ``POST /catalogue/harvest``; default the registry's
        ``operator_token``. With neither, anyone may harvest once a minute.
    breakers
        The nodes' circuit breakers (tests pass ones on a fake clock); by
        default new ones with the registry's ``circuit_breaker`` settings.

    Returns
    -------
    FastAPI
        ``app.state.registry``, ``app.state.client``, ``app.state.harvester``,
        ``app.state.breakers``, ``app.state.audit`` and ``app.state.last_seen``
        (node id → ISO time of its last answer) are set.
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
            close = getattr(audit, "close", None)
            if close is not None:
                close()  # what is queued is written before the process ends

    app = FastAPI(
        lifespan=lifespan,
        title=f"genomenode network {registry.network_id}",
        version=__version__,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.registry = registry
    app.state.http_limits = HttpLimits(max_body_bytes=registry.max_body_bytes)
    app.state.client = shared
    app.state.audit = audit
    app.state.breakers = (
        breakers if breakers is not None else Breakers(registry.circuit_breaker)
    )
    app.state.last_seen = {}
    app.state.beacon = _NetworkBeacon(merge.network_identity(registry))
    app.include_router(network_beacon_router(), prefix="/api")
    app.include_router(network_status_router(), prefix="/network")
    app.state.harvester = harvester
    app.state.harvest_gate = HarvestGate(operator_token or registry.operator_token)
    app.state.signer = signer
    app.include_router(catalogue_http.network_router, prefix="/catalogue")

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
    directory = pathlib.Path(path).resolve().parent
    # The network's signing keys live beside its registry (rotatable, 0600).
    signer = NetworkSigner(directory / "network-keys", issuer=registry.public_url)
    # Every forwarded query is in the network's own audit log, beside NETWORK.yaml
    # (or in $GENOMENODE_NETWORK_AUDIT_DB_URL), as well as in each node's.
    audit = open_network_audit(
        directory,
        os.environ.get(AUDIT_DB_URL_ENVIRONMENT_VARIABLE) or None,
        network_id=registry.network_id,
    )
    return create_network_app(
        registry,
        signer=signer,
        operator_token=operator_token_from_environment(),
        audit=audit,
    )


def operator_token_from_environment() -> Secret | None:
    """``$GENOMENODE_NETWORK_OPERATOR_TOKEN``, if set (too short: ConfigError)."""
    value = os.environ.get(OPERATOR_TOKEN_ENVIRONMENT_VARIABLE, "").strip()
    if not value:
        return None
    if len(value) < MIN_OPERATOR_TOKEN_LENGTH:
        raise ConfigError(
            f"{OPERATOR_TOKEN_ENVIRONMENT_VARIABLE} must be at least "
            f"{MIN_OPERATOR_TOKEN_LENGTH} characters"
        )
    return Secret(value)
