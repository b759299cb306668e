"""The network's routes: the nodes' Beacon v2 API as one, the nodes' status, and
the network's signing keys.

Every Beacon route a node serves (:mod:`genomenode.beacon.http`, whose route table
this shares) is served here under ``/api`` (:data:`router`), GET and POST: an
entry-type request is parsed (a malformed one gets the 400 here, without asking
anyone), sent unchanged with the caller's passport to every registered node
(:func:`~genomenode.network.fanout.fan_out`) and the answers are merged
(:mod:`~genomenode.network.merge`). Framework documents describe the network
itself. ``GET /network/status`` (:data:`status_router`) reports when each node
last answered, and ``/.well-known/jwks.json`` (:data:`well_known_router`) the
keys the network signs forwarded requests with.

Everything the caller controls is checked before any node is asked (a 400, or
413 for a body over ``max_body_bytes``): entry ids in the path, the query string,
the body, the ``Authorization`` header. The path asked of the nodes is built from
the route, never copied from the URL. A node whose circuit breaker is open is not
asked (:mod:`~genomenode.network.breaker`), and when the caller disconnects the
fan-out is cancelled (:func:`genomenode.web.blocking.cancel_on_disconnect`).
Each forwarded query is answered through one function, ``_forwarded``, which
records it in ``app.state.audit`` when the app has an audit writer.

What the app shares with the routes is in ``app.state`` (set by
:func:`~genomenode.network.app.create_network_app`), read through the accessors
below. Handlers carry no docstrings, which FastAPI would publish in the OpenAPI.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Annotated, Any, Protocol
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from ..access import jws
from ..access.network_trust import NetworkSigner
from ..beacon import entry_types
from ..beacon.http import (
    BeaconPath,
    add_beacon_routes,
    beacon_path,
    read_beacon_request,
)
from ..beacon.query import BeaconRequest
from ..beacon.responses import received_request_summary
from ..errors import BeaconRequestError, ClientDisconnected
from ..web.blocking import cancel_on_disconnect
from ..web.openapi import answers
from ..web.responses import json_response
from . import merge
from .breaker import Breakers
from .fanout import NodeAnswer, fan_out
from .node_client import NodeSender
from .registry import Registry

__all__ = [
    "MAX_AUTHORIZATION_BYTES",
    "MAX_ENTRY_ID_LENGTH",
    "MAX_FILTERS",
    "NetworkAudit",
    "configuration",
    "info",
    "jwks",
    "query_entries",
    "query_filtering_terms",
    "router",
    "status",
    "status_router",
    "well_known_router",
]

#: Most filters in one request (a node's ``beacon_max_filters`` default).
MAX_FILTERS = 100
#: The longest entry id in a path the network forwards.
MAX_ENTRY_ID_LENGTH = 256
#: The longest ``Authorization`` header (a passport with its visas) forwarded.
MAX_AUTHORIZATION_BYTES = 64 * 1024
# Unreserved URI characters and a few more that ids use; never "/" or "%".
_ENTRY_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._~:@+=-]*")
# Printable ASCII without space and "#": what a query string may hold unencoded.
_QUERY = re.compile(rb"[\x21-\x22\x24-\x7e]*")
_HEADER_VALUE = re.compile(rb"[\x20-\x7e]*")


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


# -- the app's state ------------------------------------------------------------


def registry_of(request: Request) -> Registry:
    """The network and its nodes (``app.state.registry``)."""
    registry: Registry = request.app.state.registry
    return registry


def client_of(request: Request) -> NodeSender:
    """The pooled client the nodes are asked with (``app.state.node_client``)."""
    client: NodeSender = request.app.state.node_client
    return client


def signer_of(request: Request) -> NetworkSigner | None:
    """What signs forwarded requests (``app.state.signer``; None: unsigned)."""
    signer: NetworkSigner | None = request.app.state.signer
    return signer


def breakers_of(request: Request) -> Breakers:
    """The nodes' circuit breakers (``app.state.breakers``)."""
    breakers: Breakers = request.app.state.breakers
    return breakers


def audit_of(request: Request) -> NetworkAudit | None:
    """The network's audit log (``app.state.audit``; None: not recorded)."""
    audit: NetworkAudit | None = getattr(request.app.state, "audit", None)
    return audit


def last_seen_of(request: Request) -> dict[str, str]:
    """Node id → ISO time of its last answer (``app.state.last_seen``)."""
    last_seen: dict[str, str] = request.app.state.last_seen
    return last_seen


# -- what the caller controls, checked before any node is asked ---------------


def _entry_id(value: str) -> str:
    """The path's entry id, if it is one a node could have (else a 400)."""
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
    registry = registry_of(request)
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


