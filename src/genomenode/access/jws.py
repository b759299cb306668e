"""The one place a signed token (JWS compact serialisation) is verified.

Every token the node accepts from outside passes :func:`verify`: passports and
visas (:mod:`~genomenode.access.tokens`), network assertions
(:mod:`~genomenode.access.network_trust`) and the development identity provider's
own access tokens (:mod:`~genomenode.access.devidp`). It checks, in this order,
and refuses with a :class:`~genomenode.errors.TokenError` (HTTP 401) at the first
failure:

1. the length (at most :data:`MAX_TOKEN_LENGTH` characters), before anything is
   parsed;
2. the form: three base64url parts, a header that is a JSON object, no ``crit``;
3. the algorithm: RS256 or ES256 only (:data:`ALGORITHMS`), so ``alg: none`` and
   HMAC tokens "signed" with a public key fail; the ``typ`` when one is required;
4. the key: a ``jku`` header must name the JWKS URL trusted for the issuer, the
   ``kid`` must be one of its keys, the key must be of the algorithm's type
   (an RSA key of at least 2048 bits for RS256, a P-256 key for ES256), so no key
   is used with another algorithm than its own, and a signing key (a JWK whose
   ``use`` is ``enc``, a key-agreement key, never verifies a signature);
5. the signature;
6. the claims: a JSON object; the required ones present; ``iss`` the trusted
   issuer; ``sub`` a non-empty string; ``exp``, ``nbf`` and ``iat`` JSON numbers
   within years 1970 to 9999 (not strings, not booleans), the token not expired,
   not valid only later; ``aud`` naming an accepted audience when one is
   configured; and, when asked, no :data:`DEVELOPMENT_CLAIM`.

One other form is verified here, by :func:`verify_hs256` and only where a caller
asks for it: a network assertion MACed (HS256) with a relay key the node derived
itself (:mod:`~genomenode.access.relay_keys`); the same claim checks
(:func:`check_claims`) follow its MAC. :func:`verify` never accepts HS256.

Nothing here reads the network: the caller hands in a key lookup that answers
from what it has at hand (see :class:`~genomenode.access.tokens.JwksCache`).

Messages are predicates ("has expired", "has a bad signature ...") so that each
caller can put its subject before them ("passport of https://broker has
expired"); none contains the token.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Collection
from typing import Any

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from ..errors import TokenError

__all__ = [
    "ALGORITHMS",
    "DEVELOPMENT_CLAIM",
    "MAX_TOKEN_LENGTH",
    "MIN_MAC_KEY_BYTES",
    "KeyLookup",
    "check_claims",
    "is_numeric_date",
    "peek",
    "sign_es256",
    "sign_hs256",
    "verify",
    "verify_hs256",
]

#: The signature algorithms accepted, as the GA4GH AAI profile allows.
ALGORITHMS = ("RS256", "ES256")

#: The longest token read, in characters. A passport carrying a few dozen visas
#: is well below it; anything longer is refused before it is parsed.
MAX_TOKEN_LENGTH = 131_072

#: The shortest MAC key :func:`verify_hs256` uses (HS256 needs 256 bits, RFC 7518
#: §3.2): a key of fewer bytes is a mistake, never a relay key.
MIN_MAC_KEY_BYTES = 32

#: The claim the development identity provider puts in every token and visa it
#: signs, so that a node in ``prod`` can refuse them whatever it trusts.
DEVELOPMENT_CLAIM = "genomenode_dev_idp"

#: ``keys(jku, kid)``: the key ``kid`` of the JWKS at ``jku``; None when no keys
#: of that URL are at hand; :class:`~genomenode.errors.TokenError` when the kid is
#: not among them. It must not read the network.
KeyLookup = Callable[[str, str | None], jwt.PyJWK | None]

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_MIN_RSA_BITS = 2048
# NumericDate bounds: 1970 to the end of year 9999, what datetime can represent.
_LATEST_TIME = 253_402_300_799
_TIME_CLAIMS = ("exp", "nbf", "iat")


def _refuse_constant(name: str) -> float:
    # NaN and Infinity are not JSON; Python's parser would accept them.
    raise ValueError(f"{name} is not JSON")


def _decode_part(part: str) -> bytes:
    if not _BASE64URL.fullmatch(part) or len(part) % 4 == 1:
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None


# One decoder for every part: json.loads would build one per call.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def _json_object(part: str) -> dict[str, Any] | None:
    """The JSON object a base64url part encodes; None if it is anything else."""
    try:
        # JOSE parts are UTF-8 (RFC 7515 §5.2).
        document = _DECODER.decode(_decode_part(part).decode("utf-8"))
    except (ValueError, RecursionError):
        # ValueError: bad base64, bad UTF-8, bad JSON, an integer of too many
        # digits; RecursionError: nesting deeper than the parser goes.
        return None
    return document if isinstance(document, dict) else None


def peek(
    token: str, *, max_length: int = MAX_TOKEN_LENGTH
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The header and claims of a token, read **without** verifying anything.

    For choosing a verifier and the keys it will need, never for a decision.
    None for anything that is not a token of at most ``max_length`` characters
    with a JSON object for header and for claims; never raises.
    """
    if len(token) > max_length:
        return None
    parts = token.split(".")
    if len(parts) != 3:
        return None
    header, claims = _json_object(parts[0]), _json_object(parts[1])
    if header is None or claims is None:
        return None
    return header, claims


