"""Network assertions: what a trusted network signs, what a node accepts, and the
node's HTTP hook (audit of the relaying network, 401s, ``require_network_assertion``).

Keys are real (EC P-256 in a temporary directory, an RSA key for key confusion);
the node's key cache reads the network's JWKS from the signer itself, never over
HTTP.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from sqlalchemy import select

from genomenode.access import authorize
from genomenode.access.network_trust import (
    ASSERTION_HEADER,
    ASSERTION_TYPE,
    NetworkCaller,
    NetworkSigner,
    NetworkVerifier,
    body_digest,
)
from genomenode.access.tokens import JwksCache, TrustedIssuer
from genomenode.app import create_app
from genomenode.config import NodeConfig, load_config
from genomenode.errors import ConfigError, TokenError
from genomenode.ingest.pipeline import ingest
from genomenode.store.models import AuditEntry
from genomenode.store.node import Node, init_node, open_node

from ..conftest import in_process_workers, write_dataset_yaml, write_small_cohort

NETWORK = "https://network.example.org"
NETWORK_JWKS = f"{NETWORK}/.well-known/jwks.json"
NODE_URL = "https://fi.example.org"
PATH = "/api/g_variants?referenceName=1&start=999"
BODY = b'{"query": {}}'


@pytest.fixture
def signer(tmp_path) -> NetworkSigner:
    return NetworkSigner(tmp_path / "network-keys", NETWORK)


@pytest.fixture
def verifier(signer) -> NetworkVerifier:
    keys = JwksCache(lambda url: signer.jwks() if url == NETWORK_JWKS else {})
    return NetworkVerifier([TrustedIssuer(NETWORK, NETWORK_JWKS)], keys)


def _verify(verifier: NetworkVerifier, assertion: str, **changes):
    request = {
        "audience": NODE_URL,
        "method": "POST",
        "path_and_query": PATH,
        "body": BODY,
    }
    request.update(changes)
    return verifier.verify(assertion, **request)


def assertion_claims(**changes) -> dict:
    """The claims of an assertion for the default request, changed (None: left
    out); a fresh jti each time."""
    now = int(time.time())
    claims = {
        "iss": NETWORK,
        "aud": NODE_URL,
        "iat": now,
        "exp": now + 60,
        "jti": f"jti-{time.monotonic_ns()}",
        "htm": "POST",
        "htu": PATH,
        "bdh": body_digest(BODY),
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def _signed(signer: NetworkSigner, **changes) -> str:
    """An assertion for the default request with claims changed (None: left out)."""
    kid, key = signer.keys.active()
    headers = {"kid": kid, "typ": ASSERTION_TYPE}
    return jwt.encode(
        assertion_claims(**changes), key, algorithm="ES256", headers=headers
    )


def test_a_signed_request_verifies(signer, verifier):
    assertion = signer.assertion(
        audience=NODE_URL, method="post", path_and_query=PATH, body=BODY
    )
    network = _verify(verifier, assertion)
    assert isinstance(network, NetworkCaller)
    assert network.network == NETWORK
    assert (
        network.jti == jwt.decode(assertion, options={"verify_signature": False})["jti"]
    )
    claims = jwt.decode(assertion, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 60
    assert jwt.get_unverified_header(assertion)["alg"] == "ES256"


def test_a_get_without_body_and_any_spelling_of_the_query(signer, verifier):
    assertion = signer.assertion(
        audience="fi-node", method="GET", path_and_query="/api/info?a=x%2Cy&b=1+2"
    )
    network = _verify(
        verifier,
        assertion,
        audience=(NODE_URL, "fi-node"),
        method="GET",
        path_and_query="/api/info?a=x,y&b=1%202",
        body=b"",
    )
    assert network is not None


@pytest.mark.parametrize(
    ("claims", "request_changes", "reason"),
    [
        ({"iat": int(time.time()) - 600, "exp": int(time.time()) - 540}, {}, "expired"),
        (
            {"iat": int(time.time()) + 600, "exp": int(time.time()) + 660},
            {},
            "not valid yet",
        ),
        ({"nbf": int(time.time()) + 600}, {}, "not valid yet"),
        ({"aud": "https://se.example.org"}, {}, "another audience"),
        ({}, {"audience": "https://se.example.org"}, "another audience"),
        ({}, {"method": "GET"}, "another HTTP method"),
        ({}, {"path_and_query": "/api/individuals"}, "another path"),
        ({}, {"path_and_query": "/api/g_variants?referenceName=2&start=999"}, "query"),
        ({}, {"body": b'{"query": {"x": 1}}'}, "another request body"),
        ({"bdh": None}, {}, "no bdh"),
        ({"jti": None}, {}, "jti"),
        ({"htu": None}, {}, "htu"),
        ({"exp": int(time.time()) + 3600}, {}, "longer than"),
    ],
)
def test_a_trusted_networks_bad_assertion_is_refused(
    signer, verifier, claims, request_changes, reason
):
    with pytest.raises(TokenError, match=reason):
        _verify(verifier, _signed(signer, **claims), **request_changes)


def test_a_bad_signature_is_refused(signer, verifier, tmp_path):
    impostor = NetworkSigner(tmp_path / "impostor", NETWORK)
    signer.jwks()  # the trusted key exists; the impostor signs with its own kid
    forged = impostor.assertion(
        audience=NODE_URL, method="POST", path_and_query=PATH, body=BODY
    )
    with pytest.raises(TokenError, match="unknown key id"):
        _verify(verifier, forged)
    # The trusted kid on the impostor's signature.
    header = jwt.get_unverified_header(_signed(signer))
    _, impostor_key = impostor.keys.active()
    now = int(time.time())
    claims = {
        "iss": NETWORK,
        "aud": NODE_URL,
        "iat": now,
        "exp": now + 60,
        "jti": "forged",
        "htm": "POST",
        "htu": PATH,
        "bdh": body_digest(BODY),
    }
    forged = jwt.encode(claims, impostor_key, algorithm="ES256", headers=header)
    with pytest.raises(TokenError, match="signature does not verify"):
        _verify(verifier, forged)
    # A valid assertion with its payload edited after signing.
    genuine = _signed(signer)
    head, _payload, signature = genuine.split(".")
    edited = jwt.utils.base64url_encode(
        json.dumps(
            {**jwt.decode(genuine, options={"verify_signature": False}), "htm": "GET"}
        ).encode()
    ).decode()
    with pytest.raises(TokenError, match="signature does not verify"):
        _verify(verifier, f"{head}.{edited}.{signature}", method="GET")


def test_an_untrusted_network_is_not_mine(verifier, tmp_path):
    other = NetworkSigner(tmp_path / "other", "https://other-network.example.org")
    assertion = other.assertion(
        audience=NODE_URL, method="POST", path_and_query=PATH, body=BODY
    )
    assert _verify(verifier, assertion) is None
    assert _verify(verifier, "not a jwt") is None


def test_alg_none_and_hmac_with_the_public_key_are_refused(signer, verifier):
    claims = jwt.decode(_signed(signer), options={"verify_signature": False})
    kid = jwt.get_unverified_header(_signed(signer))["kid"]
    unsigned = jwt.encode(
        claims, None, algorithm="none", headers={"kid": kid, "typ": ASSERTION_TYPE}
    )
    with pytest.raises(TokenError, match="algorithm 'none'"):
        _verify(verifier, unsigned)
    public_pem = (
        signer.keys.active()[1]
        .public_key()
        .public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    # PyJWT refuses to HMAC-sign with a PEM key; build the token by hand.
    header = {"alg": "HS256", "kid": kid, "typ": ASSERTION_TYPE}
    encode = jwt.utils.base64url_encode
    signing_input = (
        encode(json.dumps(header).encode()) + b"." + encode(json.dumps(claims).encode())
    )
    mac = hmac.new(public_pem, signing_input, hashlib.sha256).digest()
    confused = (signing_input + b"." + encode(mac)).decode()
    with pytest.raises(TokenError, match="algorithm 'HS256'"):
        _verify(verifier, confused)


def test_rs256_with_an_ec_key_id_is_refused(signer, verifier):
    kid = jwt.get_unverified_header(_signed(signer))["kid"]
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = jwt.decode(_signed(signer), options={"verify_signature": False})
    confused = jwt.encode(
        claims, rsa_key, algorithm="RS256", headers={"kid": kid, "typ": ASSERTION_TYPE}
    )
    with pytest.raises(TokenError, match="not a key for RS256"):
        _verify(verifier, confused)


def test_another_jwt_of_the_network_is_not_an_assertion(signer, verifier):
    kid, key = signer.keys.active()
    claims = jwt.decode(_signed(signer), options={"verify_signature": False})
    visa_like = jwt.encode(
        claims, key, algorithm="ES256", headers={"kid": kid, "typ": "JWT"}
    )
    with pytest.raises(TokenError, match="typ must be"):
        _verify(verifier, visa_like)


def test_a_replayed_assertion_is_refused(signer, verifier):
    assertion = signer.assertion(
        audience=NODE_URL, method="POST", path_and_query=PATH, body=BODY
    )
    assert _verify(verifier, assertion) is not None
    with pytest.raises(TokenError, match="used already"):
        _verify(verifier, assertion)
    # A failed verification does not spend a jti.
    fresh = _signed(signer, jti="fresh")
    with pytest.raises(TokenError):
        _verify(verifier, fresh, method="GET")
    assert _verify(verifier, fresh) is not None


def test_remembered_jtis_expire_with_their_assertion(signer):
    now = time.time()
    moment = [now]
    keys = JwksCache(lambda url: signer.jwks())
    verifier = NetworkVerifier(
        [TrustedIssuer(NETWORK, NETWORK_JWKS)],
        keys,
        replay_window=2,
        clock=lambda: moment[0],
    )
    first = _signed(signer, jti="first", iat=int(now), exp=int(now) + 60)
    assert _verify(verifier, first) is not None
    assert [jti for _, jti in verifier._seen._expiry] == ["first"]
    # Past exp + leeway the assertion is refused as expired, so its jti need not
    # be remembered any longer: the next accepted assertion drops it.
    moment[0] = now + 60 + 31
    with pytest.raises(TokenError, match="has expired"):
        _verify(verifier, first)
    later = int(moment[0])
    second = _signed(signer, jti="second", iat=later, exp=later + 60)
    assert _verify(verifier, second) is not None
    assert [jti for _, jti in verifier._seen._expiry] == ["second"]


# --- over HTTP: a node that trusts the network --------------------------------

BASE = "http://testserver"
DATASET = "fi-public"
QUERY_BODY = {
    "meta": {"apiVersion": "2.0"},
    "query": {
        "requestParameters": {"referenceName": "1", "start": "999", "end": "1000"},
        "requestedGranularity": "boolean",
    },
}


@pytest.fixture(scope="module")
def http_signer(tmp_path_factory) -> NetworkSigner:
    return NetworkSigner(tmp_path_factory.mktemp("network") / "keys", NETWORK)


@pytest.fixture(scope="module")
def trusting_node(tmp_path_factory):
    root = tmp_path_factory.mktemp("network-node")
    with in_process_workers():
        write_small_cohort(root / "cohort", dataset_id=DATASET)
        description = write_dataset_yaml(
            root / "cohort", id=DATASET, security_level="PUBLIC"
        )
        node = init_node(root / "node", node_id="fi-node", country="FI")
        ingest(node, description)
    trusted = [{"issuer": NETWORK, "jku": NETWORK_JWKS}]
    config_file = node.config.node_dir / "genomenode.yaml"
    config_file.write_text(
        config_file.read_text() + f"trusted_networks: {json.dumps(trusted)}\n"
    )
    node.close()
    reopened = open_node(root / "node")
    yield reopened
    reopened.close()


@pytest.fixture
def network_keys(monkeypatch, http_signer):
    """The node fetches the network's JWKS from the signer, not over HTTP."""

    async def get(self, url, *, bearer=None):
        assert url == NETWORK_JWKS, url
        return http_signer.jwks()

    monkeypatch.setattr(authorize.JsonFetcher, "get", get)


