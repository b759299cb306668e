"""The access capability end to end over HTTP: passports, the DAC workflow, grants
honoured by the Beacon at once, revocation, and the audit log of all of it.

One node with two small cohorts (a CONTROLLED one with a DAC, a REGISTERED one)
served by the real app with the development identity provider switched on.
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import socket
import statistics
import threading
import time
import uuid

import httpx2
import jwt
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from genomenode.access import applications, authorize, workflow
from genomenode.access import duo as access_duo
from genomenode.access.audit_check import verify
from genomenode.access.devidp import DevIdentityProvider
from genomenode.access.tokens import JwksCache, TokenVerifier, TrustedIssuer
from genomenode.access.visas import GrantVisa, SigningKeys, issue_grant_visa
from genomenode.app import create_app
from genomenode.beacon.schemas import validate
from genomenode.cli import cli
from genomenode.config import NodeConfig
from genomenode.ingest.pipeline import ingest
from genomenode.store.models import AuditEntry, StoredFile
from genomenode.store.node import Node, init_node

from ..conftest import (
    free_port,
    grant_access,
    in_process_workers,
    serving_in_thread,
    write_dataset_yaml,
    write_small_cohort,
)

BASE = "http://testserver"
RESEARCHER = "researcher@demo.genomenode"
DAC = "dac@demo.genomenode"
VISITOR = "visitor@demo.genomenode"
CONTROLLED = "fi-controlled"
REGISTERED = "fi-registered"
# A variant every small cohort has (contig 1, first record; see write_small_cohort).
QUERY = {"referenceName": "1", "start": "999", "end": "1000"}


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    root = tmp_path_factory.mktemp("access")
    with in_process_workers():
        write_small_cohort(root / "controlled", dataset_id=CONTROLLED)
        controlled = write_dataset_yaml(
            root / "controlled",
            id=CONTROLLED,
            security_level="CONTROLLED",
            data_use=[{"id": "DUO:0000006"}, {"id": "DUO:0000046"}],
            dac={"members": [DAC]},
        )
        write_small_cohort(root / "registered", dataset_id=REGISTERED, seed=2)
        registered = write_dataset_yaml(
            root / "registered", id=REGISTERED, security_level="REGISTERED"
        )
        fresh = init_node(root / "node", node_id="fi-node", country="FI")
        ingest(fresh, controlled)
        ingest(fresh, registered)
    yield fresh
    fresh.close()


@pytest.fixture(scope="module")
def app(node):
    return create_app(node, base_url=BASE, dev_identity_provider=True)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def provider(node) -> DevIdentityProvider:
    """The same provider the app runs (same key directory and issuer)."""
    return DevIdentityProvider(
        node.config.node_dir / "keys" / "dev-idp", issuer=f"{BASE}/dev-idp"
    )


def _passport(client, subject: str, **fields) -> dict[str, str]:
    response = client.post("/dev-idp/token", json={"subject": subject, **fields})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _datasets(client, headers=None, granularity="record") -> dict[str, int]:
    """Dataset id → resultsCount of a variant query at ``granularity``."""
    response = client.post(
        "/api/g_variants",
        headers=headers or {},
        json={
            "meta": {"apiVersion": "2.0"},
            "query": {
                "requestParameters": QUERY,
                "requestedGranularity": granularity,
                "includeResultsetResponses": "ALL",
            },
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    result_sets = body.get("response", {}).get("resultSets", [])
    return {item["id"]: item.get("resultsCount", 0) for item in result_sets}


def _audit(app, node) -> list[AuditEntry]:
    app.state.access.audit.flush()
    with node.session() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def _assert_hidden(client, app, node, number: int, headers) -> None:
    """Application ``number`` exists, yet reads to ``headers``' subject exactly
    as a missing one does on every route, and each refusal is audited."""
    missing = number + 1000
    for method, suffix, body in (
        ("GET", "", None),
        ("PUT", "", {"project_title": "Mine now"}),
        ("POST", "/approve", {"ends_at": "2099-01-01"}),
        ("POST", "/submit", {}),
    ):
        answers = []
        for probed in (number, missing):
            response = client.request(
                method,
                f"/access/applications/{probed}{suffix}",
                headers=headers,
                json=body,
            )
            assert response.status_code == 404, (method, suffix, response.text)
            answers.append(response.json()["detail"].replace(str(probed), "ID"))
        assert answers[0] == answers[1]
        assert CONTROLLED not in answers[0] and DAC not in answers[0]
    refused = [
        entry
        for entry in _audit(app, node)
        if entry.outcome == "deny" and entry.details.get("application") == number
    ]
    assert [entry.action for entry in refused][-4:] == [
        "access.read",
        "access.edit",
        "access.approve",
        "access.submit",
    ]
    read = refused[-4]
    assert read.actor == VISITOR and read.dataset_id == CONTROLLED
    assert "neither an applicant" in read.reason


def test_the_whole_workflow(client, app, node, provider):
    researcher = _passport(client, RESEARCHER)
    dac = _passport(client, DAC)

    # Before: anonymous callers see neither dataset; a registered one counts the
    # REGISTERED dataset, never the CONTROLLED one.
    assert _datasets(client) == {}
    assert set(_datasets(client, researcher, "count")) == {REGISTERED}

    # The catalogue lists what one can apply for, with its DUO terms.
    catalogue = client.get("/access/catalogue").json()["items"]
    item = next(entry for entry in catalogue if entry["dataset_id"] == CONTROLLED)
    assert "dac_members" not in item
    assert {term["term"] for term in item["conditions"]} >= {"DUO:0000006"}

    # Apply with a health/medical purpose, submitted at once.
    created = client.post(
        "/access/applications",
        headers=researcher,
        json={
            "dataset": CONTROLLED,
            "project_title": "Coronary artery disease modifiers",
            "purpose": {"term": "DUO:0000006"},
            "purpose_text": "Association of rare variants with CAD.",
            "submit": True,
        },
    )
    assert created.status_code == 201, created.text
    application = created.json()
    number = application["id"]
    assert application["state"] == "submitted"
    assert application["recommendation"]["outcome"] == "approve"

    # The applicant cannot approve; a stranger cannot even see it.
    assert (
        client.post(
            f"/access/applications/{number}/approve",
            headers=researcher,
            json={"ends_at": "2099-01-01"},
        ).status_code
        == 403
    )
    visitor = _passport(client, VISITOR)
    _assert_hidden(client, app, node, number, visitor)

    # The DAC sees it, with the DUO match and its reasons, and approves.
    seen = client.get("/access/applications", headers=dac).json()["applications"]
    mine = next(entry for entry in seen if entry["id"] == number)
    assert mine["recommendation"]["outcome"] == "approve"
    assert mine["recommendation"]["reasons"]
    approved = client.post(
        f"/access/applications/{number}/approve",
        headers=dac,
        json={"ends_at": "2099-01-01", "comment": "fits HMB"},
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "approved"

    # At once, with the same passport: records from the CONTROLLED dataset.
    found = _datasets(client, researcher)
    assert CONTROLLED in found and found[CONTROLLED] > 0

    # The node's visa for it, REMS-style, verifies against the node's JWKS.
    permissions = client.get(f"/access/permissions/{RESEARCHER}", headers=researcher)
    assert permissions.status_code == 200
    (visa,) = permissions.json()["ga4gh_passport_v1"]
    jwks = client.get("/.well-known/jwks.json").json()
    node_issuer = TrustedIssuer(BASE, f"{BASE}/.well-known/jwks.json")
    verifier = TokenVerifier(
        [provider.trusted()],
        [node_issuer],
        JwksCache(lambda url: jwks if url == node_issuer.jku else provider.jwks()),
    )
    identity = verifier.verify(provider.passport(RESEARCHER, extra_visas=[visa]))
    grants = identity.visas_of("ControlledAccessGrants")
    assert [(grant.value, grant.by) for grant in grants] == [(CONTROLLED, "dac")]
    assert (
        client.get(f"/access/permissions/{RESEARCHER}", headers=dac).status_code == 403
    )

    # Revoked: denied at once, even with the node's own unexpired visa in hand.
    revoked = client.post(f"/access/applications/{number}/revoke", headers=dac, json={})
    assert revoked.json()["state"] == "revoked"
    assert CONTROLLED not in _datasets(client, researcher)
    with_visa = {
        "Authorization": f"Bearer {provider.passport(RESEARCHER, extra_visas=[visa])}"
    }
    assert CONTROLLED not in _datasets(client, with_visa)
    assert client.get(
        f"/access/permissions/{RESEARCHER}", headers=researcher
    ).json() == {"ga4gh_passport_v1": []}

    # Each step is in the audit log, and the log verifies.
    entries = _audit(app, node)
    actions = [(entry.actor, entry.action, entry.outcome) for entry in entries]
    assert any(action[1].endswith("approve") and action[0] == DAC for action in actions)
    assert any(action[1].endswith("revoke") and action[0] == DAC for action in actions)
    assert any(
        action[0] == RESEARCHER
        and action[1].endswith("approve")
        and action[2] == "deny"
        for action in actions
    )
    queries = [
        entry
        for entry in entries
        if entry.actor == RESEARCHER and entry.action == "POST /api/g_variants"
    ]
    outcomes = [entry.details["datasets"].get(CONTROLLED) for entry in queries]
    # before the grant, after it, after the revocation, with the stale visa
    assert outcomes == ["deny", "record", "deny", "deny"]
    for entry in entries:
        text = json.dumps(entry.details)
        assert "eyJ" not in text  # no JWT ever lands in the log
    with node.session() as session:
        assert verify(session).intact


def test_tampering_with_any_audit_row_is_detected(client, app, node):
    _datasets(client, _passport(client, VISITOR), "count")
    entries = _audit(app, node)
    assert len(entries) >= 3
    runner = CliRunner()
    node_dir = str(node.config.node_dir)
    assert runner.invoke(cli, ["audit", "verify", "--node", node_dir]).exit_code == 0
    victim = entries[len(entries) // 2]
    with node.session() as session, session.begin():
        session.execute(
            update(AuditEntry)
            .where(AuditEntry.id == victim.id)
            .values(outcome="allow" if victim.outcome != "allow" else "deny")
        )
    result = runner.invoke(cli, ["audit", "verify", "--node", node_dir, "--json"])
    assert result.exit_code == 1
    assert json.loads(result.output)["first_bad_id"] == victim.id
    with node.session() as session, session.begin():
        session.execute(
            update(AuditEntry)
            .where(AuditEntry.id == victim.id)
            .values(outcome=victim.outcome)
        )
    assert runner.invoke(cli, ["audit", "verify", "--node", node_dir]).exit_code == 0


# --- rejection paths at the HTTP edge -------------------------------------------


def _foreign_passport(subject: str, **claims) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    now = int(dt.datetime.now(dt.UTC).timestamp())
    return jwt.encode(
        {"iss": "https://evil.example", "sub": subject, "iat": now, "exp": now + 60}
        | claims,
        key,
        algorithm="ES256",
    )


@pytest.mark.parametrize(
    "header",
    [
        "Bearer not-a-jwt",
        "Basic dXNlcjpwYXNz",
        "Bearer " + _foreign_passport(RESEARCHER),
    ],
    ids=["malformed", "not-bearer", "untrusted-broker"],
)
def test_bad_tokens_get_401_and_are_audited(client, app, node, header):
    response = client.get(
        "/api/g_variants", params=QUERY, headers={"Authorization": header}
    )
    assert response.status_code == 401
    assert response.json()["error"]["errorCode"] == 401
    assert _audit(app, node)[-1].action == "auth.passport"


def test_an_expired_passport_is_refused(client, provider, node):
    # Signed with the provider's own key, expired two minutes ago (past the leeway).
    kid, key = SigningKeys(node.config.node_dir / "keys" / "dev-idp").active()
    now = int(dt.datetime.now(dt.UTC).timestamp())
    token = jwt.encode(
        {"iss": provider.issuer, "sub": RESEARCHER, "iat": now - 600, "exp": now - 120},
        key,
        algorithm="ES256",
        headers={"kid": kid, "jku": provider.jku},
    )
    response = client.get(
        "/api/g_variants", params=QUERY, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["errorMessage"]


def test_registered_needs_a_registering_visa(client):
    bare = _passport(client, "nobody@demo.genomenode", visas=[])
    assert _datasets(client, bare, "count") == {}


def test_an_expired_entitlement_grants_nothing(client, node):
    researcher = _passport(client, "late@demo.genomenode")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    application = workflow.create_application(
        node.engine,
        dataset_id=CONTROLLED,
        applicant="late@demo.genomenode",
        project_title="Expired",
        purpose=access_duo.purpose_from_json({"term": "DUO:0000006"}),
        submit=True,
        now=past,
    )
    workflow.approve(
        node.engine,
        application.id,
        actor=DAC,
        ends_at=past + dt.timedelta(days=1),
        now=past,
    )
    assert CONTROLLED not in _datasets(client, researcher)
    assert client.get("/access/grants", headers=researcher).json()["grants"] == []


def test_a_grant_visa_for_another_dataset_grants_nothing_here(client, provider, node):
    # A visa signed by the node itself for another dataset id (no entitlement).
    now = dt.datetime.now(dt.UTC)
    visa = issue_grant_visa(
        SigningKeys(pathlib.Path(node.config.node_dir) / "keys" / "visas"),
        GrantVisa(
            "other@demo.genomenode",
            "another-dataset",
            BASE,
            now,
            now + dt.timedelta(days=1),
        ),
        issuer=BASE,
        jku=f"{BASE}/.well-known/jwks.json",
    )
    token = provider.passport("other@demo.genomenode", extra_visas=[visa])
    assert CONTROLLED not in _datasets(client, {"Authorization": f"Bearer {token}"})


def test_refusals_and_server_errors_on_access_paths_are_audited(app, node, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("the database fell over")

    monkeypatch.setattr(applications, "list_applications", broken)
    with TestClient(app, raise_server_exceptions=False) as local:
        before = len(_audit(app, node))
        anonymous = local.get("/access/applications")
        assert anonymous.status_code == 401
        failed = local.get(
            "/access/applications", headers=_passport(local, "broken@demo")
        )
        assert failed.status_code == 500
        assert failed.json() == {"detail": "internal error"}
        entries = [
            (entry.actor, entry.action, entry.outcome, entry.details.get("status"))
            for entry in _audit(app, node)[before:]
            if entry.action == "GET /access/applications"
        ]
    assert entries == [
        ("anonymous", "GET /access/applications", "deny", 401),
        ("broken@demo", "GET /access/applications", "error", 500),
    ]


def test_access_routes_need_a_passport(client):
    assert client.get("/access/applications").status_code == 401
    assert client.post("/access/applications", json={}).status_code == 401
    assert client.get("/access/catalogue").status_code == 200


def test_bad_application_bodies_name_the_field(client):
    researcher = _passport(client, RESEARCHER)
    response = client.post(
        "/access/applications",
        headers=researcher,
        json={"dataset": CONTROLLED, "purpose": {"term": "DUO:9999999"}},
    )
    assert response.status_code == 400
    assert "purpose" in response.json()["detail"]
    missing = client.post(
        "/access/applications",
        headers=researcher,
        json={
            "dataset": "nope",
            "project_title": "Anything",
            "purpose": {"term": "DUO:0000042"},
        },
    )
    assert missing.status_code == 404


def test_rotating_the_visa_key_keeps_earlier_visas_valid(client, node, provider):
    keys = SigningKeys(node.config.node_dir / "keys" / "visas")
    now = dt.datetime.now(dt.UTC)
    grant = GrantVisa(RESEARCHER, CONTROLLED, BASE, now, now + dt.timedelta(days=1))
    node_issuer = TrustedIssuer(BASE, f"{BASE}/.well-known/jwks.json")
    before = issue_grant_visa(keys, grant, issuer=BASE, jku=node_issuer.jku)
    result = CliRunner().invoke(
        cli,
        ["access", "rotate-key", "--node", str(node.config.node_dir), "--json"],
    )
    assert result.exit_code == 0, result.output
    rotated = json.loads(result.output)
    after = issue_grant_visa(keys, grant, issuer=BASE, jku=node_issuer.jku)
    assert jwt.get_unverified_header(after)["kid"] == rotated["kid"]
    assert jwt.get_unverified_header(before)["kid"] != rotated["kid"]
    jwks = client.get("/.well-known/jwks.json").json()
    assert {key["kid"] for key in jwks["keys"]} >= {
        jwt.get_unverified_header(before)["kid"],
        rotated["kid"],
    }
    verifier = TokenVerifier(
        [provider.trusted()],
        [provider.trusted(), node_issuer],
        JwksCache(lambda url: jwks if url == node_issuer.jku else provider.jwks()),
    )
    identity = verifier.verify(
        provider.passport(RESEARCHER, extra_visas=[before, after])
    )
    assert [visa.value for visa in identity.visas_of("ControlledAccessGrants")] == [
        CONTROLLED,
        CONTROLLED,
    ]
    assert identity.rejected_visas == ()


def test_configuration_and_drs_service_info_tell_only_what_the_caller_may_see(
    client, node
):
    subject = "configuration@demo.genomenode"
    grant_access(node, CONTROLLED, subject, actor=DAC)
    with node.session() as session:
        controlled_sizes = list(
            session.scalars(
                select(StoredFile.size_plain).where(StoredFile.dataset_id == CONTROLLED)
            )
        )
    assert controlled_sizes
    expected = {
        # Anonymous callers may see neither dataset: no level, no file.
        "anonymous": ({}, [], 0, 0),
        # Registered: the REGISTERED dataset at count granularity, nothing to fetch.
        "registered": (_passport(client, VISITOR), ["REGISTERED"], 0, 0),
        "granted": (
            _passport(client, subject),
            ["REGISTERED", "CONTROLLED"],
            len(controlled_sizes),
            sum(controlled_sizes),
        ),
    }
    for who, (headers, levels, num_objects, size) in expected.items():
        configuration = client.get("/api/configuration", headers=headers)
        assert configuration.status_code == 200, configuration.text
        validate(configuration.json(), "beaconConfigurationResponse")
        security = configuration.json()["response"]["securityAttributes"]
        assert security["securityLevels"] == levels, who
        info = client.get("/ga4gh/drs/v1/service-info", headers=headers)
        assert info.status_code == 200, info.text
        statistics = info.json()["drs"]
        assert (statistics["objectCount"], statistics["totalObjectSize"]) == (
            num_objects,
            size,
        ), who


# --- key fetches never stall the node (real HTTP, uvicorn in a thread) ---------


class SilentServer:
    """A broker host that accepts connections and never answers a byte."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self.socket.getsockname()[1]
        self.connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return  # closed
            self.connections.append(connection)

    def close(self) -> None:
        self.socket.close()
        for connection in self.connections:
            connection.close()
        self._thread.join(timeout=5)


