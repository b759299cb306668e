"""Verify GA4GH Passports (v1.2) and their visas: signatures first, then claims.

Only issuers the node trusts count, each configured as an ``(issuer, jku)`` pair:
the issuer's keys are fetched from that JWKS URL and from nowhere else (a token's
own ``jku`` header must name the same URL). Only RS256 and ES256 are accepted, and
the key's type must match the algorithm, so ``alg: none``, HMAC tokens signed with a
public key and other key confusions fail.

A :class:`TokenVerifier` follows the pluggable-verifier habit: ``verify`` returns
``None`` for a token that is not from a trusted broker ("not mine", so another
verifier may try), and raises :class:`~genomenode.errors.TokenError` for a token
that claims a trusted broker but does not verify ("mine, but bad"). Inside a valid
passport, each visa is verified on its own; a visa that fails (untrusted issuer,
bad signature, expired, another subject, ``conditions``) is left out of the
identity and its reason kept in :attr:`Identity.rejected_visas` for the audit
log.

Some brokers (LS-AAI) issue an access token without the ``ga4gh_passport_v1``
claim and hand out the visas from their OIDC userinfo endpoint instead; a broker
configured with a ``userinfo`` URL is asked there, with the token as bearer.

Visas with ``conditions`` (Passport v1.2, "conditions") are refused, never
ignored: the node does not evaluate conditions, and the specification allows a
clearinghouse that does not to reject such visas, but not to accept them.

Tokens themselves are never logged or kept: the caches key entries by the SHA-256
of a token, never by the token.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import jwt
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from ..errors import TokenError

__all__ = [
    "ALGORITHMS",
    "Identity",
    "JwksCache",
    "TokenVerifier",
    "TrustedIssuer",
    "Visa",
    "unverified_issuer",
]

#: The signature algorithms accepted, as the GA4GH AAI profile allows.
ALGORITHMS = ("RS256", "ES256")
_KEY_TYPES: Mapping[str, type] = {"RS256": RSAAlgorithm, "ES256": ECAlgorithm}
_PASSPORT_CLAIM = "ga4gh_passport_v1"


@dataclasses.dataclass(frozen=True)
class TrustedIssuer:
    """An issuer the node trusts and the one JWKS URL its keys come from.

    Attributes
    ----------
    issuer
        The ``iss`` its tokens carry.
    jku
        The JWKS URL its keys are fetched from.
    userinfo
        For a broker: its OIDC userinfo endpoint, asked for the visas when its
        access tokens do not carry them (``None``: never asked).
    """

    issuer: str
    jku: str
    userinfo: str | None = None


class JwksCache:
    """Keys by JWKS URL, fetched once and kept for ``ttl_seconds``.

    A ``kid`` that is not in the cached set triggers one refresh (the issuer may
    have rotated its keys), at most once per ``min_refresh_seconds`` per URL so that
    tokens with made-up ``kid`` s cannot make the node hammer an issuer.

    Parameters
    ----------
    fetch
        Returns the JWKS document (``{"keys": [...]}``) at a URL; the node passes an
        HTTP GET, tests a dictionary lookup.
    """

    def __init__(
        self,
        fetch: Callable[[str], Mapping[str, Any]],
        *,
        ttl_seconds: float = 3600.0,
        min_refresh_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl_seconds
        self._min_refresh = min_refresh_seconds
        self._clock = clock
        self._keys: dict[str, tuple[float, dict[str, jwt.PyJWK]]] = {}
        self._lock = threading.Lock()

    def _load(self, jku: str) -> dict[str, jwt.PyJWK]:
        try:
            document = self._fetch(jku)
            found = jwt.PyJWKSet.from_dict(dict(document)).keys
        except (jwt.PyJWKSetError, jwt.InvalidKeyError, KeyError, TypeError) as error:
            raise TokenError(f"keys at {jku} cannot be read: {error}") from None
        keys = {str(key.key_id): key for key in found if key.key_id is not None}
        if not keys and len(found) == 1:
            keys = {"": found[0]}
        with self._lock:
            self._keys[jku] = (self._clock(), keys)
        return keys

    def key(self, jku: str, kid: str | None) -> jwt.PyJWK:
        """The key ``kid`` of the JWKS at ``jku`` (one refresh on a miss)."""
        with self._lock:
            cached = self._keys.get(jku)
        now = self._clock()
        if cached is None or now - cached[0] > self._ttl:
            keys = self._load(jku)
        else:
            keys = cached[1]
            if (kid or "") not in keys and now - cached[0] > self._min_refresh:
                keys = self._load(jku)
        if kid is None:
            if len(keys) == 1:
                return next(iter(keys.values()))
            raise TokenError("token has no kid and its issuer publishes several keys")
        if kid not in keys:
            raise TokenError(f"unknown key id {kid!r} for {jku}")
        return keys[kid]


@dataclasses.dataclass(frozen=True)
class Visa:
    """One verified GA4GH visa (``ga4gh_visa_v1``)."""

    type: str
    value: str
    source: str
    by: str | None
    asserted: int
    expires: int
    issuer: str


@dataclasses.dataclass(frozen=True)
class Identity:
    """Who a verified passport says the caller is, with the visas that verified."""

    subject: str
    issuer: str
    visas: tuple[Visa, ...] = ()
    rejected_visas: tuple[str, ...] = ()

    def visas_of(self, visa_type: str) -> tuple[Visa, ...]:
        """The verified visas of one type (e.g. ``ControlledAccessGrants``)."""
        return tuple(visa for visa in self.visas if visa.type == visa_type)


_Value = TypeVar("_Value")


class _TokenCache(Generic[_Value]):
    """Values by token digest, at most ``max_entries`` (the oldest go first).

    The caller decides whether an entry is still good; the cache only bounds
    memory and serialises access between threads.
    """

    def __init__(self, max_entries: int) -> None:
        self._entries: collections.OrderedDict[bytes, _Value] = (
            collections.OrderedDict()
        )
        self._max_entries = max_entries
        self._lock = threading.Lock()

    def get(self, digest: bytes) -> _Value | None:
        with self._lock:
            return self._entries.get(digest)

    def put(self, digest: bytes, value: _Value) -> None:
        with self._lock:
            self._entries[digest] = value
            self._entries.move_to_end(digest)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def drop(self, digest: bytes) -> None:
        with self._lock:
            self._entries.pop(digest, None)


@dataclasses.dataclass(frozen=True)
class _VerifiedPassport:
    """A cached verdict: the identity, the passport's ``exp`` and the earliest
    ``exp`` of the passport and its accepted visas."""

    identity: Identity
    expires: int
    valid_until: int


def _digest(token: str) -> bytes:
    """The cache key of a token: its SHA-256, so that no cache holds a token."""
    return hashlib.sha256(token.encode()).digest()


class TokenVerifier:
    """Verifies passports from trusted brokers and the visas inside them.

    A verified passport is remembered (by the SHA-256 of the token) until it or
    the earliest of its accepted visas expires, so a client presenting the same
    token again costs one lookup, not a round of signature checks. The verdict
    is kept as it was given: a key an issuer rotates out or a JWKS that changes
    later does not revoke a passport that verified (it stays verified until its
    ``exp``), just as a visa rejected once stays rejected for the passport's
    lifetime. An expired passport is never answered from the cache: each hit
    checks ``exp`` against ``clock`` with the same leeway as verification.

    Parameters
    ----------
    brokers
        Passport issuers (brokers) trusted by the node; a broker's ``userinfo``
        URL is asked for the visas when its token carries none.
    visa_issuers
        Visa issuers trusted by the node (a broker's passport may carry visas
        from anyone; only these count).
    keys
        Where public keys come from.
    audience
        When set, passports must name it in ``aud``.
    leeway_seconds
        Clock skew tolerated on ``exp``, ``nbf`` and ``iat``.
    userinfo_fetch
        ``fetch(url, token)`` returns the JSON document of a broker's userinfo
        endpoint for an access token (the node passes an HTTP GET with
        ``Authorization: Bearer``); without it, userinfo is never asked.
    clock
        The current time in seconds since the epoch. It decides when cached
        passports and userinfo answers expire and also checks ``exp`` on every
        token (PyJWT checks ``exp``, ``nbf`` and ``iat`` against the system
        clock in addition).
    max_cached_tokens
        How many verified passports, and how many userinfo answers, are kept;
        the oldest are dropped first.
    """

    def __init__(
        self,
        brokers: Sequence[TrustedIssuer],
        visa_issuers: Sequence[TrustedIssuer],
        keys: JwksCache,
        *,
        audience: str | None = None,
        leeway_seconds: int = 30,
        userinfo_fetch: Callable[[str, str], Mapping[str, Any]] | None = None,
        clock: Callable[[], float] = time.time,
        max_cached_tokens: int = 10_000,
    ) -> None:
        self._brokers = {trusted.issuer: trusted for trusted in brokers}
        self._visa_issuers = {trusted.issuer: trusted for trusted in visa_issuers}
        self._keys = keys
        self._audience = audience
        self._leeway = leeway_seconds
        self._userinfo_fetch = userinfo_fetch
        self._clock = clock
        self._passports: _TokenCache[_VerifiedPassport] = _TokenCache(max_cached_tokens)
        self._userinfo: _TokenCache[tuple[int, list[object]]] = _TokenCache(
            max_cached_tokens
        )

    def verify(self, token: str) -> Identity | None:
        """The identity in a passport; None if no trusted broker issued it.

        Raises
        ------
        TokenError
            The passport names a trusted broker but does not verify (or has
            expired since it was verified).
        """
        digest = _digest(token)
        cached = self._passports.get(digest)
        if cached is not None:
            if self._has_expired(cached.expires):
                self._passports.drop(digest)
                raise TokenError("has expired")
            if not self._has_expired(cached.valid_until):
                return cached.identity
            # A visa has expired since: verify again, so it is rejected.
            self._passports.drop(digest)
        issuer = unverified_issuer(token)
        broker = self._brokers.get(issuer) if issuer is not None else None
        if broker is None:
            return None
        claims = self._decode(token, broker, audience=self._audience)
        subject = str(claims["sub"])
        expires = int(claims["exp"])
        if _PASSPORT_CLAIM in claims:
            raw_visas = claims[_PASSPORT_CLAIM]
        else:
            raw_visas = self._userinfo_visas(token, digest, broker, subject, expires)
        if not isinstance(raw_visas, list):
            raise TokenError(f"{_PASSPORT_CLAIM} must be a list of visa tokens")
        visas: list[Visa] = []
        rejected: list[str] = []
        for number, raw in enumerate(raw_visas):
            try:
                visas.append(self._visa(raw, subject))
            except TokenError as error:
                rejected.append(f"visa {number}: {error}")
        identity = Identity(subject, broker.issuer, tuple(visas), tuple(rejected))
        valid_until = min([expires, *(visa.expires for visa in visas)])
        self._passports.put(digest, _VerifiedPassport(identity, expires, valid_until))
        return identity

    def _has_expired(self, expires: int) -> bool:
        # The same rule as PyJWT's: expired once exp <= now - leeway.
        return expires <= self._clock() - self._leeway

    def _userinfo_visas(
        self,
        token: str,
        digest: bytes,
        broker: TrustedIssuer,
        subject: str,
        expires: int,
    ) -> object:
        """The visas a broker's userinfo endpoint lists for a verified token."""
        if broker.userinfo is None or self._userinfo_fetch is None:
            return []
        cached = self._userinfo.get(digest)
        if cached is not None and not self._has_expired(cached[0]):
            return cached[1]
        try:
            document = self._userinfo_fetch(broker.userinfo, token)
        except Exception as error:  # whatever the transport raises
            # The transport's message should not contain the token, but make sure.
            reason = str(error).replace(token, "<token>") or type(error).__name__
            raise TokenError(
                f"userinfo of {broker.issuer} cannot be read: {reason}"
            ) from None
        if not isinstance(document, Mapping):
            raise TokenError(f"userinfo of {broker.issuer} is not a JSON object")
        if document.get("sub") != subject:
            raise TokenError(
                f"userinfo of {broker.issuer} is for another subject than the token"
            )
        raw_visas = document.get(_PASSPORT_CLAIM, [])
        if not isinstance(raw_visas, list):
            raise TokenError(
                f"{_PASSPORT_CLAIM} in the userinfo of {broker.issuer} "
                "must be a list of visa tokens"
            )
        self._userinfo.put(digest, (expires, raw_visas))
        return raw_visas

    def _visa(self, raw: object, subject: str) -> Visa:
        if not isinstance(raw, str):
            raise TokenError("is not a JWT")
        issuer = unverified_issuer(raw)
        trusted = self._visa_issuers.get(issuer) if issuer is not None else None
        if trusted is None:
            raise TokenError(f"issuer {issuer!r} is not a trusted visa issuer")
        claims = self._decode(raw, trusted, audience=None)
        if claims.get("sub") != subject:
            raise TokenError("is for another subject than the passport")
        body = claims.get("ga4gh_visa_v1")
        if not isinstance(body, dict):
            raise TokenError("has no ga4gh_visa_v1 object")
        if body.get("conditions"):
            # Passport v1.2 lets a clearinghouse that does not evaluate conditions
            # reject such visas; ignoring the conditions would grant too much.
            raise TokenError(
                "is refused: it has conditions, which this node does not "
                "evaluate (visas with conditions are refused, never ignored)"
            )
        try:
            return Visa(
                type=str(body["type"]),
                value=str(body["value"]),
                source=str(body["source"]),
                by=str(body["by"]) if body.get("by") is not None else None,
                asserted=int(body["asserted"]),
                expires=int(claims["exp"]),
                issuer=trusted.issuer,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise TokenError(f"ga4gh_visa_v1 lacks or mistypes {error}") from None

    def _decode(
        self, token: str, trusted: TrustedIssuer, *, audience: str | None
    ) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise TokenError("is not a well-formed JWT") from None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise TokenError(f"algorithm {algorithm!r} is not accepted (RS256, ES256)")
        jku = header.get("jku")
        if jku is not None and jku != trusted.jku:
            raise TokenError(
                f"jku {jku!r} is not the key URL trusted for {trusted.issuer}"
            )
        key = self._keys.key(trusted.jku, header.get("kid"))
        if not isinstance(key.Algorithm, _KEY_TYPES[str(algorithm)]):
            raise TokenError(f"key {key.key_id!r} is not a key for {algorithm}")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=[str(algorithm)],
                issuer=trusted.issuer,
                audience=audience,
                leeway=self._leeway,
                options={
                    "require": ["exp", "iat", "iss", "sub"],
                    "verify_aud": audience is not None,
                },
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("has expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenError("is not valid yet") from None
        except jwt.InvalidSignatureError:
            raise TokenError("signature does not verify") from None
        except jwt.PyJWTError as error:
            raise TokenError(f"is invalid: {error}") from None
        # PyJWT read exp as an integer already. The caches expire entries by
        # ``clock``, so verification must not accept what they would refuse.
        if self._has_expired(int(claims["exp"])):
            raise TokenError("has expired")
        return claims


def unverified_issuer(token: str) -> str | None:
    """The ``iss`` a token claims, read without verifying (to pick its keys)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    issuer = claims.get("iss")
    return issuer if isinstance(issuer, str) else None
