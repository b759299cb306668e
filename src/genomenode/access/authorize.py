"""Who is calling: from a request's bearer token to a :class:`Caller`, in one place.

Every service of the node (Beacon, downloads, analyses, the DAC API) gets its
caller from :meth:`Authoriser.caller_for`:

1. the bearer token is verified as a GA4GH passport by the configured
   :class:`~genomenode.access.tokens.TokenVerifier` (trusted brokers only; a
   token no trusted broker issued is refused, not treated as anonymous, so a
   misconfigured client learns why it sees nothing);
2. the caller is *registered* when a verified visa has one of the
   ``registered_visa_types``;
3. the caller's grants are read from the node's entitlements **on every request**
   (one indexed query), so a revocation or an expiry stops access at once, even
   for a node-signed ControlledAccessGrants visa that has not expired yet. Visas
   of this node are honoured only through those entitlements; grants from other
   trusted visa issuers count until their visa expires.

Verifying reads no network: :meth:`Authoriser.prepare`, awaited before a request's
handler runs, fetches the keys and userinfo a passport needs through a
:class:`JsonFetcher` (asynchronous, a short timeout, one fetch per URL in flight,
failed URLs not asked again for a while), so a slow or stopped broker delays only
the requests that need it, and only briefly.

Tokens are never logged or audited; rejected visas are audited by their reason.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

import httpx2
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ..errors import TokenError
from . import applications
from .decision import ANONYMOUS, Caller
from .tokens import Identity, TokenVerifier

__all__ = ["Authoriser", "JsonFetcher", "bearer_token"]

_GRANT = "ControlledAccessGrants"
_log = logging.getLogger(__name__)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header; None without one.

    Raises
    ------
    TokenError
        The header is present but not a bearer token.
    """
    if authorization is None or not authorization.strip():
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenError("the Authorization header must be 'Bearer <passport>'")
    return token.strip()


