"""Relay keys: the node's secret and derivation, the wrap to the network's
agreement key, the hostile table of MACed assertions, and that a key-agreement
key never verifies a signature.

Keys are real: EC P-256 in temporary directories, the node's relay secret in its
file; the node's key cache reads the networks' JWKS from their signers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import stat
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from genomenode.access import jws
from genomenode.access.network_trust import (
    ASSERTION_TYPE,
    NetworkSigner,
    NetworkVerifier,
)
from genomenode.access.relay_keys import (
    RELAY_KID_PREFIX,
    RelayKey,
    RelaySecret,
    derive_relay_key,
    new_relay_kid,
    relay_kid_expiry,
    unwrap_relay_key,
    wrap_relay_key,
)
from genomenode.access.tokens import JwksCache, TrustedIssuer
from genomenode.errors import ConfigError, TokenError

from .test_network_trust import (
    BODY,
    NETWORK,
    NETWORK_JWKS,
    NODE_URL,
    PATH,
    _verify,
    assertion_claims,
)

OTHER = "https://other-network.example.org"
OTHER_JWKS = f"{OTHER}/.well-known/jwks.json"
LIFETIME = 3600


@pytest.fixture
def signer(tmp_path) -> NetworkSigner:
    return NetworkSigner(tmp_path / "network-keys", NETWORK)


@pytest.fixture
def other(tmp_path) -> NetworkSigner:
    return NetworkSigner(tmp_path / "other-keys", OTHER)


@pytest.fixture
def secret(tmp_path) -> RelaySecret:
    # Looked at on every use, so that a test may replace it and go on.
    return RelaySecret(tmp_path / "node" / "keys" / "relay.key", check_seconds=0)


def _keys(signer: NetworkSigner, other: NetworkSigner) -> JwksCache:
    documents = {NETWORK_JWKS: signer.jwks, OTHER_JWKS: other.jwks}
    return JwksCache(lambda url: documents[url]() if url in documents else None)


@pytest.fixture
def verifier(signer, other, secret) -> NetworkVerifier:
    return NetworkVerifier(
        [TrustedIssuer(NETWORK, NETWORK_JWKS), TrustedIssuer(OTHER, OTHER_JWKS)],
        _keys(signer, other),
        relay_secret=secret,
        relay_key_seconds=LIFETIME,
    )


@pytest.fixture
def relay(secret) -> RelayKey:
    kid, value = secret.issue(NETWORK, lifetime_seconds=LIFETIME)
    return RelayKey(kid, value, LIFETIME)


def _default(signer: NetworkSigner, relay_key: RelayKey | None = None) -> str:
    """The network's assertion for the default request: MACed under
    ``relay_key``, else signed."""
    return signer.assertion(
        audience=NODE_URL,
        method="POST",
        path_and_query=PATH,
        body=BODY,
        relay_key=relay_key,
    )


def _encode(document: dict) -> str:
    return jwt.utils.base64url_encode(json.dumps(document).encode()).decode()


def _maced(key: bytes | None, *, header: dict | None = None, **changes) -> str:
    """An assertion for the default request, MACed with ``key`` (None: no MAC),
    with claims changed (None: left out) and header fields changed."""
    signing_input = f"{_encode(header or {})}.{_encode(assertion_claims(**changes))}"
    if key is None:
        return signing_input + "."
    mac = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{jwt.utils.base64url_encode(mac).decode()}"


def _header(relay_kid: str, **changes) -> dict:
    header = {
        "alg": "HS256",
        "typ": ASSERTION_TYPE,
        "kid": RELAY_KID_PREFIX + relay_kid,
    }
    header.update(changes)
    return {name: value for name, value in header.items() if value is not None}


def _relayed(signer: NetworkSigner, relay: RelayKey) -> str:
    """The default request's assertion, MACed with ``relay``."""
    return _default(signer, relay)


# --- the secret and the derivation ----------------------------------------------


