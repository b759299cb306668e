"""Merge the nodes' answers to one Beacon request into the network's answer.

Pure functions over :class:`~genomenode.network.fanout.NodeAnswer` lists: no I/O.
Every document returned validates against the official Beacon v2.1.1 schema of its
endpoint (``tests/network/test_merge.py``).

Rules for result queries (:func:`merge_results`):

- ``meta.beaconId`` is the network's (``org.genomenode.network.<network_id>``);
  ``receivedRequestSummary`` is the request as the network parsed it.
- ``returnedGranularity`` is the lowest granularity any ``ok`` node returned with
  something in it. An empty answer (``exists: false``) says the same at every
  granularity (zero results), so a node with nothing visible, which answers
  ``boolean``, does not pull the whole network down to ``boolean``. Answers above
  the network's granularity are reduced to it (records dropped, counts kept).
- ``responseSummary``: ``exists`` is the OR, ``numTotalResults`` the sum of the
  nodes' totals (which already hold their ``countAdjustedTo`` values: the network
  never learns a true small count).
- ``response.resultSets`` (``collections`` for datasets and cohorts): the nodes'
  concatenated in registry order, each tagged with ``beaconId`` and
  ``info.node`` = the **registry's** node id (never what the node claims) and
  ``info.country``; dataset ids stay as the node published them.
- ``info.nodes``: one entry per registered node,
  ``{id, country, status, latencyMs, reason?, returnedGranularity?}``.
- No ``ok`` node: if every node that answered refused the request with the same
  4xx Beacon error, that error is the network's (nodes that did not answer are
  named in the message and ``info.nodes``); otherwise a 502 error document.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from genomenode.beacon import entry_types, framework

from .fanout import NodeAnswer
from .registry import Registry

__all__ = [
    "GRANULARITIES",
    "error_document",
    "merge_configuration",
    "merge_filtering_terms",
    "merge_info",
    "merge_results",
    "network_identity",
    "node_statuses",
]

#: Beacon granularities, lowest first.
GRANULARITIES = ("boolean", "count", "record")
_COLLECTIONS = ("datasets", "cohorts")


def network_identity(registry: Registry) -> framework.BeaconIdentity:
    """The network's own Beacon identity (framework documents are built from it)."""
    countries = ", ".join(sorted({node.country for node in registry.nodes}))
    return framework.BeaconIdentity(
        beacon_id=registry.beacon_id,
        name=f"genomenode network {registry.network_id}",
        node_id=registry.network_id,
        country="",
        organisation_id=registry.network_id,
        organisation_name=f"genomenode network {registry.network_id}",
        base_url=registry.api_url,
        environment=registry.environment,
        description=(
            f"Beacon v2 network {registry.network_id}: one answer from "
            f"{len(registry.nodes)} genomenode nodes ({countries})."
        ),
    )


def _granularity(answer: NodeAnswer) -> str | None:
    meta = (answer.document or {}).get("meta")
    value = meta.get("returnedGranularity") if isinstance(meta, dict) else None
    return value if value in GRANULARITIES else None


def node_statuses(answers: Sequence[NodeAnswer]) -> list[dict[str, Any]]:
    """``info.nodes``: what happened at each node, in registry order.

    Returns
    -------
    list of dict
        ``{id, country, status, latencyMs}`` plus ``reason`` when not ``ok`` and
        ``returnedGranularity`` for result answers.
    """
    entries: list[dict[str, Any]] = []
    for answer in answers:
        entry: dict[str, Any] = {
            "id": answer.node.id,
            "country": answer.node.country,
            "status": answer.status,
            "latencyMs": round(answer.latency_ms, 1),
        }
        if answer.reason:
            entry["reason"] = answer.reason
        granularity = _granularity(answer) if answer.status == "ok" else None
        if granularity is not None:
            entry["returnedGranularity"] = granularity
        entries.append(entry)
    return entries


def _minimal_summary(api_version: str) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "requestedSchemas": [],
        "pagination": {},
        "requestedGranularity": "boolean",
    }


