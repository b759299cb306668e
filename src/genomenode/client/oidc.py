"""Signing in to a broker from a terminal: OpenID Connect discovery, the OAuth 2.0
device authorisation grant (RFC 8628) and refresh tokens.

Everything about the broker comes from its discovery document
(``<broker>/.well-known/openid-configuration``): the device authorisation, token
and userinfo endpoints. So the same code signs in at LS AAI (which offers the
device grant to registered clients) and at a node's development identity
provider (``<node>/dev-idp``, which believes whoever the user says they are).

:func:`login` asks for a device code, hands the user code and verification URL to
its ``show`` callback, polls the token endpoint at the interval the broker asks
(slower on ``slow_down``) until the user approves, declines or the code expires,
and keeps the tokens in a :class:`~.tokens.TokenStore`. :func:`access_token` is
what commands call: the stored token, refreshed first when it has expired.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx2

from ..config import Secret
from ..errors import AuthenticationRequired, GenomenodeError, InputError
from .tokens import SignIn, TokenStore

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_SCOPE",
    "DEVICE_CODE_GRANT",
    "BrokerMetadata",
    "DeviceAuthorization",
    "access_token",
    "discover",
    "login",
    "refresh",
]

#: The OAuth client genomenode says it is, unless told otherwise (a real broker
#: needs the client registered with it; see docs/access.md).
DEFAULT_CLIENT_ID = "genomenode-cli"
#: Passport visas, and a refresh token to stay signed in.
DEFAULT_SCOPE = "openid ga4gh_passport_v1 offline_access"
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_TIMEOUT = 30.0
# RFC 8628 3.5: on slow_down, the interval grows by 5 s for all later polls.
_SLOW_DOWN_SECONDS = 5


@dataclasses.dataclass(frozen=True)
class BrokerMetadata:
    """What discovery says of a broker."""

    issuer: str
    token_endpoint: str
    device_authorization_endpoint: str | None
    userinfo_endpoint: str | None


@dataclasses.dataclass(frozen=True)
class DeviceAuthorization:
    """A started device sign-in: what the user must do, and the client's secret."""

    device_code: Secret
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: int
    interval: int


def _client(http: httpx2.Client | None) -> httpx2.Client:
    return http if http is not None else httpx2.Client(timeout=_TIMEOUT)


def _json(response: httpx2.Response, what: str) -> dict[str, Any]:
    try:
        document = response.json()
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise GenomenodeError(
            f"{response.request.url}: {what} answered {response.status_code} "
            "without a JSON object"
        )
    return document


def discover(broker: str, *, http: httpx2.Client | None = None) -> BrokerMetadata:
    """The broker's endpoints, from its OpenID Connect discovery document.

    Raises
    ------
    InputError
        ``broker`` is not an http(s) URL.
    GenomenodeError
        The broker cannot be reached, or its document is not one.
    """
    if not broker.startswith(("https://", "http://")):
        raise InputError(
            f"{broker!r} is not a broker URL (https://...)", field="--broker"
        )
    url = f"{broker.rstrip('/')}/.well-known/openid-configuration"
    client = _client(http)
    try:
        response = client.get(url)
    except httpx2.HTTPError as error:
        raise GenomenodeError(f"{url}: cannot reach the broker: {error}") from None
    finally:
        if http is None:
            client.close()
    if response.status_code != 200:
        raise GenomenodeError(f"{url}: {response.status_code}; is this a broker?")
    document = _json(response, "discovery")
    issuer, token_endpoint = document.get("issuer"), document.get("token_endpoint")
    if not isinstance(issuer, str) or not isinstance(token_endpoint, str):
        raise GenomenodeError(f"{url}: no issuer or token_endpoint")
    device = document.get("device_authorization_endpoint")
    userinfo = document.get("userinfo_endpoint")
    return BrokerMetadata(
        issuer=issuer.rstrip("/"),
        token_endpoint=token_endpoint,
        device_authorization_endpoint=device if isinstance(device, str) else None,
        userinfo_endpoint=userinfo if isinstance(userinfo, str) else None,
    )


