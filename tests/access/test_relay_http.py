"""``POST /access/relay-keys`` on a node that trusts a network: who gets a key,
that it opens only with the network's agreement key and is the node's own
derivation, that it then authenticates relayed queries, and the audit.

The node is a real app (TestClient); the network's keys are real, and the node
reads the network's JWKS from its signer instead of over HTTP.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from genomenode.access import authorize, jws
from genomenode.access.network_trust import ASSERTION_HEADER, NetworkSigner
from genomenode.access.relay_keys import RelayKey, RelaySecret
from genomenode.app import create_app
from genomenode.config import NodeConfig
from genomenode.store.models import AuditEntry
from genomenode.store.node import Node, init_node, open_node

NETWORK = "https://network.example.org"
NETWORK_JWKS = f"{NETWORK}/.well-known/jwks.json"
BASE = "http://testserver"
PATH = "/access/relay-keys"


@pytest.fixture(scope="module")
def network_signer(tmp_path_factory) -> NetworkSigner:
    return NetworkSigner(tmp_path_factory.mktemp("network") / "keys", NETWORK)


@pytest.fixture(scope="module")
def trusting_node(tmp_path_factory):
    root = tmp_path_factory.mktemp("relay-node")
    init_node(root / "node", node_id="fi-node", country="FI").close()
    config_file = root / "node" / "genomenode.yaml"
    trusted = [{"issuer": NETWORK, "jku": NETWORK_JWKS}]
    config_file.write_text(
        config_file.read_text() + f"trusted_networks: {json.dumps(trusted)}\n"
    )
    node = open_node(root / "node")
    yield node
    node.close()


@pytest.fixture
def network_keys(monkeypatch, network_signer):
    """The node fetches the network's JWKS from the signer, not over HTTP."""
    fetched: list[str] = []

    async def get(self, url, *, bearer=None):
        fetched.append(url)
        assert url == NETWORK_JWKS, url
        return network_signer.jwks()

    monkeypatch.setattr(authorize.JsonFetcher, "get", get)
    return fetched


def _with_settings(node: Node, **settings) -> Node:
    config = node.config
    return Node(NodeConfig(config.node_dir, {**config.values, **settings}))


def _ask(
    client,
    signer: NetworkSigner | None,
    *,
    agreement_kid: str | None = None,
    relay_key: RelayKey | None = None,
    body: bytes | None = None,
):
    if body is None:
        kid = agreement_kid if agreement_kid is not None else signer.agreement.kid
        body = json.dumps({"agreement_kid": kid}).encode()
    headers = {"Content-Type": "application/json"}
    if signer is not None:
        headers[ASSERTION_HEADER] = signer.assertion(
            audience=BASE,
            method="POST",
            path_and_query=PATH,
            body=body,
            relay_key=relay_key,
        )
    return client.post(PATH, content=body, headers=headers)


def _audit(client, node) -> list[AuditEntry]:
    client.app.state.access.audit.flush()
    with node.session() as session:
        return list(
            session.scalars(
                select(AuditEntry)
                .where(AuditEntry.action == "access.relay_key")
                .order_by(AuditEntry.id)
            )
        )


def test_a_trusted_network_gets_a_key_only_it_can_open(
    trusting_node, network_signer, network_keys, tmp_path
):
    with TestClient(create_app(trusting_node, base_url=BASE)) as client:
        response = _ask(client, network_signer)
        assert response.status_code == 200, response.text
        answer = response.json()
        relay = network_signer.open_relay_key(answer, audience=BASE)
        # The node's own derivation, from its secret file (0600), no state kept.
        secret_file = trusting_node.config.node_dir / "keys" / "relay.key"
        assert oct(secret_file.stat().st_mode & 0o777) == "0o600"
        assert relay.value == RelaySecret(secret_file).key(NETWORK, relay.kid)
        assert answer["expires_in"] == relay.lifetime_seconds == 3600
        # Another network's agreement key cannot open it.
        impostor = NetworkSigner(tmp_path / "impostor", NETWORK)
        with pytest.raises(ValueError, match="does not open"):
            impostor.open_relay_key(answer, audience=BASE)
        entry = _audit(client, trusting_node)[-1]
        assert (entry.actor, entry.outcome) == (NETWORK, "allow")
        assert entry.details["kid"] == relay.kid
        logged = json.dumps(entry.details) + entry.reason
        assert relay.value.hex() not in logged and "eyJ" not in logged

        # The key now authenticates a relayed query, and signs nothing.
        relayed = client.get(
            "/api/info",
            headers={
                ASSERTION_HEADER: network_signer.assertion(
                    audience=BASE,
                    method="GET",
                    path_and_query="/api/info",
                    relay_key=relay,
                )
            },
        )
        assert relayed.status_code == 200, relayed.text
        # Tampered: 401, naming the network assertion (the network resends).
        forged = RelayKey(relay.kid, bytes(32), relay.lifetime_seconds)
        refused = client.get(
            "/api/info",
            headers={
                ASSERTION_HEADER: network_signer.assertion(
                    audience=BASE,
                    method="GET",
                    path_and_query="/api/info",
                    relay_key=forged,
                )
            },
        )
        assert refused.status_code == 401, refused.text
        assert "network assertion" in refused.text


