"""``GET /qc/{dataset}``: decided by the one authorisation, audited; the whole
report for a caller who may see records, the floored summary otherwise."""

from __future__ import annotations

import pathlib
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from genomenode.app import create_app
from genomenode.disclosure.control import DisclosureControl
from genomenode.disclosure.settings import DisclosureSettings
from genomenode.qc.http import _released
from genomenode.qc.run import run_qc
from genomenode.store.models import AuditEntry
from tests.conftest import grant_access

RESEARCHER = "qc-reader@demo.genomenode"


@pytest.fixture(scope="module")
def client(planted):
    dataset, _cohort = planted
    run_qc(dataset.node, dataset.dataset_id)
    grant_access(dataset.node, dataset.dataset_id, RESEARCHER)
    app = create_app(dataset.node, dev_identity_provider=True)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def _passport(client, subject):
    response = client.post("/dev-idp/token", json={"subject": subject})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_anonymous_and_strangers_are_refused_and_audited(client, planted):
    dataset, _cohort = planted
    assert client.get(f"/qc/{dataset.dataset_id}").status_code == 403
    stranger = _passport(client, "stranger@demo.genomenode")
    assert client.get(f"/qc/{dataset.dataset_id}", headers=stranger).status_code == 403
    # The audit writer batches its entries (a few tens of ms).
    deadline = time.monotonic() + 10
    while True:
        with dataset.node.session() as session:
            rows = session.scalars(
                select(AuditEntry).where(AuditEntry.action == "qc.report")
            ).all()
        if len(rows) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert [row.outcome for row in rows][:2] == ["deny", "deny"]
    assert all(row.dataset_id == dataset.dataset_id for row in rows)


def test_a_granted_caller_gets_the_whole_report(client, planted):
    dataset, cohort = planted
    headers = _passport(client, RESEARCHER)
    page = client.get(f"/qc/{dataset.dataset_id}", headers=headers)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert cohort.low_quality in page.text and "https://" not in page.text
    document = client.get(
        f"/qc/{dataset.dataset_id}", params={"format": "json"}, headers=headers
    ).json()
    assert [sample["id"] for sample in document["samples"]] == cohort.sample_ids


def test_bad_requests_are_4xx(client, planted):
    dataset, _cohort = planted
    headers = _passport(client, RESEARCHER)
    assert client.get("/qc/no-such", headers=headers).status_code == 404
    response = client.get(
        f"/qc/{dataset.dataset_id}", params={"format": "pdf"}, headers=headers
    )
    assert response.status_code == 400


def test_the_summary_floors_counts_of_people():
    summary = {
        "num_samples": 160,
        "num_samples_passed": 157,
        "sample_reasons": {"duplicate": 1, "low_call_rate": 12},
        "num_related_pairs": 0,
        "num_variants": 8800,
    }
    settings = DisclosureSettings(enabled=True, count_threshold=5)
    released = _released(summary, DisclosureControl(settings, None, pathlib.Path(".")))
    floor = settings.floor
    assert released["sample_reasons"] == {"duplicate": floor, "low_call_rate": 12}
    assert released["num_samples_passed"] == 157
    assert released["num_variants"] == 8800
