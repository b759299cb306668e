"""Noise that is the same for the same question: drawn from a keyed hash.

A released aggregate is perturbed with noise derived from HMAC-SHA256 of the
canonical question (dataset, data generation, normalised query) under the node's
disclosure key, so repeating a question returns the same answer and averaging
repeats removes nothing. The key lives outside the database, in
``NODE_DIR/keys/disclosure.key`` (mode 0600, created on first use): whoever reads
the database cannot subtract the noise.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import pathlib
import secrets

from ..config import Secret
from ..errors import ConfigError

__all__ = ["NoiseKey", "laplace", "uniform"]

_KEY_BYTES = 32


class NoiseKey:
    """The secret the noise is derived from; ``repr`` never shows it."""

    def __init__(self, secret: Secret) -> None:
        raw = bytes.fromhex(secret.reveal())
        if len(raw) < _KEY_BYTES:
            raise ConfigError("a disclosure key has at least 32 bytes")
        self._template = hmac.new(raw, digestmod=hashlib.sha256)

    def __repr__(self) -> str:
        return "NoiseKey('**********')"

    @classmethod
    def load_or_create(cls, path: pathlib.Path) -> NoiseKey:
        """The key in ``path``, created (0600) if there is none; workers racing to
        create it all end up reading the one that won."""
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(descriptor, "w") as out:
                out.write(secrets.token_hex(_KEY_BYTES) + "\n")
        text = path.read_text().strip()
        if not text:
            raise ConfigError(f"{path}: the disclosure key file is empty")
        try:
            return cls(Secret(text))
        except ValueError:
            raise ConfigError(f"{path}: not a disclosure key (64 hex digits)") from None

    def digest(self, message: str) -> bytes:
        """HMAC-SHA256 of ``message`` under the key."""
        mac = self._template.copy()
        mac.update(message.encode("utf-8"))
        return mac.digest()


def uniform(key: NoiseKey, message: str, stream: str = "") -> float:
    """A number in (0, 1), fixed by ``key``, ``message`` and ``stream``."""
    raw = key.digest(f"{stream}\x1f{message}")
    # 53 bits: every double in [0, 1) a 2**-53 grid allows, then off the ends.
    bits = int.from_bytes(raw[:8], "big") >> 11
    return (bits + 0.5) / (1 << 53)


def laplace(key: NoiseKey, message: str, scale: float, stream: str = "") -> float:
    """A Laplace(0, ``scale``) draw, fixed by ``key``, ``message`` and ``stream``
    (inverse CDF of :func:`uniform`)."""
    centred = uniform(key, message, stream) - 0.5
    return -scale * math.copysign(1.0, centred) * math.log(1.0 - 2.0 * abs(centred))