def _forged(issuer: str, jku: str) -> str:
    """A token claiming ``issuer``, signed by nobody it knows (a made-up kid)."""
    now = int(time.time())
    claims = {"iss": issuer, "sub": "mallory", "iat": now, "exp": now + 600}
    headers = {"kid": f"made-up-{uuid.uuid4().hex}", "jku": jku}
    key = ec.generate_private_key(ec.SECP256R1())
    return jwt.encode(claims, key, algorithm="ES256", headers=headers)


def _timed(client, url: str, **options) -> tuple[float, httpx2.Response]:
    started = time.perf_counter()
    response = client.get(url, **options)
    return time.perf_counter() - started, response


def test_a_silent_or_closed_broker_never_stalls_other_requests(node):
    silent = SilentServer()
    closed_port = free_port()  # nothing listens there
    silent_broker = {
        "issuer": "https://silent.example",
        "jku": f"http://127.0.0.1:{silent.port}/jwks",
    }
    closed_broker = {
        "issuer": "https://closed.example",
        "jku": f"http://127.0.0.1:{closed_port}/jwks",
    }
    config = node.config
    trusting = Node(
        NodeConfig(
            config.node_dir,
            {**config.values, "trusted_brokers": (silent_broker, closed_broker)},
        )
    )
    app = create_app(trusting, base_url=BASE)
    fetcher = app.state.access.authoriser.verifier._remote
    count_query = {**QUERY, "requestedGranularity": "count"}
    try:
        with (
            serving_in_thread(app) as base,
            httpx2.Client(base_url=base, timeout=30) as client,
        ):
            _timed(client, "/api/g_variants", params=count_query)  # warm up
            baseline = [
                _timed(client, "/api/g_variants", params=count_query)[0]
                for _ in range(15)
            ]

            forged_answers: dict[str, tuple[float, httpx2.Response]] = {}

            def forge(name: str, broker: dict[str, str]) -> None:
                token = _forged(broker["issuer"], broker["jku"])
                with httpx2.Client(base_url=base, timeout=30) as own:
                    forged_answers[name] = _timed(
                        own,
                        "/api/g_variants",
                        params=count_query,
                        headers={"Authorization": f"Bearer {token}"},
                    )

            forgers = [
                threading.Thread(target=forge, args=(name, broker))
                for name, broker in (
                    ("silent", silent_broker),
                    ("closed", closed_broker),
                )
            ]
            for forger in forgers:
                forger.start()
            time.sleep(0.2)  # the silent broker's fetch is under way
            during = []
            while forgers[0].is_alive() and len(during) < 40:
                seconds, response = _timed(
                    client, "/api/g_variants", params=count_query
                )
                assert response.status_code == 200, response.text
                during.append(seconds)
            for forger in forgers:
                forger.join(timeout=30)

            # The forged tokens waited for their fetch (the silent one for the
            # fetch's timeout) and were refused naming their issuer...
            silent_seconds, silent_answer = forged_answers["silent"]
            assert silent_answer.status_code == 401
            assert (
                "keys of https://silent.example are unavailable" in silent_answer.text
            )
            assert 1.0 < silent_seconds < fetcher.timeout_seconds + 1.0
            assert forged_answers["closed"][1].status_code == 401
            assert "keys of https://closed.example" in forged_answers["closed"][1].text
            # ... while the anonymous queries on the same server went on as before
            # (a fetch on the event loop would hold one of them for seconds; the
            # machine's own noise is tens of milliseconds).
            assert len(during) >= 10
            typical = statistics.median(baseline)
            assert statistics.median(during) < typical + 0.03, (baseline, during)
            assert max(during) < 0.5, (baseline, during)
            assert len(silent.connections) == 1
            assert fetcher.num_requests == 2

            # Within the negative-cache interval, more forged tokens cost no fetch.
            for broker in (silent_broker, closed_broker):
                token = _forged(broker["issuer"], broker["jku"])
                seconds, response = _timed(
                    client,
                    "/api/g_variants",
                    params=count_query,
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert response.status_code == 401
                assert "unavailable" in response.text
                assert seconds < 0.5
            assert len(silent.connections) == 1
            assert fetcher.num_requests == 2
    finally:
        silent.close()
        trusting.close()


@pytest.mark.parametrize("environment", ["prod", "test"])
def test_in_prod_the_development_provider_is_refused_whatever_is_trusted(
    node, tmp_path, monkeypatch, environment
):
    # An operator lists a development provider as a broker and visa issuer.
    idp = DevIdentityProvider(tmp_path / "idp", "https://idp.example/dev-idp")
    trusted = {"issuer": idp.issuer, "jku": idp.jku}

    async def get(self, url, *, bearer=None):
        assert url == idp.jku, url
        return idp.jwks()

    monkeypatch.setattr(authorize.JsonFetcher, "get", get)
    config = node.config
    configured = Node(
        NodeConfig(
            config.node_dir,
            {
                **config.values,
                "beacon_environment": environment,
                "trusted_brokers": (trusted,),
                "trusted_visa_issuers": (trusted,),
            },
        )
    )
    try:
        with TestClient(create_app(configured, base_url=BASE)) as client:
            headers = {"Authorization": f"Bearer {idp.passport(RESEARCHER)}"}
            response = client.get("/api/g_variants", params=QUERY, headers=headers)
            if environment == "prod":
                assert response.status_code == 401
                assert "development identity provider" in response.text
            else:
                assert response.status_code == 200, response.text
                entry = _audit(client.app, configured)[-1]
                assert entry.actor == RESEARCHER
                assert entry.details["registered"] is True
    finally:
        configured.close()