def _forwarded_path(path: BeaconPath) -> str:
    """The path asked of the nodes, from the route's parts (never the raw URL)."""
    parts = [path.entry] if path.entry else []
    if path.entry_id is not None:
        parts.append(quote(_entry_id(path.entry_id), safe=""))
    if path.tail:
        parts.append(path.tail)
    return "/".join(parts)


# -- asking the nodes ---------------------------------------------------------


async def _ask_nodes(
    request: Request, path: str, body: bytes | None = None, query: str = ""
) -> list[NodeAnswer]:
    registry = registry_of(request)
    asking = fan_out(
        registry.nodes,
        request.method,
        path,
        query=query,
        body=body,
        headers=request.headers,
        timeout_seconds=registry.timeout_seconds,
        client=client_of(request),
        signer=signer_of(request),
        relay_keys=getattr(request.app.state, "relay_keys", None),
        breakers=breakers_of(request),
        # Signed into each assertion (clt): nodes keep an anonymous caller's
        # disclosure budget for the caller, not for the network.
        client_key=f"ip:{request.client.host}" if request.client else None,
    )
    try:
        # Starlette would let the fan-out run on for a caller who has gone.
        answers = await cancel_on_disconnect(request, asking)
    except ClientDisconnected:
        _audit(request, path, [], outcome="cancelled", reason="the caller went away")
        raise
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    last_seen = last_seen_of(request)
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
    audit = audit_of(request)
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


# -- the Beacon API, answered by the nodes ------------------------------------------


async def info(request: Request) -> JSONResponse:
    _check_authorization(request)
    answers = await _ask_nodes(request, "info")
    document = merge.merge_info(registry_of(request), answers)
    return _forwarded(request, "info", answers, 200, document)


async def configuration(request: Request) -> JSONResponse:
    _check_authorization(request)
    answers = await _ask_nodes(request, "configuration")
    document = merge.merge_configuration(registry_of(request), answers)
    return _forwarded(request, "configuration", answers, 200, document)


async def query_entries(
    request: Request, path: Annotated[BeaconPath, Depends(beacon_path)]
) -> JSONResponse:
    forwarded = _forwarded_path(path)
    beacon_request, body, query = await _parsed(request)
    summary = received_request_summary(beacon_request, entry_types.API_VERSION)
    answers = await _ask_nodes(request, forwarded, body, query)
    status, document = merge.merge_results(
        registry_of(request),
        answers,
        # A nested path asks for the nested entry type.
        endpoint=path.tail or str(path.entry),
        summary=summary,
    )
    return _forwarded(request, forwarded, answers, status, document)


async def query_filtering_terms(
    request: Request, path: Annotated[BeaconPath, Depends(beacon_path)]
) -> JSONResponse:
    forwarded = _forwarded_path(path)
    _, body, query = await _parsed(request)  # refuses unknown parameters here
    answers = await _ask_nodes(request, forwarded, body, query)
    document = merge.merge_filtering_terms(registry_of(request), answers)
    return _forwarded(request, forwarded, answers, 200, document)


#: Every Beacon v2 route of a node, answered by the network (mount with
#: ``prefix="/api"``).
router = APIRouter()
add_beacon_routes(
    router,
    info=info,
    configuration=configuration,
    query_entries=query_entries,
    query_filtering_terms=query_filtering_terms,
    who="Network",
    scope=", on every node",
)


# -- the network's own routes -------------------------------------------------


#: ``GET /network/status`` (mount with ``prefix="/network"``).
status_router = APIRouter()
#: ``GET /.well-known/jwks.json``: the network's signing keys.
well_known_router = APIRouter()


_STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["networkId", "nodes"],
    "properties": {
        "networkId": {"type": "string"},
        "nodes": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "country", "url", "lastSeen", "circuit"],
                "properties": {
                    "id": {"type": "string"},
                    "country": {"type": "string"},
                    "url": {"type": "string"},
                    "lastSeen": {
                        "type": ["string", "null"],
                        "description": "When the node last answered (ISO 8601)",
                    },
                    "circuit": {"type": "string"},
                },
            },
        },
    },
}


@status_router.get(
    "/status",
    summary="Node status",
    openapi_extra=answers(
        "Each registered node and how it last answered", _STATUS_SCHEMA
    ),
)
async def status(request: Request) -> JSONResponse:
    # Each node, when it last answered this network and the state of its circuit
    # breaker (in this process).
    registry = registry_of(request)
    last_seen = last_seen_of(request)
    breakers = breakers_of(request)
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


@well_known_router.get("/.well-known/jwks.json", summary="Network signing keys")
async def jwks(request: Request) -> dict[str, Any]:
    signer = signer_of(request)
    return signer.jwks() if signer is not None else {"keys": []}
