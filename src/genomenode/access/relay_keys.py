"""Relay keys: short-lived pairwise MAC keys a node issues to a trusted network.

A network signs every request it forwards (:mod:`~genomenode.access.network_trust`).
An ES256 signature per node and query, and its verification on every node, are
public-key operations on the hottest path of the network; a relay key replaces them
with an HMAC (``docs/network-trust.md``):

- a node keeps one random 32-byte secret, ``NODE_DIR/keys/relay.key`` (0600,
  created on first use; :class:`RelaySecret`);
- for a trusted network ``iss`` it issues relay keys with a kid
  ``"<expiry, unix seconds>.<16 random hex digits>"`` and the value
  ``K = HMAC-SHA256(secret, "genomenode relay key\\0" + iss + "\\0" + kid)``
  (:func:`derive_relay_key`): every worker process of the node derives the same
  ``K`` from the kid, and nothing is stored per key;
- the key goes to the network wrapped to the network's key-agreement key
  (:class:`AgreementKey`, published in its JWKS with ``"use": "enc"``), by ECDH
  with an ephemeral P-256 key, HKDF-SHA256 and AES-256-GCM
  (:func:`wrap_relay_key`, :func:`unwrap_relay_key`);
- the network then MACs its assertions for that node with ``K`` (HS256, kid
  ``"relay:<kid>"``) until the key expires.

Replacing ``keys/relay.key`` revokes every relay key the node issued: the node
re-reads the file when it changes (or creates a new one when it is gone), and the
network falls back to ES256 and fetches a new key.

Keys are never logged or shown: :class:`RelayKey` masks its value in ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import collections
import contextlib
import dataclasses
import hashlib
import hmac
import json
import os
import pathlib
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import ConfigError

__all__ = [
    "AGREEMENT_ALGORITHM",
    "RELAY_KEY_BYTES",
    "RELAY_KID_PREFIX",
    "WRAP_ALGORITHM",
    "AgreementKey",
    "RelayKey",
    "RelaySecret",
    "derive_relay_key",
    "new_relay_kid",
    "relay_kid_expiry",
    "unwrap_relay_key",
    "wrap_relay_key",
]

#: The prefix of a relay key's kid in an assertion's header: ``relay:<kid>``.
RELAY_KID_PREFIX = "relay:"
#: Bytes of a relay key and of a node's relay secret.
RELAY_KEY_BYTES = 32
#: The ``alg`` of a network's key-agreement JWK.
AGREEMENT_ALGORITHM = "ECDH-ES"
#: What a wrapped relay key names as its wrapping (the ``alg`` of the answer).
WRAP_ALGORITHM = "ECDH-ES+HKDF-SHA256+A256GCM"

_DERIVATION_LABEL = b"genomenode relay key\0"
_WRAP_LABEL = b"genomenode relay key wrap\0"
# Expiry (unix seconds, no leading zero, at most 11 digits: before year 5138) and
# 64 random bits in lower-case hex.
_KID = re.compile(r"([1-9][0-9]{0,10})\.[0-9a-f]{16}")
_NONCE_BYTES = 12
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


def new_relay_kid(expires: int) -> str:
    """A fresh relay key id expiring at ``expires`` (unix seconds)."""
    return f"{int(expires)}.{secrets.token_hex(8)}"


def relay_kid_expiry(kid: object) -> int | None:
    """The expiry a relay key id names; None for anything not a relay key id."""
    if not isinstance(kid, str):
        return None
    match = _KID.fullmatch(kid)
    return int(match.group(1)) if match is not None else None


def derive_relay_key(secret: bytes, issuer: str, kid: str) -> bytes:
    """``K = HMAC-SHA256(secret, "genomenode relay key\\0" + iss + "\\0" + kid)``."""
    message = _DERIVATION_LABEL + issuer.encode() + b"\0" + kid.encode()
    return hmac.new(secret, message, hashlib.sha256).digest()


def _write_once(path: pathlib.Path, content: bytes) -> None:
    """Create ``path`` (0600) holding ``content``, unless it exists already.

    Written to a temporary file first, then linked into place: another process
    racing to create it either wins whole or finds this one whole.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        # Another process that made it first wins: theirs is the one.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