def test_the_secret_is_made_once_private_and_derives_the_documented_key(
    secret, tmp_path
):
    kid, value = secret.issue(NETWORK, lifetime_seconds=LIFETIME)
    assert secret.path.exists()
    assert stat.S_IMODE(secret.path.stat().st_mode) == 0o600
    raw = secret.path.read_bytes()
    assert len(raw) == 32
    message = b"genomenode relay key\0" + NETWORK.encode() + b"\0" + kid.encode()
    assert value == hmac.new(raw, message, hashlib.sha256).digest()
    assert value == derive_relay_key(raw, NETWORK, kid)
    # Another process (another RelaySecret on the same file) derives the same.
    assert RelaySecret(secret.path).key(NETWORK, kid) == value
    assert secret.key(OTHER, kid) != value
    expiry = relay_kid_expiry(kid)
    assert expiry is not None and abs(expiry - (time.time() + LIFETIME)) < 5
    assert "value" not in repr(RelayKey(kid, value, LIFETIME))
    assert value.hex() not in repr(RelayKey(kid, value, LIFETIME))


def test_replacing_the_secret_changes_every_key(secret):
    kid, value = secret.issue(NETWORK, lifetime_seconds=LIFETIME)
    secret.path.unlink()
    assert secret.key(NETWORK, kid) != value  # a new secret was made
    assert secret.path.exists()
    secret.path.write_bytes(b"short")
    with pytest.raises(ConfigError, match="must be 32 bytes"):
        secret.key(NETWORK, kid)
    with pytest.raises(ConfigError, match="must be 32 bytes"):
        secret.key(NETWORK, kid)  # never the old secret again


def test_the_file_is_looked_at_again_after_check_seconds(tmp_path):
    moment = [100.0]
    path = tmp_path / "relay.key"
    secret = RelaySecret(path, check_seconds=1.0, clock=lambda: moment[0])
    kid = new_relay_kid(4_000_000_000)
    before = secret.key(NETWORK, kid)
    path.unlink()
    moment[0] = 100.5
    assert secret.key(NETWORK, kid) == before  # within check_seconds
    moment[0] = 101.5
    assert secret.key(NETWORK, kid) != before  # a new secret


@pytest.mark.parametrize(
    "kid",
    [
        "",
        "abc",
        "0123.0123456789abcdef",
        "1e9.0123456789abcdef",
        "1700000000.0123456789ABCDEF",
        "1700000000.0123456789abcde",
        "1700000000.0123456789abcdef0",
        "1700000000.0123456789abcdef\n",
        "-1700000000.0123456789abcdef",
        "123456789012.0123456789abcdef",
        None,
        17,
    ],
)
def test_malformed_kids_name_no_expiry(kid):
    assert relay_kid_expiry(kid) is None


def test_a_new_kid_names_its_expiry():
    assert relay_kid_expiry(new_relay_kid(1_700_000_000)) == 1_700_000_000


# --- the wrap -----------------------------------------------------------------


def test_the_wrapped_key_opens_only_with_the_networks_agreement_key(
    signer, other, secret
):
    kid, value = secret.issue(NETWORK, lifetime_seconds=LIFETIME)
    wrapped = wrap_relay_key(
        value,
        kid=kid,
        lifetime_seconds=LIFETIME,
        issuer=NETWORK,
        audience=NODE_URL,
        agreement=signer.agreement.private_key().public_key(),
        agreement_kid=signer.agreement.kid,
    )
    assert value.hex() not in json.dumps(wrapped)
    assert base64.urlsafe_b64encode(value).decode()[:20] not in json.dumps(wrapped)
    opened = signer.open_relay_key(wrapped, audience=NODE_URL)
    assert (opened.kid, opened.value, opened.lifetime_seconds) == (kid, value, LIFETIME)
    with pytest.raises(ValueError, match="does not open"):
        other.open_relay_key(wrapped, audience=NODE_URL)  # another agreement key
    with pytest.raises(ValueError, match="does not open"):
        signer.open_relay_key(wrapped, audience="https://se.example.org")
    with pytest.raises(ValueError, match="does not open"):
        unwrap_relay_key(
            wrapped,
            issuer=OTHER,
            audience=NODE_URL,
            agreement=signer.agreement.private_key(),
        )
    # The kid is bound: another kid with the same ciphertext does not open.
    other_kid = new_relay_kid(relay_kid_expiry(kid) or 0)
    with pytest.raises(ValueError, match="does not open"):
        signer.open_relay_key({**wrapped, "kid": other_kid}, audience=NODE_URL)
    sealed = bytearray(base64.urlsafe_b64decode(wrapped["ciphertext"] + "=="))
    sealed[0] ^= 1
    altered = base64.urlsafe_b64encode(bytes(sealed)).rstrip(b"=").decode()
    with pytest.raises(ValueError, match="does not open"):
        signer.open_relay_key({**wrapped, "ciphertext": altered}, audience=NODE_URL)
    for broken, reason in [
        ({**wrapped, "kid": "nope"}, "relay key id"),
        ({**wrapped, "expires_in": "3600"}, "expires_in"),
        ({**wrapped, "expires_in": 10**9}, "expires_in"),
        (
            {**wrapped, "epk": {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}},
            "epk",
        ),
        ({**wrapped, "iv": "!!"}, "iv"),
        ({**wrapped, "alg": "dir"}, "alg"),
        ([], "not a JSON object"),
    ]:
        with pytest.raises(ValueError, match=reason):
            signer.open_relay_key(broken, audience=NODE_URL)


