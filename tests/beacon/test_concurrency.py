"""A slow Beacon query neither holds up other queries nor outlives its client.

The node's app is served by a real uvicorn server (in a thread, so that the
per-person genotype scan can be slowed down the way a cold object store or a
whole-genome column would slow it). Before the query work ran in the thread
pool, every count query waited for the slow one.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import statistics
import threading
import time

import httpx2
import pytest
import uvicorn

from genomenode.app import create_app
from genomenode.store.published import PublishedDataset
from genomenode.web.blocking import check_cancelled
from genomenode.web.server import ServerProtocol

from ..conftest import free_port

COUNT_QUERY = {
    "referenceName": "chr1",
    "start": "10176",
    "referenceBases": "A",
    "alternateBases": "AC",
    "requestedGranularity": "count",
}


@pytest.fixture
def slow_scans(monkeypatch):
    """Each block of a per-person scan takes 50 ms; records which scans stopped."""
    state = {"blocks": 0, "stopped": threading.Event()}
    original = PublishedDataset.sample_variants

    def slow(self, sample):
        try:
            yield from original(self, sample)
            for _ in range(100):  # 5 s more of "scanning" after the real blocks
                state["blocks"] += 1
                time.sleep(0.05)
                check_cancelled()
        except BaseException:
            state["stopped"].set()
            raise

    monkeypatch.setattr(PublishedDataset, "sample_variants", slow)
    return state


@contextlib.contextmanager
def _served(node):
    port = free_port()
    config = uvicorn.Config(
        create_app(node, base_url=f"http://127.0.0.1:{port}"),
        host="127.0.0.1",
        port=port,
        http=ServerProtocol,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/api", port
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _a_person(node) -> str:
    with node.session() as session:
        from sqlalchemy import select

        from genomenode.store.models import Individual

        return session.scalars(
            select(Individual.id).where(Individual.dataset_id == "cineca-1kg")
        ).first()


def test_a_slow_person_scan_does_not_delay_count_queries(beacon_node, slow_scans):
    person = _a_person(beacon_node)
    with _served(beacon_node) as (base, _port):

        async def scenario() -> tuple[list[float], list[float]]:
            async with httpx2.AsyncClient(base_url=base, timeout=30) as client:
                quiet = []
                for _ in range(20):
                    started = time.perf_counter()
                    answer = await client.get("/g_variants", params=COUNT_QUERY)
                    quiet.append(time.perf_counter() - started)
                    assert answer.json()["responseSummary"]["numTotalResults"] == 1
                slow = [
                    asyncio.ensure_future(
                        client.get(
                            f"/individuals/{person}/g_variants",
                            params={"requestedGranularity": "record"},
                        )
                    )
                    for _ in range(4)
                ]
                await asyncio.sleep(0.3)
                busy = []
                for _ in range(20):
                    started = time.perf_counter()
                    answer = await client.get("/g_variants", params=COUNT_QUERY)
                    busy.append(time.perf_counter() - started)
                    assert answer.json()["responseSummary"]["numTotalResults"] == 1
                assert not any(task.done() for task in slow)  # still scanning
                for task in slow:
                    task.cancel()
                await asyncio.gather(*slow, return_exceptions=True)
                return quiet, busy

        quiet, busy = asyncio.run(scenario())
    # Four scans run in the thread pool; count queries keep their pace.
    assert statistics.median(busy) < statistics.median(quiet) + 0.005, (quiet, busy)
    assert max(busy) < 0.1, busy


def test_a_scan_stops_when_its_client_leaves(beacon_node, slow_scans):
    person = _a_person(beacon_node)
    with _served(beacon_node) as (_base, port):
        with socket.create_connection(("127.0.0.1", port)) as connection:
            connection.sendall(
                f"GET /api/individuals/{person}/g_variants"
                "?requestedGranularity=record HTTP/1.1\r\n"
                "Host: localhost\r\n\r\n".encode()
            )
            time.sleep(0.5)
        assert slow_scans["stopped"].wait(timeout=2)
        blocks = slow_scans["blocks"]
        time.sleep(0.3)
        assert slow_scans["blocks"] == blocks  # nothing scans on for nobody
        assert blocks < 100
