"""Verify GA4GH Passports (v1.2) and their visas: signatures first, then claims.

Only issuers the node trusts count, each configured as an ``(issuer, jku)`` pair:
the issuer's keys are fetched from that JWKS URL and from nowhere else (a token's
own ``jku`` header must name the same URL). Every token is checked by the node's one
routine, :func:`genomenode.access.jws.verify` (RS256 and ES256 only, the key's type
must match the algorithm, so ``alg: none``, HMAC tokens signed with a public key and
other key confusions fail; then the claims).

Verification reads no network. Keys and userinfo documents of other servers are
fetched beforehand, asynchronously, by :meth:`TokenVerifier.prepare` (which the
node awaits before a request's handler runs, see
:func:`genomenode.access.callers.prepared`); a failed fetch is not repeated for a
while, and a token whose keys are unavailable is refused saying so.

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

import asyncio
import collections
import contextlib
import dataclasses
import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from ..errors import TokenError
from . import jws

__all__ = [
    "Identity",
    "JwksCache",
    "RemoteJson",
    "TokenVerifier",
    "TrustedIssuer",
    "Visa",
    "unverified_issuer",
]

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


class RemoteJson(Protocol):
    """Where JSON documents of other servers come from, without blocking.

    :class:`~genomenode.access.authorize.JsonFetcher` is the node's.
    """

    async def get(self, url: str, *, bearer: str | None = None) -> object | None:
        """The JSON document at ``url`` (``bearer``: sent as a bearer token);
        None when it cannot be had. Never raises for a network failure."""
        ...


@dataclasses.dataclass
class _KeySet:
    """The keys of one JWKS URL: when they were loaded and last asked for.

    ``keys`` verify signatures; ``agreement`` are key-agreement keys (``"use":
    "enc"``), kept apart so that one never verifies a signature.
    """

    keys: dict[str, jwt.PyJWK]
    loaded_at: float | None
    attempted_at: float
    agreement: dict[str, ec.EllipticCurvePublicKey] = dataclasses.field(
        default_factory=dict
    )


def _agreement_key(entry: Mapping[str, Any]) -> ec.EllipticCurvePublicKey | None:
    """The P-256 public key of an ``ECDH-ES`` JWK; None for anything else."""
    if (
        entry.get("kty") != "EC"
        or entry.get("crv") != "P-256"
        or entry.get("alg", "ECDH-ES") != "ECDH-ES"
        or "d" in entry  # a private key has no place in a JWKS
        or not isinstance(entry.get("kid"), str)
    ):
        return None
    try:
        key = ECAlgorithm.from_jwk(dict(entry))
    except (jwt.PyJWTError, TypeError, ValueError):
        return None
    return key if isinstance(key, ec.EllipticCurvePublicKey) else None


def _parse_jwks(
    document: object,
) -> tuple[dict[str, jwt.PyJWK], dict[str, ec.EllipticCurvePublicKey]]:
    """The signing keys of a JWKS document by kid (``""`` for a lone key without
    one), and its key-agreement keys (``"use": "enc"``, EC P-256) by kid.

    A key whose ``use`` is neither absent nor ``sig`` is never a signing key.

    Raises
    ------
    ValueError
        The document is not a JWKS with at least one usable key.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError('not a JWKS document ({"keys": [...]})')
    entries = [entry for entry in document["keys"] if isinstance(entry, Mapping)]
    signing = [dict(entry) for entry in entries if entry.get("use", "sig") == "sig"]
    agreement: dict[str, ec.EllipticCurvePublicKey] = {}
    for entry in entries:
        if entry.get("use") == "enc":
            key = _agreement_key(entry)
            if key is not None:
                agreement[str(entry["kid"])] = key
    if not signing and agreement:
        return {}, agreement
    try:
        found = jwt.PyJWKSet(signing).keys
    except jwt.PyJWTError as error:
        raise ValueError(str(error)) from None
    keys = {str(key.key_id): key for key in found if isinstance(key.key_id, str)}
    if not keys and len(found) == 1:
        keys = {"": found[0]}
    return keys, agreement


