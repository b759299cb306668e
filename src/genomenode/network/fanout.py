"""Ask every node of the network the same Beacon request, at once.

:func:`fan_out` sends one request per node concurrently over one shared
:class:`~genomenode.network.node_client.NodeClient` (pooled HTTP/1.1, the
network's hot path) and returns one :class:`NodeAnswer` per node, in registry
order.
Nothing a node does can make it raise: every outcome becomes a status.

========== =================================================================
status     meaning
========== =================================================================
``ok``     2xx with JSON valid against the expected Beacon response schema
``error``  no answer (connection refused, reset...), a 5xx, or a 4xx carrying
           a valid ``beaconErrorResponse`` (kept in ``document``: the node
           understood the request and refused it, e.g. a bad passport)
``invalid`` the body is not JSON, or breaks the Beacon response schema
``timeout`` no complete answer within the timeout; the request was cancelled,
           which closes its connection (the node sees the client go away)
``unavailable`` not asked: the node's circuit is open after repeated failures
           (:mod:`~genomenode.network.breaker`); the reason says until when
``skipped`` not asked (the caller said so)
========== =================================================================

Only the caller's ``Authorization`` header (the GA4GH passport) is forwarded,
unchanged: each node decides on its own what the caller may see.

Each node gets its own connection pool, bounded by ``max_connections_per_node``:
one node's connections never crowd another's and no node gets more concurrent
requests from the network than that (:class:`PerOriginTransport` does the same
for the httpx client the network uses for everything else: harvests, probes).

A schema verdict is remembered by the digest of the body it was given for
(:class:`_ValidBodies`): a node asked the same question answers the same bytes,
and validating them again would cost more than all the rest of the answer.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import httpx2

from genomenode.access.network_trust import ASSERTION_HEADER, NetworkSigner
from genomenode.access.relay_keys import RelayKey
from genomenode.beacon.schemas import validate
from genomenode.errors import BeaconValidationError

from .breaker import Admission, Breakers
from .node_client import (
    HttpxNodeClient,
    NodeConnectionError,
    NodeResponse,
    NodeSender,
    NodeTimeoutError,
)
from .registry import RegisteredNode
from .relay import RelayKeys

__all__ = [
    "NodeAnswer",
    "NodeStatus",
    "PerOriginTransport",
    "expected_schema",
    "fan_out",
    "is_failure",
]

NodeStatus = Literal["ok", "timeout", "error", "invalid", "skipped", "unavailable"]

#: Headers of the caller passed on to the nodes; everything else stays here.
FORWARDED_HEADERS = ("authorization",)
_MAX_REASON = 300
_FRAMEWORK_SCHEMAS = {
    "": "beaconInfoResponse",
    "info": "beaconInfoResponse",
    "service-info": "ga4gh-service-info-1-0-0-schema",
    "configuration": "beaconConfigurationResponse",
    "map": "beaconMapResponse",
    "entry_types": "beaconEntryTypesResponse",
}
_COLLECTIONS = ("datasets", "cohorts")
# What a query string keeps unencoded (RFC 3986 query characters and "%", which
# the caller's string already uses for escapes); anything else is percent-encoded.
_QUERY_SAFE = "!$&'()*+,;=:@/?%-._~"


@dataclasses.dataclass(frozen=True)
class NodeAnswer:
    """What one node answered (or did not).

    Attributes
    ----------
    node
        The registered node asked.
    status
        ``ok``, ``timeout``, ``error``, ``invalid`` or ``skipped`` (module docs).
    latency_ms
        Wall time from sending to the decoded answer (or to giving up).
    document
        The decoded, schema-valid JSON for ``ok`` (and for a Beacon error document
        of a 4xx), else ``None``.
    reason
        Why the answer is not ``ok``, in a line a network operator understands.
    http_status
        The node's HTTP status, when it answered at all.
    """

    node: RegisteredNode
    status: NodeStatus
    latency_ms: float
    document: dict[str, Any] | None = None
    reason: str | None = None
    http_status: int | None = None


def expected_schema(path: str, document: Mapping[str, Any]) -> str:
    """The Beacon schema a node's answer to ``path`` must match.

    Parameters
    ----------
    path
        The path under the API root, without leading slash (``"individuals"``,
        ``"g_variants/1-1000-A-C/individuals"``, ``"info"``).
    document
        The decoded answer: result responses pick their schema by
        ``meta.returnedGranularity`` (and collections by path).

    Returns
    -------
    str
        A name for :func:`genomenode.beacon.schemas.validate`.
    """
    path = path.strip("/")
    if "error" in document:
        return "beaconErrorResponse"
    if path in _FRAMEWORK_SCHEMAS:
        return _FRAMEWORK_SCHEMAS[path]
    parts = path.split("/")
    if parts[-1] == "filtering_terms":
        return "beaconFilteringTermsResponse"
    meta = document.get("meta")
    granularity = meta.get("returnedGranularity") if isinstance(meta, dict) else None
    if granularity == "boolean":
        return "beaconBooleanResponse"
    if granularity == "count":
        return "beaconCountResponse"
    # The entry type returned is the last endpoint of the path.
    returned = parts[-1] if len(parts) != 2 else parts[0]
    if returned in _COLLECTIONS:
        return "beaconCollectionsResponse"
    return "beaconResultsetsResponse"


_Origin = tuple[bytes, bytes, int | None]


class PerOriginTransport(httpx2.AsyncBaseTransport):
    """One connection pool per origin (scheme, host, port), each with ``limits``.

    A client's default transport: proxies from the environment still take
    precedence (the client mounts them before it).

    Parameters
    ----------
    limits
        Connections per origin; requests beyond ``max_connections`` wait for one
        (within their timeout).
    """

    def __init__(self, limits: httpx2.Limits) -> None:
        self._limits = limits
        # One TLS context for all pools: loading the CA bundle is not free.
        self._ssl_context = httpx2.create_ssl_context()
        self._pools: dict[_Origin, httpx2.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        url = request.url
        origin = (url.raw_scheme, url.raw_host, url.port)
        pool = self._pools.get(origin)
        if pool is None:
            pool = httpx2.AsyncHTTPTransport(
                verify=self._ssl_context, limits=self._limits
            )
            self._pools[origin] = pool
        return await pool.handle_async_request(request)

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.aclose()


class _ValidBodies:
    """Digests of bodies found valid, per schema; the most recent ``size``."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._seen: collections.OrderedDict[tuple[str, bytes], None] = (
            collections.OrderedDict()
        )
        self._lock = threading.Lock()

    def validate(self, content: bytes, document: object, schema: str) -> None:
        """:func:`~genomenode.beacon.schemas.validate`, once per body and schema."""
        key = (schema, hashlib.blake2b(content, digest_size=16).digest())
        with self._lock:
            if key in self._seen:
                self._seen.move_to_end(key)
                return
        validate(document, schema)  # raises for an invalid one: never remembered
        with self._lock:
            self._seen[key] = None
            if len(self._seen) > self._size:
                self._seen.popitem(last=False)