def test_the_agreement_key_is_published_apart_and_never_verifies(signer, other):
    document = signer.jwks()
    agreement = [key for key in document["keys"] if key.get("use") == "enc"]
    assert len(agreement) == 1
    assert agreement[0]["alg"] == "ECDH-ES"
    assert agreement[0]["kid"] == signer.agreement.kid
    assert "d" not in agreement[0]
    signing = [key for key in document["keys"] if key.get("use") == "sig"]
    assert signing and all(key["kid"] != signer.agreement.kid for key in signing)
    # The same file gives the same kid in another process.
    assert NetworkSigner(signer.keys.directory, NETWORK).agreement.kid == (
        signer.agreement.kid
    )
    mode = (signer.keys.directory / "agreement.key").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600
    keys = _keys(signer, other)
    assert keys.agreement_key(NETWORK_JWKS, signer.agreement.kid) is not None
    signing_kid = signing[0]["kid"]
    assert keys.agreement_key(NETWORK_JWKS, signing_kid) is None
    # A token signed with the agreement key, naming its kid: never a signing key.
    claims = {"iss": NETWORK, "sub": "x", "iat": 1, "exp": 4_000_000_000}
    forged = jwt.encode(
        claims,
        signer.agreement.private_key(),
        algorithm="ES256",
        headers={"kid": signer.agreement.kid},
    )
    with pytest.raises(TokenError, match="unknown key id"):
        jws.verify(forged, issuer=NETWORK, jku=NETWORK_JWKS, keys=keys.key, now=2)


def test_an_enc_key_without_alg_never_verifies_a_signature(signer):
    """PyJWT would take an EC JWK without ``alg`` for an ES256 key: ``use: enc``
    must keep it out, in the key cache and in the verifier itself."""
    private = signer.agreement.private_key()
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
    enc = {**public, "kid": "enc-1", "use": "enc"}
    claims = {"iss": NETWORK, "sub": "x", "iat": 1, "exp": 4_000_000_000}
    token = jwt.encode(claims, private, algorithm="ES256", headers={"kid": "enc-1"})
    keys = JwksCache(lambda url: {"keys": [enc]})
    with pytest.raises(TokenError, match="unknown key id"):
        jws.verify(token, issuer=NETWORK, jku=NETWORK_JWKS, keys=keys.key, now=2)
    assert keys.agreement_key(NETWORK_JWKS, "enc-1") is not None

    def lookup(jku: str, kid: str | None) -> jwt.PyJWK:
        return jwt.PyJWK(enc)  # a lookup that would hand it over anyway

    with pytest.raises(TokenError, match="not a signing key"):
        jws.verify(token, issuer=NETWORK, jku=NETWORK_JWKS, keys=lookup, now=2)
    # The same key published for signing verifies: the refusal is the "use".
    assert jws.verify(
        token,
        issuer=NETWORK,
        jku=NETWORK_JWKS,
        keys=lambda jku, kid: jwt.PyJWK({**public, "kid": "enc-1", "use": "sig"}),
        now=2,
    )


# --- MACed assertions ---------------------------------------------------------


def test_a_maced_assertion_verifies_and_signs_nothing(
    signer, verifier, relay, monkeypatch
):
    def no_signature(*args, **kwargs):
        raise AssertionError("an ES256 signature was made")

    monkeypatch.setattr(jws, "sign_es256", no_signature)
    assertion = signer.assertion(
        audience=NODE_URL,
        method="POST",
        path_and_query=PATH,
        body=BODY,
        client="ip:192.0.2.1",
        relay_key=relay,
    )
    header = jwt.get_unverified_header(assertion)
    assert header == {
        "alg": "HS256",
        "kid": RELAY_KID_PREFIX + relay.kid,
        "typ": ASSERTION_TYPE,
    }
    caller = _verify(verifier, assertion)
    assert caller is not None
    assert (caller.network, caller.relay_kid, caller.client, caller.audience) == (
        NETWORK,
        relay.kid,
        "ip:192.0.2.1",
        NODE_URL,
    )


