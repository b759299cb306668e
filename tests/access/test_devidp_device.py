"""The development identity provider's device sign-in (RFC 8628) and refresh tokens."""

from __future__ import annotations

import re
import time

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from genomenode.access import devidp_http
from genomenode.access.device_flow import DeviceAuthorizations
from genomenode.access.devidp import DEVICE_CODE_GRANT, DevIdentityProvider
from genomenode.access.tokens import JwksCache, TokenVerifier
from genomenode.errors import TokenError

ISSUER = "https://node.example/dev-idp"
RESEARCHER = "researcher@demo.genomenode"


@pytest.fixture
def provider(tmp_path) -> DevIdentityProvider:
    return DevIdentityProvider(tmp_path / "dev-idp", ISSUER)


@pytest.fixture
def client(provider) -> TestClient:
    app = FastAPI()
    app.state.dev_identity_provider = provider
    app.include_router(devidp_http.router, prefix="/dev-idp")
    return TestClient(app)


def _start(client) -> dict:
    response = client.post(
        "/dev-idp/device_authorization", data={"client_id": "genomenode-cli"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()


def _poll(client, device_code: str):
    return client.post(
        "/dev-idp/token",
        data={
            "grant_type": DEVICE_CODE_GRANT,
            "device_code": device_code,
            "client_id": "genomenode-cli",
        },
    )


def test_discovery_names_the_device_endpoint_and_grants(client):
    configuration = client.get("/dev-idp/.well-known/openid-configuration").json()
    assert configuration["device_authorization_endpoint"] == (
        ISSUER + "/device_authorization"
    )
    assert set(configuration["grant_types_supported"]) == {
        "authorization_code",
        DEVICE_CODE_GRANT,
        "refresh_token",
    }


def test_a_device_signs_in_once_the_user_approves(client, provider):
    started = _start(client)
    assert re.fullmatch(r"[B-Z]{4}-[B-Z]{4}", started["user_code"])
    assert started["verification_uri"] == ISSUER + "/device"
    assert started["verification_uri_complete"].endswith(
        "user_code=" + started["user_code"]
    )
    assert started["expires_in"] == 600 and started["interval"] >= 1
    pending = _poll(client, started["device_code"])
    assert pending.status_code == 400
    assert pending.json()["error"] == "authorization_pending"

    page = client.get("/dev-idp/device", params={"user_code": started["user_code"]})
    assert page.status_code == 200
    assert started["user_code"] in page.text and "anyone" in page.text
    approved = client.post(
        "/dev-idp/device",
        data={
            # Typed as a user might: lower case, no dash.
            "user_code": started["user_code"].lower().replace("-", ""),
            "subject": RESEARCHER,
            "action": "approve",
        },
    )
    assert approved.status_code == 200, approved.text
    assert f"Signed in as {RESEARCHER}" in approved.text

    time.sleep(0.6)  # half the interval: not too soon
    tokens = _poll(client, started["device_code"])
    assert tokens.status_code == 200, tokens.text
    document = tokens.json()
    assert document["token_type"] == "Bearer" and document["expires_in"] == 3600
    trusted = provider.trusted()
    verifier = TokenVerifier(
        [trusted], [trusted], JwksCache(lambda url: provider.jwks())
    )
    identity = verifier.verify(document["access_token"])
    assert identity is not None and identity.subject == RESEARCHER
    # One approval, one token: the device code is spent.
    again = _poll(client, started["device_code"])
    assert again.json()["error"] == "invalid_grant"


def test_declined_unknown_forged_and_expired_codes(client, provider, tmp_path):
    started = _start(client)
    declined = client.post(
        "/dev-idp/device",
        data={"user_code": started["user_code"], "action": "deny"},
    )
    assert declined.status_code == 200
    assert _poll(client, started["device_code"]).json()["error"] == "access_denied"

    unknown = client.post(
        "/dev-idp/device",
        data={"user_code": "BCDF-GHJK", "subject": RESEARCHER},
    )
    assert unknown.status_code == 400
    assert "unknown, expired or already used" in unknown.json()["detail"]
    other = _start(client)
    user_code, _, _secret = other["device_code"].partition(".")
    forged = _poll(client, f"{user_code}.not-the-secret")
    assert forged.json()["error"] == "invalid_grant"
    bad_subject = client.post(
        "/dev-idp/device",
        data={"user_code": other["user_code"], "subject": "semi;colon"},
    )
    assert bad_subject.status_code == 400

    short = DeviceAuthorizations(tmp_path / "short", lifetime_seconds=0)
    started_short = short.start(client_id="c", scope="s")
    assert short.approve(started_short.user_code, RESEARCHER) is False
    assert short.poll(started_short.device_code).error == "expired_token"
    assert "device_code='***'" in repr(started_short)
    assert started_short.device_code not in repr(started_short)


def test_polling_too_fast_is_told_to_slow_down(tmp_path):
    devices = DeviceAuthorizations(tmp_path, interval_seconds=60)
    started = devices.start(client_id="c", scope="s")
    assert devices.poll(started.device_code).error == "authorization_pending"
    assert devices.poll(started.device_code).error == "slow_down"


def test_token_requests_name_what_is_missing(client):
    assert client.post(
        "/dev-idp/device_authorization", data={"scope": "openid"}
    ).json() == {
        "error": "invalid_request",
        "error_description": "client_id is required",
        "detail": "client_id is required",
    }
    assert (
        client.post("/dev-idp/token", data={"grant_type": DEVICE_CODE_GRANT}).json()[
            "error"
        ]
        == "invalid_request"
    )
    unsupported = client.post("/dev-idp/token", data={"grant_type": "password"})
    assert unsupported.status_code == 400
    assert unsupported.json()["error"] == "unsupported_grant_type"


def test_a_refresh_token_gives_a_new_passport_and_is_never_one(client, provider):
    refresh_token = provider.refresh_token(RESEARCHER)
    response = client.post(
        "/dev-idp/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
    )
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["refresh_token"] != refresh_token
    assert provider.userinfo(document["access_token"])["sub"] == RESEARCHER
    # A refresh token does not open userinfo, so a node refuses it as a passport.
    with pytest.raises(TokenError, match="not an access token"):
        provider.userinfo(refresh_token)
    used_as_passport = client.get(
        "/dev-idp/userinfo", headers={"Authorization": f"Bearer {refresh_token}"}
    )
    assert used_as_passport.status_code == 401
    # And an access token is not a refresh token.
    refused = client.post(
        "/dev-idp/token",
        data={"grant_type": "refresh_token", "refresh_token": document["access_token"]},
    )
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
    forged = client.post(
        "/dev-idp/token",
        data={"grant_type": "refresh_token", "refresh_token": "a.b.c"},
    )
    assert forged.json()["error"] == "invalid_grant"


def test_pending_authorisations_are_private_files(provider, tmp_path):
    started = provider.devices.start(client_id="c", scope="s")
    (path,) = (tmp_path / "dev-idp" / "device").glob("*.json")
    assert path.stat().st_mode & 0o077 == 0
    assert started.device_code.split(".")[1] not in path.read_text()
