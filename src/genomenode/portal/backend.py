"""How the portal asks the APIs behind its pages: the Beacon, the access API of
each node, the catalogue, the nodes' status.

Every question goes through an API an outside client could call, with the
visitor's passport as its bearer token, so the node decides what the visitor
sees exactly as it would for a script: the portal holds no data and grants no
rights. A node that does not answer in time is reported, never silently left out.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
from collections.abc import Sequence
from typing import Any

import httpx2

from ..catalogue.harvest import CatalogueSource, Harvester
from .search import NodeStatus, SearchAnswer, beacon_request, mapping, shape_answer
from .site import NodeLink, Portal

__all__ = [
    "OWN_CATALOGUE_SECONDS",
    "NodeAnswer",
    "ask_each_node",
    "ask_node",
    "ask_own_api",
    "catalogue_items",
    "fetch_own_file",
    "search",
]

#: How long a node's portal keeps its own catalogue before reading it again.
OWN_CATALOGUE_SECONDS = 60.0
#: How soon the network's portal asks again a node whose catalogue failed.
RETRY_FAILED_SECONDS = 2.0


@dataclasses.dataclass(frozen=True)
class NodeAnswer:
    """One node's answer to one access API request."""

    node: NodeLink
    status: int | None
    document: Any
    message: str | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _headers(token: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _message(document: Any, status: int) -> str:
    if isinstance(document, dict):
        for key in ("detail", "message", "error_description"):
            if isinstance(document.get(key), str):
                return str(document[key])
        error = document.get("error")
        if isinstance(error, dict) and isinstance(error.get("errorMessage"), str):
            return str(error["errorMessage"])
    return f"the node answered HTTP {status}"


def _answer(node: NodeLink, response: httpx2.Response) -> NodeAnswer:
    """A node's response as an answer: its JSON (None if not JSON) and, if it
    failed, the message it gave."""
    try:
        document = response.json()
    except ValueError:
        document = None
    message = None if response.is_success else _message(document, response.status_code)
    return NodeAnswer(node, response.status_code, document, message)


async def ask_node(
    portal: Portal,
    node_id: str,
    method: str,
    path: str,
    *,
    token: str | None,
    json: Any = None,
) -> NodeAnswer:
    """``method path`` on ``node_id``'s API, as the visitor."""
    target = portal.client_for(node_id)
    node = portal.node(node_id)
    if target is None or node is None:
        return NodeAnswer(
            NodeLink(node_id, "", ""), None, None, f"no node {node_id!r} here"
        )
    client, base = target
    try:
        response = await asyncio.wait_for(
            client.request(method, f"{base}{path}", headers=_headers(token), json=json),
            timeout=portal.timeout_seconds,
        )
    except TimeoutError:
        return NodeAnswer(node, None, None, "timed out")
    except httpx2.HTTPError as error:
        return NodeAnswer(node, None, None, f"did not answer ({type(error).__name__})")
    return _answer(node, response)


async def ask_own_api(
    portal: Portal,
    path: str,
    *,
    token: str | None,
    method: str = "GET",
    json: Any = None,
) -> NodeAnswer:
    """``method path`` on the app the portal is mounted on (the node's or the
    network's own API, in-process, from the visitor's address)."""
    node = NodeLink(
        portal.name,
        portal.nodes[0].country if portal.kind == "node" else "",
        portal.public_url,
    )
    try:
        response = await portal.api.request(
            method, path, headers=_headers(token), json=json
        )
    except httpx2.HTTPError as error:
        return NodeAnswer(node, None, None, f"did not answer ({type(error).__name__})")
    return _answer(node, response)


async def fetch_own_file(
    portal: Portal, path: str, *, token: str | None
) -> tuple[int, bytes, str]:
    """``GET path`` on the portal's own API for a file (a plot): its status,
    bytes and media type (status 502 when the API did not answer)."""
    headers = _headers(token)
    headers["Accept"] = "*/*"
    try:
        response = await portal.api.get(path, headers=headers)
    except httpx2.HTTPError:
        return 502, b"", "text/plain"
    media_type = response.headers.get("content-type", "application/octet-stream")
    return response.status_code, response.content, media_type


async def ask_each_node(
    portal: Portal, path: str, *, token: str | None
) -> list[NodeAnswer]:
    """``GET path`` on every node at once."""
    return list(
        await asyncio.gather(
            *(
                ask_node(portal, node.node_id, "GET", path, token=token)
                for node in portal.nodes
            )
        )
    )


async def search(
    portal: Portal, parameters: dict[str, Any], *, token: str | None
) -> SearchAnswer:
    """The Beacon's answer to a variant query, as the page shows it.

    The network's ``info.nodes`` says how each node answered; a node's portal
    is one node, which answered or did not.
    """
    body = beacon_request(parameters)
    try:
        response = await portal.api.post(
            "/api/g_variants", json=body, headers=_headers(token)
        )
        document = response.json()
    except (httpx2.HTTPError, ValueError):
        response, document = None, None
    if not isinstance(document, dict):
        document = {}
    if portal.kind == "network":
        info = mapping(document.get("info"))
        nodes = _network_statuses(portal, info.get("nodes"))
    else:
        node = portal.nodes[0]
        ok = response is not None and response.is_success
        meta = mapping(document.get("meta"))
        nodes = [
            NodeStatus(
                node_id=node.node_id,
                country=node.country,
                status="ok" if ok else "error",
                latency_ms=None,
                granularity=meta.get("returnedGranularity"),
                message=None
                if ok
                else _message(document, response.status_code if response else 0),
            )
        ]
    if response is not None and not response.is_success and portal.kind == "network":
        # The network itself refused (a bad query): every node is "not asked".
        message = _message(document, response.status_code)
        nodes = [
            dataclasses.replace(node, status="error", message=message) for node in nodes
        ]
    return shape_answer(document, nodes)


def _network_statuses(portal: Portal, listed: Any) -> list[NodeStatus]:
    """Each registered node's status in the network's answer; a node the answer
    does not list counts as failed, so a partial answer never looks whole."""
    found: dict[str, dict[str, Any]] = {}
    for item in listed if isinstance(listed, list) else []:
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            found[item["id"]] = item
    statuses = []
    for node in portal.nodes:
        item = found.get(node.node_id)
        if item is None:
            statuses.append(
                NodeStatus(node.node_id, node.country, "error", None, None, "no answer")
            )
            continue
        latency = item.get("latencyMs")
        statuses.append(
            NodeStatus(
                node_id=node.node_id,
                country=node.country,
                status=str(item.get("status", "error")),
                latency_ms=float(latency)
                if isinstance(latency, (int, float))
                else None,
                granularity=item.get("returnedGranularity"),
                message=item.get("reason") or item.get("message"),
            )
        )
    return statuses


async def catalogue_items(
    portal: Portal, harvester: Harvester | None
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Every dataset in the catalogue, and the nodes whose catalogue failed.

    The network's harvester is used as it is (harvested once now if it never
    has); a node's portal harvests its own catalogue in-process with the same
    code, so both read datasets the same way.
    """
    if harvester is None:
        harvester = portal.own_catalogue
        if harvester is None:
            harvester = portal.own_catalogue = Harvester(
                [
                    CatalogueSource(
                        node_id=node.node_id, country=node.country, url=node.url
                    )
                    for node in portal.nodes
                ],
                timeout_seconds=portal.timeout_seconds,
                client=portal.api,
            )
        # A node's own catalogue changes when a dataset is published: read it
        # again at most once a minute.
        if time.monotonic() - portal.own_catalogue_read > OWN_CATALOGUE_SECONDS:
            await harvester.harvest()
            portal.own_catalogue_read = time.monotonic()
    elif _stale(harvester):
        await harvester.harvest()
    failed = {
        node_id: status.reason or status.status
        for node_id, status in harvester.statuses().items()
        if status.status != "ok"
    }
    return harvester.search(), failed


def _stale(harvester: Harvester) -> bool:
    """Whether the network's catalogue should be harvested now, not at its next
    period: never harvested, or a node failed more than two seconds ago (a node
    that was down at start-up is not missing for five minutes)."""
    statuses = harvester.statuses()
    if not statuses:
        return True
    now = dt.datetime.now(dt.UTC)
    return any(
        status.status != "ok"
        and (now - status.attempted_at).total_seconds() > RETRY_FAILED_SECONDS
        for status in statuses.values()
    )


def nodes_failed(answers: Sequence[NodeAnswer]) -> list[NodeAnswer]:
    """The answers that are not a success (to show beside a listing)."""
    return [answer for answer in answers if not answer.ok]
