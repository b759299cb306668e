"""Per-node circuit breakers: stop waiting for a node that keeps failing.

A node that hangs costs every network request the full per-node timeout. After
``failure_threshold`` consecutive failures (no answer in time, no connection, an
HTTP 5xx) its circuit **opens**: for ``open_seconds`` the node is not asked at all
and is reported ``unavailable`` at once. Then the circuit is **half-open**: the
next request is let through as a probe (the others still fail fast); if it
succeeds the circuit closes, if it fails the circuit opens again::

    closed ──threshold consecutive failures──▶ open ──open_seconds──▶ half-open
      ▲                                         ▲                         │
      └──────────── the probe succeeds ─────────┴── the probe fails ──────┘

Any answer from the node (even a refusal or a document breaking the schema) is a
success: the breaker guards the network's time, not the node's correctness. The
state lives in one process; each ``network serve --workers`` process keeps its
own.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Literal

__all__ = [
    "DEFAULT_FAILURE_THRESHOLD",
    "DEFAULT_OPEN_SECONDS",
    "Admission",
    "BreakerSettings",
    "Breakers",
    "CircuitBreaker",
    "CircuitState",
]

#: Consecutive failures that open a node's circuit, when NETWORK.yaml is silent.
DEFAULT_FAILURE_THRESHOLD = 5
#: How long an open circuit stays open before one probe, when NETWORK.yaml is
#: silent.
DEFAULT_OPEN_SECONDS = 30.0

CircuitState = Literal["closed", "open", "half-open"]
#: How a request was let through: normally, or as the half-open probe.
Admission = Literal["closed", "probe"]


@dataclasses.dataclass(frozen=True)
class BreakerSettings:
    """When a node's circuit opens and for how long.

    Attributes
    ----------
    failure_threshold
        Consecutive failures that open the circuit; 0 never opens it.
    open_seconds
        How long the circuit stays open before one probe request.
    """

    failure_threshold: int = DEFAULT_FAILURE_THRESHOLD
    open_seconds: float = DEFAULT_OPEN_SECONDS


class CircuitBreaker:
    """The circuit of one node (see the module docs).

    Not thread-safe: one event loop uses it (requests of one process).

    Parameters
    ----------
    settings
        Threshold and open time.
    clock
        Monotonic seconds (tests pass a fake one).
    """

    def __init__(
        self,
        settings: BreakerSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self._last_failure = ""

    @property
    def state(self) -> CircuitState:
        """``closed``, ``open`` or ``half-open`` (open time over, probe or not)."""
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at < self.settings.open_seconds:
            return "open"
        return "half-open"

    @property
    def consecutive_failures(self) -> int:
        """Failures since the last success."""
        return self._failures

    def admit(self) -> Admission | None:
        """Whether to ask the node now: ``closed``, ``probe`` or None (fail fast)."""
        state = self.state
        if state == "closed":
            return "closed"
        if state == "half-open" and not self._probing:
            self._probing = True
            return "probe"
        return None

    def reason(self) -> str:
        """Why the node is not asked, for ``info.nodes[].reason``."""
        if self._opened_at is None:
            return "circuit closed"
        remaining = self.settings.open_seconds - (self._clock() - self._opened_at)
        if remaining > 0:
            when = f"next probe in {remaining:.0f} s"
        else:
            when = "a probe request is in flight"
        return (
            f"circuit open after {self._failures} consecutive failures "
            f"(last: {self._last_failure}); {when}"
        )

    def record(self, admission: Admission, *, failed: bool, reason: str = "") -> None:
        """The outcome of a request let through by :meth:`admit`."""
        if admission == "probe":
            self._probing = False
        if not failed:
            # Any answer shows the node answers again (even one sent before the
            # circuit opened and late to arrive).
            self._failures = 0
            self._opened_at = None
            return
        self._failures += 1
        self._last_failure = reason or "failed"
        threshold = self.settings.failure_threshold
        if admission == "probe" or (
            self._opened_at is None and threshold and self._failures >= threshold
        ):
            self._opened_at = self._clock()

    def abandon(self, admission: Admission) -> None:
        """A request let through was cancelled before it had an outcome."""
        if admission == "probe":
            # The next request probes instead; nothing was learnt.
            self._probing = False


class Breakers:
    """One :class:`CircuitBreaker` per node id, made on first use.

    Parameters
    ----------
    settings
        For every node.
    clock
        Monotonic seconds (tests pass a fake one).
    """

    def __init__(
        self,
        settings: BreakerSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}

    def __getitem__(self, node_id: str) -> CircuitBreaker:
        breaker = self._breakers.get(node_id)
        if breaker is None:
            breaker = CircuitBreaker(self.settings, clock=self._clock)
            self._breakers[node_id] = breaker
        return breaker

    def state(self, node_id: str) -> CircuitState:
        """The state of a node's circuit (``closed`` if never used)."""
        breaker = self._breakers.get(node_id)
        return breaker.state if breaker is not None else "closed"