class JsonFetcher:
    """GETs JSON documents of trusted issuers (JWKS, OIDC userinfo) without blocking.

    What the node fetches from other servers while a request waits, so that a
    slow or stopped server costs that request a short timeout and nothing more:

    - each fetch is asynchronous (:class:`httpx2.AsyncClient`) and ends after
      ``timeout_seconds`` at the latest, answers included;
    - one fetch per URL is in flight at a time (per URL and token for userinfo):
      whoever asks meanwhile awaits the same answer;
    - a URL that failed (no connection, no answer in time, an HTTP error, not
      JSON, larger than ``max_bytes``) is not asked again for
      ``retry_after_seconds``: until then :meth:`get` answers None at once. A
      userinfo answer of 4xx concerns one token and is not remembered.

    Redirects are not followed: keys come from the configured URL only, and a
    bearer token goes nowhere else. Failures are logged with the URL, never
    with a token. URLs come from the node's configuration (trusted issuers),
    never from a token, so the per-URL state stays small.

    Parameters
    ----------
    timeout_seconds
        The longest a fetch takes, from connecting to the last byte.
    retry_after_seconds
        How long a failed URL is not asked again.
    max_bytes
        The largest answer read.
    transport
        The HTTP transport (tests pass an :class:`httpx2.MockTransport`).
    clock
        Monotonic seconds.
    """

    def __init__(
        self,
        *,
        timeout_seconds: float = 3.0,
        retry_after_seconds: float = 10.0,
        max_bytes: int = 1_048_576,
        transport: httpx2.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self.retry_after_seconds = retry_after_seconds
        self.max_bytes = max_bytes
        self._transport = transport
        self._clock = clock
        # Made once: building a TLS context reads the CA bundle (milliseconds of
        # work that must not happen on the event loop for each fetch).
        self._tls = httpx2.create_ssl_context() if transport is None else None
        self._failed_until: dict[str, float] = {}
        self._in_flight: dict[tuple[str, bytes | None], asyncio.Task[object]] = {}
        #: How many requests were sent (each fetch of a URL, not each ``get``).
        self.num_requests = 0

    async def get(self, url: str, *, bearer: str | None = None) -> object | None:
        """The JSON document at ``url``; None if it cannot be had now.

        Parameters
        ----------
        url
            What to GET.
        bearer
            Sent as ``Authorization: Bearer`` (a userinfo request).
        """
        if self._failed_until.get(url, 0.0) > self._clock():
            return None
        loop = asyncio.get_running_loop()
        token_digest = hashlib.sha256(bearer.encode()).digest() if bearer else None
        key = (url, token_digest)
        task = self._in_flight.get(key)
        if task is None or task.get_loop() is not loop:
            task = loop.create_task(self._fetch(url, bearer))
            self._in_flight[key] = task

            def forget(done: asyncio.Task[object]) -> None:
                if self._in_flight.get(key) is done:
                    del self._in_flight[key]

            task.add_done_callback(forget)
        # Shielded: a caller that goes away does not cancel the others' fetch.
        return await asyncio.shield(task)

    async def _fetch(self, url: str, bearer: str | None) -> object | None:
        self.num_requests += 1
        headers = {"Accept": "application/json"}
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        try:
            async with asyncio.timeout(self.timeout_seconds):
                status, body = await self._get(url, headers)
        except TimeoutError:
            self._failed(url, f"no answer within {self.timeout_seconds:g} s")
            return None
        except httpx2.HTTPError as error:
            self._failed(url, type(error).__name__)
            return None
        except _TooLarge:
            self._failed(url, f"the answer is larger than {self.max_bytes} bytes")
            return None
        if status != 200:
            # A userinfo 4xx speaks of one token, not of the server.
            self._failed(
                url,
                f"HTTP {status}",
                remember=bearer is None or not 400 <= status < 500,
            )
            return None
        try:
            document: object = json.loads(body, parse_constant=_not_json)
        except (ValueError, RecursionError):
            self._failed(url, "the answer is not JSON")
            return None
        return document

    async def _get(self, url: str, headers: Mapping[str, str]) -> tuple[int, bytes]:
        async with (
            httpx2.AsyncClient(
                timeout=self.timeout_seconds,
                follow_redirects=False,
                transport=self._transport,
                verify=self._tls if self._tls is not None else True,
            ) as client,
            client.stream("GET", url, headers=headers) as response,
        ):
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.max_bytes:
                    raise _TooLarge
                chunks.append(chunk)
            return response.status_code, b"".join(chunks)

    def _failed(self, url: str, reason: str, *, remember: bool = True) -> None:
        if remember:
            self._failed_until[url] = self._clock() + self.retry_after_seconds
            _log.warning(
                "%s cannot be read (%s); not asked again for %g s",
                url,
                reason,
                self.retry_after_seconds,
            )
        else:
            _log.warning("%s cannot be read (%s)", url, reason)


class _TooLarge(Exception):
    """An answer longer than the fetcher reads."""


def _not_json(name: str) -> float:
    # NaN and Infinity are not JSON; Python's parser would accept them.
    raise ValueError(f"{name} is not JSON")


@dataclasses.dataclass(frozen=True)
class Authoriser:
    """Builds the caller of a request from its passport and the entitlements.

    Parameters
    ----------
    engine
        The node's metadata database (entitlements).
    verifier
        Verifies passports and visas from trusted issuers (the node included).
    node_issuer
        The ``iss`` of the node's own visas: they count only through an active
        entitlement.
    registered_visa_types
        Visa types that make a caller registered.
    dataset_ids
        Published dataset ids (a grant for anything else is ignored).
    dataset_urls
        Prefix of dataset URLs a visa ``value`` may use instead of the bare id
        (``<public_url>/api/datasets/``).
    """

    engine: Engine
    verifier: TokenVerifier
    node_issuer: str
    registered_visa_types: frozenset[str]
    dataset_ids: Callable[[], Collection[str]]
    dataset_urls: str = ""

    def session(self) -> Session:
        """A session on the node's database."""
        return Session(self.engine)

    async def prepare(self, authorization: str | None) -> None:
        """Fetch, without blocking, what verifying this ``Authorization`` header
        will need (keys, userinfo; see :meth:`TokenVerifier.prepare`), so that
        :meth:`identify` reads no network. Never raises."""
        try:
            token = bearer_token(authorization)
        except TokenError:
            return  # identify refuses it, no fetch needed
        if token is not None:
            await self.verifier.prepare(token)

    def identify(self, authorization: str | None) -> Identity | None:
        """The verified identity of an ``Authorization`` header; None: anonymous.

        Raises
        ------
        TokenError
            A token was sent but is not a valid passport of a trusted broker.
        """
        token = bearer_token(authorization)
        if token is None:
            return None
        identity = self.verifier.verify(token)
        if identity is None:
            raise TokenError("the passport is not from a broker this node trusts")
        return identity

    def caller(
        self, identity: Identity | None, *, now: dt.datetime | None = None
    ) -> Caller:
        """The caller for ``identity`` (``ANONYMOUS`` for None), grants read now."""
        if identity is None:
            return ANONYMOUS
        registered = any(
            visa.type in self.registered_visa_types for visa in identity.visas
        )
        # A plain connection, not an ORM session: this runs on every request.
        with self.engine.connect() as connection:
            granted = set(
                applications.active_grants(connection, identity.subject, now=now)
            )
        foreign = [
            self._dataset_of(visa.value)
            for visa in identity.visas_of(_GRANT)
            # the node's own visas count only through an active entitlement (above)
            if visa.issuer != self.node_issuer
        ]
        if foreign:
            known = self.dataset_ids()
            granted.update(dataset_id for dataset_id in foreign if dataset_id in known)
        return Caller(
            subject=identity.subject,
            registered=registered,
            granted_datasets=frozenset(granted),
        )

    def caller_for(self, authorization: str | None) -> tuple[Identity | None, Caller]:
        """Identity and caller of an ``Authorization`` header."""
        identity = self.identify(authorization)
        return identity, self.caller(identity)

    def _dataset_of(self, value: str) -> str:
        if self.dataset_urls and value.startswith(self.dataset_urls):
            return value[len(self.dataset_urls) :].strip("/")
        return value


def rejected_visas(identity: Identity | None) -> Mapping[str, Any]:
    """What the audit log says of visas that did not count (reasons, no tokens)."""
    if identity is None or not identity.rejected_visas:
        return {}
    return {"rejected_visas": list(identity.rejected_visas)}