def _with_settings(node: Node, **settings) -> Node:
    """The same node directory opened with some settings changed."""
    config = node.config
    return Node(NodeConfig(config.node_dir, {**config.values, **settings}))


def _post(client, signer, *, tamper: bool = False, sign: bool = True):
    body = json.dumps(QUERY_BODY).encode()
    headers = {"Content-Type": "application/json"}
    if sign:
        headers[ASSERTION_HEADER] = signer.assertion(
            audience=BASE, method="POST", path_and_query="/api/g_variants", body=body
        )
    if tamper:
        body = body.replace(b"boolean", b"count")
    return client.post("/api/g_variants", content=body, headers=headers)


def _audit(client, node) -> list[AuditEntry]:
    client.app.state.access.audit.flush()
    with node.session() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def test_a_relayed_query_is_answered_and_its_audit_names_the_network(
    trusting_node, http_signer, network_keys
):
    with TestClient(create_app(trusting_node, base_url=BASE)) as client:
        response = _post(client, http_signer)
        assert response.status_code == 200, response.text
        assert response.json()["responseSummary"]["exists"] is True
        entry = _audit(client, trusting_node)[-1]
        assert entry.action == "POST /api/g_variants"
        assert entry.details["network"] == NETWORK
        assert entry.details["network_jti"]

        # A direct query is answered too (not required) and names no network.
        direct = _post(client, http_signer, sign=False)
        assert direct.status_code == 200, direct.text
        assert "network" not in _audit(client, trusting_node)[-1].details


