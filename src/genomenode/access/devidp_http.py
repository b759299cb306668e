"""The development identity provider's endpoints (demo and tests only).

:data:`router` is mounted by the node under ``/dev-idp`` when the setting
``dev_identity_provider`` is true; the provider answering is the app's
``app.state.dev_identity_provider`` (:func:`dev_identity_provider`). What each
endpoint does, and why none of it is for production:
:mod:`genomenode.access.devidp`. Handlers carry no docstrings, which FastAPI
would publish in the OpenAPI.
"""

from __future__ import annotations

import html
import json
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

import fastapi
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from ..errors import InputError, TokenError
from ..web.blocking import run_blocking
from ..web.body import read_body, read_json
from ..web.responses import json_response
from .devidp import (
    DEFAULT_VISA_TYPES,
    DEMO_IDENTITIES,
    DEVICE_CODE_GRANT,
    MAX_LIFETIME_SECONDS,
    SCOPE,
    VISA_TYPES,
    DevIdentityProvider,
)

__all__ = ["dev_identity_provider", "router"]

#: The provider's endpoints (mount with ``prefix="/dev-idp"``).
router = fastapi.APIRouter(tags=["development identity provider"])

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_SUBJECT = re.compile(r"[A-Za-z0-9@._:-]{1,200}")


def dev_identity_provider(request: fastapi.Request) -> DevIdentityProvider:
    """The provider of the app answering ``request``
    (``app.state.dev_identity_provider``)."""
    provider: DevIdentityProvider = request.app.state.dev_identity_provider
    return provider


@router.get("/")
def about(request: fastapi.Request) -> dict[str, Any]:
    provider = dev_identity_provider(request)
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
def jwks(request: fastapi.Request) -> dict[str, Any]:
    return dev_identity_provider(request).jwks()


@router.get("/.well-known/openid-configuration")
def openid_configuration(request: fastapi.Request) -> dict[str, Any]:
    provider = dev_identity_provider(request)
    return {
        "issuer": provider.issuer,
        "jwks_uri": provider.jku,
        "token_endpoint": provider.token_url,
        "userinfo_endpoint": provider.userinfo_url,
        "device_authorization_endpoint": provider.device_authorization_url,
        "authorization_endpoint": provider.authorization_url,
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": [
            "authorization_code",
            DEVICE_CODE_GRANT,
            "refresh_token",
        ],
        "scopes_supported": SCOPE.split(),
        "claims_supported": ["sub", "ga4gh_passport_v1"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "development_only": True,
    }


@router.post("/device_authorization")
async def device_authorization(request: fastapi.Request) -> JSONResponse:
    provider = dev_identity_provider(request)
    parameters = await _token_request(request)
    client_id = parameters.get("client_id")
    if not isinstance(client_id, str) or not client_id.strip():
        return _oauth_error("invalid_request", "client_id is required")
    scope = parameters.get("scope", SCOPE)
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
    return json_response(answer, headers=_NO_STORE)


@router.get("/authorize", response_class=HTMLResponse)
def authorize_page(request: fastapi.Request) -> HTMLResponse:
    parameters = _authorization_parameters(dict(request.query_params))
    return HTMLResponse(_authorize_page(parameters), headers=_NO_STORE)


@router.post("/authorize")
async def authorize_decision(request: fastapi.Request) -> fastapi.Response:
    provider = dev_identity_provider(request)
    form = await _token_request(request)
    parameters = _authorization_parameters(
        {name: str(value) for name, value in form.items()}
    )
    answer: dict[str, str] = {}
    if form.get("action") == "deny":
        answer["error"] = "access_denied"
    else:
        subject = form.get("subject")
        if not isinstance(subject, str) or not _SUBJECT.fullmatch(subject):
            raise fastapi.HTTPException(
                400,
                "subject must be 1 to 200 characters of letters, digits and @._:-",
            )
        answer["code"] = await run_blocking(
            request,
            provider.issue_code,
            subject,
            client_id=parameters["client_id"],
            redirect_uri=parameters["redirect_uri"],
            code_challenge=parameters["code_challenge"],
        )
    if parameters["state"]:
        answer["state"] = parameters["state"]
    redirect_uri = parameters["redirect_uri"]
    separator = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(
        f"{redirect_uri}{separator}{urllib.parse.urlencode(answer)}",
        status_code=303,
        headers=_NO_STORE,
    )


