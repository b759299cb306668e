"""Merging node answers into one network answer (pure functions), and the fan-out's
classification of what nodes send (over httpx2's MockTransport)."""

from __future__ import annotations

import asyncio
import copy
import json

import httpx2
import pytest

from genomenode.beacon.schemas import validate
from genomenode.network.fanout import NodeAnswer, fan_out
from genomenode.network.merge import (
    merge_configuration,
    merge_filtering_terms,
    merge_info,
    merge_results,
)
from genomenode.network.registry import RegisteredNode, Registry

NODES = (
    RegisteredNode("fi-node", "FI", "http://fi.test"),
    RegisteredNode("se-node", "SE", "http://se.test"),
    RegisteredNode("no-node", "NO", "http://no.test"),
)
REGISTRY = Registry("test-net", "http://network.test", NODES, timeout_seconds=1.0)
SUMMARY = {
    "apiVersion": "v2.1.1",
    "requestedSchemas": [],
    "pagination": {"skip": 0, "limit": 10},
    "requestedGranularity": "record",
    "includeResultsetResponses": "HIT",
    "testMode": False,
}
SCHEMA = {
    "boolean": "beaconBooleanResponse",
    "count": "beaconCountResponse",
    "record": "beaconResultsetsResponse",
}


def _node_document(
    granularity: str,
    counts: dict[str, int],
    *,
    beacon_id: str = "org.genomenode.fi-node",
    adjusted: tuple[str, ...] = (),
) -> dict:
    """A node's answer as a genomenode node builds it (one result set per dataset)."""
    document = {
        "meta": {
            "beaconId": beacon_id,
            "apiVersion": "v2.1.1",
            "returnedGranularity": granularity,
            "returnedSchemas": [
                {"entityType": "individual", "schema": "beacon-individual-v2.1.1"}
            ],
            "receivedRequestSummary": SUMMARY,
        },
        "responseSummary": {"exists": any(counts.values())},
    }
    if granularity == "boolean":
        return document
    document["responseSummary"]["numTotalResults"] = sum(counts.values())
    result_sets = []
    for dataset, count in counts.items():
        result_set = {
            "id": dataset,
            "setType": "dataset",
            "exists": count > 0,
            "resultsCount": count,
            "results": (
                [{"id": f"{dataset}-{index}"} for index in range(count)]
                if granularity == "record"
                else []
            ),
        }
        if dataset in adjusted:
            result_set["info"] = {
                "countAdjustedTo": 5,
                "countPrecision": "fewer-or-equal",
            }
        result_sets.append(result_set)
    document["response"] = {"resultSets": result_sets}
    validate(document, SCHEMA[granularity])  # the fixtures themselves are valid
    return document


def _ok(node: RegisteredNode, document: dict, latency: float = 10.0) -> NodeAnswer:
    return NodeAnswer(node, "ok", latency, document=document, http_status=200)


def _merged(answers, endpoint="individuals", schema=None) -> dict:
    status, document = merge_results(
        REGISTRY, answers, endpoint=endpoint, summary=SUMMARY
    )
    assert status == 200
    granularity = document["meta"]["returnedGranularity"]
    validate(document, schema or SCHEMA[granularity])
    return document


def test_counts_summed_exists_or_and_tagged_by_registry():
    fi = _node_document("count", {"fi-a": 12, "fi-b": 0})
    # se claims to be fi: the registry still names it se-node.
    se = _node_document(
        "count", {"se-a": 5}, beacon_id="org.genomenode.fi-node", adjusted=("se-a",)
    )
    no = _node_document("count", {"no-a": 0})
    document = _merged([_ok(NODES[0], fi), _ok(NODES[1], se), _ok(NODES[2], no)])
    assert document["meta"]["beaconId"] == "org.genomenode.network.test-net"
    assert document["meta"]["receivedRequestSummary"] == SUMMARY
    assert document["responseSummary"] == {"exists": True, "numTotalResults": 17}
    tags = [
        (item["id"], item["beaconId"], item["info"]["node"], item["resultsCount"])
        for item in document["response"]["resultSets"]
    ]
    assert tags == [
        ("fi-a", "fi-node", "fi-node", 12),
        ("fi-b", "fi-node", "fi-node", 0),
        ("se-a", "se-node", "se-node", 5),
        ("no-a", "no-node", "no-node", 0),
    ]
    # The node's small-count note travels with its result set.
    assert document["response"]["resultSets"][2]["info"]["countAdjustedTo"] == 5
    assert [node["status"] for node in document["info"]["nodes"]] == ["ok"] * 3


