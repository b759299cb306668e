"""Trust between a network aggregator and its nodes: signed request assertions.

A network forwards each Beacon query to the nodes in its registry and signs every
forwarded request with a short-lived JWT, sent as the ``GA4GH-Network-Assertion``
header (in the spirit of OAuth DPoP proofs and client assertions)::

    header  {"alg": "ES256", "typ": "network-assertion+jwt", "kid": ...}
    claims  {"iss": <network id URL>, "aud": <node base URL or node id>,
             "iat": ..., "exp": iat + 60, "jti": <random>,
             "htm": "POST", "htu": "/api/g_variants?...",
             "bdh": base64url(sha256(body)), "clt": "ip:<caller address>"}

The assertion binds one request: the method (``htm``), the path and query the node
receives (``htu``) and the body (``bdh``), so that a captured assertion cannot be
moved to another request, another node, or used after it expires; a node remembers
the ``jti`` of the assertions it accepted until they expire, so one cannot be
replayed either.

:class:`NetworkSigner` is the network's side (keys in a directory, rotated as the
node's visa keys are, see :class:`~genomenode.access.visas.SigningKeys`);
:class:`NetworkVerifier` is the node's, a pluggable verifier: ``None`` for an
assertion that no trusted network issued ("not mine") and
:class:`~genomenode.errors.TokenError` for one that claims a trusted network but
does not verify ("mine, but bad").

Assertions are checked by the node's one token routine,
:func:`genomenode.access.jws.verify` (RS256/ES256, the key trusted for the network,
``typ``, times, ``aud``); the network's keys are fetched beforehand by
:meth:`NetworkVerifier.prepare`, never while verifying.

Once a node has issued the network a relay key
(:mod:`~genomenode.access.relay_keys`), the network MACs its assertions for that
node instead (``alg`` HS256, ``kid`` ``relay:<kid>``): the node derives the key
from its relay secret and the kid, compares the MAC in constant time
(:func:`genomenode.access.jws.verify_hs256`), and the claims pass exactly the
checks of a signed assertion. Only a signed (ES256) assertion obtains a relay key.

An assertion says which network relayed a request, nothing about who asks: the
passport (``Authorization``) still decides the caller's rights. Its ``clt`` claim
names the address the network was asked from, so that a node keeps an anonymous
caller's disclosure budget for that caller rather than for the network
(``docs/privacy.md``). See
``docs/network-trust.md``.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import hashlib
import hmac
import pathlib
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Collection, Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from ..errors import ConfigError, TokenError
from . import jws
from .relay_keys import (
    RELAY_KID_PREFIX,
    AgreementKey,
    RelayKey,
    RelaySecret,
    relay_kid_expiry,
    unwrap_relay_key,
)
from .tokens import JwksCache, TrustedIssuer
from .visas import SigningKeys

__all__ = [
    "ASSERTION_HEADER",
    "ASSERTION_TYPE",
    "NetworkCaller",
    "NetworkSigner",
    "NetworkVerifier",
    "body_digest",
    "canonical_path_and_query",
]

#: The HTTP header a forwarded request carries its assertion in.
ASSERTION_HEADER = "GA4GH-Network-Assertion"
#: The ``typ`` of an assertion's JOSE header (explicit typing, RFC 8725 §3.11),
#: so that another JWT signed with a network's key (a visa, say) is never taken
#: for an assertion.
ASSERTION_TYPE = "network-assertion+jwt"
_METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
_REQUIRED_CLAIMS = ("iss", "aud", "iat", "exp", "jti", "htm", "htu")


def body_digest(body: bytes) -> str:
    """The ``bdh`` of a request body: its SHA-256, base64url without padding."""
    if not body:
        return _EMPTY_BODY_DIGEST  # every GET's
    digest = hashlib.sha256(body).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


_EMPTY_BODY_DIGEST = (
    base64.urlsafe_b64encode(hashlib.sha256(b"").digest()).rstrip(b"=").decode("ascii")
)


def canonical_path_and_query(path_and_query: str) -> str:
    """A path and query in one spelling, so that both sides compare the same text.

    The path is percent-decoded and the query re-encoded pair by pair, in the
    order sent (a repeated parameter's order may matter), so that ``%2C`` and
    ``,`` or ``+`` and ``%20`` do not make a valid assertion fail.
    """
    path, _, query = path_and_query.partition("?")
    canonical = urllib.parse.unquote(path) or "/"
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    if pairs:
        canonical += "?" + urllib.parse.urlencode(pairs)
    return canonical


@dataclasses.dataclass(frozen=True)
class NetworkCaller:
    """The trusted network that relayed a request, from its verified assertion.

    Attributes
    ----------
    network
        The network's id (the assertion's ``iss``).
    jti
        The assertion's id, for matching the node's audit log with the
        network's.
    client
        The ``clt`` claim: who the network was asked by (``ip:<address>``), so
        that a node budgets the original caller, not the network
        (``docs/privacy.md``); None when the assertion has none.
    audience
        The ``aud`` the assertion named (one of the node's names).
    relay_kid
        The relay key the assertion was MACed with; None for a signed one.
    """

    network: str
    jti: str
    client: str | None = None
    audience: str | None = None
    relay_kid: str | None = None


class NetworkSigner:
    """Signs the requests a network forwards to its nodes (ES256, or HS256 under
    a node's relay key).

    Parameters
    ----------
    keys_directory
        The network's signing keys (EC P-256 PEM files, created on first use; the
        newest signs, all are published by :meth:`jwks`), and its key-agreement
        key, ``agreement.key`` (never signs; relay keys are wrapped to it).
    issuer
        The network's id URL, the ``iss`` of its assertions; nodes trust it with
        the URL its :meth:`jwks` is served at.
    lifetime_seconds
        How long an assertion is valid (``exp - iat``).
    """

    def __init__(
        self, keys_directory: pathlib.Path, issuer: str, *, lifetime_seconds: int = 60
    ) -> None:
        self.keys = SigningKeys(keys_directory)
        self.agreement = AgreementKey(keys_directory / "agreement.key")
        self.issuer = issuer
        self.lifetime_seconds = lifetime_seconds

    def assertion(
        self,
        *,
        audience: str,
        method: str,
        path_and_query: str,
        body: bytes = b"",
        client: str | None = None,
        relay_key: RelayKey | None = None,
    ) -> str:
        """An assertion for one request to one node: signed (ES256), or MACed
        (HS256) with ``relay_key``.

        Parameters
        ----------
        audience
            The node's base URL as the registry lists it (or its node id).
        method
            The HTTP method of the request.
        path_and_query
            The path and query exactly as the request will carry them (build the
            URL first, then sign its path and query, e.g. ``httpx.URL.raw_path``).
        body
            The request body as sent (empty for GET).
        client
            Who asked the network (``ip:<address>``): the ``clt`` claim, under
            which a node keeps an anonymous caller's disclosure budget.
        relay_key
            A relay key the node (``audience``) issued: MAC with it, sign nothing.
        """
        issued_at = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": audience,
            "iat": issued_at,
            "exp": issued_at + self.lifetime_seconds,
            "jti": uuid.uuid4().hex,
            "htm": method.upper(),
            "htu": path_and_query,
            "bdh": body_digest(body),
        }
        if client is not None:
            claims["clt"] = client
        if relay_key is not None:
            return jws.sign_hs256(
                claims,
                relay_key.value,
                kid=RELAY_KID_PREFIX + relay_key.kid,
                token_type=ASSERTION_TYPE,
            )
        kid, key = self.keys.active()
        return jws.sign_es256(claims, key, kid=kid, token_type=ASSERTION_TYPE)

    def open_relay_key(self, document: object, *, audience: str) -> RelayKey:
        """The relay key in node ``audience``'s answer, unwrapped with the
        network's agreement key (see
        :func:`~genomenode.access.relay_keys.unwrap_relay_key`).

        Raises
        ------
        ValueError
            The answer is malformed or does not open.
        """
        return unwrap_relay_key(
            document,
            issuer=self.issuer,
            audience=audience,
            agreement=self.agreement.private_key(),
        )

    def jwks(self) -> dict[str, Any]:
        """The network's public keys: its signing keys and its key-agreement key
        (``"use": "enc"``). Keys are created if there are none yet."""
        # A node fetching an empty JWKS would refuse the first assertions until
        # its cache may refresh; make sure there is a key to publish.
        self.keys.active()
        document = self.keys.jwks()
        return {"keys": [*document["keys"], self.agreement.jwk()]}


class _SeenAssertions:
    """``(issuer, jti)`` of accepted assertions until they expire, at most
    ``max_entries`` (the soonest to expire go first when full)."""

    def __init__(self, max_entries: int) -> None:
        self._expiry: collections.OrderedDict[tuple[str, str], float] = (
            collections.OrderedDict()
        )
        self._max_entries = max_entries
        self._lock = threading.Lock()

    def add(self, key: tuple[str, str], expires: float, now: float) -> bool:
        """Remember ``key``; False when it is remembered already (a replay)."""
        with self._lock:
            while self._expiry:
                oldest_key, oldest_expiry = next(iter(self._expiry.items()))
                if oldest_expiry > now:
                    break
                del self._expiry[oldest_key]
            if key in self._expiry:
                return False
            self._expiry[key] = expires
            # Lifetimes are short and alike, so insertion order is close to
            # expiry order; dropping the first entries drops the oldest.
            while len(self._expiry) > self._max_entries:
                self._expiry.popitem(last=False)
            return True


class NetworkVerifier:
    """Verifies the assertions of trusted networks on the requests a node receives.

    :meth:`verify` reads no network: the keys of a network are fetched by
    :meth:`prepare`, which the node awaits first.

    Parameters
    ----------
    trusted
        The networks the node trusts, each with the one JWKS URL its keys come
        from.
    keys
        Where public keys come from (shared with the passport verifier).
    leeway_seconds
        Clock skew tolerated on ``exp``, ``nbf`` and ``iat``.
    replay_window
        How many accepted ``jti`` are remembered (until each expires). More
        assertions than that within one lifetime push the oldest out, which may
        then be replayed until it expires; size it above the node's peak number
        of forwarded requests per assertion lifetime.
    max_lifetime_seconds
        Assertions valid for longer (``exp - iat``) are refused, so that a
        remembered ``jti`` always outlives its assertion's use.
    clock
        The current time in seconds since the epoch: checks ``exp``, ``nbf`` and
        ``iat``, relay keys' expiry, and expires remembered ``jti``.
    refuse_development
        Refuse assertions carrying the development identity provider's claim
        (:data:`~genomenode.access.jws.DEVELOPMENT_CLAIM`): a node in ``prod``.
    relay_secret
        The node's relay secret: assertions MACed with a relay key it derives
        are accepted (None: every relay-key assertion is refused).
    relay_key_seconds
        The longest a relay key may be valid for (``network_relay_key_seconds``);
        a key whose expiry lies further ahead is refused, and 0 refuses them all.
    """

    def __init__(
        self,
        trusted: Sequence[TrustedIssuer],
        keys: JwksCache,
        *,
        leeway_seconds: int = 30,
        replay_window: int = 10_000,
        max_lifetime_seconds: int = 300,
        clock: Callable[[], float] = time.time,
        refuse_development: bool = False,
        relay_secret: RelaySecret | None = None,
        relay_key_seconds: int = 0,
    ) -> None:
        self._trusted = {network.issuer: network for network in trusted}
        self._keys = keys
        self._leeway = leeway_seconds
        self._max_lifetime = max_lifetime_seconds
        self._clock = clock
        self._refuse_development = refuse_development
        self._seen = _SeenAssertions(replay_window)
        self._prepared: (
            tuple[str, TrustedIssuer | None, dict[str, Any], dict[str, Any]] | None
        ) = None
        self.relay_secret = relay_secret
        self.relay_key_seconds = relay_key_seconds if relay_secret is not None else 0

    def trusted(self, issuer: str) -> TrustedIssuer | None:
        """The trusted network ``issuer`` (None: not trusted)."""
        return self._trusted.get(issuer)

    def _peek(
        self, assertion: str
    ) -> tuple[TrustedIssuer | None, dict[str, Any], dict[str, Any]]:
        """The trusted network an assertion claims, its unverified header and
        claims (read once per request: :meth:`prepare` keeps them)."""
        prepared = self._prepared
        if prepared is not None and prepared[0] == assertion:
            return prepared[1], prepared[2], prepared[3]
        peeked = jws.peek(assertion)
        if peeked is None:
            return None, {}, {}
        issuer = peeked[1].get("iss")
        network = self._trusted.get(issuer) if isinstance(issuer, str) else None
        return network, peeked[0], peeked[1]

    async def prepare(self, assertion: str) -> None:
        """Fetch the keys :meth:`verify` will need for ``assertion``, if missing.

        Read from the assertion's unverified header and claims; nothing is
        fetched for an untrusted network, nor for a relay-key assertion (the node
        derives its key). Never raises.
        """
        if len(assertion) > jws.MAX_TOKEN_LENGTH:
            return
        self._prepared = None
        network, header, claims = self._peek(assertion)
        # verify() of the same text then picks its network without reading it
        # again (one assertion per request, prepared then verified).
        self._prepared = (assertion, network, header, claims)
        if network is None or _is_relay(header):
            return
        kid = header.get("kid")
        await self._keys.prepare(network.jku, kid if isinstance(kid, str) else None)

    async def prepare_agreement(self, assertion: str, kid: str) -> None:
        """Fetch the key-agreement key ``kid`` of the network ``assertion`` claims
        (from its trusted ``jku``, never from the request), if missing. Never
        raises."""
        network = self._peek(assertion)[0]
        if network is not None:
            await self._keys.prepare(network.jku, kid)

    def agreement_key(self, issuer: str, kid: str) -> ec.EllipticCurvePublicKey | None:
        """The key-agreement key ``kid`` (``"use": "enc"``) in the JWKS of trusted
        network ``issuer``; None when it is not there (or not at hand)."""
        network = self._trusted.get(issuer)
        return (
            self._keys.agreement_key(network.jku, kid) if network is not None else None
        )

    def verify(
        self,
        assertion: str,
        *,
        audience: str | Collection[str],
        method: str,
        path_and_query: str,
        body: bytes,
        accept_relay_keys: bool = True,
    ) -> NetworkCaller | None:
        """The network that relayed a request; None if no trusted network signed.

        Parameters
        ----------
        assertion
            The ``GA4GH-Network-Assertion`` header.
        audience
            What the node answers to in ``aud``: its base URL, its node id (any
            one of several matches).
        method, path_and_query, body
            The request as the node received it.
        accept_relay_keys
            Accept assertions MACed with a relay key (False: only signed ones,
            for the request that obtains a relay key).

        Raises
        ------
        TokenError
            The assertion is too long to read, or names a trusted network but
            does not verify: bad signature or MAC, keys unavailable, relay key
            expired or malformed, expired or not yet valid, for another node,
            for another method, path or body, or already used.
        """
        if len(assertion) > jws.MAX_TOKEN_LENGTH:
            raise TokenError(
                f"the network assertion is too long (more than "
                f"{jws.MAX_TOKEN_LENGTH} characters)"
            )
        network, header, peeked_claims = self._peek(assertion)
        if network is None:
            return None
        prefix = f"network assertion of {network.issuer}"
        audiences = [audience] if isinstance(audience, str) else list(audience)
        relay_kid = None
        try:
            if _is_relay(header):
                if not accept_relay_keys:
                    raise TokenError(
                        "is MACed with a relay key; only a signed (ES256) "
                        "assertion is accepted here"
                    )
                relay_kid = str(header["kid"]).removeprefix(RELAY_KID_PREFIX)
                claims = jws.verify_hs256(
                    assertion,
                    issuer=network.issuer,
                    key=lambda kid: self._relay_key(network.issuer, kid),
                    now=self._clock(),
                    required=_REQUIRED_CLAIMS,
                    audience=audiences,
                    token_type=ASSERTION_TYPE,
                    leeway_seconds=self._leeway,
                    refuse_development=self._refuse_development,
                    # Parsed by _peek from this very text.
                    peeked=(header, peeked_claims),
                )
            else:
                # Everything else, HS256 without a relay kid included, goes
                # through the one token routine, which refuses HMAC.
                claims = jws.verify(
                    assertion,
                    issuer=network.issuer,
                    jku=network.jku,
                    keys=self._keys.key,
                    now=self._clock(),
                    required=_REQUIRED_CLAIMS,
                    audience=audiences,
                    token_type=ASSERTION_TYPE,
                    leeway_seconds=self._leeway,
                    refuse_development=self._refuse_development,
                )
        except TokenError as error:
            raise TokenError(f"{prefix} {error}") from None
        return self._accepted(
            claims,
            network=network,
            prefix=prefix,
            audiences=audiences,
            method=method,
            path_and_query=path_and_query,
            body=body,
            relay_kid=relay_kid,
        )

    def _relay_key(self, issuer: str, header_kid: str | None) -> bytes:
        """The relay key a header's ``relay:<kid>`` names for ``issuer``, if it is
        one this node honours now.

        Raises
        ------
        TokenError
            Relay keys are off, the kid is malformed, the key has expired or is
            valid for longer than ``network_relay_key_seconds`` allows, or the
            relay secret cannot be read.
        """
        if self.relay_secret is None or self.relay_key_seconds <= 0:
            raise TokenError(
                "is MACed with a relay key, and this node honours none "
                "(network_relay_key_seconds is 0)"
            )
        if header_kid is None or not header_kid.startswith(RELAY_KID_PREFIX):
            raise TokenError("names no relay key (kid relay:<kid>)")
        kid = header_kid.removeprefix(RELAY_KID_PREFIX)
        expiry = relay_kid_expiry(kid)
        if expiry is None:
            raise TokenError("names a malformed relay key id")
        now = self._clock()
        if expiry <= now:
            raise TokenError("is MACed with a relay key that has expired")
        if expiry > now + self.relay_key_seconds + self._leeway:
            raise TokenError(
                "is MACed with a relay key that expires later than "
                "network_relay_key_seconds allows"
            )
        try:
            return self.relay_secret.key(issuer, kid)
        except ConfigError:
            raise TokenError(
                "cannot be verified: the node's relay secret is unreadable"
            ) from None

    def _accepted(
        self,
        claims: dict[str, Any],
        *,
        network: TrustedIssuer,
        prefix: str,
        audiences: Sequence[str],
        method: str,
        path_and_query: str,
        body: bytes,
        relay_kid: str | None,
    ) -> NetworkCaller:
        """The checks of the request a verified assertion binds, signed or MACed:
        method, path and query, body, lifetime, and that its jti is new."""
        for name in ("jti", "htm", "htu"):
            if not isinstance(claims[name], str):
                raise TokenError(f"{prefix} has a {name} that is not a string")
        if claims["htm"].upper() != method.upper():
            raise TokenError(f"{prefix} is for another HTTP method")
        # The same text is the same target; only other spellings need the
        # canonical form (a network client sends what it signed).
        if claims["htu"] != path_and_query and canonical_path_and_query(
            claims["htu"]
        ) != canonical_path_and_query(path_and_query):
            raise TokenError(f"{prefix} is for another path or query")
        digest = claims.get("bdh")
        if digest is None:
            if body or method.upper() in _METHODS_WITH_BODY:
                raise TokenError(f"{prefix} has no bdh (body digest)")
        elif not isinstance(digest, str) or not hmac.compare_digest(
            digest.encode(), body_digest(body).encode()
        ):
            raise TokenError(f"{prefix} is for another request body")
        issued_at, expires = int(claims["iat"]), int(claims["exp"])
        if expires - issued_at > self._max_lifetime:
            raise TokenError(
                f"{prefix} is valid for longer than {self._max_lifetime} seconds"
            )
        jti = claims["jti"]
        # Remembered past exp by the leeway, as long as verification accepts it.
        if not self._seen.add(
            (network.issuer, jti), expires + self._leeway, self._clock()
        ):
            raise TokenError(f"{prefix} has been used already (jti {jti!r})")
        client = claims.get("clt")
        named = claims["aud"]
        audience = next(
            (
                name
                for name in ([named] if isinstance(named, str) else named)
                if name in audiences
            ),
            None,
        )
        return NetworkCaller(
            network=network.issuer,
            jti=jti,
            client=client if isinstance(client, str) and client else None,
            audience=audience,
            relay_kid=relay_kid,
        )


def _is_relay(header: dict[str, Any]) -> bool:
    """A relay-key assertion's header: HS256 with a ``relay:`` kid."""
    kid = header.get("kid")
    return (
        header.get("alg") == "HS256"
        and isinstance(kid, str)
        and kid.startswith(RELAY_KID_PREFIX)
    )
