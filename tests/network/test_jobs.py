"""The network's analysis jobs in-process: each job belongs to the verified
subject and issuer of the passport that submitted it; only they may follow,
read, plot or cancel it (another caller gets 404, no passport 401); a GWAS
job's plots over HTTP; a job interrupted by a restart waits for its owner.

The nodes are an httpx2 MockTransport that holds no dataset (a job submitted
here ends EXECUTOR_ERROR at once); finished jobs with results are written to
the real job store (SQLite) directly.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import httpx2
import pytest
from fastapi.testclient import TestClient

from genomenode.access.devidp import DevIdentityProvider
from genomenode.access.tokens import JwksCache, TokenVerifier, TrustedIssuer
from genomenode.errors import ConfigError
from genomenode.network.analysis_http import job_verifier
from genomenode.network.app import create_network_app
from genomenode.network.jobs import WAITING_FOR_OWNER, Owner, open_job_store
from genomenode.network.registry import RegisteredNode, Registry, parse_registry

BROKER = "http://broker.test/dev-idp"
RESEARCHER = "researcher@jobs.test"
OTHER = "other@jobs.test"
GWAS_ROWS = [
    {"contig": contig, "position": 1000 * (i + 1), "p": p, "beta": 0.1}
    for contig in ("1", "2", "X")
    for i, p in enumerate((0.5, 0.01, 1e-9, 0.2, None))
]


@pytest.fixture(scope="module")
def provider(tmp_path_factory) -> DevIdentityProvider:
    return DevIdentityProvider(tmp_path_factory.mktemp("broker"), issuer=BROKER)


@pytest.fixture(scope="module")
def stranger_provider(tmp_path_factory) -> DevIdentityProvider:
    """Another broker, which the network does not trust."""
    return DevIdentityProvider(
        tmp_path_factory.mktemp("other-broker"), issuer="http://other.test/dev-idp"
    )


def _bearer(provider: DevIdentityProvider, subject: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {provider.passport(subject)}"}


@pytest.fixture
def network(provider, tmp_path) -> Iterator[tuple[TestClient, object]]:
    registry = Registry(
        network_id="jobs-net",
        public_url="http://network.test",
        nodes=(RegisteredNode("fi-node", "FI", "http://fi.test"),),
        trusted_brokers=(TrustedIssuer(BROKER, provider.jku),),
    )
    store = open_job_store(tmp_path)
    client = httpx2.AsyncClient(
        transport=httpx2.MockTransport(
            lambda request: httpx2.Response(404, json={"detail": "no such dataset"})
        )
    )
    app = create_network_app(registry, client=client, jobs=store)
    # The broker's keys in-process (over HTTP the network fetches its jku).
    app.state.job_verifier = TokenVerifier(
        registry.trusted_brokers,
        (),
        JwksCache(lambda url: provider.jwks() if url == provider.jku else None),
    )
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client, store


def _submit(client: TestClient, headers: dict[str, str]) -> str:
    response = client.post(
        "/analysis/jobs",
        json={"analysis": "frequencies", "datasets": ["fi-cohort"]},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _finished_gwas(store, owner: Owner) -> str:
    job = store.create("gwas", {"analysis": "gwas"}, {}, owner=owner)
    assert store.update(
        job.id, state="COMPLETE", result={"analysis": "gwas", "rows": GWAS_ROWS}
    )
    return job.id


def test_only_the_owner_follows_reads_and_cancels_a_job(
    network, provider, stranger_provider
):
    client, store = network
    owner = _bearer(provider, RESEARCHER)
    job_id = _submit(client, owner)
    assert store.get(job_id).owner == Owner(RESEARCHER, BROKER)
    assert client.get(f"/analysis/jobs/{job_id}", headers=owner).status_code == 200

    other = _bearer(provider, OTHER)
    unknown = client.get("/analysis/jobs/0123456789abcdef", headers=other)
    for method, path in (
        ("GET", f"/analysis/jobs/{job_id}"),
        ("GET", f"/analysis/jobs/{job_id}/results"),
        ("GET", f"/analysis/jobs/{job_id}/plots/manhattan.png"),
        ("POST", f"/analysis/jobs/{job_id}/cancel"),
    ):
        refused = client.request(method, path, headers=other)
        # Exactly what an unknown id gets: the job's existence is not revealed.
        assert refused.status_code == 404, (method, path, refused.text)
        assert refused.json()["detail"].replace(job_id, "ID") == unknown.json()[
            "detail"
        ].replace("0123456789abcdef", "ID")
        anonymous = client.request(method, path)
        assert anonymous.status_code == 401, (method, path)
        untrusted = client.request(
            method, path, headers=_bearer(stranger_provider, RESEARCHER)
        )
        assert untrusted.status_code == 401, (method, path)
        forged = client.request(
            method, path, headers={"Authorization": "Bearer not.a.jwt"}
        )
        assert forged.status_code == 401, (method, path)
    assert client.post("/analysis/jobs", json={}).status_code == 401
    # The other caller's attempts changed nothing; the owner still reads it.
    assert client.get(f"/analysis/jobs/{job_id}", headers=owner).status_code == 200


def test_the_owners_cancel_works_and_others_do_not(network, provider):
    client, store = network
    owner = Owner(RESEARCHER, BROKER)
    # A job nobody runs (its runner gone, its state not final).
    job = store.create(
        "gwas", {"analysis": "gwas"}, {"d": {"state": "QUEUED"}}, owner=owner
    )
    other = client.post(
        f"/analysis/jobs/{job.id}/cancel", headers=_bearer(provider, OTHER)
    )
    assert other.status_code == 404
    assert store.get(job.id).state == "QUEUED"
    mine = client.post(
        f"/analysis/jobs/{job.id}/cancel", headers=_bearer(provider, RESEARCHER)
    )
    assert mine.status_code == 200 and mine.json()["state"] == "CANCELED"


def test_a_gwas_jobs_plots(network, provider):
    client, store = network
    headers = _bearer(provider, RESEARCHER)
    job_id = _finished_gwas(store, Owner(RESEARCHER, BROKER))
    # PNG width and height (IHDR) at 120 dpi: the Manhattan plot 10 × 4 in,
    # the QQ plot 4.5 × 4.5 in.
    for name, size in (("manhattan", (1200, 480)), ("qq", (540, 540))):
        png = client.get(f"/analysis/jobs/{job_id}/plots/{name}.png", headers=headers)
        assert png.status_code == 200, png.text
        assert png.headers["content-type"] == "image/png"
        assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
        width, height = (int.from_bytes(png.content[at : at + 4]) for at in (16, 20))
        assert (width, height) == size
        svg = client.get(f"/analysis/jobs/{job_id}/plots/{name}.svg", headers=headers)
        assert svg.status_code == 200
        assert svg.headers["content-type"].startswith("image/svg+xml")
        assert svg.content.lstrip().startswith(b"<?xml") and b"<svg" in svg.content
    for bad in ("manhattan.jpg", "pca.png", "manhattan", "..%2Fresults"):
        missing = client.get(f"/analysis/jobs/{job_id}/plots/{bad}", headers=headers)
        assert missing.status_code == 404, bad
    # Unknown, unfinished and non-GWAS jobs.
    unknown = client.get("/analysis/jobs/nope/plots/qq.png", headers=headers)
    assert unknown.status_code == 404
    running = store.create(
        "gwas", {"analysis": "gwas"}, {}, owner=Owner(RESEARCHER, BROKER)
    )
    store.update(running.id, state="RUNNING")
    early = client.get(f"/analysis/jobs/{running.id}/plots/qq.png", headers=headers)
    assert early.status_code == 409 and "RUNNING" in early.json()["detail"]
    table = store.create(
        "frequencies", {"analysis": "frequencies"}, {}, owner=Owner(RESEARCHER, BROKER)
    )
    store.update(table.id, state="COMPLETE", result={"rows": []})
    none = client.get(f"/analysis/jobs/{table.id}/plots/qq.png", headers=headers)
    assert none.status_code == 404 and "no plots" in none.json()["detail"]


def test_the_plots_are_in_the_networks_openapi(network):
    client, _ = network
    document = client.get("/api/openapi.json").json()
    operation = document["paths"]["/analysis/jobs/{job_id}/plots/{plot_file}"]["get"]
    assert set(operation["responses"]["200"]["content"]) == {
        "image/png",
        "image/svg+xml",
    }


def test_a_job_interrupted_by_a_restart_waits_for_its_owner(network, provider):
    client, store = network
    owner = Owner(RESEARCHER, BROKER)
    job = store.create(
        "frequencies",
        {"analysis": "frequencies", "datasets": ["x"], "on_node_failure": "fail"},
        {"x": {"state": "RUNNING", "progress": 0.5}},
        owner=owner,
    )
    store.update(job.id, state="RUNNING")
    # What start-up does when the runner is gone (here: this very process,
    # whose run is not going on).
    assert store.recover() == [job.id]
    waiting = store.get(job.id)
    assert waiting.state == "QUEUED" and waiting.reason == WAITING_FOR_OWNER
    assert waiting.runner_pid is None
    assert waiting.tasks["x"]["state"] == "QUEUED"
    # Someone else's request does not start it.
    assert (
        client.get(f"/analysis/jobs/{job.id}", headers=_bearer(provider, OTHER))
    ).status_code == 404
    assert store.get(job.id).runner_pid is None
    # The owner's does, with their fresh passport; it runs to its end (here:
    # no node holds the dataset).
    resumed = client.get(
        f"/analysis/jobs/{job.id}", headers=_bearer(provider, RESEARCHER)
    )
    assert resumed.status_code == 200
    assert store.get(job.id).runner_pid == os.getpid()
    deadline = time.monotonic() + 30
    while store.get(job.id).state not in ("EXECUTOR_ERROR", "SYSTEM_ERROR"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    ended = store.get(job.id)
    assert ended.state == "EXECUTOR_ERROR" and "no node" in (ended.reason or "")
    # One claim only: a job that runs (or ended) is not claimed again.
    assert not store.claim(ended)


def test_an_older_job_database_gains_the_owner_columns(tmp_path):
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "CREATE TABLE analysis_jobs (id VARCHAR(64) PRIMARY KEY, "
                "analysis VARCHAR(32) NOT NULL, state VARCHAR(16) NOT NULL, "
                "request JSON NOT NULL, tasks JSON NOT NULL, reason TEXT, "
                "result JSON, submitter VARCHAR(256) NOT NULL, runner_pid INTEGER, "
                "round_trips INTEGER NOT NULL, created VARCHAR(40) NOT NULL, "
                "updated VARCHAR(40) NOT NULL)"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO analysis_jobs VALUES ('old', 'gwas', 'COMPLETE', '{}', "
                "'{}', NULL, NULL, 'someone', NULL, 0, 'x', 'x')"
            )
        )
    store = open_job_store(None, f"sqlite:///{tmp_path / 'old.db'}")
    assert store.get("old").owner is None
    # A job from before owners were kept is no one's.
    from genomenode.errors import NotFoundError

    with pytest.raises(NotFoundError):
        store.get("old", Owner("someone", BROKER))


def test_the_verifier_comes_from_network_yaml(provider):
    document = {
        "format_version": 1,
        "network_id": "n",
        "public_url": "http://network.test",
        "nodes": [{"id": "a", "country": "FI", "url": "http://a.test"}],
        "trusted_brokers": [{"issuer": BROKER, "jku": provider.jku}],
    }
    registry = parse_registry(document)
    assert registry.trusted_brokers == (TrustedIssuer(BROKER, provider.jku),)
    app = create_network_app(registry, client=httpx2.AsyncClient())
    assert isinstance(job_verifier(app), TokenVerifier)
    without = create_network_app(
        parse_registry({**document, "trusted_brokers": []}),
        client=httpx2.AsyncClient(),
    )
    assert job_verifier(without) is None
    with TestClient(without, raise_server_exceptions=False) as client:
        refused = client.get("/analysis/jobs/x", headers=_bearer(provider, RESEARCHER))
    assert refused.status_code == 401 and "trusted_brokers" in refused.text
    for bad, field in (
        ([{"issuer": BROKER}], "trusted_brokers[0].jku"),
        ([{"issuer": "broker", "jku": provider.jku}], "trusted_brokers[0].issuer"),
        ([{"issuer": BROKER, "jku": provider.jku, "x": 1}], "trusted_brokers[0].x"),
        ("nope", "trusted_brokers"),
    ):
        with pytest.raises(ConfigError, match=field.replace("[", r"\[")):
            parse_registry({**document, "trusted_brokers": bad})
    with pytest.raises(ConfigError, match="development identity provider"):
        parse_registry({**document, "environment": "prod"})


def test_the_same_subject_at_another_broker_is_another_owner(
    provider, stranger_provider, tmp_path
):
    """Both brokers trusted: a subject name is only an owner with its issuer."""
    brokers = (
        TrustedIssuer(BROKER, provider.jku),
        TrustedIssuer(stranger_provider.issuer, stranger_provider.jku),
    )
    registry = Registry(
        network_id="jobs-net",
        public_url="http://network.test",
        nodes=(RegisteredNode("fi-node", "FI", "http://fi.test"),),
        trusted_brokers=brokers,
    )
    keys = {provider.jku: provider.jwks, stranger_provider.jku: stranger_provider.jwks}
    app = create_network_app(
        registry,
        client=httpx2.AsyncClient(
            transport=httpx2.MockTransport(lambda request: httpx2.Response(404))
        ),
        jobs=open_job_store(tmp_path),
    )
    app.state.job_verifier = TokenVerifier(
        brokers, (), JwksCache(lambda url: keys[url]() if url in keys else None)
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        job_id = _submit(client, _bearer(provider, RESEARCHER))
        namesake = _bearer(stranger_provider, RESEARCHER)
        assert (
            client.get(f"/analysis/jobs/{job_id}", headers=namesake).status_code == 404
        )
        assert (
            client.get(
                f"/analysis/jobs/{job_id}", headers=_bearer(provider, RESEARCHER)
            ).status_code
            == 200
        )