def is_numeric_date(value: object) -> bool:
    """True for a JWT NumericDate: a JSON number of seconds, 1970 to 9999."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    # Compared before anything converts it: a huge integer (10**400) does not
    # fit a float, and infinity not an integer.
    return 0 <= value <= _LATEST_TIME


def _shown(value: object) -> str:
    """A claim or header value as a message may show it: short, quoted."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _key_fits(algorithm: str, key: object) -> bool:
    if algorithm == "RS256":
        return isinstance(key, rsa.RSAPublicKey) and key.key_size >= _MIN_RSA_BITS
    return isinstance(key, ec.EllipticCurvePublicKey) and isinstance(
        key.curve, ec.SECP256R1
    )


def _signature_verifies(
    algorithm: str, key: object, signing_input: bytes, signature: bytes
) -> bool:
    try:
        if algorithm == "RS256":
            assert isinstance(key, rsa.RSAPublicKey)
            key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
            return True
        assert isinstance(key, ec.EllipticCurvePublicKey)
        # JWS carries ECDSA signatures as r || s, 32 bytes each for P-256.
        if len(signature) != 64:
            return False
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
        return True
    except InvalidSignature:
        return False


def _check_header(
    header: dict[str, Any], *, issuer: str, jku: str, token_type: str | None
) -> tuple[str, str | None]:
    """The algorithm and kid of an acceptable header."""
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        raise TokenError(
            f"has algorithm {_shown(algorithm)}, which is not accepted (RS256, ES256)"
        )
    if "crit" in header:
        raise TokenError(
            "has critical header extensions (crit), none of which is known"
        )
    if token_type is not None and header.get("typ") != token_type:
        raise TokenError(
            f"has typ {_shown(header.get('typ'))}: typ must be {token_type!r}"
        )
    named_jku = header.get("jku")
    if named_jku is not None and named_jku != jku:
        raise TokenError(
            f"names jku {_shown(named_jku)}, not the key URL trusted for {issuer}"
        )
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise TokenError("has a kid that is not a string")
    return str(algorithm), kid


def check_claims(
    claims: dict[str, Any],
    *,
    issuer: str,
    required: Collection[str],
    audience: str | Collection[str] | None,
    now: float,
    leeway_seconds: float,
    refuse_development: bool,
) -> None:
    """Refuse claims that :func:`verify` would refuse (step 6 of the module docs).

    Shared by :func:`verify` and :func:`verify_hs256`, so that a signed and a
    MACed token pass exactly the same checks.

    Raises
    ------
    TokenError
        The first check that fails.
    """
    for name in required:
        if name not in claims:
            raise TokenError(f"lacks the {name} claim")
    if "iss" in claims and claims["iss"] != issuer:
        raise TokenError(f"is from {_shown(claims['iss'])}, not from {issuer}")
    if "sub" in claims and (not isinstance(claims["sub"], str) or not claims["sub"]):
        raise TokenError("has a sub that is not a non-empty string")
    for name in _TIME_CLAIMS:
        if name in claims and not is_numeric_date(claims[name]):
            raise TokenError(
                f"has an {name} that is not a time (a JSON number of seconds "
                "since 1970, before the year 10000)"
            )
    # The same rule as PyJWT's, so that callers' caches agree: expired once
    # exp <= now - leeway.
    if "exp" in claims and claims["exp"] <= now - leeway_seconds:
        raise TokenError("has expired")
    for name in ("nbf", "iat"):
        if name in claims and claims[name] > now + leeway_seconds:
            raise TokenError(f"is not valid yet ({name} is in the future)")
    if audience is not None:
        accepted = {audience} if isinstance(audience, str) else set(audience)
        named = claims.get("aud")
        names = [named] if isinstance(named, str) else named
        if not isinstance(names, list) or not all(
            isinstance(name, str) for name in names
        ):
            raise TokenError("is for another audience (aud is missing or malformed)")
        if not accepted.intersection(names):
            raise TokenError("is for another audience (aud)")
    if refuse_development and DEVELOPMENT_CLAIM in claims:
        raise TokenError(
            "was issued by the development identity provider, which a node "
            "refuses when beacon_environment is prod"
        )


