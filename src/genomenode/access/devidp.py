"""A development identity provider: passports for demos and tests. NOT FOR PRODUCTION.

**It hands a signed passport to anyone who asks, for any subject they name, with no
login at all.** It exists so that the demo and the tests can play researchers and
DAC members without an account at a real broker (LS-AAI). ``genomenode serve``
never mounts it unless the setting ``dev_identity_provider`` is true, and a node
that trusts it as a broker or visa issuer trusts everyone.

What it serves, mounted by the node under ``/dev-idp`` (so its issuer is
``<public URL>/dev-idp``), through :mod:`genomenode.access.devidp_http`:

- ``GET /.well-known/jwks.json`` and ``GET /.well-known/openid-configuration``;
- ``POST /token`` with ``{"subject": ..., "visas": [...], "lifetime": seconds,
  "embed_visas": true}`` (JSON or form), answering ``{"access_token": ...}``;
- ``GET /userinfo`` with ``Authorization: Bearer <token>``, answering the visas;
- ``GET /`` listing the demo identities and how to get a token;
- the OAuth 2.0 device authorisation grant (RFC 8628) for command-line clients
  (``genomenode login``): ``POST /device_authorization`` (``client_id``) answers a
  device code and a user code; ``GET /device`` is the verification page, where
  the user names the subject to sign in as (no password: this provider believes
  anyone) and ``POST /device`` approves or denies; ``POST /token`` with
  ``grant_type=urn:ietf:params:oauth:grant-type:device_code`` then answers an
  access token (a passport) and a refresh token, and with
  ``grant_type=refresh_token`` a new access token. Pending authorisations are
  files beside its keys (:mod:`.device_flow`);
- the OAuth 2.0 authorization-code grant with PKCE (RFC 6749, RFC 7636) for
  web clients (the portal): ``GET /authorize`` is the page where the user names
  the subject to sign in as, ``POST /authorize`` sends the browser back to the
  client's ``redirect_uri`` with a one-time code, and ``POST /token`` with
  ``grant_type=authorization_code`` and the PKCE ``code_verifier`` redeems it
  (within a minute, once) for the same answer as the device grant. PKCE (S256)
  is required: the provider has no client secrets.

Every passport and visa it signs carries the claim ``"genomenode_dev_idp": true``
(:data:`~genomenode.access.jws.DEVELOPMENT_CLAIM`), and a node whose
``beacon_environment`` is ``prod`` refuses any token carrying it, whatever issuers
it trusts.

Passports and visas are ES256, signed with P-256 keys kept in a directory as the
node keeps its own visa keys (:class:`~genomenode.access.visas.SigningKeys`). The
provider signs both the passport and its ResearcherStatus and
AcceptedTermsAndPolicies visas, asserting Registered Access (Passport v1.2,
"Registered Access": both visas with the value of the publication that defines
it), so :meth:`DevIdentityProvider.trusted` is meant to be trusted as a broker and
as a visa issuer at once.

It keeps no state besides its keys and the pending device authorisations.
Refresh tokens are signed like its passports, but carry no passport scope, so
neither a node nor its userinfo accepts one as an access token. Each token
records which visa types it was issued with; ``/userinfo`` signs those visas
anew for the token's subject (asserted at the token's ``iat``, expiring with the
token), so any worker of the node can answer it, also after a restart. Visas
signed by someone else (the node's ControlledAccessGrants) can be embedded in a
passport but are never returned by ``/userinfo``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import pathlib
import secrets
import time
import types
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import jwt

from ..errors import TokenError
from . import jws
from .device_flow import DeviceAuthorizations
from .tokens import TrustedIssuer
from .visas import SigningKeys

__all__ = [
    "AUTHORIZATION_CODE_SECONDS",
    "DEFAULT_VISA_TYPES",
    "DEMO_IDENTITIES",
    "DEVICE_CODE_GRANT",
    "MAX_LIFETIME_SECONDS",
    "REFRESH_LIFETIME_SECONDS",
    "REGISTERED_ACCESS",
    "SCOPE",
    "VISA_TYPES",
    "DevIdentityProvider",
]

#: The Registered Access publication; the ``value`` of both visas asserting it.
REGISTERED_ACCESS = "https://doi.org/10.1038/s41431-018-0219-y"

#: The visa types the provider issues, with their ``value`` and ``by``.
VISA_TYPES: Mapping[str, tuple[str, str]] = types.MappingProxyType(
    {
        "ResearcherStatus": (REGISTERED_ACCESS, "so"),
        "AcceptedTermsAndPolicies": (REGISTERED_ACCESS, "self"),
    }
)
#: The visa types a passport carries unless told otherwise.
DEFAULT_VISA_TYPES = ("ResearcherStatus", "AcceptedTermsAndPolicies")

#: The longest a passport from this provider may live (one day).
MAX_LIFETIME_SECONDS = 86_400
#: How long a refresh token of this provider lives (a week).
REFRESH_LIFETIME_SECONDS = 7 * 86_400
#: The ``grant_type`` of a device's token request (RFC 8628 3.4).
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
#: How long an authorization code may wait to be redeemed.
AUTHORIZATION_CODE_SECONDS = 60

#: Subjects the demo uses, and who they play.
DEMO_IDENTITIES: Mapping[str, str] = types.MappingProxyType(
    {
        "researcher@demo.genomenode": "a researcher, who applies for datasets",
        "dac@demo.genomenode": "a member of the data access committee",
        "visitor@demo.genomenode": "a registered researcher without grants",
    }
)

#: The scopes of its access tokens.
SCOPE = "openid ga4gh_passport_v1"
# Which visa types a token was issued with, so that userinfo can answer
# without remembering tokens.
_VISA_TYPES_CLAIM = "genomenode_dev_visa_types"
# Marks a refresh token, which is never an access token.
_TOKEN_USE_CLAIM = "genomenode_dev_token_use"
# The lifetime of the access tokens the device and refresh grants issue.
_GRANT_LIFETIME_SECONDS = 3600


class DevIdentityProvider:
    """Issues passports and visas for any subject; for demos and tests only.

    Parameters
    ----------
    directory
        Where its signing keys live (one is created on first use).
    issuer
        Its ``iss``: the URL the router is mounted at, without a trailing slash
        (e.g. ``https://node.example/dev-idp``).
    """

    def __init__(self, directory: pathlib.Path, issuer: str) -> None:
        self.issuer = issuer.rstrip("/")
        self._keys = SigningKeys(directory)
        self._keys.active()  # so that the JWKS is never empty
        self.devices = DeviceAuthorizations(directory / "device")
        self._codes = directory / "codes"

    @property
    def jku(self) -> str:
        """The URL of its JWKS."""
        return f"{self.issuer}/.well-known/jwks.json"

    @property
    def userinfo_url(self) -> str:
        """The URL of its userinfo endpoint."""
        return f"{self.issuer}/userinfo"

    @property
    def token_url(self) -> str:
        """The URL of its token endpoint."""
        return f"{self.issuer}/token"

    @property
    def device_authorization_url(self) -> str:
        """The URL of its device authorisation endpoint (RFC 8628)."""
        return f"{self.issuer}/device_authorization"

    @property
    def authorization_url(self) -> str:
        """The URL of its authorization endpoint (code grant with PKCE)."""
        return f"{self.issuer}/authorize"

    def issue_code(
        self,
        subject: str,
        *,
        client_id: str,
        redirect_uri: str,
        code_challenge: str,
    ) -> str:
        """A one-time authorization code for ``subject``, bound to the client,
        its redirect URI and its PKCE challenge (S256).

        Each code is a file named by its hash (so a listing of the directory
        reveals no code), shared by the node's workers; :meth:`redeem_code`
        removes it, so a code is redeemed at most once.
        """
        code = secrets.token_urlsafe(32)
        self._codes.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._expire_codes()
        record = {
            "subject": subject,
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "code_challenge": code_challenge,
            "expires": time.time() + AUTHORIZATION_CODE_SECONDS,
        }
        path = self._codes / _code_name(code)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(record, handle)
        return code

    def redeem_code(
        self, code: str, *, client_id: str, redirect_uri: str, code_verifier: str
    ) -> dict[str, Any]:
        """:meth:`grant` for the subject of a live code, once.

        Raises
        ------
        TokenError
            Unknown, used or expired code; another client or redirect URI; or
            a verifier that does not match the code's challenge.
        """
        path = self._codes / _code_name(code)
        try:
            record = json.loads(path.read_text())
            path.unlink()  # the one redemption: a second finds nothing
        except (FileNotFoundError, ValueError):
            raise TokenError("is not a live authorization code") from None
        if record.get("expires", 0) < time.time():
            raise TokenError("expired")
        if (
            record.get("client_id") != client_id
            or record.get("redirect_uri") != redirect_uri
        ):
            raise TokenError("was issued to another client or redirect URI")
        digest = hashlib.sha256(code_verifier.encode("ascii", "replace")).digest()
        challenge = base64.urlsafe_b64encode(digest).decode().rstrip("=")
        if not hmac.compare_digest(challenge, str(record.get("code_challenge"))):
            raise TokenError("does not match its PKCE code verifier")
        return self.grant(str(record["subject"]))

    def _expire_codes(self) -> None:
        now = time.time()
        for path in self._codes.glob("*.json"):
            with contextlib.suppress(OSError, ValueError):
                if json.loads(path.read_text()).get("expires", 0) < now:
                    path.unlink()

    @property
    def verification_url(self) -> str:
        """The page where a user approves a device's sign-in."""
        return f"{self.issuer}/device"

    def trusted(self) -> TrustedIssuer:
        """This provider as a broker and visa issuer a node may trust (demo only)."""
        return TrustedIssuer(self.issuer, self.jku, self.userinfo_url)

    def jwks(self) -> dict[str, Any]:
        """The public keys its tokens are signed with (a JWKS document)."""
        return self._keys.jwks()

    def passport(
        self,
        subject: str,
        *,
        visa_types: Sequence[str] = DEFAULT_VISA_TYPES,
        lifetime_seconds: int = 3600,
        extra_visas: Sequence[str] = (),
        embed_visas: bool = True,
    ) -> str:
        """A signed passport for ``subject`` carrying visas of ``visa_types``.

        Parameters
        ----------
        subject
            The ``sub`` of the passport and its visas.
        visa_types
            Which of :data:`VISA_TYPES` to issue.
        lifetime_seconds
            How long the passport and its visas are valid (1 to
            :data:`MAX_LIFETIME_SECONDS`).
        extra_visas
            Already-signed visa JWTs to carry as well (e.g. the node's own
            ControlledAccessGrants visas); only with ``embed_visas``.
        embed_visas
            False: an access token without ``ga4gh_passport_v1``, whose visas
            come from :meth:`userinfo` (as LS-AAI does).

        Raises
        ------
        ValueError
            An unknown visa type, a lifetime out of range, or ``extra_visas``
            without ``embed_visas`` (userinfo could not return them).
        """
        unknown = sorted(set(visa_types) - set(VISA_TYPES))
        if unknown:
            raise ValueError(
                f"unknown visa types {unknown}; known: {', '.join(VISA_TYPES)}"
            )
        if not 1 <= lifetime_seconds <= MAX_LIFETIME_SECONDS:
            raise ValueError(
                f"lifetime must be 1 to {MAX_LIFETIME_SECONDS} seconds, "
                f"not {lifetime_seconds}"
            )
        if extra_visas and not embed_visas:
            raise ValueError(
                "extra_visas need embed_visas: userinfo cannot return them"
            )
        issued_at = int(time.time())
        expires = issued_at + lifetime_seconds
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "iat": issued_at,
            "exp": expires,
            "jti": uuid.uuid4().hex,
            "scope": SCOPE,
            _VISA_TYPES_CLAIM: list(dict.fromkeys(visa_types)),
            jws.DEVELOPMENT_CLAIM: True,
        }
        if embed_visas:
            visas = self._visas(subject, visa_types, issued_at, expires)
            claims["ga4gh_passport_v1"] = [*visas, *extra_visas]
        return self._sign(claims)

    def userinfo(self, token: str) -> dict[str, Any]:
        """The userinfo document for an access token this provider issued.

        The visas are signed anew for the token's subject, of the types the token
        was issued with, asserted at its ``iat`` and expiring with it.

        Raises
        ------
        TokenError
            The token is not a live access token of this provider.
        """
        claims = self._verified_claims(token)
        subject = str(claims["sub"])
        visa_types = _visa_types_of(claims)
        visas = self._visas(subject, visa_types, int(claims["iat"]), int(claims["exp"]))
        return {"sub": subject, "ga4gh_passport_v1": visas}

    def refresh_token(
        self, subject: str, *, visa_types: Sequence[str] = DEFAULT_VISA_TYPES
    ) -> str:
        """A refresh token for ``subject`` (:data:`REFRESH_LIFETIME_SECONDS`)."""
        issued_at = int(time.time())
        return self._sign(
            {
                "iss": self.issuer,
                "sub": subject,
                "iat": issued_at,
                "exp": issued_at + REFRESH_LIFETIME_SECONDS,
                "jti": uuid.uuid4().hex,
                _TOKEN_USE_CLAIM: "refresh",
                _VISA_TYPES_CLAIM: list(dict.fromkeys(visa_types)),
                jws.DEVELOPMENT_CLAIM: True,
            }
        )

    def grant(
        self, subject: str, *, visa_types: Sequence[str] = DEFAULT_VISA_TYPES
    ) -> dict[str, Any]:
        """The token response of the device and refresh grants: a passport (one
        hour) and a new refresh token."""
        return {
            "access_token": self.passport(
                subject,
                visa_types=visa_types,
                lifetime_seconds=_GRANT_LIFETIME_SECONDS,
            ),
            "refresh_token": self.refresh_token(subject, visa_types=visa_types),
            "token_type": "Bearer",
            "expires_in": _GRANT_LIFETIME_SECONDS,
            "scope": SCOPE,
        }

    def refreshed(self, refresh_token: str) -> dict[str, Any]:
        """:meth:`grant` anew for the subject of a live refresh token.

        Raises
        ------
        TokenError
            The token is not a live refresh token of this provider.
        """
        claims = jws.verify(
            refresh_token,
            issuer=self.issuer,
            jku=self.jku,
            keys=self._key,
            now=time.time(),
        )
        if claims.get(_TOKEN_USE_CLAIM) != "refresh":
            raise TokenError("is not a refresh token of this identity provider")
        visa_types = _visa_types_of(claims)
        return self.grant(str(claims["sub"]), visa_types=visa_types)

    def _visas(
        self, subject: str, visa_types: Sequence[str], asserted: int, expires: int
    ) -> list[str]:
        issued_at = int(time.time())
        visas: list[str] = []
        for visa_type in dict.fromkeys(visa_types):
            value, by = VISA_TYPES[visa_type]
            claims = {
                "iss": self.issuer,
                "sub": subject,
                "iat": issued_at,
                "exp": expires,
                "jti": uuid.uuid4().hex,
                jws.DEVELOPMENT_CLAIM: True,
                "ga4gh_visa_v1": {
                    "type": visa_type,
                    "asserted": asserted,
                    "value": value,
                    "source": self.issuer,
                    "by": by,
                },
            }
            visas.append(self._sign(claims))
        return visas

    def _sign(self, claims: dict[str, Any]) -> str:
        kid, key = self._keys.active()
        headers = {"kid": kid, "jku": self.jku, "typ": "JWT"}
        return jwt.encode(claims, key, algorithm="ES256", headers=headers)

    def _key(self, jku: str, kid: str | None) -> jwt.PyJWK:
        """One of its own keys (no network: they are in its directory)."""
        published = {key["kid"]: key for key in self.jwks()["keys"]}
        if kid not in published:
            raise TokenError(
                f"was not signed by this identity provider (unknown key id {kid!r})"
            )
        return jwt.PyJWK.from_dict(published[kid])

    def _verified_claims(self, token: str) -> dict[str, Any]:
        claims = jws.verify(
            token, issuer=self.issuer, jku=self.jku, keys=self._key, now=time.time()
        )
        # Its visas are signed with the same key by the same issuer: only a
        # token issued as an access token may ask for userinfo.
        scope = claims.get("scope")
        if (
            not isinstance(scope, str)
            or "ga4gh_passport_v1" not in scope.split()
            or _TOKEN_USE_CLAIM in claims
        ):
            raise TokenError("is not an access token of this identity provider")
        return claims


def _code_name(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8", "replace")).hexdigest() + ".json"


def _visa_types_of(claims: Mapping[str, Any]) -> list[str]:
    """The visa types a token of the provider was issued with."""
    visa_types = claims.get(_VISA_TYPES_CLAIM)
    if not isinstance(visa_types, list) or not all(
        isinstance(visa_type, str) and visa_type in VISA_TYPES
        for visa_type in visa_types
    ):
        raise TokenError(f"{_VISA_TYPES_CLAIM} is not a list of known visa types")
    return visa_types