def test_nothing_found_anywhere():
    answers = [
        _ok(node, _node_document("count", {f"{node.id}-a": 0})) for node in NODES
    ]
    document = _merged(answers)
    assert document["responseSummary"] == {"exists": False, "numTotalResults": 0}


def test_granularity_is_the_lowest_returned_and_records_are_dropped():
    record = _node_document("record", {"fi-a": 3})
    count = _node_document("count", {"se-a": 8})
    document = _merged([_ok(NODES[0], record), _ok(NODES[1], count)])
    assert document["meta"]["returnedGranularity"] == "count"
    assert document["responseSummary"] == {"exists": True, "numTotalResults": 11}
    assert all(item["results"] == [] for item in document["response"]["resultSets"])
    nodes = {node["id"]: node for node in document["info"]["nodes"]}
    assert nodes["fi-node"]["returnedGranularity"] == "record"


def test_one_boolean_node_makes_the_answer_boolean():
    count = _node_document("count", {"fi-a": 3})
    boolean = _node_document("boolean", {"se-a": 1})
    document = _merged([_ok(NODES[0], count), _ok(NODES[1], boolean)])
    assert document["meta"]["returnedGranularity"] == "boolean"
    assert document["responseSummary"] == {"exists": True}
    assert "response" not in document


def test_an_empty_boolean_answer_does_not_lower_the_granularity():
    # A node with nothing visible to this caller answers boolean exists=false:
    # that is "zero" at every granularity.
    count = _node_document("count", {"fi-a": 3})
    empty = _node_document("boolean", {})
    document = _merged([_ok(NODES[0], count), _ok(NODES[1], empty)])
    assert document["meta"]["returnedGranularity"] == "count"
    assert document["responseSummary"] == {"exists": True, "numTotalResults": 3}


def test_records_are_concatenated():
    fi = _node_document("record", {"fi-a": 2})
    se = _node_document("record", {"se-a": 1})
    document = _merged([_ok(NODES[0], fi), _ok(NODES[1], se)])
    assert document["meta"]["returnedGranularity"] == "record"
    results = [
        result["id"]
        for item in document["response"]["resultSets"]
        for result in item["results"]
    ]
    assert results == ["fi-a-0", "fi-a-1", "se-a-0"]


def test_collections_are_tagged_by_registry():
    def datasets(node_id: str, claimed: str) -> dict:
        document = _node_document("record", {})
        document["responseSummary"] = {"exists": True, "numTotalResults": 1}
        document["meta"]["returnedSchemas"] = [
            {"entityType": "dataset", "schema": "beacon-dataset-v2.1.1"}
        ]
        document["response"] = {
            "collections": [
                {"id": f"{node_id}-ds", "name": "x", "info": {"node": claimed}}
            ]
        }
        return document

    document = _merged(
        [
            _ok(NODES[0], datasets("fi", "fi-node")),
            _ok(NODES[1], datasets("se", "fi-node")),
        ],
        endpoint="datasets",
        schema="beaconCollectionsResponse",
    )
    collections = document["response"]["collections"]
    assert [(item["id"], item["info"]["node"]) for item in collections] == [
        ("fi-ds", "fi-node"),
        ("se-ds", "se-node"),
    ]
    assert document["responseSummary"]["numTotalResults"] == 2


def test_failed_nodes_are_dropped_and_reported():
    good = _node_document("count", {"fi-a": 4})
    answers = [
        _ok(NODES[0], good, latency=12.345),
        NodeAnswer(NODES[1], "timeout", 1000.2, reason="no answer within 1 s"),
        NodeAnswer(NODES[2], "invalid", 3.0, reason="breaks schema", http_status=200),
    ]
    document = _merged(answers)
    assert document["responseSummary"] == {"exists": True, "numTotalResults": 4}
    assert document["info"]["nodes"] == [
        {
            "id": "fi-node",
            "country": "FI",
            "status": "ok",
            "latencyMs": 12.3,
            "returnedGranularity": "count",
        },
        {
            "id": "se-node",
            "country": "SE",
            "status": "timeout",
            "latencyMs": 1000.2,
            "reason": "no answer within 1 s",
        },
        {
            "id": "no-node",
            "country": "NO",
            "status": "invalid",
            "latencyMs": 3.0,
            "reason": "breaks schema",
        },
    ]


