"""Sign-in: the OIDC authorization-code flow with PKCE (RFC 6749, RFC 7636).

The portal is a public client (``client_id`` :data:`CLIENT_ID`, no secret): the
proof that the code is its own is the PKCE verifier, which never leaves the
server (it is kept in the sealed session cookie). ``state`` ties the callback to
the browser that started the sign-in, and the broker's discovery document says
where to send the browser and where to redeem the code. The access token it gets
is the visitor's passport, forwarded to the node or network APIs the portal asks.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import secrets
import time
import urllib.parse
from typing import Any

import httpx2

from ..errors import GenomenodeError

__all__ = [
    "CLIENT_ID",
    "SCOPE",
    "PendingSignIn",
    "SignInError",
    "authorization_url",
    "code_challenge",
    "discover",
    "redeem",
    "start_sign_in",
]

#: The portal's client id at the broker (a public client: PKCE, no secret).
CLIENT_ID = "genomenode-portal"
#: What the portal asks for: an OIDC sign-in and the GA4GH passport.
SCOPE = "openid ga4gh_passport_v1"
#: How long a sign-in may take between leaving for the broker and coming back.
PENDING_SECONDS = 600
_DISCOVERY_SECONDS = 300.0
_discovered: dict[str, tuple[float, dict[str, Any]]] = {}


class SignInError(GenomenodeError):
    """The sign-in failed (the broker refused, or the callback does not match);
    ``status``: 400 for the visitor's side, 502 for the broker's."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclasses.dataclass(frozen=True)
class PendingSignIn:
    """What the portal remembers between the redirect and the callback."""

    state: str
    verifier: str
    nonce: str
    next_path: str
    started: float

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, document: Any) -> PendingSignIn | None:
        if not isinstance(document, dict):
            return None
        try:
            return cls(
                state=str(document["state"]),
                verifier=str(document["verifier"]),
                nonce=str(document["nonce"]),
                next_path=str(document["next_path"]),
                started=float(document["started"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


def code_challenge(verifier: str) -> str:
    """The S256 PKCE challenge of ``verifier`` (RFC 7636 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def start_sign_in(next_path: str) -> PendingSignIn:
    """A new pending sign-in returning to ``next_path`` (a local path only)."""
    # Only a path of this site: "//host" and "/\\host" are other sites to a browser.
    if (
        not next_path.startswith("/")
        or next_path.startswith("//")
        or "\\" in next_path
        or any(ord(character) < 32 for character in next_path)
    ):
        next_path = "/"
    return PendingSignIn(
        state=secrets.token_urlsafe(24),
        verifier=secrets.token_urlsafe(48),
        nonce=secrets.token_urlsafe(16),
        next_path=next_path[:500],
        started=time.time(),
    )


async def discover(client: httpx2.AsyncClient, issuer: str) -> dict[str, Any]:
    """The broker's OIDC discovery document (cached for five minutes).

    Raises
    ------
    SignInError
        The broker does not answer, or lacks the endpoints the flow needs.
    """
    cached = _discovered.get(issuer)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    url = f"{issuer.rstrip('/')}/.well-known/openid-configuration"
    try:
        response = await client.get(url, timeout=5.0)
        document = response.json() if response.is_success else None
    except (httpx2.HTTPError, ValueError):
        document = None
    if not isinstance(document, dict):
        raise SignInError(f"the identity broker {issuer} did not answer", status=502)
    for name in ("authorization_endpoint", "token_endpoint"):
        if not isinstance(document.get(name), str):
            raise SignInError(
                f"the identity broker {issuer} has no {name}: it cannot sign in "
                "web users",
                status=502,
            )
    methods = document.get("code_challenge_methods_supported")
    if isinstance(methods, list) and "S256" not in methods:
        raise SignInError(f"the identity broker {issuer} lacks PKCE S256", status=502)
    _discovered[issuer] = (time.monotonic() + _DISCOVERY_SECONDS, document)
    return document


def authorization_url(
    discovery: dict[str, Any], pending: PendingSignIn, redirect_uri: str
) -> str:
    """Where to send the browser to sign in."""
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": redirect_uri,
            "scope": SCOPE,
            "state": pending.state,
            "nonce": pending.nonce,
            "code_challenge": code_challenge(pending.verifier),
            "code_challenge_method": "S256",
        }
    )
    endpoint = str(discovery["authorization_endpoint"])
    separator = "&" if "?" in endpoint else "?"
    return f"{endpoint}{separator}{query}"


async def redeem(
    client: httpx2.AsyncClient,
    discovery: dict[str, Any],
    pending: PendingSignIn,
    *,
    code: str,
    redirect_uri: str,
) -> tuple[str, str, float]:
    """The code exchanged for an access token: ``(subject, token, expires_in)``.

    The subject is the broker's answer at its userinfo endpoint when it has
    one (the token is opaque to the portal), else the token response's.

    Raises
    ------
    SignInError
        The broker refused the code or answered something else.
    """
    if time.time() - pending.started > PENDING_SECONDS:
        raise SignInError("the sign-in took too long; start again", status=400)
    try:
        response = await client.post(
            str(discovery["token_endpoint"]),
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "client_id": CLIENT_ID,
                "code_verifier": pending.verifier,
            },
            timeout=10.0,
        )
        answer = response.json()
    except (httpx2.HTTPError, ValueError):
        raise SignInError("the identity broker did not answer", status=502) from None
    if not response.is_success or not isinstance(answer, dict):
        reason = answer.get("error_description") if isinstance(answer, dict) else None
        raise SignInError(f"the identity broker refused: {reason}", status=400)
    token = answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise SignInError("the identity broker sent no access token", status=502)
    expires_in = answer.get("expires_in", 3600)
    expires = float(expires_in) if isinstance(expires_in, (int, float)) else 3600.0
    subject = await _subject(client, discovery, token)
    return subject, token, expires


async def _subject(
    client: httpx2.AsyncClient, discovery: dict[str, Any], token: str
) -> str:
    userinfo = discovery.get("userinfo_endpoint")
    if isinstance(userinfo, str):
        try:
            response = await client.get(
                userinfo, headers={"Authorization": f"Bearer {token}"}, timeout=5.0
            )
            document = response.json() if response.is_success else None
        except (httpx2.HTTPError, ValueError):
            document = None
        if isinstance(document, dict) and isinstance(document.get("sub"), str):
            return str(document["sub"])
    raise SignInError("the identity broker did not say who signed in", status=502)
