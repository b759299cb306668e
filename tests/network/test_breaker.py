"""The per-node circuit breaker: its states on a fake clock, and in the fan-out
over httpx2's MockTransport (a node that hangs, then recovers)."""

from __future__ import annotations

import asyncio
import time

import httpx2
import pytest

from genomenode.network.breaker import Breakers, BreakerSettings, CircuitBreaker
from genomenode.network.fanout import fan_out
from genomenode.network.registry import RegisteredNode

from .test_merge import GOOD


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _breaker(threshold: int = 3, open_seconds: float = 10.0):
    clock = Clock()
    return CircuitBreaker(BreakerSettings(threshold, open_seconds), clock=clock), clock


def test_opens_after_consecutive_failures_only():
    breaker, _ = _breaker(threshold=3)
    for _ in range(2):
        breaker.record(breaker.admit(), failed=True)
    breaker.record(breaker.admit(), failed=False)  # a success starts over
    for _ in range(2):
        breaker.record(breaker.admit(), failed=True)
    assert breaker.state == "closed"
    breaker.record(breaker.admit(), failed=True, reason="no answer within 5 s")
    assert breaker.state == "open"
    assert breaker.admit() is None
    assert breaker.consecutive_failures == 3
    assert "after 3 consecutive failures" in breaker.reason()
    assert "no answer within 5 s" in breaker.reason()
    assert "next probe in 10 s" in breaker.reason()


def test_half_open_lets_one_probe_through_and_its_success_closes():
    breaker, clock = _breaker(threshold=1, open_seconds=10)
    breaker.record(breaker.admit(), failed=True)
    clock.now += 9.9
    assert breaker.state == "open"
    assert breaker.admit() is None
    clock.now += 0.2
    assert breaker.state == "half-open"
    assert breaker.admit() == "probe"
    # While the probe is out, everyone else still fails fast.
    assert breaker.admit() is None
    assert "probe request is in flight" in breaker.reason()
    breaker.record("probe", failed=False)
    assert breaker.state == "closed"
    assert breaker.admit() == "closed"


def test_a_failed_probe_opens_the_circuit_again():
    breaker, clock = _breaker(threshold=2, open_seconds=5)
    for _ in range(2):
        breaker.record(breaker.admit(), failed=True)
    clock.now += 5
    assert breaker.admit() == "probe"
    breaker.record("probe", failed=True)
    assert breaker.state == "open"
    clock.now += 4.9
    assert breaker.admit() is None
    clock.now += 0.1
    assert breaker.admit() == "probe"


def test_an_abandoned_probe_lets_the_next_request_probe():
    breaker, clock = _breaker(threshold=1, open_seconds=1)
    breaker.record(breaker.admit(), failed=True)
    clock.now += 1
    assert breaker.admit() == "probe"
    breaker.abandon("probe")
    assert breaker.admit() == "probe"


def test_a_late_failure_does_not_extend_the_open_time():
    breaker, clock = _breaker(threshold=1, open_seconds=10)
    admitted = [breaker.admit(), breaker.admit()]
    breaker.record(admitted[0], failed=True)
    clock.now += 8
    breaker.record(admitted[1], failed=True)  # sent before the circuit opened
    clock.now += 2
    assert breaker.state == "half-open"


def test_threshold_zero_never_opens():
    breaker, _ = _breaker(threshold=0)
    for _ in range(100):
        breaker.record(breaker.admit(), failed=True)
    assert breaker.state == "closed"


def test_breakers_are_per_node():
    breakers = Breakers(BreakerSettings(1, 10))
    assert breakers.state("a") == "closed"
    breakers["a"].record(breakers["a"].admit(), failed=True)
    assert breakers.state("a") == "open"
    assert breakers.state("b") == "closed"
    assert breakers["a"] is breakers["a"]


TIMEOUT_SECONDS = 0.3


@pytest.fixture
def hanging():
    """Nodes over a MockTransport: ``hung`` sleeps until ``hang`` is cleared."""
    state = {"hang": True, "asked": []}

    async def handler(request: httpx2.Request) -> httpx2.Response:
        state["asked"].append(request.url.host)
        if request.url.host == "hung.test" and state["hang"]:
            await asyncio.sleep(30)
        if request.url.host == "down.test":
            raise httpx2.ConnectError("connection refused", request=request)
        return httpx2.Response(200, json=GOOD)

    return state, httpx2.MockTransport(handler)


NODES = [
    RegisteredNode("good", "FI", "http://good.test"),
    RegisteredNode("hung", "SE", "http://hung.test"),
    RegisteredNode("down", "NO", "http://down.test"),
]


def test_fan_out_fails_fast_on_an_open_circuit_then_probes(hanging):
    state, transport = hanging
    clock = Clock()
    breakers = Breakers(BreakerSettings(2, 30), clock=clock)

    async def ask(client):
        started = time.perf_counter()
        answers = await fan_out(
            NODES,
            "GET",
            "individuals",
            timeout_seconds=TIMEOUT_SECONDS,
            client=client,
            breakers=breakers,
        )
        return {a.node.id: a for a in answers}, time.perf_counter() - started

    async def run():
        async with httpx2.AsyncClient(transport=transport) as client:
            rounds = [await ask(client) for _ in range(3)]
            clock.now += 30
            state["hang"] = False
            state["asked"].clear()
            rounds.append(await ask(client))
            return rounds

    rounds = asyncio.run(run())
    for answers, elapsed in rounds[:2]:
        assert answers["hung"].status == "timeout"
        assert answers["down"].status == "error"
        assert elapsed >= TIMEOUT_SECONDS
    answers, elapsed = rounds[2]
    # Both failing nodes are now skipped at once, and say why.
    assert elapsed < TIMEOUT_SECONDS / 2
    assert answers["good"].status == "ok"
    for node_id in ("hung", "down"):
        assert answers[node_id].status == "unavailable"
        assert "circuit open after 2 consecutive failures" in answers[node_id].reason
    assert "no answer within 0.3 s" in answers["hung"].reason
    # Half-open: one probe each; the recovered node closes, the down one reopens.
    answers, _ = rounds[3]
    assert sorted(state["asked"]) == ["down.test", "good.test", "hung.test"]
    assert answers["hung"].status == "ok"
    assert breakers.state("hung") == "closed"
    assert answers["down"].status == "error"
    assert breakers.state("down") == "open"


def test_a_cancelled_fan_out_releases_the_probe(hanging):
    _, transport = hanging
    clock = Clock()
    breakers = Breakers(BreakerSettings(1, 5), clock=clock)
    breakers["hung"].record(breakers["hung"].admit(), failed=True)
    clock.now += 5

    async def run():
        async with httpx2.AsyncClient(transport=transport) as client:
            task = asyncio.create_task(
                fan_out(
                    NODES[1:2],
                    "GET",
                    "individuals",
                    timeout_seconds=10,
                    client=client,
                    breakers=breakers,
                )
            )
            await asyncio.sleep(0.05)
            assert breakers["hung"].admit() is None  # the probe is out
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(run())
    assert breakers["hung"].admit() == "probe"
