"""The node's own ControlledAccessGrants visas, signed with rotatable node keys.

Signing keys (EC P-256, ES256) live in ``NODE_DIR/keys/visas/<kid>.pem``, written
with mode 0600. The newest key signs; older keys stay published in the JWKS
(``/.well-known/jwks.json``) so that visas issued before a rotation keep verifying
until they expire; an operator retires a key by deleting its file.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import pathlib
import time
import uuid
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from ..errors import ConfigError
from . import jws

__all__ = [
    "GrantVisa",
    "KeyRotation",
    "SigningKeys",
    "issue_grant_visa",
    "node_visa_keys",
    "rotate_node_visa_key",
]


class SigningKeys:
    """The node's visa signing keys in ``directory`` (created on first use)."""

    def __init__(self, directory: pathlib.Path) -> None:
        self.directory = directory
        # Parsed keys by file: a key file is parsed only once. The listing is
        # kept while the directory's modification time stays the same (a key
        # added by another process changes it, so a rotation shows at once), and
        # for at most a second (file systems with coarse times).
        self._parsed: dict[pathlib.Path, ec.EllipticCurvePrivateKey] = {}
        self._listing: tuple[int, float, list[pathlib.Path]] | None = None

    def _paths(self) -> list[pathlib.Path]:
        try:
            modified = os.stat(self.directory).st_mtime_ns
        except FileNotFoundError:
            return []
        now = time.monotonic()
        if self._listing is not None:
            listed_modified, listed_at, paths = self._listing
            if listed_modified == modified and now - listed_at < 1.0:
                return paths
        # kids start with a UTC timestamp, so name order is age order.
        paths = sorted(self.directory.glob("*.pem"))
        self._listing = (modified, now, paths)
        return paths

    def rotate(self, now: dt.datetime | None = None) -> str:
        """Create a new signing key; it signs from now on. Returns its kid."""
        moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        kid = f"{moment:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.directory / f"{kid}.pem"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
        self._listing = None
        return kid

    def _load(self, path: pathlib.Path) -> ec.EllipticCurvePrivateKey:
        parsed = self._parsed.get(path)
        if parsed is None:
            parsed = self._parsed[path] = self._parse(path)
        return parsed

    def _parse(self, path: pathlib.Path) -> ec.EllipticCurvePrivateKey:
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError) as error:
            raise ConfigError(f"{path}: not a readable signing key ({error})") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigError(f"{path}: visa signing keys must be EC P-256")
        return key

    def active(self) -> tuple[str, ec.EllipticCurvePrivateKey]:
        """The kid and key that sign new visas (a first key is created if none)."""
        paths = self._paths()
        if not paths:
            self.rotate()
            paths = self._paths()
        newest = paths[-1]
        return newest.stem, self._load(newest)

    def jwks(self) -> dict[str, Any]:
        """Public keys of every key on disk, newest first (the JWKS document)."""
        keys = []
        for path in reversed(self._paths()):
            public = json.loads(ECAlgorithm.to_jwk(self._load(path).public_key()))
            keys.append({**public, "kid": path.stem, "use": "sig", "alg": "ES256"})
        return {"keys": keys}


def node_visa_keys(node_dir: str | os.PathLike[str]) -> SigningKeys:
    """The visa signing keys of the node in ``node_dir`` (``keys/visas/``)."""
    return SigningKeys(pathlib.Path(node_dir) / "keys" / "visas")


@dataclasses.dataclass(frozen=True)
class KeyRotation:
    """A new signing key (``kid``) and the kids the JWKS now publishes."""

    kid: str
    published: tuple[str, ...]
    directory: pathlib.Path

    def to_json(self) -> dict[str, Any]:
        return {"kid": self.kid, "published": list(self.published)}


def rotate_node_visa_key(node_dir: str | os.PathLike[str]) -> KeyRotation:
    """Start signing the node's visas with a new key; earlier keys stay published,
    so visas they signed keep verifying until an operator deletes their file."""
    keys = node_visa_keys(node_dir)
    kid = keys.rotate()
    published = tuple(key["kid"] for key in keys.jwks()["keys"])
    return KeyRotation(kid=kid, published=published, directory=keys.directory)


@dataclasses.dataclass(frozen=True)
class GrantVisa:
    """What a ControlledAccessGrants visa asserts."""

    subject: str
    dataset: str
    source: str
    asserted: dt.datetime
    expires: dt.datetime


def issue_grant_visa(
    keys: SigningKeys, grant: GrantVisa, *, issuer: str, jku: str
) -> str:
    """A signed visa JWT for ``grant`` (``by: dac``), valid until ``grant.expires``."""
    kid, key = keys.active()
    now = dt.datetime.now(dt.UTC)
    claims = {
        "iss": issuer,
        "sub": grant.subject,
        "iat": int(now.timestamp()),
        "exp": int(grant.expires.timestamp()),
        "jti": uuid.uuid4().hex,
        "ga4gh_visa_v1": {
            "type": "ControlledAccessGrants",
            "value": grant.dataset,
            "source": grant.source,
            "by": "dac",
            "asserted": int(grant.asserted.timestamp()),
        },
    }
    return jws.sign_es256(claims, key, kid=kid, jku=jku)
