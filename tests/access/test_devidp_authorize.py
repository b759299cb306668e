"""The development identity provider's authorization-code grant with PKCE, which
the portal's sign-in uses (RFC 6749 4.1, RFC 7636)."""

from __future__ import annotations

import re
import urllib.parse

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from genomenode.access import devidp_http
from genomenode.access.devidp import DevIdentityProvider
from genomenode.portal.oidc import code_challenge

ISSUER = "https://node.example/dev-idp"
REDIRECT = "https://portal.example/sign-in/callback"
VERIFIER = "v" * 50


@pytest.fixture
def client(tmp_path) -> TestClient:
    app = FastAPI()
    app.state.dev_identity_provider = DevIdentityProvider(tmp_path / "idp", ISSUER)
    app.include_router(devidp_http.router, prefix="/dev-idp")
    return TestClient(app)


def _parameters(**changes: str) -> dict[str, str]:
    parameters = {
        "response_type": "code",
        "client_id": "genomenode-portal",
        "redirect_uri": REDIRECT,
        "state": "s-123",
        "code_challenge": code_challenge(VERIFIER),
        "code_challenge_method": "S256",
    }
    return {key: value for key, value in (parameters | changes).items() if value}


def _code(client, subject: str = "researcher@demo.genomenode") -> str:
    page = client.get("/dev-idp/authorize", params=_parameters())
    assert page.status_code == 200
    assert "Sign in as" in page.text
    answer = client.post(
        "/dev-idp/authorize",
        data={**_parameters(), "subject": subject, "action": "approve"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location.startswith(REDIRECT + "?")
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    assert query["state"] == "s-123"
    return query["code"]


def _redeem(client, code: str, verifier: str = VERIFIER, **changes: str):
    return client.post(
        "/dev-idp/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "client_id": "genomenode-portal",
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        }
        | changes,
    )


def test_discovery_names_the_authorization_endpoint(client):
    configuration = client.get("/dev-idp/.well-known/openid-configuration").json()
    assert configuration["authorization_endpoint"] == ISSUER + "/authorize"
    assert configuration["code_challenge_methods_supported"] == ["S256"]
    assert "authorization_code" in configuration["grant_types_supported"]


def test_a_code_is_redeemed_once_for_a_passport(client):
    code = _code(client)
    answer = _redeem(client, code)
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    userinfo = client.get(
        "/dev-idp/userinfo", headers={"Authorization": f"Bearer {token}"}
    )
    assert userinfo.json()["sub"] == "researcher@demo.genomenode"
    again = _redeem(client, code)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "changes",
    [
        {"verifier": "w" * 50},
        {"client_id": "someone-else"},
        {"redirect_uri": "https://evil.example/callback"},
    ],
)
def test_a_code_needs_its_verifier_client_and_redirect(client, changes):
    code = _code(client)
    verifier = changes.pop("verifier", VERIFIER)
    answer = _redeem(client, code, verifier, **changes)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "changes",
    [
        {"code_challenge": ""},
        {"code_challenge_method": "plain"},
        {"response_type": "token"},
        {"redirect_uri": "javascript:alert(1)"},
        {"client_id": ""},
    ],
)
def test_bad_authorization_requests_are_refused_without_redirect(client, changes):
    answer = client.get(
        "/dev-idp/authorize", params=_parameters(**changes), follow_redirects=False
    )
    assert answer.status_code == 400


def test_declining_sends_the_error_back(client):
    answer = client.post(
        "/dev-idp/authorize",
        data={**_parameters(), "action": "deny"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert re.search(r"[?&]error=access_denied", answer.headers["location"])
