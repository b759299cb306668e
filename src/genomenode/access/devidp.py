"""A development identity provider: passports for demos and tests. NOT FOR PRODUCTION.

**It hands a signed passport to anyone who asks, for any subject they name, with no
login at all.** It exists so that the demo and the tests can play researchers and
DAC members without an account at a real broker (LS-AAI). ``genomenode serve``
never mounts it unless the setting ``dev_identity_provider`` is true, and a node
that trusts it as a broker or visa issuer trusts everyone.

What it serves, mounted by the node under ``/dev-idp`` (so its issuer is
``<public URL>/dev-idp``), through :func:`dev_idp_router`:

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
  files beside its keys (:mod:`.device_flow`).

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

import html
import json
import pathlib
import re
import time
import types
import urllib.parse
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import fastapi
import jwt
from fastapi.responses import HTMLResponse, JSONResponse

from ..errors import InputError, TokenError
from ..web import json_response, read_body, read_json, run_blocking
from . import jws
from .device_flow import DeviceAuthorizations
from .tokens import TrustedIssuer
from .visas import SigningKeys

__all__ = [
    "DEFAULT_VISA_TYPES",
    "DEMO_IDENTITIES",
    "DEVICE_CODE_GRANT",
    "MAX_LIFETIME_SECONDS",
    "REFRESH_LIFETIME_SECONDS",
    "REGISTERED_ACCESS",
    "VISA_TYPES",
    "DevIdentityProvider",
    "dev_idp_router",
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

#: Subjects the demo uses, and who they play.
DEMO_IDENTITIES: Mapping[str, str] = types.MappingProxyType(
    {
        "researcher@demo.genomenode": "a researcher, who applies for datasets",
        "dac@demo.genomenode": "a member of the data access committee",
        "visitor@demo.genomenode": "a registered researcher without grants",
    }
)

_SCOPE = "openid ga4gh_passport_v1"
# Which visa types a token was issued with, so that userinfo can answer
# without remembering tokens.
_VISA_TYPES_CLAIM = "genomenode_dev_visa_types"
# Marks a refresh token, which is never an access token.
_TOKEN_USE_CLAIM = "genomenode_dev_token_use"
# The lifetime of the access tokens the device and refresh grants issue.
_GRANT_LIFETIME_SECONDS = 3600
_SUBJECT = re.compile(r"[A-Za-z0-9@._:-]{1,200}")


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
            "scope": _SCOPE,
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
            "scope": _SCOPE,
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


def _visa_types_of(claims: Mapping[str, Any]) -> list[str]:
    """The visa types a token of the provider was issued with."""
    visa_types = claims.get(_VISA_TYPES_CLAIM)
    if not isinstance(visa_types, list) or not all(
        isinstance(visa_type, str) and visa_type in VISA_TYPES
        for visa_type in visa_types
    ):
        raise TokenError(f"{_VISA_TYPES_CLAIM} is not a list of known visa types")
    return visa_types


def dev_idp_router(provider: DevIdentityProvider) -> fastapi.APIRouter:
    """The HTTP endpoints of ``provider``, to mount under ``/dev-idp`` (demo only)."""
    router = fastapi.APIRouter(tags=["development identity provider"])
    no_store = _NO_STORE

    @router.get("/")
    def about() -> dict[str, Any]:
        example = json.dumps({"subject": next(iter(DEMO_IDENTITIES))})
        return {
            "description": (
                "Development identity provider: issues GA4GH passports to anyone, "
                "without login. For demos and tests only, never production."
            ),
            "issuer": provider.issuer,
            "identities": [
                {"subject": subject, "plays": plays}
                for subject, plays in DEMO_IDENTITIES.items()
            ],
            "visa_types": list(VISA_TYPES),
            "get_a_token": (
                f"curl -s -X POST {provider.token_url} "
                f"-H 'Content-Type: application/json' -d '{example}'"
            ),
        }

    @router.get("/.well-known/jwks.json")
    def jwks() -> dict[str, Any]:
        return provider.jwks()

    @router.get("/.well-known/openid-configuration")
    def openid_configuration() -> dict[str, Any]:
        return {
            "issuer": provider.issuer,
            "jwks_uri": provider.jku,
            "token_endpoint": provider.token_url,
            "userinfo_endpoint": provider.userinfo_url,
            "device_authorization_endpoint": provider.device_authorization_url,
            "grant_types_supported": [DEVICE_CODE_GRANT, "refresh_token"],
            "scopes_supported": _SCOPE.split(),
            "claims_supported": ["sub", "ga4gh_passport_v1"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "development_only": True,
        }

    @router.post("/device_authorization")
    async def device_authorization(request: fastapi.Request) -> JSONResponse:
        parameters = await _token_request(request)
        client_id = parameters.get("client_id")
        if not isinstance(client_id, str) or not client_id.strip():
            return _oauth_error("invalid_request", "client_id is required")
        scope = parameters.get("scope", _SCOPE)
        started = await run_blocking(
            request,
            provider.devices.start,
            client_id=client_id.strip()[:200],
            scope=str(scope)[:500],
        )
        complete = urllib.parse.urlencode({"user_code": started.user_code})
        answer = {
            "device_code": started.device_code,
            "user_code": started.user_code,
            "verification_uri": provider.verification_url,
            "verification_uri_complete": f"{provider.verification_url}?{complete}",
            "expires_in": started.expires_in,
            "interval": started.interval,
        }
        return json_response(answer, headers=no_store)

    @router.get("/device", response_class=HTMLResponse)
    def device_page(user_code: str = "") -> HTMLResponse:
        return HTMLResponse(_device_page(user_code[:20]), headers=no_store)

    @router.post("/device", response_class=HTMLResponse)
    async def device_decision(request: fastapi.Request) -> HTMLResponse:
        form = await _token_request(request)
        user_code = str(form.get("user_code", ""))[:20]
        subject = form.get("subject")
        if form.get("action") == "deny":
            decided = await run_blocking(request, provider.devices.deny, user_code)
            message = "Sign-in declined."
        else:
            if not isinstance(subject, str) or not _SUBJECT.fullmatch(subject):
                raise fastapi.HTTPException(
                    400,
                    "subject must be 1 to 200 characters of letters, digits and @._:-",
                )
            decided = await run_blocking(
                request, provider.devices.approve, user_code, subject
            )
            message = (
                f"Signed in as {html.escape(subject)}. You may close this page and "
                "return to your terminal."
            )
        if not decided:
            raise fastapi.HTTPException(
                400, "unknown, expired or already used code; start the sign-in again"
            )
        return HTMLResponse(_html_page(f"<p>{message}</p>"), headers=no_store)

    @router.post("/token")
    async def token(request: fastapi.Request) -> JSONResponse:
        request_body = await _token_request(request)
        grant_type = request_body.get("grant_type")
        if grant_type is not None:
            return await _grant(request, provider, str(grant_type), request_body)
        subject, visa_types, lifetime, embed_visas = _token_parameters(request_body)
        try:
            passport = await run_blocking(
                request,
                provider.passport,
                subject,
                visa_types=visa_types,
                lifetime_seconds=lifetime,
                embed_visas=embed_visas,
            )
        except ValueError as error:
            raise fastapi.HTTPException(400, str(error)) from None
        answer = {
            "access_token": passport,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": _SCOPE,
        }
        return json_response(answer, headers=no_store)

    @router.get("/userinfo")
    def userinfo(request: fastapi.Request) -> JSONResponse:
        scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not bearer.strip():
            raise fastapi.HTTPException(
                401, "a bearer token is required", {"WWW-Authenticate": "Bearer"}
            )
        try:
            document = provider.userinfo(bearer.strip())
        except TokenError as error:
            raise fastapi.HTTPException(
                401, f"token {error}", {"WWW-Authenticate": "Bearer"}
            ) from None
        return json_response(document, headers=no_store)

    return router


_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _oauth_error(error: str, description: str) -> JSONResponse:
    """An OAuth 2.0 error answer (RFC 6749 5.2; RFC 8628 3.5), with the node's
    ``detail`` beside the OAuth fields."""
    return json_response(
        {"error": error, "error_description": description, "detail": description},
        400,
        headers=_NO_STORE,
    )


async def _grant(
    request: fastapi.Request,
    provider: DevIdentityProvider,
    grant_type: str,
    parameters: Mapping[str, Any],
) -> JSONResponse:
    """The token endpoint for the device code and refresh token grants."""
    if grant_type == DEVICE_CODE_GRANT:
        device_code = parameters.get("device_code")
        if not isinstance(device_code, str) or not device_code:
            return _oauth_error("invalid_request", "device_code is required")
        polled = await run_blocking(request, provider.devices.poll, device_code)
        if polled.subject is None:
            return _oauth_error(
                str(polled.error), _DEVICE_ERRORS.get(str(polled.error), "")
            )
        answer = await run_blocking(request, provider.grant, polled.subject)
        return json_response(answer, headers=_NO_STORE)
    if grant_type == "refresh_token":
        refresh_token = parameters.get("refresh_token")
        if not isinstance(refresh_token, str) or not refresh_token:
            return _oauth_error("invalid_request", "refresh_token is required")
        try:
            answer = await run_blocking(request, provider.refreshed, refresh_token)
        except TokenError as error:
            return _oauth_error("invalid_grant", f"refresh token {error}")
        return json_response(answer, headers=_NO_STORE)
    return _oauth_error(
        "unsupported_grant_type",
        f"use {DEVICE_CODE_GRANT} or refresh_token (or no grant_type and a subject)",
    )


_DEVICE_ERRORS = {
    "authorization_pending": "the user has not yet approved this sign-in",
    "slow_down": "polling too often; wait longer between requests",
    "access_denied": "the user declined",
    "expired_token": "the device code expired; start again",
    "invalid_grant": "unknown device code",
}


def _html_page(body: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<title>genomenode development sign-in</title></head><body>"
        "<h1>Development identity provider</h1>"
        "<p><strong>For demos and tests only: it signs in anyone as anyone."
        "</strong></p>"
        f"{body}</body></html>"
    )


def _device_page(user_code: str) -> str:
    """The verification page: the user code and who to sign in as."""
    identities = "".join(
        f"<option value='{html.escape(subject)}'>{html.escape(plays)}</option>"
        for subject, plays in DEMO_IDENTITIES.items()
    )
    first = html.escape(next(iter(DEMO_IDENTITIES)))
    return _html_page(
        "<form method='post'>"
        "<label>Code shown by your terminal "
        f"<input name='user_code' value='{html.escape(user_code)}'></label><br>"
        "<label>Sign in as "
        f"<input name='subject' list='identities' value='{first}'></label>"
        f"<datalist id='identities'>{identities}</datalist><br>"
        "<button name='action' value='approve'>Sign in</button> "
        "<button name='action' value='deny'>Decline</button></form>"
    )


async def _token_request(request: fastapi.Request) -> dict[str, Any]:
    """The token request's parameters, from a JSON or a form body."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type != "application/x-www-form-urlencoded":
        try:
            document = await read_json(request)
        except InputError as error:
            raise fastapi.HTTPException(error.status, error.message) from None
        if not isinstance(document, dict):
            raise fastapi.HTTPException(400, "the body must be a JSON object or a form")
        return document
    body = await read_body(request)
    try:
        form = urllib.parse.parse_qs(body.decode(), strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        raise fastapi.HTTPException(400, "the form body cannot be read") from None
    # "visas" may repeat or be comma-separated; everything else is single.
    parameters: dict[str, Any] = {
        name: values[-1] for name, values in form.items() if name != "visas"
    }
    if "visas" in form:
        parameters["visas"] = [
            visa_type.strip()
            for values in form["visas"]
            for visa_type in values.split(",")
            if visa_type.strip()
        ]
    for name, parse in (("lifetime", int), ("embed_visas", _form_boolean)):
        if name in parameters:
            try:
                parameters[name] = parse(parameters[name])
            except ValueError:
                raise fastapi.HTTPException(
                    400, f"{name} {parameters[name]!r} is not valid"
                ) from None
    return parameters


def _form_boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ValueError(text)


def _token_parameters(
    request_body: Mapping[str, Any],
) -> tuple[str, list[str], int, bool]:
    """Subject, visa types, lifetime and embed_visas of a token request, checked."""
    subject = request_body.get("subject")
    if not isinstance(subject, str) or not _SUBJECT.fullmatch(subject):
        raise fastapi.HTTPException(
            400,
            "subject must be 1 to 200 characters of letters, digits and @._:-",
        )
    visa_types = request_body.get("visas", list(DEFAULT_VISA_TYPES))
    if not isinstance(visa_types, list) or not all(
        isinstance(visa_type, str) for visa_type in visa_types
    ):
        raise fastapi.HTTPException(400, "visas must be a list of visa types")
    unknown = sorted(set(visa_types) - set(VISA_TYPES))
    if unknown:
        raise fastapi.HTTPException(
            400,
            f"unknown visa types {unknown}; known: {', '.join(VISA_TYPES)}",
        )
    lifetime = request_body.get("lifetime", 3600)
    if (
        not isinstance(lifetime, int)
        or isinstance(lifetime, bool)
        or not 1 <= lifetime <= MAX_LIFETIME_SECONDS
    ):
        raise fastapi.HTTPException(
            400, f"lifetime must be 1 to {MAX_LIFETIME_SECONDS} seconds"
        )
    embed_visas = request_body.get("embed_visas", True)
    if not isinstance(embed_visas, bool):
        raise fastapi.HTTPException(400, "embed_visas must be true or false")
    return subject, visa_types, lifetime, embed_visas
