"""Cross-origin resource sharing (CORS) for htsget and DRS, so that browser
clients (igv.js, a portal) can ask for tickets and fetch their blocks.

The ``cors_allowed_origins`` setting lists the origins whose pages may read the
answers (``https://igv.org``), or is ``*`` for any page; by default it is empty
and no page of another origin may. Under ``/htsget`` and ``/ga4gh/drs`` only:

- a preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``)
  is answered by this middleware, never by a route (no 405): 204 with the
  methods (``GET``, ``POST``) and the request headers asked for (a ticket URL's
  ``Authorization`` among them), cached for 30 days as the htsget specification
  says; 403 without CORS headers when the origin or the method is not allowed;
- any other answer to an allowed origin, errors included, carries
  ``Access-Control-Allow-Origin`` and exposes ``Content-Length``,
  ``Content-Range``, ``Content-Type``, ``Accept-Ranges`` and ``WWW-Authenticate``.

``*`` is sent as ``*``: an origin is never reflected for it, so credentials
(cookies, which the node does not use; bearer tokens are not ambient and need no
credentials mode) are never allowed to every page.
``cors_allow_credentials`` adds ``Access-Control-Allow-Credentials: true`` for
the listed origins, and is refused together with ``*``. A listed policy varies
its answers by ``Origin`` (``Vary``), so that caches keep them apart.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import ConfigError

__all__ = ["CORS_PATHS", "CorsMiddleware", "CorsPolicy"]

#: The path prefixes CORS applies to.
CORS_PATHS = ("/htsget", "/ga4gh/drs")
_METHODS = "GET, POST"
_ALLOWED_METHODS = frozenset({"GET", "POST"})
_DEFAULT_REQUEST_HEADERS = "Authorization, Content-Type, Range"
_EXPOSED = (
    "Content-Length, Content-Range, Content-Type, Accept-Ranges, WWW-Authenticate"
)
#: 30 days, as the htsget specification asks (browsers cap it lower).
_MAX_AGE = str(30 * 24 * 3600)
_HEADER_LIST = re.compile(
    r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$"
)


@dataclasses.dataclass(frozen=True)
class CorsPolicy:
    """Which origins may read the answers, and whether with credentials."""

    origins: frozenset[str] = frozenset()
    allow_credentials: bool = False

    def __post_init__(self) -> None:
        if self.any_origin and self.allow_credentials:
            raise ConfigError(
                "cors_allow_credentials cannot go with cors_allowed_origins '*': "
                "credentials are allowed only to listed origins"
            )

    @classmethod
    def from_settings(cls, values: Mapping[str, Any]) -> CorsPolicy:
        """The policy of a node's settings (``cors_allowed_origins``,
        ``cors_allow_credentials``).

        Raises
        ------
        ConfigError
            Credentials together with ``*``.
        """
        return cls(
            frozenset(values.get("cors_allowed_origins", ())),
            bool(values.get("cors_allow_credentials", False)),
        )

    @property
    def any_origin(self) -> bool:
        return "*" in self.origins

    def allowed_origin(self, origin: str | None) -> str | None:
        """What ``Access-Control-Allow-Origin`` says to ``origin``; None: nothing."""
        if origin is None:
            return None
        if self.any_origin:
            return "*"
        return origin if origin in self.origins else None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


class CorsMiddleware:
    """ASGI middleware applying a :class:`CorsPolicy` under :data:`CORS_PATHS`."""

    def __init__(
        self, app: ASGIApp, policy: CorsPolicy, paths: Iterable[str] = CORS_PATHS
    ) -> None:
        self.app = app
        self.policy = policy
        self.paths = tuple(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(
            self.paths
        ):
            await self.app(scope, receive, send)
            return
        origin = _header(scope, b"origin")
        requested = _header(scope, b"access-control-request-method")
        if scope["method"] == "OPTIONS" and origin is not None and requested:
            await self._preflight(scope, origin, requested, send)
            return
        headers = self._headers(self.policy.allowed_origin(origin))
        if self.policy.allowed_origin(origin) is not None:
            headers.append((b"access-control-expose-headers", _EXPOSED.encode()))

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                existing = [
                    (key, value)
                    for key, value in message.get("headers", [])
                    if not key.lower().startswith(b"access-control-")
                ]
                message = {**message, "headers": _merge_vary(existing, headers)}
            await send(message)

        await self.app(scope, receive, send_with_cors)

    def _headers(self, allowed: str | None) -> list[tuple[bytes, bytes]]:
        headers: list[tuple[bytes, bytes]] = []
        if not self.policy.any_origin and self.policy.origins:
            headers.append((b"vary", b"Origin"))
        if allowed is None:
            return headers
        headers.append((b"access-control-allow-origin", allowed.encode("latin-1")))
        if self.policy.allow_credentials and allowed != "*":
            headers.append((b"access-control-allow-credentials", b"true"))
        return headers

    async def _preflight(
        self, scope: Scope, origin: str, method: str, send: Send
    ) -> None:
        allowed = self.policy.allowed_origin(origin)
        if allowed is None or method.upper() not in _ALLOWED_METHODS:
            headers = self._headers(None)
            headers.append((b"content-type", b"text/plain; charset=utf-8"))
            await _respond(send, 403, headers, b"CORS: origin or method not allowed\n")
            return
        asked = _header(scope, b"access-control-request-headers")
        # The headers asked for, as the htsget specification says (a ticket URL's
        # Authorization among them); ill-formed lists get the usual ones.
        allow_headers = (
            asked.strip()
            if asked and len(asked) <= 1024 and _HEADER_LIST.match(asked.strip())
            else _DEFAULT_REQUEST_HEADERS
        )
        headers = self._headers(allowed)
        headers += [
            (b"access-control-allow-methods", _METHODS.encode()),
            (b"access-control-allow-headers", allow_headers.encode("latin-1")),
            (b"access-control-max-age", _MAX_AGE.encode()),
        ]
        await _respond(send, 204, headers, b"")


def _merge_vary(
    existing: list[tuple[bytes, bytes]], added: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    vary = [value for key, value in existing if key.lower() == b"vary"]
    merged = [(key, value) for key, value in existing if key.lower() != b"vary"]
    for key, value in added:
        if key == b"vary":
            vary.append(value)
        else:
            merged.append((key, value))
    if vary:
        merged.append((b"vary", b", ".join(vary)))
    return merged


async def _respond(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