def test_a_maced_assertion_cannot_obtain_a_key(
    trusting_node, network_signer, network_keys
):
    with TestClient(create_app(trusting_node, base_url=BASE)) as client:
        first = network_signer.open_relay_key(
            _ask(client, network_signer).json(), audience=BASE
        )
        renewal = _ask(client, network_signer, relay_key=first)
        assert renewal.status_code == 401, renewal.text
        assert "only a signed (ES256)" in renewal.text
        entry = _audit(client, trusting_node)[-1]
        assert entry.outcome == "deny" and "ES256" in entry.reason


@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [
        ("no assertion", 401, "no network assertion"),
        ("untrusted network", 401, "not from a trusted network"),
        ("unknown agreement kid", 400, "is not a key-agreement key"),
        ("signing kid as agreement kid", 400, "is not a key-agreement key"),
        ("no body", 400, "agreement_kid"),
        ("tampered body", 401, "another request body"),
        ("sent to another node", 401, "another audience"),
    ],
)
def test_refusals_are_audited(
    trusting_node, network_signer, network_keys, tmp_path, case, status, reason
):
    with TestClient(create_app(trusting_node, base_url=BASE)) as client:
        if case == "no assertion":
            response = _ask(client, None, body=b'{"agreement_kid": "x"}')
        elif case == "untrusted network":
            stranger = NetworkSigner(tmp_path / "stranger", "https://evil.example")
            response = _ask(client, stranger)
        elif case == "unknown agreement kid":
            response = _ask(client, network_signer, agreement_kid="enc-made-up")
        elif case == "signing kid as agreement kid":
            kid = network_signer.keys.active()[0]
            response = _ask(client, network_signer, agreement_kid=kid)
        elif case == "no body":
            response = _ask(client, network_signer, body=b"")
        elif case == "tampered body":
            body = json.dumps({"agreement_kid": network_signer.agreement.kid})
            assertion = network_signer.assertion(
                audience=BASE, method="POST", path_and_query=PATH, body=b"{}"
            )
            response = client.post(
                PATH, content=body, headers={ASSERTION_HEADER: assertion}
            )
        else:
            body = json.dumps({"agreement_kid": network_signer.agreement.kid})
            assertion = network_signer.assertion(
                audience="https://se.example.org",
                method="POST",
                path_and_query=PATH,
                body=body.encode(),
            )
            response = client.post(
                PATH, content=body, headers={ASSERTION_HEADER: assertion}
            )
        assert response.status_code == status, response.text
        assert "ciphertext" not in response.text
        entry = _audit(client, trusting_node)[-1]
        assert entry.outcome == "deny"
        assert reason in entry.reason


def test_the_agreement_key_comes_from_the_trusted_jwks_only(
    trusting_node, network_signer, network_keys, tmp_path
):
    """An agreement key named in the request, not in the network's JWKS, is
    never used: the request names a kid, never a key or URL."""
    with TestClient(create_app(trusting_node, base_url=BASE)) as client:
        response = _ask(
            client,
            network_signer,
            body=json.dumps(
                {
                    "agreement_kid": "enc-x",
                    "jwk": NetworkSigner(tmp_path / "x", NETWORK).agreement.jwk(),
                    "jku": "https://evil.example/jwks",
                }
            ).encode(),
        )
        assert response.status_code == 400, response.text
        assert set(network_keys) == {NETWORK_JWKS}


def test_no_keys_when_the_node_issues_none(trusting_node, network_signer, network_keys):
    node = _with_settings(trusting_node, network_relay_key_seconds=0)
    with TestClient(create_app(node, base_url=BASE)) as client:
        response = _ask(client, network_signer)
        assert response.status_code == 404, response.text
        assert _audit(client, trusting_node)[-1].outcome == "deny"


def test_an_untrusted_relay_assertion_is_401_where_assertions_are_required(
    trusting_node, network_signer, network_keys, tmp_path
):
    stranger = NetworkSigner(tmp_path / "stranger", "https://evil.example")
    secret = RelaySecret(trusting_node.config.node_dir / "keys" / "relay.key")
    kid, value = secret.issue("https://evil.example", lifetime_seconds=60)
    node = _with_settings(trusting_node, require_network_assertion=True)
    with TestClient(create_app(node, base_url=BASE)) as client:
        response = client.get(
            "/api/info",
            headers={
                ASSERTION_HEADER: stranger.assertion(
                    audience=BASE,
                    method="GET",
                    path_and_query="/api/info",
                    relay_key=RelayKey(kid, value, 60),
                )
            },
        )
        assert response.status_code == 401, response.text


def test_the_signer_signs_nothing_with_a_relay_key(network_signer, monkeypatch):
    signed: list[str] = []
    original = jws.sign_es256

    def counting(*args, **kwargs):
        signed.append("ES256")
        return original(*args, **kwargs)

    monkeypatch.setattr(jws, "sign_es256", counting)
    network_signer.assertion(audience=BASE, method="GET", path_and_query="/")
    network_signer.assertion(
        audience=BASE,
        method="GET",
        path_and_query="/",
        relay_key=RelayKey("1.0123456789abcdef", bytes(range(32)), 60),
    )
    assert signed == ["ES256"]