def _hostile_cases():
    """(name, build(relay, secret, signer) -> (assertion, request changes), reason)."""
    now = int(time.time())

    def default(relay, secret, signer, **changes):
        return _maced(relay.value, header=_header(relay.kid), **changes)

    def with_kid(kid_expiry: int):
        def build(relay, secret, signer):
            kid = new_relay_kid(kid_expiry)
            return _maced(secret.key(NETWORK, kid), header=_header(kid)), {}

        return build

    def tampered(relay, secret, signer):
        genuine = default(relay, secret, signer)
        head, payload, mac = genuine.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
        return f"{head}.{_encode({**claims, 'htm': 'GET'})}.{mac}", {"method": "GET"}

    def public_key_as_secret(relay, secret, signer):
        pem = (
            signer.keys.active()[1]
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM,
                serialization.PublicFormat.SubjectPublicKeyInfo,
            )
        )
        return _maced(pem, header=_header(relay.kid)), {}

    def es256_kid(relay, secret, signer):
        kid = signer.keys.active()[0]
        return _maced(relay.value, header=_header(relay.kid, kid=kid)), {}

    return [
        (
            "wrong key",
            lambda r, s, n: (_maced(os.urandom(32), header=_header(r.kid)), {}),
            "MAC does not verify",
        ),
        ("tampered claims", tampered, "MAC does not verify"),
        (
            "another trusted network's iss with this kid",
            lambda r, s, n: (default(r, s, n, iss=OTHER), {}),
            f"network assertion of {OTHER} has a bad signature",
        ),
        ("expired relay key", with_kid(now - 5), "relay key that has expired"),
        (
            "kid expiry beyond the allowed lifetime",
            with_kid(now + 2 * LIFETIME),
            "later than network_relay_key_seconds",
        ),
        (
            "malformed kid",
            lambda r, s, n: (
                _maced(r.value, header=_header("0" + r.kid)),
                {},
            ),
            "malformed relay key id",
        ),
        (
            "kid with a trailing character",
            lambda r, s, n: (_maced(r.value, header=_header(r.kid + "0")), {}),
            "malformed relay key id",
        ),
        (
            "other aud",
            lambda r, s, n: (default(r, s, n, aud="https://se.example.org"), {}),
            "another audience",
        ),
        (
            "sent to another node",
            lambda r, s, n: (default(r, s, n), {"audience": "https://se.example.org"}),
            "another audience",
        ),
        (
            "other method",
            lambda r, s, n: (default(r, s, n), {"method": "GET"}),
            "method",
        ),
        (
            "other path",
            lambda r, s, n: (default(r, s, n), {"path_and_query": "/api/individuals"}),
            "another path",
        ),
        (
            "other query",
            lambda r, s, n: (
                default(r, s, n),
                {"path_and_query": "/api/g_variants?referenceName=2&start=999"},
            ),
            "another path or query",
        ),
        (
            "other body",
            lambda r, s, n: (default(r, s, n), {"body": b'{"query": {"x": 1}}'}),
            "another request body",
        ),
        ("no bdh", lambda r, s, n: (default(r, s, n, bdh=None), {}), "no bdh"),
        ("no jti", lambda r, s, n: (default(r, s, n, jti=None), {}), "lacks the jti"),
        (
            "expired assertion",
            lambda r, s, n: (default(r, s, n, iat=now - 600, exp=now - 540), {}),
            "has expired",
        ),
        (
            "valid too long",
            lambda r, s, n: (default(r, s, n, exp=now + 3600), {}),
            "longer than 300 seconds",
        ),
        (
            "alg none with a relay kid",
            lambda r, s, n: (_maced(None, header=_header(r.kid, alg="none")), {}),
            "algorithm 'none'",
        ),
        (
            "HS256 without a relay: kid (the bare kid)",
            lambda r, s, n: (
                _maced(r.value, header=_header(r.kid, kid=r.kid)),
                {},
            ),
            "algorithm 'HS256'",
        ),
        (
            "HS256 with the network's signing kid",
            es256_kid,
            "algorithm 'HS256'",
        ),
        (
            "HS256 with the network's public key as secret",
            public_key_as_secret,
            "MAC does not verify",
        ),
        (
            "another typ",
            lambda r, s, n: (_maced(r.value, header=_header(r.kid, typ="JWT")), {}),
            "typ must be",
        ),
        (
            "crit",
            lambda r, s, n: (
                _maced(r.value, header=_header(r.kid, crit=["exp"])),
                {},
            ),
            "critical header",
        ),
        (
            "a MAC that is not base64url",
            lambda r, s, n: (default(r, s, n)[:-2] + "!!", {}),
            "not base64url",
        ),
    ]