def _encode_part(document: dict[str, Any]) -> bytes:
    text = json.dumps(document, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(text.encode("utf-8")).rstrip(b"=")


def sign_es256(
    claims: dict[str, Any],
    key: ec.EllipticCurvePrivateKey,
    *,
    kid: str,
    jku: str | None = None,
    token_type: str = "JWT",
) -> str:
    """A compact JWS of ``claims`` signed with an EC P-256 key (ES256).

    The one place the node signs a token (visas, network assertions, audit
    checkpoints, the development provider's tokens): header ``alg``, ``kid``,
    ``typ`` and, when given, ``jku``; the signature as JWS carries it, ``r || s``
    of 32 bytes each.
    """
    header = {"alg": "ES256", "kid": kid, "typ": token_type}
    if jku is not None:
        header["jku"] = jku
    signing_input = _encode_part(header) + b"." + _encode_part(claims)
    r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    encoded = base64.urlsafe_b64encode(signature).rstrip(b"=")
    return (signing_input + b"." + encoded).decode("ascii")


@functools.lru_cache(maxsize=64)
def _hs256_header(kid: str, token_type: str) -> bytes:
    # The same for every assertion a network MACs with one relay key: encoded once.
    return _encode_part({"alg": "HS256", "kid": kid, "typ": token_type})


def sign_hs256(claims: dict[str, Any], key: bytes, *, kid: str, token_type: str) -> str:
    """A compact JWS of ``claims`` MACed with HMAC-SHA256 (HS256) under ``key``.

    For relay-key assertions only (:mod:`~genomenode.access.relay_keys`), which
    their node checks with :func:`verify_hs256`.
    """
    if len(key) < MIN_MAC_KEY_BYTES:
        raise ValueError("an HS256 key needs at least 32 bytes")
    signing_input = _hs256_header(kid, token_type) + b"." + _encode_part(claims)
    mac = hmac.new(key, signing_input, hashlib.sha256).digest()
    encoded = base64.urlsafe_b64encode(mac).rstrip(b"=")
    return (signing_input + b"." + encoded).decode("ascii")


def verify(
    token: str,
    *,
    issuer: str,
    jku: str,
    keys: KeyLookup,
    now: float,
    required: Collection[str] = ("exp", "iat", "iss", "sub"),
    audience: str | Collection[str] | None = None,
    token_type: str | None = None,
    leeway_seconds: float = 30.0,
    refuse_development: bool = False,
    max_length: int = MAX_TOKEN_LENGTH,
) -> dict[str, Any]:
    """The claims of a token of ``issuer``, verified; raises on anything wrong.

    Parameters
    ----------
    token
        The JWS compact serialisation (``header.claims.signature``).
    issuer
        The ``iss`` the token must carry.
    jku
        The JWKS URL trusted for ``issuer``; a ``jku`` header must name it.
    keys
        Looks the token's ``kid`` up among the keys of ``jku`` (no network I/O).
    now
        The current time in seconds since the epoch.
    required
        Claims the token must carry.
    audience
        When set, ``aud`` must name it (or one of them).
    token_type
        When set, the header's ``typ`` must be it (explicit typing, RFC 8725).
    leeway_seconds
        Clock skew tolerated on ``exp``, ``nbf`` and ``iat``.
    refuse_development
        Refuse tokens carrying :data:`DEVELOPMENT_CLAIM` (a node in ``prod``).
    max_length
        The longest token read, in characters.

    Returns
    -------
    dict
        The claims.

    Raises
    ------
    TokenError
        The token is malformed, too long, of another algorithm, type or issuer,
        signed with a key not trusted for ``issuer`` or whose keys are not at
        hand, tampered with, expired, not valid yet, for another audience, or a
        development token where those are refused. The message is a predicate
        to put the token's name before.
    """
    if len(token) > max_length:
        raise TokenError(f"is too long (more than {max_length} characters)")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("is not a well-formed JWT (it needs three parts)")
    header = _json_object(parts[0])
    if header is None:
        raise TokenError("is not a well-formed JWT (its header is not a JSON object)")
    algorithm, kid = _check_header(
        header, issuer=issuer, jku=jku, token_type=token_type
    )
    key = keys(jku, kid)
    if key is None:
        raise TokenError(
            f"cannot be verified: the keys of {issuer} are unavailable "
            "(its JWKS could not be fetched)"
        )
    if key.public_key_use not in (None, "sig"):
        # A key-agreement key (use "enc") must never verify anything, whatever
        # its type: the key cache keeps such keys apart, and this holds for any
        # other lookup too.
        raise TokenError(
            f"is signed with key {_shown(key.key_id)}, which is not a signing key "
            f"(use {_shown(key.public_key_use)})"
        )
    if key.algorithm_name != algorithm or not _key_fits(algorithm, key.key):
        raise TokenError(
            f"is signed with key {_shown(key.key_id)}, which is not a key for "
            f"{algorithm}"
        )
    if not _BASE64URL.fullmatch(parts[1]):
        raise TokenError("is not a well-formed JWT (its claims are not base64url)")
    try:
        signature = _decode_part(parts[2])
    except ValueError:
        raise TokenError(
            "is not a well-formed JWT (its signature is not base64url)"
        ) from None
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    if not _signature_verifies(algorithm, key.key, signing_input, signature):
        raise TokenError("has a bad signature (the signature does not verify)")
    claims = _json_object(parts[1])
    if claims is None:
        raise TokenError("is not a well-formed JWT (its claims are not a JSON object)")
    check_claims(
        claims,
        issuer=issuer,
        required=required,
        audience=audience,
        now=now,
        leeway_seconds=leeway_seconds,
        refuse_development=refuse_development,
    )
    return claims


def verify_hs256(
    token: str,
    *,
    issuer: str,
    key: Callable[[str | None], bytes],
    now: float,
    required: Collection[str],
    audience: str | Collection[str] | None,
    token_type: str,
    leeway_seconds: float = 30.0,
    refuse_development: bool = False,
    max_length: int = MAX_TOKEN_LENGTH,
    peeked: tuple[dict[str, Any], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The claims of a token MACed with HS256 under a key the caller derives.

    Only for tokens whose MAC key the node holds or derives itself (relay keys,
    :mod:`~genomenode.access.relay_keys`); :func:`verify` still refuses HS256.
    The header must say ``alg`` HS256 and ``typ`` ``token_type`` and carry no
    ``crit``; ``key(kid)`` gives the MAC key of the header's ``kid`` or raises
    :class:`~genomenode.errors.TokenError` (malformed, expired, unknown). The
    MAC is compared in constant time, then the claims pass
    :func:`check_claims`, exactly as in :func:`verify`.

    ``peeked`` is what :func:`peek` gave for this very token, so that a caller
    that peeked to choose its key does not pay for parsing it twice; the MAC
    still covers the token's text, from which both were parsed.

    Raises
    ------
    TokenError
        As :func:`verify`; the message is a predicate.
    """
    if len(token) > max_length:
        raise TokenError(f"is too long (more than {max_length} characters)")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("is not a well-formed JWT (it needs three parts)")
    header = peeked[0] if peeked is not None else _json_object(parts[0])
    if header is None or not _BASE64URL.fullmatch(parts[0]):
        raise TokenError("is not a well-formed JWT (its header is not a JSON object)")
    algorithm = header.get("alg")
    if algorithm != "HS256":
        raise TokenError(f"has algorithm {_shown(algorithm)}, not HS256")
    if "crit" in header:
        raise TokenError(
            "has critical header extensions (crit), none of which is known"
        )
    if header.get("typ") != token_type:
        raise TokenError(
            f"has typ {_shown(header.get('typ'))}: typ must be {token_type!r}"
        )
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise TokenError("has a kid that is not a string")
    secret = key(kid)
    if len(secret) < MIN_MAC_KEY_BYTES:
        raise TokenError("cannot be verified: its MAC key is too short")
    if not _BASE64URL.fullmatch(parts[1]):
        raise TokenError("is not a well-formed JWT (its claims are not base64url)")
    try:
        signature = _decode_part(parts[2])
    except ValueError:
        raise TokenError(
            "is not a well-formed JWT (its signature is not base64url)"
        ) from None
    # parts[0] and parts[1] matched base64url above: both ASCII.
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    if not hmac.compare_digest(hmac.digest(secret, signing_input, "sha256"), signature):
        raise TokenError("has a bad signature (its MAC does not verify)")
    claims = peeked[1] if peeked is not None else _json_object(parts[1])
    if claims is None:
        raise TokenError("is not a well-formed JWT (its claims are not a JSON object)")
    check_claims(
        claims,
        issuer=issuer,
        required=required,
        audience=audience,
        now=now,
        leeway_seconds=leeway_seconds,
        refuse_development=refuse_development,
    )
    return claims
