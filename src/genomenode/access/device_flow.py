"""Pending device authorisations (OAuth 2.0 device grant, RFC 8628) of the
development identity provider. NOT FOR PRODUCTION, like the provider itself.

A command-line client asks for a device code (:meth:`DeviceAuthorizations.start`),
shows its user the short *user code* and a verification URL, and polls the token
endpoint with the *device code* (:meth:`DeviceAuthorizations.poll`) until the user
has said at that URL who they are (:meth:`DeviceAuthorizations.approve`; the
development provider takes their word for it, a real broker signs them in).

Each pending authorisation is a small JSON file ``<USERCODE>.json`` in the
provider's directory (0600), so that every worker process of a node sees the same
state; the device code is ``<USERCODE>.<secret>`` and only the secret's SHA-256 is
kept. Changes are made under an ``flock`` of the directory's lock file. An
approved authorisation is consumed by the first poll that sees it (one rename), so
it yields one token, once. Files past their expiry are deleted as they are met.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import hmac
import json
import os
import pathlib
import secrets
import time
from collections.abc import Iterator
from typing import Any

__all__ = [
    "DeviceAuthorizations",
    "DevicePoll",
    "DeviceStart",
    "normalise_user_code",
]

_FORMAT_VERSION = 1
# RFC 8628 6.1: consonants only (no vowels, no look-alikes), eight of them.
_USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
_USER_CODE_LENGTH = 8


def normalise_user_code(text: str) -> str:
    """A user code as typed (any case, dashes, spaces) in its stored form."""
    return "".join(letter for letter in text.upper() if letter.isalpha())


@dataclasses.dataclass(frozen=True)
class DeviceStart:
    """A new device authorisation: what the device authorisation endpoint answers.

    ``device_code`` is a secret of the client's; ``user_code`` is shown to the user.
    """

    device_code: str
    user_code: str
    expires_in: int
    interval: int

    def __repr__(self) -> str:
        return f"DeviceStart(user_code={self.user_code!r}, device_code='***')"


@dataclasses.dataclass(frozen=True)
class DevicePoll:
    """A poll's outcome: the approved subject, or an RFC 8628 error code
    (``authorization_pending``, ``slow_down``, ``access_denied``,
    ``expired_token``, ``invalid_grant``)."""

    subject: str | None = None
    error: str | None = None


class DeviceAuthorizations:
    """The pending device authorisations kept in ``directory``.

    Parameters
    ----------
    directory
        Where the pending authorisations are kept (created 0700).
    lifetime_seconds
        How long a user has to approve (RFC 8628 ``expires_in``).
    interval_seconds
        How long a client waits between polls (``interval``); a poll sooner than
        half of it gets ``slow_down``.
    """

    def __init__(
        self,
        directory: pathlib.Path,
        *,
        lifetime_seconds: int = 600,
        interval_seconds: int = 1,
    ) -> None:
        self.directory = directory
        self.lifetime_seconds = lifetime_seconds
        self.interval_seconds = interval_seconds

    def start(self, *, client_id: str, scope: str) -> DeviceStart:
        """Begin an authorisation for ``client_id``."""
        with self._locked():
            self._forget_expired()
            while True:
                user_code = "".join(
                    secrets.choice(_USER_CODE_ALPHABET)
                    for _ in range(_USER_CODE_LENGTH)
                )
                if not self._path(user_code).exists():
                    break
            secret = secrets.token_urlsafe(32)
            self._write(
                user_code,
                {
                    "format_version": _FORMAT_VERSION,
                    "secret_sha256": _digest(secret),
                    "client_id": client_id,
                    "scope": scope,
                    "expires_at": time.time() + self.lifetime_seconds,
                    "last_poll": 0.0,
                    "subject": None,
                    "denied": False,
                },
            )
        return DeviceStart(
            device_code=f"{user_code}.{secret}",
            user_code=f"{user_code[:4]}-{user_code[4:]}",
            expires_in=self.lifetime_seconds,
            interval=self.interval_seconds,
        )

    def approve(self, user_code: str, subject: str) -> bool:
        """The user behind ``user_code`` is ``subject``; False for an unknown or
        expired code."""
        return self._decide(user_code, subject=subject, denied=False)

    def deny(self, user_code: str) -> bool:
        """The user declined; the client's next poll gets ``access_denied``."""
        return self._decide(user_code, subject=None, denied=True)

    def poll(self, device_code: str) -> DevicePoll:
        """What the token endpoint answers a client polling with ``device_code``."""
        user_code, _, secret = device_code.partition(".")
        user_code = normalise_user_code(user_code)
        if not user_code or not secret:
            return DevicePoll(error="invalid_grant")
        with self._locked():
            state = self._read(user_code)
            if state is None or not hmac.compare_digest(
                state["secret_sha256"], _digest(secret)
            ):
                return DevicePoll(error="invalid_grant")
            now = time.time()
            if now >= state["expires_at"]:
                self._path(user_code).unlink(missing_ok=True)
                return DevicePoll(error="expired_token")
            if state["denied"]:
                self._path(user_code).unlink(missing_ok=True)
                return DevicePoll(error="access_denied")
            if state["subject"] is not None:
                # Consumed: one authorisation, one token.
                self._path(user_code).unlink()
                return DevicePoll(subject=str(state["subject"]))
            too_soon = now - state["last_poll"] < self.interval_seconds / 2
            self._write(user_code, {**state, "last_poll": now})
            return DevicePoll(
                error="slow_down" if too_soon else "authorization_pending"
            )

    # -- files -------------------------------------------------------------------

    def _decide(self, user_code: str, *, subject: str | None, denied: bool) -> bool:
        code = normalise_user_code(user_code)
        if len(code) != _USER_CODE_LENGTH:
            return False
        with self._locked():
            state = self._read(code)
            if state is None or time.time() >= state["expires_at"]:
                return False
            if state["subject"] is not None or state["denied"]:
                return False  # decided already
            self._write(code, {**state, "subject": subject, "denied": denied})
        return True

    def _path(self, user_code: str) -> pathlib.Path:
        return self.directory / f"{user_code}.json"

    def _read(self, user_code: str) -> dict[str, Any] | None:
        try:
            state = json.loads(self._path(user_code).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(state, dict) or state.get("format_version") != (
            _FORMAT_VERSION
        ):
            return None
        return state

    def _write(self, user_code: str, state: dict[str, Any]) -> None:
        partial = self.directory / f".{user_code}.part"
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            json.dump(state, out)
        os.replace(partial, self._path(user_code))

    def _forget_expired(self) -> None:
        now = time.time()
        for path in self.directory.glob("*.json"):
            state = self._read(path.stem)
            if state is None or now >= state["expires_at"]:
                path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