class RelaySecret:
    """A node's relay secret (``keys/relay.key``) and the keys it derives.

    The file is created on first use; it is looked at (``stat``) when a key is
    asked for, at most every ``check_seconds``, so that replacing or deleting it
    revokes every relay key issued under the old secret within that time, in
    every worker process. Derived keys are kept for the secret they came from
    (the most recent ``max_cached``).

    Parameters
    ----------
    path
        The secret's file.
    max_cached
        How many derived keys are kept.
    check_seconds
        How often, at most, the file is looked at again.
    clock
        Monotonic seconds.
    """

    def __init__(
        self,
        path: pathlib.Path,
        *,
        max_cached: int = 256,
        check_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._max_cached = max_cached
        self._check_seconds = check_seconds
        self._clock = clock
        self._checked_at = -float("inf")
        self._lock = threading.Lock()
        self._identity: tuple[int, int, int, int] | None = None
        self._secret = b""
        self._derived: collections.OrderedDict[tuple[str, str], bytes] = (
            collections.OrderedDict()
        )

    def _current(self) -> bytes:
        """The secret on disk now (read again after it changed)."""
        now = self._clock()
        if self._identity is not None and now - self._checked_at < self._check_seconds:
            return self._secret
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            _write_once(self.path, secrets.token_bytes(RELAY_KEY_BYTES))
            stat = os.stat(self.path)
        identity = (stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size)
        self._checked_at = now
        if identity == self._identity:
            return self._secret
        # Whatever the file holds now, the old secret is gone.
        self._identity, self._secret = None, b""
        self._derived.clear()
        try:
            secret = self.path.read_bytes()
        except OSError as error:
            raise ConfigError(
                f"{self.path}: the relay secret cannot be read ({error.strerror})"
            ) from None
        if len(secret) != RELAY_KEY_BYTES:
            raise ConfigError(
                f"{self.path}: the relay secret must be {RELAY_KEY_BYTES} bytes "
                "(delete the file and a new one is made)"
            )
        self._identity, self._secret = identity, secret
        return secret

    def key(self, issuer: str, kid: str) -> bytes:
        """The relay key ``kid`` of network ``issuer`` under the current secret.

        Raises
        ------
        ConfigError
            The secret's file cannot be read or is not a secret.
        """
        with self._lock:
            secret = self._current()
            derived = self._derived.get((issuer, kid))
            if derived is None:
                derived = derive_relay_key(secret, issuer, kid)
                self._derived[(issuer, kid)] = derived
                while len(self._derived) > self._max_cached:
                    self._derived.popitem(last=False)
            return derived

    def issue(self, issuer: str, *, lifetime_seconds: int) -> tuple[str, bytes]:
        """A new relay key for ``issuer``: its kid and value."""
        kid = new_relay_kid(int(time.time()) + lifetime_seconds)
        return kid, self.key(issuer, kid)


@dataclasses.dataclass(frozen=True)
class RelayKey:
    """A relay key as the network holds it.

    Attributes
    ----------
    kid
        The node's kid (without the ``relay:`` prefix).
    value
        ``K`` (never shown in ``repr``).
    lifetime_seconds
        How long it was valid for when the node issued it.
    """

    kid: str
    value: bytes = dataclasses.field(repr=False)
    lifetime_seconds: int


def _wrap_info(issuer: str, audience: str, kid: str) -> bytes:
    return (
        _WRAP_LABEL + issuer.encode() + b"\0" + audience.encode() + b"\0" + kid.encode()
    )


def _key_encryption_key(
    shared: bytes, *, issuer: str, audience: str, kid: str
) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=_wrap_info(issuer, audience, kid),
    ).derive(shared)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(value: object, what: str) -> bytes:
    if not isinstance(value, str) or not _BASE64URL.fullmatch(value):
        raise ValueError(f"{what} is not base64url")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} is not base64url") from None


def _point_jwk(key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    numbers = key.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64(numbers.x.to_bytes(32, "big")),
        "y": _b64(numbers.y.to_bytes(32, "big")),
    }


def _point(jwk: object) -> ec.EllipticCurvePublicKey:
    """The P-256 public key of an ``epk`` JWK (the point is checked on the curve).

    Raises
    ------
    ValueError
        Not an EC P-256 public JWK.
    """
    if not isinstance(jwk, Mapping) or (jwk.get("kty"), jwk.get("crv")) != (
        "EC",
        "P-256",
    ):
        raise ValueError("epk is not an EC P-256 JWK")
    x, y = _unb64(jwk.get("x"), "epk x"), _unb64(jwk.get("y"), "epk y")
    if len(x) != 32 or len(y) != 32:
        raise ValueError("epk is not a P-256 point")
    # An uncompressed SEC 1 point; cryptography refuses one off the curve.
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + x + y)


def wrap_relay_key(
    key: bytes,
    *,
    kid: str,
    lifetime_seconds: int,
    issuer: str,
    audience: str,
    agreement: ec.EllipticCurvePublicKey,
    agreement_kid: str,
) -> dict[str, Any]:
    """The answer carrying relay key ``key`` to network ``issuer``.

    ``Z = ECDH(ephemeral, agreement)``, ``KEK = HKDF-SHA256(Z, info =
    "genomenode relay key wrap\\0" + iss + "\\0" + audience + "\\0" + kid)`` and
    the key sealed with AES-256-GCM under ``KEK``, a random nonce and ``kid`` as
    associated data. ``audience`` is the node as the network's assertion named
    it (its ``aud``), so the network computes the same ``KEK``.
    """
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    shared = ephemeral.exchange(ec.ECDH(), agreement)
    encryption_key = _key_encryption_key(
        shared, issuer=issuer, audience=audience, kid=kid
    )
    nonce = secrets.token_bytes(_NONCE_BYTES)
    sealed = AESGCM(encryption_key).encrypt(nonce, key, kid.encode())
    return {
        "kid": kid,
        "expires_in": lifetime_seconds,
        "alg": WRAP_ALGORITHM,
        "agreement_kid": agreement_kid,
        "epk": _point_jwk(ephemeral.public_key()),
        "iv": _b64(nonce),
        "ciphertext": _b64(sealed),
    }


