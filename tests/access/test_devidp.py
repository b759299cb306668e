"""The development identity provider: its passports verify, its endpoints behave."""

from __future__ import annotations

import datetime as dt
import time

import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from genomenode.access import devidp_http
from genomenode.access.devidp import (
    DEMO_IDENTITIES,
    REGISTERED_ACCESS,
    DevIdentityProvider,
)
from genomenode.access.tokens import JwksCache, TokenVerifier, TrustedIssuer
from genomenode.access.visas import GrantVisa, SigningKeys, issue_grant_visa
from genomenode.errors import TokenError

ISSUER = "https://node.example/dev-idp"
RESEARCHER = "researcher@demo.genomenode"
NODE = TrustedIssuer("https://node.example", "https://node.example/jwks")


@pytest.fixture
def provider(tmp_path) -> DevIdentityProvider:
    return DevIdentityProvider(tmp_path / "dev-idp", ISSUER)


@pytest.fixture
def node_keys(tmp_path) -> SigningKeys:
    return SigningKeys(tmp_path / "node-visas")


def _verifier(provider, node_keys=None, **options) -> TokenVerifier:
    def fetch(url: str) -> dict:
        if url == provider.jku:
            return provider.jwks()
        if node_keys is not None and url == NODE.jku:
            return node_keys.jwks()
        raise KeyError(url)

    trusted = provider.trusted()
    return TokenVerifier([trusted], [trusted, NODE], JwksCache(fetch), **options)


def test_the_urls_derive_from_the_issuer(tmp_path):
    provider = DevIdentityProvider(tmp_path, ISSUER + "/")
    assert provider.issuer == ISSUER
    assert provider.jku == ISSUER + "/.well-known/jwks.json"
    assert provider.userinfo_url == ISSUER + "/userinfo"
    assert provider.trusted() == TrustedIssuer(
        ISSUER, provider.jku, provider.userinfo_url
    )
    (key,) = provider.jwks()["keys"]
    assert (key["kty"], key["crv"], key["alg"]) == ("EC", "P-256", "ES256")


def test_a_passport_verifies_with_both_registered_access_visas(provider):
    token = provider.passport(RESEARCHER)
    header = jwt.get_unverified_header(token)
    assert (header["alg"], header["typ"]) == ("ES256", "JWT")
    assert header["jku"] == provider.jku
    assert header["kid"] == provider.jwks()["keys"][0]["kid"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["scope"] == "openid ga4gh_passport_v1"
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["jti"]

    identity = _verifier(provider).verify(token)
    assert identity is not None
    assert identity.subject == RESEARCHER
    assert identity.rejected_visas == ()
    (status,) = identity.visas_of("ResearcherStatus")
    (terms,) = identity.visas_of("AcceptedTermsAndPolicies")
    assert (status.value, status.by, status.source) == (REGISTERED_ACCESS, "so", ISSUER)
    assert (terms.value, terms.by, terms.source) == (REGISTERED_ACCESS, "self", ISSUER)


def test_a_passport_carries_extra_visas_signed_by_the_node(provider, node_keys):
    now = dt.datetime.now(dt.UTC)
    grant = issue_grant_visa(
        node_keys,
        GrantVisa(
            subject=RESEARCHER,
            dataset="d1",
            source="https://node.example/dac",
            asserted=now,
            expires=now + dt.timedelta(days=1),
        ),
        issuer=NODE.issuer,
        jku=NODE.jku,
    )
    token = provider.passport(
        RESEARCHER, visa_types=["ResearcherStatus"], extra_visas=[grant]
    )
    identity = _verifier(provider, node_keys).verify(token)
    assert identity is not None
    assert [visa.type for visa in identity.visas] == [
        "ResearcherStatus",
        "ControlledAccessGrants",
    ]
    assert identity.visas_of("ControlledAccessGrants")[0].value == "d1"


def test_without_embedded_visas_they_come_from_userinfo(provider):
    calls = []

    def fetch(url: str, token: str) -> dict:
        assert url == provider.userinfo_url
        calls.append(url)
        return provider.userinfo(token)

    token = provider.passport(RESEARCHER, embed_visas=False)
    assert "ga4gh_passport_v1" not in jwt.decode(
        token, options={"verify_signature": False}
    )
    identity = _verifier(provider, userinfo_fetch=fetch).verify(token)
    assert identity is not None
    assert identity.subject == RESEARCHER
    assert {visa.type for visa in identity.visas} == {
        "ResearcherStatus",
        "AcceptedTermsAndPolicies",
    }
    assert len(calls) == 1


def test_userinfo_returns_the_visa_types_the_token_was_issued_with(provider):
    token = provider.passport(
        RESEARCHER, visa_types=["AcceptedTermsAndPolicies"], embed_visas=False
    )
    document = provider.userinfo(token)
    assert document["sub"] == RESEARCHER
    (visa,) = document["ga4gh_passport_v1"]
    claims = jwt.decode(visa, options={"verify_signature": False})
    token_claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["ga4gh_visa_v1"]["type"] == "AcceptedTermsAndPolicies"
    assert claims["ga4gh_visa_v1"]["asserted"] == token_claims["iat"]
    assert claims["exp"] == token_claims["exp"]


def test_userinfo_refuses_what_is_not_its_live_access_token(
    provider, tmp_path, monkeypatch
):
    other = DevIdentityProvider(tmp_path / "other", ISSUER)
    visa = jwt.decode(
        provider.passport(RESEARCHER), options={"verify_signature": False}
    )["ga4gh_passport_v1"][0]
    with monkeypatch.context() as patch:
        patch.setattr(time, "time", lambda: dt.datetime.now().timestamp() - 7200)
        expired = provider.passport(RESEARCHER, lifetime_seconds=60)
    refused = {
        "garbage": ("not a token", "well-formed"),
        "other keys": (other.passport(RESEARCHER), "not signed by this"),
        "a visa": (visa, "not an access token"),
        "expired": (expired, "has expired"),
    }
    for token, reason in refused.values():
        with pytest.raises(TokenError, match=reason):
            provider.userinfo(token)


def test_a_token_of_another_provider_instance_is_refused(provider, tmp_path):
    other = DevIdentityProvider(tmp_path / "other", ISSUER)
    with pytest.raises(TokenError, match="unknown key id"):
        _verifier(provider).verify(other.passport(RESEARCHER))


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"visa_types": ["ControlledAccessGrants"]}, "unknown visa types"),
        ({"lifetime_seconds": 0}, "lifetime"),
        ({"lifetime_seconds": 86_401}, "lifetime"),
        ({"extra_visas": ["x.y.z"], "embed_visas": False}, "embed_visas"),
    ],
)
def test_passport_refuses_bad_options(provider, options, reason):
    with pytest.raises(ValueError, match=reason):
        provider.passport(RESEARCHER, **options)


