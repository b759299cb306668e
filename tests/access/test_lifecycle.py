"""Unpublish, publish again, change access, remove: through the node's real app.

Each test ingests a small cohort, serves it with the development identity provider
(so a researcher can hold a grant), changes it with :mod:`genomenode.access.lifecycle`
and checks what Beacon, htsget, DRS, the DCAT catalogue and the access catalogue
answer on the very next request, and what the audit log says.
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from genomenode.access import access_change, applications, lifecycle, removal, workflow
from genomenode.access import duo as access_duo
from genomenode.access.audit_check import verify
from genomenode.app import create_app
from genomenode.errors import ConflictError, IngestError, NotFoundError
from genomenode.ingest.pipeline import discard, ingest
from genomenode.store import node as store_node
from genomenode.store.generation import read_generation
from genomenode.store.models import (
    AccessApplication,
    AuditEntry,
    Dataset,
    DataUseTerm,
    Entitlement,
    Individual,
    StoredFile,
)

from ..conftest import grant_access, write_dataset_yaml, write_small_cohort

DATASET = "life"
RESEARCHER = "researcher@demo.genomenode"
VISITOR = "visitor@demo.genomenode"
OPERATOR = "operator:test"
QUERY = {"referenceName": "1", "start": "999", "end": "1000"}


def _ingest(node, tmp_path, **fields):
    write_small_cohort(tmp_path / "cohort", dataset_id=DATASET)
    description = write_dataset_yaml(tmp_path / "cohort", id=DATASET, **fields)
    ingest(node, description)
    return description


@pytest.fixture
def client(node):
    app = create_app(node, base_url="http://testserver", dev_identity_provider=True)
    with TestClient(app) as test_client:
        yield test_client


def _bearer(client, subject):
    token = client.post("/dev-idp/token", json={"subject": subject}).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


def _exists(client, headers=None, granularity="boolean"):
    answer = client.get(
        "/api/g_variants",
        params=QUERY | {"requestedGranularity": granularity},
        headers=headers or {},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["responseSummary"]


def _everywhere(client, headers):
    """What each service says of the dataset: a dict of service -> visible."""
    beacon_datasets = client.get(
        "/api/datasets", params={"requestedGranularity": "record"}, headers=headers
    ).json()
    listed = [
        item["id"]
        for item in beacon_datasets.get("response", {}).get("collections", [])
    ]
    return {
        "beacon": _exists(client, headers)["exists"],
        "beacon_datasets": DATASET in listed,
        "htsget": client.get(
            f"/htsget/variants/{DATASET}",
            params={"referenceName": "1"},
            headers=headers,
        ).status_code,
        "drs": client.get(
            f"/ga4gh/drs/v1/objects/{DATASET}", headers=headers
        ).status_code,
        "dcat": DATASET in client.get("/catalogue/datasets").text,
        "dcat_one": client.get(f"/catalogue/datasets/{DATASET}").status_code,
        "access_catalogue": DATASET
        in [
            item["dataset_id"]
            for item in client.get("/access/catalogue").json()["items"]
        ],
    }


def _entries(node, action):
    with node.session() as session:
        return list(
            session.scalars(
                select(AuditEntry)
                .where(AuditEntry.action == action)
                .order_by(AuditEntry.id)
            )
        )


def test_unpublish_hides_the_dataset_at_once_and_publish_restores_it(
    node, client, tmp_path
):
    _ingest(node, tmp_path, security_level="PUBLIC")
    application_id = grant_access(node, DATASET, RESEARCHER)
    granted = _bearer(client, RESEARCHER)
    shown = {
        "beacon": True,
        "beacon_datasets": True,
        "htsget": 200,
        "drs": 200,
        "dcat": True,
        "dcat_one": 200,
        "access_catalogue": True,
    }
    assert _everywhere(client, granted) == shown

    change = lifecycle.unpublish(node, DATASET, actor=OPERATOR)

    assert change.changed and change.status == "unpublished"
    assert [grant.application_id for grant in change.affected_grants] == [
        application_id
    ]
    assert _everywhere(client, granted) == {
        "beacon": False,
        "beacon_datasets": False,
        "htsget": 404,
        "drs": 404,
        "dcat": False,
        "dcat_one": 404,
        "access_catalogue": False,
    }
    assert _exists(client)["exists"] is False  # anonymous too
    applied = client.post(
        "/access/applications",
        headers=_bearer(client, VISITOR),
        json={
            "dataset": DATASET,
            "project_title": "t",
            "purpose": {"term": "DUO:0000042"},
        },
    )
    assert applied.status_code == 404
    # The data are kept, and so is the grant.
    assert (node.datasets_dir / DATASET / "dataset.json").exists()
    with node.session() as session:
        assert len(applications.grants(session, dataset_id=DATASET)) == 1
    with pytest.raises(IngestError, match="unpublished"):
        ingest(node, tmp_path / "cohort" / "dataset.yaml")
    assert discard(node, DATASET) is False
    assert not lifecycle.unpublish(node, DATASET, actor=OPERATOR).changed

    assert lifecycle.publish(node, DATASET, actor=OPERATOR).status == "published"
    assert _everywhere(client, granted) == shown

    (unpublished,) = _entries(node, "dataset.unpublish")
    assert unpublished.actor == OPERATOR and unpublished.dataset_id == DATASET
    assert unpublished.details["affected_grants"] == [
        {"id": change.affected_grants[0].id, "subject": RESEARCHER}
    ]
    assert unpublished.details["changes"]["status"] == {
        "before": "published",
        "after": "unpublished",
    }
    assert len(_entries(node, "dataset.publish")) == 1
    with node.session() as session:
        assert verify(session).intact


def test_set_access_to_public_needs_force_and_answers_anonymous_at_once(
    node, client, tmp_path
):
    _ingest(node, tmp_path, security_level="CONTROLLED")
    grant_access(node, DATASET, RESEARCHER)
    assert _exists(client)["exists"] is False
    generation = _generation(node)

    with pytest.raises(ConflictError, match="without a grant") as refused:
        access_change.set_access(node, DATASET, actor=OPERATOR, security_level="PUBLIC")
    assert RESEARCHER in str(refused.value)
    assert _exists(client)["exists"] is False
    assert _generation(node) == generation
    (denied,) = _entries(node, "dataset.set_access")
    assert denied.outcome == "deny" and denied.details["force"] is False

    change = access_change.set_access(
        node, DATASET, actor=OPERATOR, security_level="PUBLIC", force=True
    )

    assert change.changes["security_level"] == ("CONTROLLED", "PUBLIC")
    assert [grant.subject for grant in change.affected_grants] == [RESEARCHER]
    summary = _exists(client)
    assert summary["exists"] is True
    assert "numTotalResults" not in summary  # anonymous: boolean only
    # A registered caller gets counts now; before, nothing.
    registered = _exists(client, _bearer(client, VISITOR), granularity="count")
    assert registered["numTotalResults"] >= 1
    allowed = _entries(node, "dataset.set_access")[-1]
    assert allowed.outcome == "allow" and allowed.details["force"] is True
    with node.session() as session:
        row = session.get(Dataset, DATASET)
        assert row.security_level == "PUBLIC"
        assert row.description_document["security_level"] == "PUBLIC"
    # Nothing left to change: no entry, no new generation.
    generation = _generation(node)
    assert not access_change.set_access(
        node, DATASET, actor=OPERATOR, security_level="PUBLIC"
    ).changed
    assert _generation(node) == generation


def test_granularities_and_duo_terms_that_take_from_grants_need_force(
    node, client, tmp_path
):
    _ingest(node, tmp_path, security_level="REGISTERED")
    grant_access(node, DATASET, RESEARCHER)  # purpose: general research use
    draft = workflow.create_application(
        node.engine,
        dataset_id=DATASET,
        applicant=VISITOR,
        project_title="Open question",
        purpose=access_duo.purpose_from_json({"term": "DUO:0000042"}),
    )
    granted = _bearer(client, RESEARCHER)
    assert _exists(client, granted, "record")["numTotalResults"] >= 1

    with pytest.raises(ConflictError, match="less than they were granted"):
        access_change.set_access(
            node, DATASET, actor=OPERATOR, beacon={"granted": "count"}
        )
    with pytest.raises(ConflictError, match="no longer fit the DUO terms") as refused:
        access_change.set_access(
            node,
            DATASET,
            actor=OPERATOR,
            data_use=[{"id": "DUO:0000007", "disease": "ICD10:I25.1"}],
        )
    assert f"application {draft.id}" in str(refused.value)

    change = access_change.set_access(
        node,
        DATASET,
        actor=OPERATOR,
        beacon={"granted": "count"},
        data_use=[{"id": "DUO:0000007", "disease": "ICD10:I25.1"}],
        force=True,
    )

    assert set(change.changes) == {"beacon", "data_use"}
    assert change.changes["data_use"][1] == [
        {"id": "DUO:0000007", "disease": "ICD10:I25.1"}
    ]
    (affected,) = change.affected_applications
    assert affected.id == draft.id and "deny" in affected.why
    # Grant holders get counts, not records, from the next request on.
    record = client.get(
        "/api/g_variants",
        params=QUERY | {"requestedGranularity": "record"},
        headers=granted,
    ).json()
    assert record["meta"]["returnedGranularity"] == "count"
    conditions = {
        item["dataset_id"]: item["conditions"]
        for item in client.get("/access/catalogue").json()["items"]
    }
    assert conditions[DATASET] == [{"term": "DUO:0000007", "disease": "ICD10:I25.1"}]
    assert "ICD10" in client.get(f"/catalogue/datasets/{DATASET}").text
    with node.session() as session:
        terms = session.scalars(
            select(DataUseTerm.term_id).where(DataUseTerm.dataset_id == DATASET)
        ).all()
    assert terms == ["DUO:0000007"]
    assert (
        applications.get_application(
            node.engine, draft.id, as_operator=True
        ).recommendation.outcome
        == "deny"
    )


def test_an_invalid_access_change_names_the_field(node, tmp_path):
    _ingest(node, tmp_path)
    with pytest.raises(Exception, match=r"beacon\.registered"):
        access_change.set_access(
            node,
            DATASET,
            actor=OPERATOR,
            beacon={"anonymous": "count", "registered": "boolean"},
        )
    with pytest.raises(Exception, match=r"data_use\[0\]\.id"):
        access_change.set_access(node, DATASET, actor=OPERATOR, data_use=["DUO:9"])
    with pytest.raises(Exception, match="security_level"):
        access_change.set_access(node, DATASET, actor=OPERATOR, security_level="OPEN")
    with pytest.raises(NotFoundError):
        access_change.set_access(node, "nope", actor=OPERATOR, security_level="PUBLIC")


def test_remove_is_refused_while_granted_then_deletes_files_and_rows(
    node, client, tmp_path
):
    description = _ingest(node, tmp_path, security_level="PUBLIC")
    application_id = grant_access(node, DATASET, RESEARCHER)
    granted = _bearer(client, RESEARCHER)
    directory = node.datasets_dir / DATASET
    assert _everywhere(client, granted)["htsget"] == 200

    with pytest.raises(ConflictError, match="grants are active") as refused:
        removal.remove(node, DATASET, actor=OPERATOR)
    assert f"grant 1 ({RESEARCHER}" in str(refused.value)
    assert directory.exists() and _exists(client)["exists"] is True

    change = removal.remove(node, DATASET, actor=OPERATOR, force=True)

    assert change.status == "removed"
    assert [grant.application_id for grant in change.affected_grants] == [
        application_id
    ]
    assert not directory.exists()
    assert not list(node.staging_dir.glob(f".removing-{DATASET}"))
    with node.session() as session:
        for table in (Dataset, Individual, StoredFile, AccessApplication, Entitlement):
            column = table.id if table is Dataset else table.dataset_id
            count = session.scalar(
                select(func.count()).select_from(table).where(column == DATASET)
            )
            assert count == 0, table.__tablename__
    visible = _everywhere(client, granted)
    assert visible["beacon"] is False and visible["htsget"] == 404
    assert visible["drs"] == 404 and visible["dcat_one"] == 404
    outcomes = [
        (entry.outcome, entry.reason.split(":")[0])
        for entry in _entries(node, "dataset.remove")
    ]
    assert outcomes == [
        ("deny", "grants are active or applications open for this dataset"),
        ("allow", "removal started by an operator"),
        ("allow", "dataset removed"),
    ]
    with pytest.raises(NotFoundError):
        removal.remove(node, DATASET, actor=OPERATOR)
    # The id is free again: the same inputs publish anew.
    assert ingest(node, description).status == "published"
    assert _everywhere(client, granted)["beacon"] is True
    with node.session() as session:
        assert verify(session).intact


def test_an_interrupted_removal_is_invisible_and_finished_by_a_rerun(
    node, client, tmp_path, monkeypatch
):
    description = _ingest(node, tmp_path, security_level="PUBLIC")
    grant_access(node, DATASET, RESEARCHER)

    def killed(*_arguments, **_keywords):
        raise KeyboardInterrupt

    monkeypatch.setattr(removal, "_delete_rows", killed)
    with pytest.raises(KeyboardInterrupt):
        removal.remove(node, DATASET, actor=OPERATOR, force=True)
    monkeypatch.undo()

    with node.session() as session:
        assert session.get(Dataset, DATASET).status == "removing"
    assert _exists(client)["exists"] is False
    assert client.get(f"/catalogue/datasets/{DATASET}").status_code == 404
    with pytest.raises(IngestError, match="did not finish"):
        ingest(node, description)
    with pytest.raises(ConflictError, match="is removing"):
        lifecycle.publish(node, DATASET, actor=OPERATOR)

    # No force needed: the decision was taken (and audited) before the kill.
    change = removal.remove(node, DATASET, actor=OPERATOR)

    assert change.status == "removed"
    with node.session() as session:
        assert session.get(Dataset, DATASET) is None
    assert _entries(node, "dataset.remove")[-1].reason.endswith(
        "(an interrupted removal finished)"
    )


def test_a_removal_killed_between_rename_and_delete_is_finished(
    node, tmp_path, monkeypatch
):
    _ingest(node, tmp_path)
    real_rmtree = store_node.shutil.rmtree

    def killed(path, *arguments, **keywords):
        if ".removing-" in str(path):
            raise KeyboardInterrupt
        return real_rmtree(path, *arguments, **keywords)

    monkeypatch.setattr(store_node.shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        removal.remove(node, DATASET, actor=OPERATOR)
    monkeypatch.undo()
    assert (node.staging_dir / f".removing-{DATASET}").exists()
    assert not (node.datasets_dir / DATASET).exists()

    removal.remove(node, DATASET, actor=OPERATOR)

    assert not (node.staging_dir / f".removing-{DATASET}").exists()


def test_every_change_bumps_the_generation_once(node, tmp_path):
    _ingest(node, tmp_path)
    published = _generation(node)
    assert published >= 1
    lifecycle.unpublish(node, DATASET, actor=OPERATOR)
    access_change.set_access(
        node, DATASET, actor=OPERATOR, security_level="REGISTERED", force=True
    )
    lifecycle.publish(node, DATASET, actor=OPERATOR)
    removal.remove(node, DATASET, actor=OPERATOR)
    # unpublish, set_access, publish, and the two steps of a removal
    assert _generation(node) == published + 5


def _generation(node) -> int:
    with node.session() as session:
        return read_generation(session)


def test_ends_at_is_reported_in_the_refusal(node, tmp_path):
    _ingest(node, tmp_path)
    grant_access(
        node,
        DATASET,
        RESEARCHER,
        ends_at=dt.datetime(2031, 5, 1, tzinfo=dt.UTC),
    )
    with pytest.raises(ConflictError, match="until 2031-05-01"):
        removal.remove(node, DATASET, actor=OPERATOR)
    with node.engine.connect() as connection:
        assert (
            connection.execute(
                sqlalchemy.text("SELECT status FROM datasets")
            ).scalar_one()
            == "published"
        )