@pytest.mark.parametrize(
    ("build", "reason"),
    [pytest.param(build, reason, id=name) for name, build, reason in _hostile_cases()],
)
def test_a_hostile_maced_assertion_is_refused(
    signer, verifier, secret, relay, build, reason
):
    assertion, changes = build(relay, secret, signer)
    with pytest.raises(TokenError, match=reason) as refused:
        _verify(verifier, assertion, **changes)
    assert refused.value.status == 401
    # No message holds the key or the assertion.
    assert relay.value.hex() not in str(refused.value)
    assert assertion[-30:] not in str(refused.value)


def test_an_untrusted_iss_with_a_relay_kid_is_not_a_network(verifier, relay):
    assertion = _maced(
        relay.value, header=_header(relay.kid), iss="https://evil.example.org"
    )
    assert _verify(verifier, assertion) is None


def test_a_replayed_maced_assertion_is_refused(signer, verifier, relay):
    assertion = _default(signer, relay)
    assert _verify(verifier, assertion) is not None
    with pytest.raises(TokenError, match="used already"):
        _verify(verifier, assertion)


def test_a_replaced_secret_refuses_the_keys_issued_before(signer, verifier, relay):
    verifier.relay_secret.path.unlink()
    assertion = _default(signer, relay)
    with pytest.raises(TokenError, match="MAC does not verify"):
        _verify(verifier, assertion)


def test_relay_keys_off_refuses_every_maced_assertion(signer, other, secret, relay):
    verifier = NetworkVerifier(
        [TrustedIssuer(NETWORK, NETWORK_JWKS)],
        _keys(signer, other),
        relay_secret=secret,
        relay_key_seconds=0,
    )
    assertion = _default(signer, relay)
    with pytest.raises(TokenError, match="network_relay_key_seconds is 0"):
        _verify(verifier, assertion)


def test_a_maced_assertion_never_obtains_a_relay_key(signer, verifier, relay):
    assertion = _default(signer, relay)
    with pytest.raises(TokenError, match=r"only a signed \(ES256\)"):
        _verify(verifier, assertion, accept_relay_keys=False)
    signed = _default(signer)
    assert _verify(verifier, signed, accept_relay_keys=False) is not None


def test_jws_verify_still_refuses_hs256(signer, other, relay):
    """Even a genuine relay-key assertion: only the network verifier's relay path,
    which derives the key itself, reads HS256."""
    assertion = _default(signer, relay)
    with pytest.raises(TokenError, match="algorithm 'HS256'"):
        jws.verify(
            assertion,
            issuer=NETWORK,
            jku=NETWORK_JWKS,
            keys=_keys(signer, other).key,
            now=time.time(),
            required=(),
            token_type=ASSERTION_TYPE,
        )


def test_preparing_a_maced_assertion_fetches_no_keys(signer, other, secret, relay):
    import asyncio

    fetched: list[str] = []

    class Remote:
        async def get(self, url, *, bearer=None):
            fetched.append(url)
            return signer.jwks()

    verifier = NetworkVerifier(
        [TrustedIssuer(NETWORK, NETWORK_JWKS)],
        JwksCache(remote=Remote()),
        relay_secret=secret,
        relay_key_seconds=LIFETIME,
    )
    maced = _default(signer, relay)
    asyncio.run(verifier.prepare(maced))
    assert fetched == []
    assert _verify(verifier, maced) is not None
    signed = _default(signer)
    asyncio.run(verifier.prepare(signed))
    assert fetched == [NETWORK_JWKS]