_VALID_BODIES = _ValidBodies(4096)


def is_failure(answer: NodeAnswer) -> bool:
    """Whether an answer counts against the node's circuit breaker.

    No answer in time, no connection, or an HTTP 5xx; an answer the node meant
    (a refusal, or even a document that breaks the schema) shows it is up.
    """
    return answer.status == "timeout" or (
        answer.status == "error" and answer.document is None
    )


def _refuses_assertion(response: NodeResponse) -> bool:
    """A 401 that refuses the network's assertion (not the caller's passport):
    every such refusal names it (``network assertion of ...``)."""
    return response.status == 401 and b"network assertion" in response.content


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"


def _error_message(document: Mapping[str, Any]) -> str:
    error = document.get("error")
    if isinstance(error, dict):
        return str(error.get("errorMessage", ""))
    return ""


async def _ask(
    node: RegisteredNode,
    client: NodeSender,
    method: str,
    path: str,
    *,
    query: str,
    body: bytes | None,
    headers: Sequence[tuple[str, str]],
    schema_for: Callable[[str, Mapping[str, Any]], str],
    signer: NetworkSigner | None = None,
    client_key: str | None = None,
    relay_keys: RelayKeys | None = None,
) -> NodeAnswer:
    started = time.perf_counter()

    def elapsed() -> float:
        return (time.perf_counter() - started) * 1000

    url = f"{node.api_url}/{path.lstrip('/')}" if path.strip("/") else node.api_url
    if query:
        url = f"{url}?{quote(query, safe=_QUERY_SAFE)}"
    sent_headers = list(headers)
    relay_key = None
    if signer is not None:
        # Signed over exactly what the node receives: method, path and query as
        # sent, and the body (docs/network-trust.md); MACed instead with the
        # node's relay key when one is at hand.
        parts = urlsplit(url)
        target = f"{parts.path}?{parts.query}" if parts.query else parts.path

        def assertion(key: RelayKey | None) -> tuple[str, str]:
            assert signer is not None
            return (
                ASSERTION_HEADER,
                signer.assertion(
                    audience=node.url,
                    method=method,
                    path_and_query=target or "/",
                    body=body or b"",
                    client=client_key,
                    relay_key=key,
                ),
            )

        relay_key = relay_keys.current(node) if relay_keys is not None else None
        sent_headers.append(assertion(relay_key))
    try:
        response = await client.send(method, url, sent_headers, body)
        if (
            relay_key is not None
            and relay_keys is not None
            and _refuses_assertion(response)
        ):
            # The node no longer honours the key (its relay secret was replaced,
            # say): forget it and send the request once more, signed.
            relay_keys.drop(node, relay_key)
            sent_headers[-1] = assertion(None)
            response = await client.send(method, url, sent_headers, body)
    except NodeTimeoutError:
        return NodeAnswer(node, "timeout", elapsed(), reason="no answer in time")
    except NodeConnectionError as error:
        return NodeAnswer(node, "error", elapsed(), reason=_short(str(error)))
    status = response.status
    if status >= 500:
        return NodeAnswer(
            node, "error", elapsed(), reason=f"HTTP {status}", http_status=status
        )
    try:
        document = json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        return NodeAnswer(
            node,
            "invalid",
            elapsed(),
            reason=_short(f"HTTP {status}, body is not JSON: {error}"),
            http_status=status,
        )
    if not isinstance(document, dict):
        return NodeAnswer(
            node,
            "invalid",
            elapsed(),
            reason=f"HTTP {status}, body is JSON {type(document).__name__}, "
            "not an object",
            http_status=status,
        )
    if status >= 300 and "error" not in document:
        return NodeAnswer(
            node,
            "invalid",
            elapsed(),
            reason=f"HTTP {status} without a Beacon error document",
            http_status=status,
        )
    schema = schema_for(path, document)
    try:
        _VALID_BODIES.validate(response.content, document, schema)
    except BeaconValidationError as error:
        where = ", ".join(list(dict.fromkeys(error.paths))[:3])
        return NodeAnswer(
            node,
            "invalid",
            elapsed(),
            reason=_short(f"HTTP {status}, breaks {schema} at {where}"),
            http_status=status,
        )
    if schema == "beaconErrorResponse":
        return NodeAnswer(
            node,
            "error",
            elapsed(),
            document=document,
            reason=_short(f"HTTP {status}: {_error_message(document)}"),
            http_status=status,
        )
    return NodeAnswer(node, "ok", elapsed(), document=document, http_status=status)