def _error(node, code):
    document = {
        "meta": {
            "beaconId": "x",
            "apiVersion": "v2.1.1",
            "returnedSchemas": [],
            "returnedGranularity": "boolean",
            "receivedRequestSummary": SUMMARY,
        },
        "error": {"errorCode": code, "errorMessage": "unknown filter"},
    }
    return NodeAnswer(
        node, "error", 2.0, document=document, reason="HTTP 400", http_status=code
    )


def test_no_node_answering_is_a_502():
    answers = [NodeAnswer(node, "error", 1.0, reason="ConnectError") for node in NODES]
    status, document = merge_results(
        REGISTRY, answers, endpoint="individuals", summary=SUMMARY
    )
    assert status == 502
    validate(document, "beaconErrorResponse")
    assert [node["status"] for node in document["info"]["nodes"]] == ["error"] * 3


def test_a_unanimous_refusal_is_passed_on():
    status, document = merge_results(
        REGISTRY,
        [_error(node, 400) for node in NODES],
        endpoint="individuals",
        summary=SUMMARY,
    )
    assert status == 400
    validate(document, "beaconErrorResponse")
    assert document["error"] == {"errorCode": 400, "errorMessage": "unknown filter"}
    # One node refusing while another answers: the answer wins, the refusal is shown.
    status, document = merge_results(
        REGISTRY,
        [_ok(NODES[0], _node_document("count", {"a": 1})), _error(NODES[1], 401)],
        endpoint="individuals",
        summary=SUMMARY,
    )
    assert status == 200
    assert document["info"]["nodes"][1]["status"] == "error"


def test_a_refusal_with_a_node_down_is_the_refusal_not_a_502():
    """A bad passport is the caller's to fix, whether or not a node is down."""
    down = NodeAnswer(NODES[2], "timeout", 1000.0, reason="no answer in time")
    status, document = merge_results(
        REGISTRY,
        [_error(NODES[0], 401), _error(NODES[1], 401), down],
        endpoint="individuals",
        summary=SUMMARY,
    )
    assert status == 401
    validate(document, "beaconErrorResponse")
    assert "1 other node(s) did not answer" in document["error"]["errorMessage"]
    assert document["info"]["nodes"][2]["status"] == "timeout"
    # Refusals that disagree, and a node down: the network cannot say whose fault.
    status, _ = merge_results(
        REGISTRY,
        [_error(NODES[0], 401), _error(NODES[1], 400), down],
        endpoint="individuals",
        summary=SUMMARY,
    )
    assert status == 502


def _info(node_id: str, datasets: list[str]) -> dict:
    return {
        "meta": {"beaconId": "x", "apiVersion": "v2.1.1", "returnedSchemas": []},
        "response": {
            "id": f"org.genomenode.{node_id}",
            "name": node_id,
            "apiVersion": "v2.1.1",
            "environment": "dev",
            "organization": {"id": node_id, "name": node_id},
            "createDateTime": f"2024-01-0{len(node_id)}T00:00:00Z",
            "datasets": [{"id": dataset, "name": dataset} for dataset in datasets],
        },
    }


def test_info_lists_nodes_and_their_datasets():
    answers = [
        _ok(NODES[0], _info("fi", ["fi-a", "fi-b"])),
        _ok(NODES[1], _info("someone-else", ["se-a"])),
        NodeAnswer(NODES[2], "timeout", 1000.0, reason="late"),
    ]
    document = merge_info(REGISTRY, answers)
    validate(document, "beaconInfoResponse")
    response = document["response"]
    assert response["id"] == "org.genomenode.network.test-net"
    assert response["info"]["isBeaconNetwork"] is True
    assert [(item["id"], item["info"]["node"]) for item in response["datasets"]] == [
        ("fi-a", "fi-node"),
        ("fi-b", "fi-node"),
        ("se-a", "se-node"),
    ]
    nodes = response["info"]["nodes"]
    assert [(node["id"], node["status"]) for node in nodes] == [
        ("fi-node", "ok"),
        ("se-node", "ok"),
        ("no-node", "timeout"),
    ]
    assert nodes[1]["beaconId"] == "org.genomenode.someone-else"