def error_document(
    registry: Registry,
    status: int,
    message: str,
    answers: Sequence[NodeAnswer] = (),
    *,
    summary: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``beaconErrorResponse`` of the network, with ``info.nodes`` when asked.

    Parameters
    ----------
    registry
        The network.
    status
        The HTTP status (repeated as ``errorCode``).
    message
        What went wrong.
    answers
        The nodes' answers, reported under ``info.nodes``.
    summary
        The request as parsed, if it got that far.
    """
    document = framework.error_response(
        network_identity(registry),
        status,
        message,
        received_request_summary=summary,
    )
    if answers:
        document["info"] = {"nodes": node_statuses(answers)}
    return document


def _exists(answer: NodeAnswer) -> bool:
    summary = (answer.document or {}).get("responseSummary")
    return isinstance(summary, dict) and summary.get("exists") is True


def _total(answer: NodeAnswer, items: Sequence[Mapping[str, Any]]) -> int:
    summary = (answer.document or {}).get("responseSummary", {})
    total = summary.get("numTotalResults") if isinstance(summary, dict) else None
    if isinstance(total, int) and not isinstance(total, bool) and total >= 0:
        return total
    if not _exists(answer):
        return 0
    # No total given: the listed counts are all the node told.
    return sum(
        item["resultsCount"]
        for item in items
        if isinstance(item.get("resultsCount"), int)
    )


def _tagged(item: Mapping[str, Any], answer: NodeAnswer) -> dict[str, Any]:
    tagged = copy.deepcopy(dict(item))
    info = tagged.get("info")
    # The registry names the node: whatever the node put there is overwritten.
    tagged["info"] = {
        **(info if isinstance(info, dict) else {}),
        "node": answer.node.id,
        "country": answer.node.country,
    }
    return tagged


def _items(answer: NodeAnswer, key: str) -> list[dict[str, Any]]:
    response = (answer.document or {}).get("response")
    items = response.get(key) if isinstance(response, dict) else None
    if not isinstance(items, list):
        return []
    return [item for item in items if isinstance(item, dict)]


def _network_granularity(ok: Sequence[NodeAnswer]) -> str:
    levels = [GRANULARITIES.index(_granularity(answer) or "boolean") for answer in ok]
    informative = [
        level for level, answer in zip(levels, ok, strict=True) if _exists(answer)
    ]
    if informative:
        return GRANULARITIES[min(informative)]
    return GRANULARITIES[max(levels)]


def _refusal(
    registry: Registry,
    answers: Sequence[NodeAnswer],
    summary: Mapping[str, Any],
) -> tuple[int, dict[str, Any]]:
    asked = [answer for answer in answers if answer.status != "skipped"]
    codes = {
        answer.http_status
        for answer in asked
        if answer.status == "error"
        and answer.document is not None
        and answer.http_status is not None
        and 400 <= answer.http_status < 500
    }
    refused = [answer for answer in asked if answer.document is not None]
    # Nodes down say nothing about the request; nodes that answered all refused
    # it alike: the caller's request is at fault, not the network.
    if refused and len(codes) == 1:
        status = codes.pop()
        first = refused[0].document or {}
        message = str(first.get("error", {}).get("errorMessage", "refused"))
        silent = len(asked) - len(refused)
        if silent:
            message += f" ({silent} other node(s) did not answer; see info.nodes)"
        return status, error_document(registry, status, message, answers)
    return 502, error_document(
        registry,
        502,
        "no node of the network answered; see info.nodes",
        answers,
        summary=summary,
    )


def merge_results(
    registry: Registry,
    answers: Sequence[NodeAnswer],
    *,
    endpoint: str,
    summary: Mapping[str, Any],
) -> tuple[int, dict[str, Any]]:
    """The network's answer to one entry-type query.

    Parameters
    ----------
    registry
        The network.
    answers
        One per registered node (from :func:`~genomenode.network.fanout.fan_out`).
    endpoint
        The endpoint whose entries are returned (``"individuals"``; for
        ``/datasets/{id}/individuals`` also ``"individuals"``).
    summary
        ``receivedRequestSummary``: the request as the network parsed it.

    Returns
    -------
    tuple of (int, dict)
        The HTTP status and the response document (``beaconBooleanResponse``,
        ``beaconCountResponse``, ``beaconResultsetsResponse`` or
        ``beaconCollectionsResponse``; a ``beaconErrorResponse`` if no node
        answered).
    """
    ok = [answer for answer in answers if answer.status == "ok"]
    if not ok:
        return _refusal(registry, answers, summary)
    granularity = _network_granularity(ok)
    entry_type = entry_types.ENTRY_TYPES_BY_ENDPOINT.get(endpoint)
    meta: dict[str, Any] = {
        "beaconId": registry.beacon_id,
        "apiVersion": entry_types.API_VERSION,
        "returnedGranularity": granularity,
        "returnedSchemas": [entry_type.returned_schema()] if entry_type else [],
        "receivedRequestSummary": dict(summary),
        "testMode": bool(summary.get("testMode", False)),
    }
    document: dict[str, Any] = {"meta": meta}
    key = "collections" if endpoint in _COLLECTIONS else "resultSets"
    response_summary: dict[str, Any] = {"exists": any(_exists(a) for a in ok)}
    merged: list[dict[str, Any]] = []
    lower: list[dict[str, str]] = []
    suppressed: list[dict[str, str]] = []
    total = 0
    for answer in ok:
        items = _items(answer, key)
        total += _total(answer, items)
        info = (answer.document or {}).get("info")
        if isinstance(info, dict):
            for name, into in (
                ("datasetsAtLowerGranularity", lower),
                ("datasetsSuppressed", suppressed),
            ):
                named = info.get(name)
                if isinstance(named, list):
                    into.extend(
                        {"node": answer.node.id, "id": str(dataset)}
                        for dataset in named
                    )
        for item in items:
            tagged = _tagged(item, answer)
            if key == "resultSets":
                tagged["beaconId"] = answer.node.id
                if granularity != "record":
                    tagged["results"] = []
            merged.append(tagged)
    if granularity != "boolean":
        response_summary["numTotalResults"] = total
        if key == "collections" and granularity != "record":
            merged = []
        document["response"] = {key: merged}
    document["responseSummary"] = response_summary
    network_info: dict[str, Any] = {"nodes": node_statuses(answers)}
    if lower:
        network_info["datasetsAtLowerGranularity"] = lower
    if suppressed:
        network_info["datasetsSuppressed"] = suppressed
    document["info"] = network_info
    return 200, document


def merge_info(registry: Registry, answers: Sequence[NodeAnswer]) -> dict[str, Any]:
    """The network's ``/info``: its own identity, its nodes and their datasets.

    Each node's datasets (those this caller may list there) appear under
    ``response.datasets`` tagged with ``info.node``; ``response.info`` says it is a
    network (``isBeaconNetwork``) and lists every registered node with its URL,
    the Beacon id it claims and how it answered.
    """
    identity = network_identity(registry)
    document = framework.info_response(identity, [])
    response = document["response"]
    datasets: list[dict[str, Any]] = []
    created: list[str] = []
    updated: list[str] = []
    nodes = node_statuses(answers)
    for entry, answer in zip(nodes, answers, strict=True):
        entry["url"] = answer.node.api_url
        if answer.status != "ok":
            continue
        node_response = (answer.document or {}).get("response", {})
        if not isinstance(node_response, dict):
            continue
        claimed = node_response.get("id")
        if isinstance(claimed, str):
            entry["beaconId"] = claimed
        for key, into in (("createDateTime", created), ("updateDateTime", updated)):
            value = node_response.get(key)
            if isinstance(value, str):
                into.append(value)
        datasets.extend(_tagged(item, answer) for item in _items(answer, "datasets"))
    response["datasets"] = datasets
    response["organization"]["info"] = {
        "countries": sorted({node.country for node in registry.nodes})
    }
    response["info"] = {
        "isBeaconNetwork": True,
        "networkId": registry.network_id,
        "nodes": nodes,
    }
    # Timestamps are the nodes' own ISO-8601 UTC strings: they sort as text.
    if created:
        response["createDateTime"] = min(created)
    if updated:
        response["updateDateTime"] = max(updated)
    return document


def merge_configuration(
    registry: Registry, answers: Sequence[NodeAnswer]
) -> dict[str, Any]:
    """The network's ``/configuration``: its security levels are the nodes'."""
    levels: set[str] = set()
    for answer in answers:
        if answer.status != "ok":
            continue
        response = (answer.document or {}).get("response", {})
        security = (
            response.get("securityAttributes") if isinstance(response, dict) else None
        )
        named = security.get("securityLevels") if isinstance(security, dict) else None
        if isinstance(named, list):
            levels.update(
                level
                for level in named
                if isinstance(level, str)
                and level.upper() in ("PUBLIC", "REGISTERED", "CONTROLLED")
            )
    return framework.configuration_response(network_identity(registry), levels)


def _union_by_id(
    groups: Iterable[list[dict[str, Any]]], merge_scopes: bool
) -> list[dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for items in groups:
        for item in items:
            identifier = item.get("id")
            if not isinstance(identifier, str):
                continue
            if identifier not in merged:
                merged[identifier] = copy.deepcopy(item)
                continue
            kept = merged[identifier]
            scopes = item.get("scopes")
            if merge_scopes and isinstance(scopes, list):
                known = kept.setdefault("scopes", [])
                known.extend(scope for scope in scopes if scope not in known)
    return list(merged.values())


def merge_filtering_terms(
    registry: Registry, answers: Sequence[NodeAnswer]
) -> dict[str, Any]:
    """The union of the nodes' filtering terms and resources, each id once.

    The first node (registry order) to list a term gives its label and type;
    ``scopes`` are united. ``info.nodes`` says which nodes contributed.
    """
    ok = [answer for answer in answers if answer.status == "ok"]
    terms = _union_by_id(
        (_items(answer, "filteringTerms") for answer in ok), merge_scopes=True
    )
    resources = _union_by_id(
        (_items(answer, "resources") for answer in ok), merge_scopes=False
    )
    return {
        "meta": framework.informational_meta(network_identity(registry)),
        "response": {"filteringTerms": terms, "resources": resources},
        "info": {"nodes": node_statuses(answers)},
    }
