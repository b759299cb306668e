"""The portal's session: one encrypted, authenticated cookie; its CSRF token.

The cookie holds who signed in, their access token (a GA4GH passport, never
shown to the page's scripts: ``HttpOnly``), the CSRF token of the visitor's
forms and the pending sign-in (OIDC ``state``, PKCE verifier, nonce). It is
sealed with AES-GCM under a key kept beside the node's (or the network's)
other keys, so any worker process reads it and nothing is kept in memory; a
cookie that does not open (tampered, another key, expired) is an anonymous
visitor with a fresh CSRF token.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import json
import os
import pathlib
import secrets
import time
import zlib
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "COOKIE_NAME",
    "CSRF_FIELD",
    "MAX_COOKIE_BYTES",
    "SESSION_SECONDS",
    "Session",
    "SessionSealer",
    "load_session_key",
]

#: The session cookie's name.
COOKIE_NAME = "genomenode_portal"
#: The hidden field every form of the portal posts its CSRF token in.
CSRF_FIELD = "csrf_token"
#: How long a session lasts (a passport from the broker is shorter-lived anyway).
SESSION_SECONDS = 8 * 3600
#: Browsers keep cookies up to 4096 bytes; a larger session is refused loudly.
MAX_COOKIE_BYTES = 4000
_NONCE_BYTES = 12
_KEY_BYTES = 32
_AAD = b"genomenode-portal-session-v1"


def load_session_key(path: pathlib.Path) -> bytes:
    """The key at ``path``, created (0600) on first use.

    Several workers may start at once: the file is created exclusively, and a
    worker that loses the race reads the winner's key.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(secrets.token_bytes(_KEY_BYTES))
    for _ in range(50):
        key = path.read_bytes()
        if len(key) == _KEY_BYTES:
            return key
        time.sleep(0.01)  # the winner is still writing
    raise ValueError(f"{path}: not a {_KEY_BYTES}-byte portal session key")


class Session:
    """One visitor's session (a dict of JSON values) and whether it changed."""

    def __init__(self, values: dict[str, Any] | None = None) -> None:
        self.values: dict[str, Any] = dict(values or {})
        self.changed = False
        if not isinstance(self.values.get("csrf"), str):
            self.values["csrf"] = secrets.token_urlsafe(32)
            self.changed = True

    @property
    def csrf_token(self) -> str:
        """The token the visitor's forms must post back."""
        return str(self.values["csrf"])

    @property
    def subject(self) -> str | None:
        """Who signed in, or None."""
        subject = self.values.get("sub")
        return subject if isinstance(subject, str) else None

    @property
    def access_token(self) -> str | None:
        """The signed-in visitor's access token (never rendered into a page)."""
        token = self.values.get("token")
        expires = self.values.get("token_exp")
        if not isinstance(token, str):
            return None
        if isinstance(expires, (int, float)) and expires <= time.time():
            return None
        return token

    def check_csrf(self, posted: str | None) -> bool:
        """Whether ``posted`` is this session's CSRF token (constant time)."""
        return isinstance(posted, str) and hmac.compare_digest(
            posted.encode(), self.csrf_token.encode()
        )

    def sign_in(self, subject: str, token: str, expires_in: float) -> None:
        """Start a signed-in session: a new CSRF token (no fixation)."""
        self.values = {
            "sub": subject,
            "token": token,
            "token_exp": time.time() + min(expires_in, SESSION_SECONDS),
            "csrf": secrets.token_urlsafe(32),
        }
        self.changed = True

    def sign_out(self) -> None:
        """Forget everything but nothing: a new anonymous session."""
        self.values = {"csrf": secrets.token_urlsafe(32)}
        self.changed = True

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value
        self.changed = True

    def pop(self, key: str) -> Any:
        self.changed = True
        return self.values.pop(key, None)


class SessionSealer:
    """Seals sessions into cookie values and opens them (AES-GCM, 256-bit key)."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "SessionSealer(key=***)"

    def seal(self, session: Session) -> str:
        """The cookie value of ``session`` (compressed, encrypted, base64url).

        Raises
        ------
        ValueError
            The sealed session would not fit in a cookie.
        """
        document = {"v": session.values, "exp": int(time.time()) + SESSION_SECONDS}
        plain = zlib.compress(json.dumps(document, separators=(",", ":")).encode())
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, plain, _AAD)
        value = base64.urlsafe_b64encode(sealed).decode().rstrip("=")
        if len(value) > MAX_COOKIE_BYTES:
            raise ValueError(
                f"the portal session is {len(value)} bytes, over the "
                f"{MAX_COOKIE_BYTES} a browser keeps (is the access token that large?)"
            )
        return value

    def open(self, value: str | None) -> Session:
        """The session in a cookie value; a new one if it does not open."""
        if not value or len(value) > MAX_COOKIE_BYTES:
            return Session()
        try:
            sealed = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            nonce, body = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
            plain = self._aead.decrypt(nonce, body, _AAD)
            document = json.loads(zlib.decompress(plain, bufsize=8192))
        except Exception:
            return Session()
        if not isinstance(document, dict) or not isinstance(document.get("v"), dict):
            return Session()
        if not isinstance(document.get("exp"), int) or document["exp"] < time.time():
            return Session()
        session = Session(document["v"])
        return session