def _oauth_failure(response: httpx2.Response, document: Mapping[str, Any]) -> str:
    error = document.get("error") or response.status_code
    description = document.get("error_description") or document.get("detail") or ""
    return f"{error}: {description}".rstrip(": ")


def _start(
    metadata: BrokerMetadata, *, client_id: str, scope: str, http: httpx2.Client
) -> DeviceAuthorization:
    if metadata.device_authorization_endpoint is None:
        raise GenomenodeError(
            f"{metadata.issuer} offers no device sign-in "
            "(no device_authorization_endpoint in its discovery document)"
        )
    response = http.post(
        metadata.device_authorization_endpoint,
        data={"client_id": client_id, "scope": scope},
    )
    document = _json(response, "the device authorisation endpoint")
    if response.status_code != 200 or not isinstance(document.get("device_code"), str):
        raise GenomenodeError(
            f"{metadata.issuer} refused a device sign-in: "
            + _oauth_failure(response, document)
        )
    return DeviceAuthorization(
        device_code=Secret(document["device_code"]),
        user_code=str(document.get("user_code", "")),
        verification_uri=str(
            document.get("verification_uri") or document.get("verification_url", "")
        ),
        verification_uri_complete=document.get("verification_uri_complete"),
        expires_in=int(document.get("expires_in", 600)),
        interval=int(document.get("interval", 5)),
    )


def _poll(
    metadata: BrokerMetadata,
    authorization: DeviceAuthorization,
    *,
    client_id: str,
    http: httpx2.Client,
    sleep: Callable[[float], None],
) -> dict[str, Any]:
    """Poll the token endpoint until the user decides; the token response."""
    interval = max(1, authorization.interval)
    deadline = time.monotonic() + authorization.expires_in
    while time.monotonic() < deadline:
        sleep(interval)
        response = http.post(
            metadata.token_endpoint,
            data={
                "grant_type": DEVICE_CODE_GRANT,
                "device_code": authorization.device_code.reveal(),
                "client_id": client_id,
            },
        )
        document = _json(response, "the token endpoint")
        if response.status_code == 200 and isinstance(
            document.get("access_token"), str
        ):
            return document
        error = document.get("error")
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval += _SLOW_DOWN_SECONDS
            continue
        if error == "access_denied":
            raise AuthenticationRequired("sign-in declined at the broker")
        if error == "expired_token":
            break
        raise GenomenodeError(
            f"{metadata.issuer} refused the sign-in: "
            + _oauth_failure(response, document)
        )
    raise AuthenticationRequired(
        "the sign-in code expired before it was approved; run `genomenode login` again"
    )


def _sign_in(
    metadata: BrokerMetadata,
    tokens: Mapping[str, Any],
    *,
    client_id: str,
    subject: str | None,
    previous: SignIn | None = None,
) -> SignIn:
    expires_in = tokens.get("expires_in")
    refresh_token = tokens.get("refresh_token")
    return SignIn(
        broker=metadata.issuer,
        token_endpoint=metadata.token_endpoint,
        client_id=client_id,
        access_token=Secret(str(tokens["access_token"])),
        # A broker that does not rotate refresh tokens leaves the old one valid.
        refresh_token=Secret(refresh_token)
        if isinstance(refresh_token, str)
        else (previous.refresh_token if previous else None),
        expires_at=time.time() + expires_in
        if isinstance(expires_in, int | float)
        else None,
        subject=subject,
        userinfo_endpoint=metadata.userinfo_endpoint,
    )


def _subject(
    metadata: BrokerMetadata, token: Secret, http: httpx2.Client
) -> str | None:
    """Who the token is for, as the broker's userinfo says (None if it will not)."""
    if metadata.userinfo_endpoint is None:
        return None
    try:
        response = http.get(
            metadata.userinfo_endpoint,
            headers={"Authorization": f"Bearer {token.reveal()}"},
        )
    except httpx2.HTTPError:
        return None
    if response.status_code != 200:
        return None
    subject = _json(response, "userinfo").get("sub")
    return subject if isinstance(subject, str) else None


