"""The relay keys a network holds, one per node, fetched in the background.

A node issues the network a relay key (``POST /access/relay-keys``,
:mod:`genomenode.access.relay_http`); with it the network MACs the assertions it
sends that node instead of signing each one (``docs/network-trust.md``).
:class:`RelayKeys` keeps one key per node:

- :meth:`RelayKeys.current` answers at once with the node's key, or None: a
  forwarded request never waits for a key (it is then signed, ES256, as before);
- while a node has no valid key, or its key has less than a fifth of its lifetime
  left, one request for a new key runs in the background (never two at once for
  one node), asked with a signed assertion, the answer unwrapped with the
  network's key-agreement key;
- a failed request is retried after a back-off that doubles up to
  ``max_backoff_seconds`` (a node that does not issue relay keys, e.g. an older
  one answering 404, starts at ``unsupported_backoff_seconds``);
- a key is used until a margin before its expiry, measured on the network's own
  monotonic clock from the node's ``expires_in`` (so clocks need not agree);
- :meth:`RelayKeys.drop` forgets a key a node refused (its relay secret was
  replaced, say): the fan-out resends that request signed, and a new key is asked
  for.

Keys are never logged; a failure is logged with the node and the reason.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from ..access.network_trust import ASSERTION_HEADER, NetworkSigner
from ..access.relay_keys import RelayKey
from .node_client import NodeConnectionError, NodeSender
from .registry import RegisteredNode

__all__ = ["RELAY_KEYS_PATH", "RelayKeys"]

#: Where a node issues relay keys, under its base URL.
RELAY_KEYS_PATH = "/access/relay-keys"
_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class _Held:
    key: RelayKey
    renew_at: float
    use_until: float


class RelayKeys:
    """One relay key per node, asked for in the background (module docs).

    Parameters
    ----------
    signer
        The network's signer: signs the requests for keys, opens the answers.
    client
        What the nodes are asked with (the fan-out's pooled client).
    timeout_seconds
        How long one request for a key may take.
    renew_fraction
        Ask for a new key when less than this part of a key's lifetime is left.
    margin_seconds
        Stop using a key this long before it expires (at most a tenth of its
        lifetime).
    min_backoff_seconds, max_backoff_seconds
        The first wait after a failed request, doubled at each failure up to the
        most.
    unsupported_backoff_seconds
        The first wait after a node answered 404 (it issues no relay keys).
    clock
        Monotonic seconds.
    """

    def __init__(
        self,
        signer: NetworkSigner,
        client: NodeSender,
        *,
        timeout_seconds: float,
        renew_fraction: float = 0.2,
        margin_seconds: float = 30.0,
        min_backoff_seconds: float = 5.0,
        max_backoff_seconds: float = 3600.0,
        unsupported_backoff_seconds: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._signer = signer
        self._client = client
        self._timeout = timeout_seconds
        self._renew_fraction = renew_fraction
        self._margin = margin_seconds
        self._min_backoff = min_backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._unsupported_backoff = unsupported_backoff_seconds
        self._clock = clock
        self._held: dict[str, _Held] = {}
        self._asking: dict[str, asyncio.Task[None]] = {}
        self._retry_at: dict[str, float] = {}
        self._backoff: dict[str, float] = {}
        #: Keys obtained so far (for the status page and the tests).
        self.num_obtained = 0

    def current(self, node: RegisteredNode) -> RelayKey | None:
        """The node's key if one is valid now (None: sign instead); asks for a
        new one in the background when it has none or its key is ageing."""
        now = self._clock()
        held = self._held.get(node.id)
        if held is not None and now >= held.use_until:
            del self._held[node.id]
            held = None
        if held is None or now >= held.renew_at:
            self._ask(node, now)
        return held.key if held is not None else None

    def drop(self, node: RegisteredNode, key: RelayKey) -> None:
        """Forget ``key`` (the node refused it) and ask for a new one now."""
        held = self._held.get(node.id)
        if held is not None and held.key is key:
            del self._held[node.id]
        self._ask(node, self._clock())

    async def aclose(self) -> None:
        """Cancel the requests for keys in flight."""
        asking = list(self._asking.values())
        for task in asking:
            task.cancel()
        await asyncio.gather(*asking, return_exceptions=True)

    async def wait_idle(self) -> None:
        """Wait for the requests for keys in flight (tests, start-up)."""
        while self._asking:
            await asyncio.gather(*self._asking.values(), return_exceptions=True)

    def _ask(self, node: RegisteredNode, now: float) -> None:
        if node.id in self._asking or now < self._retry_at.get(node.id, 0.0):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop to ask in: sign for now
        task = loop.create_task(self._obtain(node))
        self._asking[node.id] = task
        task.add_done_callback(lambda _task: self._asking.pop(node.id, None))

    async def _obtain(self, node: RegisteredNode) -> None:
        try:
            key = await asyncio.wait_for(self._request(node), self._timeout)
        except asyncio.CancelledError:
            raise
        except _NotIssued as error:
            self._failed(node, str(error), unsupported=error.status == 404)
            return
        except (NodeConnectionError, TimeoutError, ValueError) as error:
            self._failed(node, f"{type(error).__name__}: {error}", unsupported=False)
            return
        now = self._clock()
        lifetime = float(key.lifetime_seconds)
        self._held[node.id] = _Held(
            key,
            renew_at=now + lifetime * (1.0 - self._renew_fraction),
            use_until=now + lifetime - min(self._margin, lifetime / 10),
        )
        self._backoff.pop(node.id, None)
        self._retry_at.pop(node.id, None)
        self.num_obtained += 1

    async def _request(self, node: RegisteredNode) -> RelayKey:
        url = node.url.rstrip("/") + RELAY_KEYS_PATH
        body = json.dumps({"agreement_kid": self._signer.agreement.kid}).encode()
        headers = [
            ("Content-Type", "application/json"),
            (
                ASSERTION_HEADER,
                self._signer.assertion(
                    audience=node.url,
                    method="POST",
                    path_and_query=urlsplit(url).path,
                    body=body,
                ),
            ),
        ]
        response = await self._client.send("POST", url, headers, body)
        if response.status != 200:
            raise _NotIssued(response.status)
        try:
            document = json.loads(response.content)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ValueError("the answer is not JSON") from None
        return self._signer.open_relay_key(document, audience=node.url)

    def _failed(self, node: RegisteredNode, reason: str, *, unsupported: bool) -> None:
        previous = self._backoff.get(node.id)
        first = self._unsupported_backoff if unsupported else self._min_backoff
        wait = min(self._max_backoff, max(first, 2 * previous) if previous else first)
        self._backoff[node.id] = wait
        self._retry_at[node.id] = self._clock() + wait
        _log.warning(
            "no relay key from %s (%s): its requests are signed; next try in %g s",
            node.id,
            reason,
            wait,
        )


class _NotIssued(Exception):
    """The node answered, but not with a key."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