def test_a_tampered_relayed_query_is_401_and_audited(
    trusting_node, http_signer, network_keys
):
    with TestClient(create_app(trusting_node, base_url=BASE)) as client:
        response = _post(client, http_signer, tamper=True)
        assert response.status_code == 401, response.text
        assert "another request body" in response.text
        entry = _audit(client, trusting_node)[-1]
        assert (entry.action, entry.outcome) == ("auth.network", "deny")
        # The audit log never holds the assertion itself.
        assert "eyJ" not in json.dumps(entry.details) + entry.reason


def test_require_network_assertion(trusting_node, http_signer, network_keys):
    node = _with_settings(trusting_node, require_network_assertion=True)
    with TestClient(create_app(node, base_url=BASE)) as client:
        direct = _post(client, http_signer, sign=False)
        assert direct.status_code == 401, direct.text
        assert direct.headers["WWW-Authenticate"] == "Bearer"
        relayed = _post(client, http_signer)
        assert relayed.status_code == 200, relayed.text
        assert relayed.json()["responseSummary"]["exists"] is True
        signed_get = client.get(
            "/api/info",
            headers={
                ASSERTION_HEADER: http_signer.assertion(
                    audience="fi-node", method="GET", path_and_query="/api/info"
                )
            },
        )
        assert signed_get.status_code == 200, signed_get.text
        assert client.get("/api/info").status_code == 401


def test_require_without_trusted_networks_is_a_config_error(trusting_node):
    node = _with_settings(
        trusting_node, require_network_assertion=True, trusted_networks=()
    )
    with pytest.raises(ConfigError, match="trusted_networks"):
        create_app(node, base_url=BASE)


def test_trusted_networks_from_the_environment(tmp_path):
    init_node(tmp_path / "n", node_id="fi-node", country="FI").close()
    trusted = [{"issuer": NETWORK, "jku": NETWORK_JWKS + "/"}]
    config = load_config(
        tmp_path / "n",
        environ={
            "GENOMENODE_TRUSTED_NETWORKS": json.dumps(trusted),
            "GENOMENODE_REQUIRE_NETWORK_ASSERTION": "yes",
        },
    )
    assert config.trusted_networks == ({"issuer": NETWORK, "jku": NETWORK_JWKS},)
    assert config.require_network_assertion is True
    with pytest.raises(ConfigError, match="trusted_networks"):
        load_config(
            tmp_path / "n",
            environ={"GENOMENODE_TRUSTED_NETWORKS": json.dumps([{"issuer": NETWORK}])},
        )