def login(
    broker: str,
    *,
    show: Callable[[DeviceAuthorization], None],
    store: TokenStore | None = None,
    client_id: str = DEFAULT_CLIENT_ID,
    scope: str = DEFAULT_SCOPE,
    http: httpx2.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SignIn:
    """Sign in at ``broker`` with the device grant and keep the tokens.

    Parameters
    ----------
    broker
        The broker's URL (its issuer; discovery is read from it).
    show
        Called once with the user code and verification URL, for the user.
    store
        Where the tokens are kept (default: the researcher's :class:`TokenStore`).
    client_id, scope
        What the client asks the broker for.
    http
        The HTTP client (tests); a new one otherwise.
    sleep
        How to wait between polls.

    Raises
    ------
    AuthenticationRequired
        The user declined, or the code expired.
    GenomenodeError
        The broker cannot be reached or does not offer the device grant.
    """
    store = store if store is not None else TokenStore()
    client = _client(http)
    try:
        metadata = discover(broker, http=client)
        authorization = _start(metadata, client_id=client_id, scope=scope, http=client)
        show(authorization)
        tokens = _poll(
            metadata, authorization, client_id=client_id, http=client, sleep=sleep
        )
        access = Secret(str(tokens["access_token"]))
        sign_in = _sign_in(
            metadata,
            tokens,
            client_id=client_id,
            subject=_subject(metadata, access, client),
        )
    finally:
        if http is None:
            client.close()
    with store.locked():
        store.put(sign_in)
    return sign_in


def refresh(sign_in: SignIn, *, http: httpx2.Client | None = None) -> SignIn:
    """New tokens for ``sign_in`` from its refresh token.

    Raises
    ------
    AuthenticationRequired
        There is no refresh token, or the broker no longer accepts it.
    """
    if sign_in.refresh_token is None:
        raise AuthenticationRequired(
            f"your sign-in at {sign_in.broker} has expired: run "
            f"`genomenode login --broker {sign_in.broker}`"
        )
    client = _client(http)
    try:
        response = client.post(
            sign_in.token_endpoint,
            data={
                "grant_type": "refresh_token",
                "refresh_token": sign_in.refresh_token.reveal(),
                "client_id": sign_in.client_id,
            },
        )
    except httpx2.HTTPError as error:
        raise GenomenodeError(
            f"{sign_in.token_endpoint}: cannot reach the broker: {error}"
        ) from None
    finally:
        if http is None:
            client.close()
    document = _json(response, "the token endpoint")
    if response.status_code != 200 or not isinstance(document.get("access_token"), str):
        raise AuthenticationRequired(
            f"your sign-in at {sign_in.broker} has ended ("
            + _oauth_failure(response, document)
            + f"): run `genomenode login --broker {sign_in.broker}`"
        )
    metadata = BrokerMetadata(
        issuer=sign_in.broker,
        token_endpoint=sign_in.token_endpoint,
        device_authorization_endpoint=None,
        userinfo_endpoint=sign_in.userinfo_endpoint,
    )
    return _sign_in(
        metadata,
        document,
        client_id=sign_in.client_id,
        subject=sign_in.subject,
        previous=sign_in,
    )


def access_token(
    broker: str | None = None,
    *,
    store: TokenStore | None = None,
    required: bool = True,
    http: httpx2.Client | None = None,
) -> Secret | None:
    """The access token of the sign-in at ``broker`` (default: the last one),
    refreshed (and kept) first if it has expired.

    Returns None when not signed in and not ``required``.

    Raises
    ------
    AuthenticationRequired
        Not signed in (and ``required``), or the sign-in cannot be refreshed.
    """
    store = store if store is not None else TokenStore()
    with store.locked():
        found = store.get(broker) if required else store.find(broker)
        if found is None:
            return None
        if found.expired():
            found = refresh(found, http=http)
            store.put(found, make_default=False)
    return found.access_token