def test_filtering_terms_union_by_id():
    def terms(*items):
        return {
            "meta": {"beaconId": "x", "apiVersion": "v2.1.1", "returnedSchemas": []},
            "response": {
                "filteringTerms": [
                    {"type": "ontology", "id": term, "scopes": [scope]}
                    for term, scope in items
                ],
                "resources": [{"id": "hp", "name": "HPO"}],
            },
        }

    answers = [
        _ok(NODES[0], terms(("HP:1", "individual"), ("NCIT:C20197", "individual"))),
        _ok(NODES[1], terms(("HP:1", "biosample"), ("HP:2", "individual"))),
        NodeAnswer(NODES[2], "error", 1.0, reason="down"),
    ]
    document = merge_filtering_terms(REGISTRY, answers)
    validate(document, "beaconFilteringTermsResponse")
    merged = {
        term["id"]: term["scopes"] for term in document["response"]["filteringTerms"]
    }
    assert merged == {
        "HP:1": ["individual", "biosample"],
        "NCIT:C20197": ["individual"],
        "HP:2": ["individual"],
    }
    assert document["response"]["resources"] == [{"id": "hp", "name": "HPO"}]


def test_configuration_unites_security_levels():
    def configuration(levels):
        return {"response": {"securityAttributes": {"securityLevels": levels}}}

    answers = [
        _ok(NODES[0], configuration(["CONTROLLED"])),
        _ok(NODES[1], configuration(["PUBLIC", "bogus"])),
    ]
    document = merge_configuration(REGISTRY, answers)
    validate(document, "beaconConfigurationResponse")
    levels = document["response"]["securityAttributes"]["securityLevels"]
    assert levels == ["PUBLIC", "CONTROLLED"]


# The fan-out's judgement of what nodes send, then the merge, in-process.

GOOD = _node_document("count", {"good": 6})


def _transport(seen_headers: dict):
    async def handler(request: httpx2.Request) -> httpx2.Response:
        host = request.url.host
        seen_headers[host] = dict(request.headers)
        if host == "good.test":
            return httpx2.Response(200, json=GOOD)
        if host == "html.test":
            return httpx2.Response(200, text="<html>oops</html>")
        if host == "list.test":
            return httpx2.Response(200, json=[1, 2])
        if host == "broken.test":
            return httpx2.Response(500, text="boom")
        if host == "teapot.test":
            return httpx2.Response(418, json={"detail": "no"})
        if host == "invalid.test":
            document = copy.deepcopy(GOOD)
            document["responseSummary"]["numTotalResults"] = "many"
            return httpx2.Response(200, json=document)
        if host == "slow.test":
            await asyncio.sleep(10)
        raise httpx2.ConnectError("connection refused", request=request)

    return httpx2.MockTransport(handler)


def test_fan_out_classifies_and_merge_survives():
    names = ["good", "html", "list", "broken", "teapot", "invalid", "slow", "down"]
    nodes = [RegisteredNode(name, "FI", f"http://{name}.test") for name in names]
    registry = Registry("t", "http://network.test", tuple(nodes), timeout_seconds=0.3)
    seen: dict = {}

    async def run():
        async with httpx2.AsyncClient(transport=_transport(seen)) as client:
            return await fan_out(
                nodes,
                "POST",
                "individuals",
                body=json.dumps({"query": {}}).encode(),
                headers={"Authorization": "Bearer PASSPORT", "Cookie": "secret=1"},
                timeout_seconds=0.3,
                client=client,
            )

    answers = asyncio.run(run())
    statuses = {answer.node.id: answer.status for answer in answers}
    assert statuses == {
        "good": "ok",
        "html": "invalid",
        "list": "invalid",
        "broken": "error",
        "teapot": "invalid",
        "invalid": "invalid",
        "slow": "timeout",
        "down": "error",
    }
    slow = next(answer for answer in answers if answer.node.id == "slow")
    assert 300 <= slow.latency_ms < 600
    # The passport goes through unchanged; nothing else of the caller's does.
    assert seen["good.test"]["authorization"] == "Bearer PASSPORT"
    assert "cookie" not in seen["good.test"]
    status, document = merge_results(
        registry, answers, endpoint="individuals", summary=SUMMARY
    )
    assert status == 200
    validate(document, "beaconCountResponse")
    assert document["responseSummary"] == {"exists": True, "numTotalResults": 6}
    assert all(
        node.get("reason") for node in document["info"]["nodes"] if node["id"] != "good"
    )


@pytest.mark.parametrize("path", ["", "info", "map", "individuals/filtering_terms"])
def test_fan_out_checks_framework_schemas(path):
    node = RegisteredNode("n", "FI", "http://n.test")

    async def run():
        transport = httpx2.MockTransport(
            lambda request: httpx2.Response(200, json={"meta": {}})
        )
        async with httpx2.AsyncClient(transport=transport) as client:
            return await fan_out(
                [node], "GET", path, timeout_seconds=1.0, client=client
            )

    [answer] = asyncio.run(run())
    assert answer.status == "invalid"