# The HTTP endpoints, mounted as the node mounts them.


@pytest.fixture
def client(provider) -> TestClient:
    app = FastAPI()
    app.state.dev_identity_provider = provider
    app.include_router(devidp_http.router, prefix="/dev-idp")
    return TestClient(app)


def test_the_index_lists_the_demo_identities(client):
    response = client.get("/dev-idp/")
    assert response.status_code == 200
    body = response.json()
    assert [entry["subject"] for entry in body["identities"]] == list(DEMO_IDENTITIES)
    assert "curl" in body["get_a_token"]
    assert ISSUER + "/token" in body["get_a_token"]
    assert "demos and tests only" in body["description"]


def test_jwks_and_openid_configuration(client, provider):
    assert client.get("/dev-idp/.well-known/jwks.json").json() == provider.jwks()
    configuration = client.get("/dev-idp/.well-known/openid-configuration").json()
    assert configuration["issuer"] == ISSUER
    assert configuration["jwks_uri"] == provider.jku
    assert configuration["token_endpoint"] == ISSUER + "/token"
    assert configuration["userinfo_endpoint"] == provider.userinfo_url


def test_token_from_a_json_body(client, provider):
    response = client.post(
        "/dev-idp/token", json={"subject": RESEARCHER, "lifetime": 600}
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 600)
    identity = _verifier(provider).verify(body["access_token"])
    assert identity is not None
    assert identity.subject == RESEARCHER
    assert len(identity.visas) == 2


def test_token_from_a_form_then_userinfo(client, provider):
    response = client.post(
        "/dev-idp/token",
        data={
            "subject": "visitor@demo.genomenode",
            "visas": ["ResearcherStatus"],
            "embed_visas": "false",
        },
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert "ga4gh_passport_v1" not in claims
    answer = client.get(
        "/dev-idp/userinfo", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 200
    assert answer.json()["sub"] == "visitor@demo.genomenode"
    assert len(answer.json()["ga4gh_passport_v1"]) == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"subject": ""},
        {"subject": "has space"},
        {"subject": "semi;colon"},
        {"subject": "x" * 201},
        {"subject": 42},
        {"subject": RESEARCHER, "visas": ["ControlledAccessGrants"]},
        {"subject": RESEARCHER, "visas": "ResearcherStatus"},
        {"subject": RESEARCHER, "lifetime": 86_401},
        {"subject": RESEARCHER, "lifetime": True},
        {"subject": RESEARCHER, "embed_visas": "yes"},
    ],
    ids=[
        "no-subject",
        "empty-subject",
        "space",
        "semicolon",
        "too-long",
        "not-a-string",
        "unknown-visa-type",
        "visas-not-a-list",
        "lifetime-too-long",
        "lifetime-boolean",
        "embed-not-boolean",
    ],
)
def test_token_refuses_bad_requests(client, body):
    response = client.post("/dev-idp/token", json=body)
    assert response.status_code == 400
    assert response.json()["detail"]


def test_token_refuses_bad_bodies(client):
    not_json = client.post(
        "/dev-idp/token",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert not_json.status_code == 400
    unknown_type = client.post(
        "/dev-idp/token", data={"subject": RESEARCHER, "visas": "Unknown"}
    )
    assert unknown_type.status_code == 400
    assert "unknown visa types" in unknown_type.json()["detail"]
    bad_lifetime = client.post(
        "/dev-idp/token", data={"subject": RESEARCHER, "lifetime": "soon"}
    )
    assert bad_lifetime.status_code == 400


def test_userinfo_needs_a_good_bearer_token(client, provider, tmp_path):
    assert client.get("/dev-idp/userinfo").status_code == 401
    basic = client.get("/dev-idp/userinfo", headers={"Authorization": "Basic abc"})
    assert basic.status_code == 401
    other = DevIdentityProvider(tmp_path / "other", ISSUER).passport(RESEARCHER)
    refused = client.get(
        "/dev-idp/userinfo", headers={"Authorization": f"Bearer {other}"}
    )
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert other not in refused.text
