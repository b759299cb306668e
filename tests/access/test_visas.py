"""Visas the node signs: they verify, survive a key rotation, and nothing else does."""

from __future__ import annotations

import datetime as dt
import json
import stat
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from genomenode.access.tokens import JwksCache, TokenVerifier, TrustedIssuer
from genomenode.access.visas import GrantVisa, SigningKeys, issue_grant_visa

NODE = TrustedIssuer(
    "https://fi.node.example", "https://fi.node.example/.well-known/jwks.json"
)
BROKER = TrustedIssuer("https://broker.example", "https://broker.example/jwks")


@pytest.fixture
def broker_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def keys(tmp_path) -> SigningKeys:
    return SigningKeys(tmp_path / "keys" / "visas")


def _verifier(keys: SigningKeys, broker_key) -> TokenVerifier:
    def fetch(url: str) -> dict:
        if url == NODE.jku:
            return keys.jwks()
        jwk = json.loads(RSAAlgorithm.to_jwk(broker_key.public_key()))
        return {"keys": [{**jwk, "kid": "b"}]}

    # No caching between calls here: each verify sees the node's current keys.
    return TokenVerifier(
        [BROKER], [NODE], JwksCache(fetch, ttl_seconds=0, min_refresh_seconds=0)
    )


def _passport(broker_key, visas) -> str:
    now = int(time.time())
    claims = {
        "iss": BROKER.issuer,
        "sub": "alice",
        "iat": now,
        "exp": now + 600,
        "ga4gh_passport_v1": list(visas),
    }
    return jwt.encode(
        claims, broker_key, algorithm="RS256", headers={"kid": "b", "jku": BROKER.jku}
    )


def _grant(
    days: float = 30, dataset: str = "https://fi.node.example/datasets/d1"
) -> GrantVisa:
    now = dt.datetime.now(dt.UTC)
    return GrantVisa(
        subject="alice",
        dataset=dataset,
        source="https://fi.node.example/access",
        asserted=now,
        expires=now + dt.timedelta(days=days),
    )


def test_an_issued_visa_verifies_inside_a_passport(keys, broker_key):
    visa = issue_grant_visa(keys, _grant(), issuer=NODE.issuer, jku=NODE.jku)
    identity = _verifier(keys, broker_key).verify(_passport(broker_key, [visa]))
    (grant,) = identity.visas_of("ControlledAccessGrants")
    assert grant.value == "https://fi.node.example/datasets/d1"
    assert grant.by == "dac" and grant.issuer == NODE.issuer


def test_keys_are_private_files(keys):
    keys.active()
    (path,) = keys.directory.glob("*.pem")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert all("d" not in key for key in keys.jwks()["keys"])  # no private parts


def test_rotation_keeps_old_visas_valid_and_signs_with_the_new_key(keys, broker_key):
    old = issue_grant_visa(keys, _grant(), issuer=NODE.issuer, jku=NODE.jku)
    new_kid = keys.rotate()
    new = issue_grant_visa(keys, _grant(), issuer=NODE.issuer, jku=NODE.jku)
    assert jwt.get_unverified_header(new)["kid"] == new_kid
    assert jwt.get_unverified_header(old)["kid"] != new_kid
    identity = _verifier(keys, broker_key).verify(_passport(broker_key, [old, new]))
    assert len(identity.visas) == 2 and identity.rejected_visas == ()


def test_a_rotation_by_another_process_signs_at_once(keys):
    """The listing of keys is kept between uses, never past a change."""
    first_kid, _ = keys.active()
    elsewhere = SigningKeys(keys.directory)  # as the CLI's rotate-key would
    new_kid = elsewhere.rotate()
    assert keys.active()[0] == new_kid != first_kid
    (keys.directory / f"{new_kid}.pem").unlink()
    assert keys.active()[0] == first_kid


def test_a_retired_key_stops_its_visas(keys, broker_key):
    old = issue_grant_visa(keys, _grant(), issuer=NODE.issuer, jku=NODE.jku)
    old_kid = jwt.get_unverified_header(old)["kid"]
    keys.rotate()
    (keys.directory / f"{old_kid}.pem").unlink()
    identity = _verifier(keys, broker_key).verify(_passport(broker_key, [old]))
    assert identity.visas == ()
    assert "unknown key id" in identity.rejected_visas[0]


def test_an_expired_grant_does_not_verify(keys, broker_key):
    visa = issue_grant_visa(keys, _grant(days=-1), issuer=NODE.issuer, jku=NODE.jku)
    identity = _verifier(keys, broker_key).verify(_passport(broker_key, [visa]))
    assert identity.visas == () and "expired" in identity.rejected_visas[0]