@router.get("/device", response_class=HTMLResponse)
def device_page(user_code: str = "") -> HTMLResponse:
    return HTMLResponse(_device_page(user_code[:20]), headers=_NO_STORE)


@router.post("/device", response_class=HTMLResponse)
async def device_decision(request: fastapi.Request) -> HTMLResponse:
    provider = dev_identity_provider(request)
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
    return HTMLResponse(_html_page(f"<p>{message}</p>"), headers=_NO_STORE)


@router.post("/token")
async def token(request: fastapi.Request) -> JSONResponse:
    provider = dev_identity_provider(request)
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
        "scope": SCOPE,
    }
    return json_response(answer, headers=_NO_STORE)


@router.get("/userinfo")
def userinfo(request: fastapi.Request) -> JSONResponse:
    provider = dev_identity_provider(request)
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
    return json_response(document, headers=_NO_STORE)


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
    if grant_type == "authorization_code":
        values = {
            name: parameters.get(name)
            for name in ("code", "client_id", "redirect_uri", "code_verifier")
        }
        missing = [name for name, value in values.items() if not isinstance(value, str)]
        if missing:
            return _oauth_error("invalid_request", f"{', '.join(missing)} required")
        try:
            answer = await run_blocking(
                request,
                provider.redeem_code,
                str(values["code"])[:200],
                client_id=str(values["client_id"])[:200],
                redirect_uri=str(values["redirect_uri"])[:2000],
                code_verifier=str(values["code_verifier"])[:200],
            )
        except TokenError as error:
            return _oauth_error("invalid_grant", f"authorization code {error}")
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
        f"use authorization_code, {DEVICE_CODE_GRANT} or refresh_token (or no "
        "grant_type and a subject)",
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
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<title>genomenode development sign-in</title></head><body><main>"
        "<h1>Development identity provider</h1>"
        "<p><strong>For demos and tests only: it signs in anyone as anyone."
        "</strong></p>"
        f"{body}</main></body></html>"
    )


_CODE_CHALLENGE = re.compile(r"[A-Za-z0-9._~-]{43,128}")


def _authorization_parameters(values: Mapping[str, str]) -> dict[str, str]:
    """The authorization request's parameters, checked (400 on anything wrong:
    this provider never redirects to a URI it has not checked)."""
    if values.get("response_type") != "code":
        raise fastapi.HTTPException(400, "response_type must be code")
    client_id = values.get("client_id", "").strip()
    if not client_id or len(client_id) > 200:
        raise fastapi.HTTPException(400, "client_id is required (at most 200)")
    redirect_uri = values.get("redirect_uri", "")
    parsed = urllib.parse.urlsplit(redirect_uri)
    if (
        len(redirect_uri) > 2000
        or parsed.scheme not in ("http", "https")
        or not parsed.netloc
        or parsed.fragment
    ):
        raise fastapi.HTTPException(400, "redirect_uri must be an http(s) URL")
    if values.get("code_challenge_method") != "S256" or not _CODE_CHALLENGE.fullmatch(
        values.get("code_challenge", "")
    ):
        raise fastapi.HTTPException(
            400, "PKCE is required: code_challenge with code_challenge_method=S256"
        )
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "code_challenge": values["code_challenge"],
        "code_challenge_method": "S256",
        "state": values.get("state", "")[:500],
        "scope": values.get("scope", SCOPE)[:500],
    }


def _authorize_page(parameters: Mapping[str, str]) -> str:
    """The sign-in page of the code grant: who to sign in as (no password)."""
    hidden = "".join(
        f"<input type='hidden' name='{html.escape(name)}' value='{html.escape(value)}'>"
        for name, value in parameters.items()
    )
    identities = "".join(
        f"<option value='{html.escape(subject)}'>{html.escape(plays)}</option>"
        for subject, plays in DEMO_IDENTITIES.items()
    )
    first = html.escape(next(iter(DEMO_IDENTITIES)))
    target = html.escape(urllib.parse.urlsplit(parameters["redirect_uri"]).netloc)
    return _html_page(
        f"<p>{html.escape(parameters['client_id'])} at {target} asks who you are."
        "</p><form method='post' action='authorize'>"
        f"{hidden}<label for='subject'>Sign in as</label> "
        f"<input id='subject' name='subject' list='identities' value='{first}'>"
        f"<datalist id='identities'>{identities}</datalist><br>"
        "<button name='action' value='approve'>Sign in</button> "
        "<button name='action' value='deny'>Decline</button></form>"
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