async def _bounded(
    node: RegisteredNode, timeout_seconds: float, asking: Any
) -> NodeAnswer:
    started = time.perf_counter()
    try:
        # wait_for cancels the request task at the deadline; httpx then closes the
        # connection instead of returning it to the pool, so the node sees the
        # client disconnect and nothing keeps running on our side.
        answer: NodeAnswer = await asyncio.wait_for(asking, timeout_seconds)
    except TimeoutError:
        return NodeAnswer(
            node,
            "timeout",
            (time.perf_counter() - started) * 1000,
            reason=f"no answer within {timeout_seconds:g} s (request cancelled)",
        )
    except Exception as error:
        return NodeAnswer(
            node,
            "error",
            (time.perf_counter() - started) * 1000,
            reason=_short(f"{type(error).__name__}: {error}"),
        )
    return answer


async def fan_out(
    nodes: Sequence[RegisteredNode],
    method: str,
    path: str,
    *,
    params: Sequence[tuple[str, str]] | None = None,
    query: str | None = None,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout_seconds: float,
    client: NodeSender | httpx2.AsyncClient,
    skip: Mapping[str, str] | None = None,
    schema_for: Callable[[str, Mapping[str, Any]], str] = expected_schema,
    signer: NetworkSigner | None = None,
    breakers: Breakers | None = None,
    client_key: str | None = None,
    relay_keys: RelayKeys | None = None,
) -> list[NodeAnswer]:
    """Send one request to every node concurrently; one answer per node.

    With ``signer``, each request carries the network's signed assertion for
    that node (``GA4GH-Network-Assertion``). With ``breakers``, a node whose
    circuit is open is not asked (``unavailable``), and every outcome is
    recorded in its node's breaker. Cancelling the fan-out cancels every
    request in flight (closing its connection).

    Parameters
    ----------
    nodes
        The nodes to ask (answers come back in this order).
    method
        ``GET`` or ``POST``.
    path
        Path under each node's API root (``"individuals"``, ``"info"``).
    params
        Query parameters, as ``(name, value)`` pairs (repeats kept).
    query
        Or the query string as is (already checked: printable ASCII); not
        with ``params``.
    body
        The raw POST body (sent as ``application/json``), or ``None``.
    headers
        The caller's headers; only ``Authorization`` is forwarded, unchanged.
    timeout_seconds
        Per node: after this the request is cancelled and reported ``timeout``.
    client
        The shared client (its pool is reused across requests): a
        :class:`~genomenode.network.node_client.NodeClient`, or an
        ``httpx2.AsyncClient`` (asked through
        :class:`~genomenode.network.node_client.HttpxNodeClient`).
    skip
        Node id → reason for nodes not to ask (reported ``skipped``).
    schema_for
        Picks the schema a node's answer is validated against; see
        :func:`expected_schema`.
    signer
        Signs each request for its node.
    breakers
        The network's circuit breakers, by node id.
    client_key
        Who asked the network (``ip:<address>``), signed into each assertion as
        ``clt`` so that nodes budget the caller, not the network.
    relay_keys
        The nodes' relay keys: a node's assertion is MACed with its key when one
        is at hand (else signed); a node refusing the key gets the request once
        more, signed.

    Returns
    -------
    list of NodeAnswer
        One per node, in the order of ``nodes``; never raises for a node's fault.
    """
    forwarded = [
        (name, value)
        for name, value in (headers or {}).items()
        if name.lower() in FORWARDED_HEADERS
    ]
    if body is not None:
        forwarded.append(("Content-Type", "application/json"))
    sender = (
        HttpxNodeClient(client) if isinstance(client, httpx2.AsyncClient) else client
    )
    skip = skip or {}
    if params:
        if query:
            raise ValueError("give params or query, not both")
        query = str(httpx2.QueryParams(list(params)))

    async def one(node: RegisteredNode) -> NodeAnswer:
        if node.id in skip:
            return NodeAnswer(node, "skipped", 0.0, reason=skip[node.id])
        breaker = breakers[node.id] if breakers is not None else None
        admission: Admission = "closed"
        if breaker is not None:
            admitted = breaker.admit()
            if admitted is None:
                return NodeAnswer(node, "unavailable", 0.0, reason=breaker.reason())
            admission = admitted
        asking = _ask(
            node,
            sender,
            method,
            path,
            query=query or "",
            body=body,
            headers=forwarded,
            schema_for=schema_for,
            signer=signer,
            client_key=client_key,
            relay_keys=relay_keys,
        )
        try:
            answer = await _bounded(node, timeout_seconds, asking)
        except BaseException:
            # Cancelled (the caller went away): nothing learnt about the node.
            if breaker is not None:
                breaker.abandon(admission)
            raise
        if breaker is not None:
            breaker.record(
                admission, failed=is_failure(answer), reason=answer.reason or ""
            )
        return answer

    return list(await asyncio.gather(*(one(node) for node in nodes)))