def _holds(held: _KeySet, kid: str | None) -> bool:
    if kid is None:
        return len(held.keys) == 1
    return kid in held.keys or kid in held.agreement


class JwksCache:
    """Keys by JWKS URL, loaded once and kept for ``ttl_seconds``.

    Keys come from two places. ``fetch`` answers synchronously, for the keys the
    node holds itself (its own, the development provider's; tests pass a
    dictionary lookup); it must not read the network. ``remote`` fetches the
    others over HTTP, only in :meth:`prepare`, which the node awaits before a
    request's handler runs; :meth:`key`, called while verifying, never waits on
    the network: keys it does not hold are unavailable.

    A ``kid`` that is not among a URL's keys triggers one reload (the issuer may
    have rotated its keys), at most once per ``min_refresh_seconds`` per URL, so
    that tokens with made-up ``kid`` s cannot make the node hammer an issuer; a
    failed fetch is not repeated within that interval either. Keys that could
    not be refreshed are kept until a refresh succeeds.

    Parameters
    ----------
    fetch
        ``fetch(url)`` returns the JWKS document (``{"keys": [...]}``) the node
        holds for ``url``, or None when it holds none (then ``remote`` is asked).
    remote
        Fetches the JWKS of other URLs (None: only ``fetch`` is asked).
    ttl_seconds
        How long loaded keys are used before they are loaded again.
    min_refresh_seconds
        The least time between two loads of one URL for an unknown ``kid``, and
        after a failed fetch.
    clock
        Monotonic seconds.
    """

    def __init__(
        self,
        fetch: Callable[[str], Mapping[str, Any] | None] | None = None,
        *,
        remote: RemoteJson | None = None,
        ttl_seconds: float = 3600.0,
        min_refresh_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._remote = remote
        self._ttl = ttl_seconds
        self._min_refresh = min_refresh_seconds
        self._clock = clock
        self._sets: dict[str, _KeySet] = {}
        self._lock = threading.Lock()

    def _needs_load(self, jku: str, kid: str | None, now: float) -> bool:
        with self._lock:
            held = self._sets.get(jku)
        if held is None:
            return True
        if now - held.attempted_at < self._min_refresh:
            return False
        if held.loaded_at is None or now - held.loaded_at > self._ttl:
            return True
        return not _holds(held, kid)

    def _store(self, jku: str, document: object | None, now: float) -> None:
        """Record a load attempt; keep the keys of ``document`` if it has any.

        Raises
        ------
        ValueError
            ``document`` is not a usable JWKS (the attempt is still recorded).
        """
        try:
            parsed = _parse_jwks(document) if document is not None else None
        finally:
            with self._lock:
                held = self._sets.setdefault(jku, _KeySet({}, None, now))
                held.attempted_at = now
        if parsed is not None:
            with self._lock:
                held.keys, held.agreement = parsed
                held.loaded_at = now

    def _load_local(self, jku: str, now: float) -> bool:
        """Load the keys the node holds for ``jku``; False when it holds none.

        Raises
        ------
        TokenError
            The local source fails or gives no usable JWKS.
        """
        assert self._fetch is not None
        try:
            document = self._fetch(jku)
            if document is None:
                return False
            self._store(jku, document, now)
        except (KeyError, TypeError, ValueError) as error:
            raise TokenError(
                f"cannot be verified: the keys at {jku} cannot be read ({error})"
            ) from None
        return True

    def key(self, jku: str, kid: str | None) -> jwt.PyJWK | None:
        """The key ``kid`` of the JWKS at ``jku``; None when no keys of ``jku`` are
        at hand (never fetched, or every fetch failed).

        Local keys are (re)loaded here as needed; remote ones only by
        :meth:`prepare`.

        Raises
        ------
        TokenError
            The keys are at hand and ``kid`` is not among them, or the local
            source fails.
        """
        now = self._clock()
        if self._fetch is not None and self._needs_load(jku, kid, now):
            self._load_local(jku, now)
        with self._lock:
            held = self._sets.get(jku)
            keys = dict(held.keys) if held is not None else None
            loaded = held is not None and held.loaded_at is not None
        if keys is None or not loaded:
            return None
        if kid is None:
            if len(keys) == 1:
                return next(iter(keys.values()))
            raise TokenError("has no kid, and its issuer publishes several keys")
        if kid not in keys:
            raise TokenError(f"has an unknown key id {kid!r} (not among {jku})")
        return keys[kid]

    def agreement_key(self, jku: str, kid: str) -> ec.EllipticCurvePublicKey | None:
        """The key-agreement key ``kid`` (``"use": "enc"``, EC P-256) of the JWKS
        at ``jku``; None when it is not among the keys at hand (a signing key's
        kid is not an agreement key). Like :meth:`key`, it never reads the
        network: :meth:`prepare` with ``kid`` fetches."""
        now = self._clock()
        if self._fetch is not None and self._needs_load(jku, kid, now):
            with contextlib.suppress(TokenError):
                self._load_local(jku, now)
        with self._lock:
            held = self._sets.get(jku)
            return held.agreement.get(kid) if held is not None else None

    async def prepare(self, jku: str, kid: str | None) -> None:
        """Fetch the keys of ``jku`` if :meth:`key` would need them for ``kid``.

        Never raises: a failure leaves the keys unavailable (or as they were),
        which verification then reports.
        """
        now = self._clock()
        if not self._needs_load(jku, kid, now):
            return
        if self._fetch is not None:
            try:
                if self._load_local(jku, now):
                    return
            except TokenError:
                return  # reported by key(), which tries again
        if self._remote is None:
            return
        document = await self._remote.get(jku)
        # On a bad document the attempt is still recorded; key() then reports
        # what is missing.
        with contextlib.suppress(ValueError):
            self._store(jku, document, self._clock())


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

    :meth:`verify` reads no network. Keys and userinfo documents of other
    servers are fetched by :meth:`prepare`, which the node awaits first; what
    it could not fetch is unavailable, and the token is refused saying so.

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
        ``fetch(url, token)`` returns the JSON document of a userinfo endpoint
        the node answers itself (the development provider's), or None for
        another; called while verifying, it must not read the network. Tests
        pass a function.
    remote
        Fetches the userinfo of other brokers in :meth:`prepare`, with the token
        as bearer. Without ``userinfo_fetch`` and ``remote``, userinfo is never
        asked.
    clock
        The current time in seconds since the epoch: checks ``exp``, ``nbf``
        and ``iat`` and decides when cached passports and userinfo answers
        expire.
    max_cached_tokens
        How many verified passports, and how many userinfo answers, are kept;
        the oldest are dropped first.
    refuse_development
        Refuse passports and visas of the development identity provider
        (:data:`~genomenode.access.jws.DEVELOPMENT_CLAIM`): a node in ``prod``.
    """

    def __init__(
        self,
        brokers: Sequence[TrustedIssuer],
        visa_issuers: Sequence[TrustedIssuer],
        keys: JwksCache,
        *,
        audience: str | None = None,
        leeway_seconds: int = 30,
        userinfo_fetch: Callable[[str, str], Mapping[str, Any] | None] | None = None,
        remote: RemoteJson | None = None,
        clock: Callable[[], float] = time.time,
        max_cached_tokens: int = 10_000,
        refuse_development: bool = False,
    ) -> None:
        self._brokers = {trusted.issuer: trusted for trusted in brokers}
        self._visa_issuers = {trusted.issuer: trusted for trusted in visa_issuers}
        self._keys = keys
        self._audience = audience
        self._leeway = leeway_seconds
        self._userinfo_fetch = userinfo_fetch
        self._remote = remote
        self._clock = clock
        self._refuse_development = refuse_development
        self._passports: _TokenCache[_VerifiedPassport] = _TokenCache(max_cached_tokens)
        self._userinfo: _TokenCache[tuple[int, list[object]]] = _TokenCache(
            max_cached_tokens
        )
        # Userinfo documents fetched by prepare, checked when verify reads them.
        self._fetched_userinfo: _TokenCache[object] = _TokenCache(max_cached_tokens)

    def verify(self, token: str) -> Identity | None:
        """The identity in a passport; None if no trusted broker issued it.

        Raises
        ------
        TokenError
            The passport is too long to read, or names a trusted broker but
            does not verify (or has expired since it was verified, or its keys
            or userinfo were unavailable).
        """
        if len(token) > jws.MAX_TOKEN_LENGTH:
            raise TokenError(
                f"the passport is too long (more than {jws.MAX_TOKEN_LENGTH} "
                "characters)"
            )
        digest = _digest(token)
        cached = self._passports.get(digest)
        if cached is not None:
            if self._has_expired(cached.expires):
                self._passports.drop(digest)
                raise TokenError(f"passport of {cached.identity.issuer} has expired")
            if not self._has_expired(cached.valid_until):
                return cached.identity
            # A visa has expired since: verify again, so it is rejected.
            self._passports.drop(digest)
        broker = self._broker_of(token)
        if broker is None:
            return None
        claims = self._decode(
            token, broker, audience=self._audience, what=f"passport of {broker.issuer}"
        )
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

    async def prepare(self, token: str) -> None:
        """Fetch what :meth:`verify` will need for ``token`` and does not hold.

        From the token's unverified header and claims: the keys of its broker
        and of the trusted issuers of its visas and, for a token without visas
        whose signature verifies, its broker's userinfo (where the visas are
        read from). Nothing is fetched for a passport verified already, for an
        untrusted issuer, or for what is cached. Never raises: whatever cannot
        be fetched is unavailable to :meth:`verify`, which says so.
        """
        if len(token) > jws.MAX_TOKEN_LENGTH:
            return
        digest = _digest(token)
        cached = self._passports.get(digest)
        if cached is not None and not self._has_expired(cached.valid_until):
            return
        peeked = jws.peek(token)
        broker = self._broker_of(token)
        if peeked is None or broker is None:
            return
        header, claims = peeked
        await self._keys.prepare(broker.jku, _kid(header))
        raw_visas = claims.get(_PASSPORT_CLAIM)
        if raw_visas is None and broker.userinfo is not None:
            raw_visas = await self._prepare_userinfo(token, digest, broker)
        if isinstance(raw_visas, list):
            await self._prepare_visa_keys(raw_visas)

    async def _prepare_userinfo(
        self, token: str, digest: bytes, broker: TrustedIssuer
    ) -> object:
        """The visas of ``broker``'s userinfo for ``token``, fetched if need be."""
        assert broker.userinfo is not None
        cached = self._userinfo.get(digest)
        if cached is not None and not self._has_expired(cached[0]):
            return cached[1]
        document = self._fetched_userinfo.get(digest)
        if document is None:
            if self._userinfo_fetch is None and self._remote is None:
                return None
            # Only a token that verifies is sent anywhere: a forged one must not
            # make the node call a broker.
            try:
                self._decode(token, broker, audience=self._audience, what="")
            except TokenError:
                return None
            if self._userinfo_fetch is not None:
                try:
                    document = self._userinfo_fetch(broker.userinfo, token)
                except Exception:  # whatever it raises, verify reports it
                    return None
            if document is None and self._remote is not None:
                document = await self._remote.get(broker.userinfo, bearer=token)
            if document is None:
                return None
            self._fetched_userinfo.put(digest, document)
        return document.get(_PASSPORT_CLAIM) if isinstance(document, Mapping) else None

    async def _prepare_visa_keys(self, raw_visas: Iterable[object]) -> None:
        wanted: set[tuple[str, str | None]] = set()
        for raw in raw_visas:
            peeked = jws.peek(raw) if isinstance(raw, str) else None
            if peeked is None:
                continue
            header, claims = peeked
            issuer = claims.get("iss")
            trusted = (
                self._visa_issuers.get(issuer) if isinstance(issuer, str) else None
            )
            if trusted is not None:
                wanted.add((trusted.jku, _kid(header)))
        await asyncio.gather(*(self._keys.prepare(jku, kid) for jku, kid in wanted))

    def _broker_of(self, token: str) -> TrustedIssuer | None:
        issuer = unverified_issuer(token)
        return self._brokers.get(issuer) if issuer is not None else None

    def _has_expired(self, expires: int) -> bool:
        # The same rule as the verification's: expired once exp <= now - leeway.
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
        if broker.userinfo is None or (
            self._userinfo_fetch is None and self._remote is None
        ):
            return []
        cached = self._userinfo.get(digest)
        if cached is not None and not self._has_expired(cached[0]):
            return cached[1]
        document = self._fetched_userinfo.get(digest)
        if document is None and self._userinfo_fetch is not None:
            try:
                document = self._userinfo_fetch(broker.userinfo, token)
            except Exception as error:  # whatever the transport raises
                # The transport's message should not contain the token, but make
                # sure.
                reason = str(error).replace(token, "<token>") or type(error).__name__
                raise TokenError(
                    f"userinfo of {broker.issuer} cannot be read: {reason}"
                ) from None
        if document is None:
            raise TokenError(
                f"userinfo of {broker.issuer} is unavailable (it could not be fetched)"
            )
        self._fetched_userinfo.drop(digest)
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
        if len(raw) > jws.MAX_TOKEN_LENGTH:
            raise TokenError(
                f"is too long (more than {jws.MAX_TOKEN_LENGTH} characters)"
            )
        if jws.peek(raw) is None:
            raise TokenError("is not a well-formed JWT")
        issuer = unverified_issuer(raw)
        trusted = self._visa_issuers.get(issuer) if issuer is not None else None
        if trusted is None:
            raise TokenError(f"issuer {issuer!r} is not a trusted visa issuer")
        claims = self._decode(raw, trusted, audience=None, what="")
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
        for name in ("type", "value", "source"):
            if not isinstance(body.get(name), str):
                raise TokenError(f"ga4gh_visa_v1 lacks or mistypes {name!r}")
        by = body.get("by")
        if by is not None and not isinstance(by, str):
            raise TokenError("ga4gh_visa_v1 mistypes 'by'")
        if not jws.is_numeric_date(body.get("asserted")):
            raise TokenError("ga4gh_visa_v1 lacks or mistypes 'asserted' (a time)")
        return Visa(
            type=body["type"],
            value=body["value"],
            source=body["source"],
            by=by,
            asserted=int(body["asserted"]),
            expires=int(claims["exp"]),
            issuer=trusted.issuer,
        )

    def _decode(
        self, token: str, trusted: TrustedIssuer, *, audience: str | None, what: str
    ) -> dict[str, Any]:
        """The verified claims of a token of ``trusted`` (see :func:`jws.verify`);
        a refusal's message starts with ``what``."""
        try:
            return jws.verify(
                token,
                issuer=trusted.issuer,
                jku=trusted.jku,
                keys=self._keys.key,
                now=self._clock(),
                audience=audience,
                leeway_seconds=self._leeway,
                refuse_development=self._refuse_development,
            )
        except TokenError as error:
            raise TokenError(f"{what} {error}" if what else str(error)) from None


def _kid(header: Mapping[str, Any]) -> str | None:
    kid = header.get("kid")
    return kid if isinstance(kid, str) else None


def unverified_issuer(token: str) -> str | None:
    """The ``iss`` a token claims, read without verifying (to pick its keys)."""
    peeked = jws.peek(token)
    if peeked is None:
        return None
    issuer = peeked[1].get("iss")
    return issuer if isinstance(issuer, str) else None
