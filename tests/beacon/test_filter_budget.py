"""``beacon_filter_cpu_seconds``: a request whose filters cost more CPU than the
limit is refused with a 400 naming the setting, and the garbage collector's
pauses, which belong to the process and not to the request, are not charged to
it (a full collection in a large process used to refuse cheap queries at random).
"""

from __future__ import annotations

import gc
import time

from fastapi.testclient import TestClient

from genomenode.app import create_app
from genomenode.store.node import Node, NodeConfig
from genomenode.web.cpu import work_time

QUERY = {
    "meta": {"apiVersion": "2.0"},
    "query": {
        "filters": [{"id": "ICD10:I10"}, {"id": "age", "operator": "<", "value": "86"}],
        "requestedGranularity": "boolean",
    },
}


def _client(node: Node, **settings) -> TestClient:
    config = node.config
    changed = Node(NodeConfig(config.node_dir, {**config.values, **settings}))
    return TestClient(create_app(changed, disclosure_enabled=False))


def test_filters_beyond_the_cpu_limit_are_refused_with_a_400(beacon_node):
    with _client(beacon_node, beacon_filter_cpu_seconds=1e-9) as client:
        refused = client.post("/api/individuals", json=QUERY)
    assert refused.status_code == 400, refused.text
    message = refused.json()["error"]["errorMessage"]
    assert "beacon_filter_cpu_seconds" in message and "'filters'" in message
    with _client(beacon_node) as client:
        answered = client.post("/api/individuals", json=QUERY)
    assert answered.status_code == 200, answered.text


def _big_heap() -> list[list[int]]:
    return [[index] for index in range(2_000_000)]


def test_work_time_leaves_out_garbage_collection():
    heap = _big_heap()
    thread_before, work_before = time.thread_time(), work_time()
    gc.collect()
    collected = time.thread_time() - thread_before
    assert collected > 0.02  # the heap is big enough for the check to mean something
    assert work_time() - work_before < 0.2 * collected
    del heap


def test_work_time_counts_the_threads_own_work():
    before = work_time()
    deadline = time.thread_time() + 0.1
    total = 0
    while time.thread_time() < deadline:
        total += sum(range(1000))
    assert work_time() - before >= 0.1