async def probe_nodes(
    nodes: Sequence[RegisteredNode],
    *,
    timeout_seconds: float,
    client: NodeSender | httpx2.AsyncClient,
) -> list[dict[str, Any]]:
    """How each node is doing: reachable, latency, version and datasets.

    Asks every node's ``/api/service-info`` and ``/api/info`` (anonymously, so the
    datasets are those anyone may list).

    Returns
    -------
    list of dict
        Per node, in order: ``id``, ``country``, ``url``, ``reachable``,
        ``status`` (of ``/api/info``), ``latencyMs``, ``version`` (the node's
        software, from service-info), ``datasets`` (ids, from info) and
        ``reason`` when not ok.
    """
    service, info = await asyncio.gather(
        fan_out(
            nodes,
            "GET",
            "service-info",
            timeout_seconds=timeout_seconds,
            client=client,
        ),
        fan_out(nodes, "GET", "info", timeout_seconds=timeout_seconds, client=client),
    )
    rows: list[dict[str, Any]] = []
    for node, service_answer, info_answer in zip(nodes, service, info, strict=True):
        version = (service_answer.document or {}).get("version")
        response = (info_answer.document or {}).get("response")
        datasets = response.get("datasets") if isinstance(response, dict) else None
        row: dict[str, Any] = {
            "id": node.id,
            "country": node.country,
            "url": node.url,
            "reachable": info_answer.http_status is not None,
            "status": info_answer.status,
            "latencyMs": round(info_answer.latency_ms, 1),
            "version": version if isinstance(version, str) else None,
            "datasets": [
                str(item.get("id"))
                for item in (datasets if isinstance(datasets, list) else [])
                if isinstance(item, dict)
            ],
        }
        if info_answer.reason:
            row["reason"] = info_answer.reason
        rows.append(row)
    return rows
