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
bad signature, expired, another subject, unevaluable ``conditions``) is left out of
the identity and its reason kept in :attr:`Identity.rejected_visas` for the audit
log. Tokens themselves are never logged or kept.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

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
]

#: The signature algorithms accepted, as the GA4GH AAI profile allows.
ALGORITHMS = ("RS256", "ES256")
_KEY_TYPES: Mapping[str, type] = {"RS256": RSAAlgorithm, "ES256": ECAlgorithm}


@dataclasses.dataclass(frozen=True)
class TrustedIssuer:
    """An issuer the node trusts and the one JWKS URL its keys come from."""

    issuer: str
    jku: str


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


class TokenVerifier:
    """Verifies passports from trusted brokers and the visas inside them.

    Parameters
    ----------
    brokers
        Passport issuers (brokers) trusted by the node.
    visa_issuers
        Visa issuers trusted by the node (a broker's passport may carry visas
        from anyone; only these count).
    keys
        Where public keys come from.
    audience
        When set, passports must name it in ``aud``.
    leeway_seconds
        Clock skew tolerated on ``exp``, ``nbf`` and ``iat``.
    """

    def __init__(
        self,
        brokers: Sequence[TrustedIssuer],
        visa_issuers: Sequence[TrustedIssuer],
        keys: JwksCache,
        *,
        audience: str | None = None,
        leeway_seconds: int = 30,
    ) -> None:
        self._brokers = {trusted.issuer: trusted for trusted in brokers}
        self._visa_issuers = {trusted.issuer: trusted for trusted in visa_issuers}
        self._keys = keys
        self._audience = audience
        self._leeway = leeway_seconds

    def verify(self, token: str) -> Identity | None:
        """The identity in a passport; None if no trusted broker issued it.

        Raises
        ------
        TokenError
            The passport names a trusted broker but does not verify.
        """
        issuer = _unverified_issuer(token)
        broker = self._brokers.get(issuer) if issuer is not None else None
        if broker is None:
            return None
        claims = self._decode(token, broker, audience=self._audience)
        subject = str(claims["sub"])
        raw_visas = claims.get("ga4gh_passport_v1", [])
        if not isinstance(raw_visas, list):
            raise TokenError("ga4gh_passport_v1 must be a list of visa tokens")
        visas: list[Visa] = []
        rejected: list[str] = []
        for number, raw in enumerate(raw_visas):
            try:
                visas.append(self._visa(raw, subject))
            except TokenError as error:
                rejected.append(f"visa {number}: {error}")
        return Identity(subject, broker.issuer, tuple(visas), tuple(rejected))

    def _visa(self, raw: object, subject: str) -> Visa:
        if not isinstance(raw, str):
            raise TokenError("is not a JWT")
        issuer = _unverified_issuer(raw)
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
            # Conditions (visa A valid only with visa B) are not evaluated yet:
            # refusing such a visa is safe, ignoring its conditions would not be.
            raise TokenError("has conditions, which this node does not evaluate")
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
        return claims


def _unverified_issuer(token: str) -> str | None:
    """The ``iss`` a token claims, read without verifying (to pick its keys)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    issuer = claims.get("iss")
    return issuer if isinstance(issuer, str) else None