def unwrap_relay_key(
    document: object,
    *,
    issuer: str,
    audience: str,
    agreement: ec.EllipticCurvePrivateKey,
    max_lifetime_seconds: int = 7 * 24 * 3600,
) -> RelayKey:
    """The relay key in a node's answer (:func:`wrap_relay_key`), opened.

    Raises
    ------
    ValueError
        The answer is malformed, its kid is not a relay key id, or it does not
        open with ``agreement`` for ``issuer`` and ``audience``. The message
        never holds key material.
    """
    if not isinstance(document, Mapping):
        raise ValueError("the answer is not a JSON object")
    kid = document.get("kid")
    if relay_kid_expiry(kid) is None:
        raise ValueError("kid is not a relay key id")
    assert isinstance(kid, str)
    lifetime = document.get("expires_in")
    if (
        isinstance(lifetime, bool)
        or not isinstance(lifetime, int)
        or not 0 < lifetime <= max_lifetime_seconds
    ):
        raise ValueError(
            f"expires_in is not a number of seconds up to {max_lifetime_seconds}"
        )
    if document.get("alg") != WRAP_ALGORITHM:
        raise ValueError(f"alg is not {WRAP_ALGORITHM}")
    ephemeral = _point(document.get("epk"))
    nonce = _unb64(document.get("iv"), "iv")
    sealed = _unb64(document.get("ciphertext"), "ciphertext")
    if len(nonce) != _NONCE_BYTES:
        raise ValueError(f"iv is not {_NONCE_BYTES} bytes")
    shared = agreement.exchange(ec.ECDH(), ephemeral)
    encryption_key = _key_encryption_key(
        shared, issuer=issuer, audience=audience, kid=kid
    )
    try:
        value = AESGCM(encryption_key).decrypt(nonce, sealed, kid.encode())
    except InvalidTag:
        raise ValueError(
            "the wrapped key does not open (another key, or altered)"
        ) from None
    if len(value) != RELAY_KEY_BYTES:
        raise ValueError(f"the relay key is not {RELAY_KEY_BYTES} bytes")
    return RelayKey(kid=kid, value=value, lifetime_seconds=lifetime)


class AgreementKey:
    """A network's key-agreement key: one EC P-256 private key in a PEM file.

    Created on first use (0600); never signs anything. Its kid is its JWK
    thumbprint (RFC 7638), so every worker process names it the same; replacing
    the file changes the kid (nodes find the new key in the network's JWKS).
    """

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self._loaded: tuple[ec.EllipticCurvePrivateKey, str] | None = None
        self._lock = threading.Lock()

    def _load(self) -> tuple[ec.EllipticCurvePrivateKey, str]:
        with self._lock:
            if self._loaded is not None:
                return self._loaded
            if not self.path.exists():
                pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
                _write_once(self.path, pem)
            try:
                key = serialization.load_pem_private_key(
                    self.path.read_bytes(), password=None
                )
            except (OSError, ValueError) as error:
                raise ConfigError(
                    f"{self.path}: not a readable key-agreement key ({error})"
                ) from None
            if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(
                key.curve, ec.SECP256R1
            ):
                raise ConfigError(f"{self.path}: the key-agreement key must be P-256")
            point = _point_jwk(key.public_key())
            # RFC 7638: the required members in lexicographic order, no spaces.
            canonical = json.dumps(
                {name: point[name] for name in ("crv", "kty", "x", "y")},
                separators=(",", ":"),
            )
            thumbprint = _b64(hashlib.sha256(canonical.encode()).digest())
            self._loaded = (key, f"enc-{thumbprint}")
            return self._loaded

    @property
    def kid(self) -> str:
        """The key's id in the network's JWKS."""
        return self._load()[1]

    def private_key(self) -> ec.EllipticCurvePrivateKey:
        """The private key (to open wrapped relay keys)."""
        return self._load()[0]

    def jwk(self) -> dict[str, str]:
        """The public JWK to publish: ``"use": "enc"``, ``"alg": "ECDH-ES"``."""
        key, kid = self._load()
        return {
            **_point_jwk(key.public_key()),
            "kid": kid,
            "use": "enc",
            "alg": AGREEMENT_ALGORITHM,
        }
