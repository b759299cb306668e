"""Analyses without a grant (issue 14, point 3): a dataset whose dataset.yaml
says ``analysis: {without_grant: true}`` answers a registered caller with no
grant whose declared purpose its DUO terms allow (the simulated datasets:
DS of ICD10:I25.1, publication required); any other purpose is a 403 and an
audit row; without the setting, a grant is needed as before."""

from __future__ import annotations

import shutil

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from genomenode.app import create_app
from genomenode.store.models import AuditEntry, Dataset
from genomenode.store.node import open_node

from .conftest import STRANGER, serve_network

ALLOWED = {"term": "DUO:0000007", "disease": "ICD10:I25.1", "accepted": ["DUO:0000019"]}
OTHER = {"term": "DUO:0000006", "accepted": ["DUO:0000019"]}


def _permit(directory, dataset: str) -> None:
    """Set ``analysis: {without_grant: true}`` as a dataset.yaml would."""
    with open_node(directory) as node, node.session() as session:
        document = session.scalar(
            select(Dataset.description_document).where(Dataset.id == dataset)
        )
        session.execute(
            update(Dataset)
            .where(Dataset.id == dataset)
            .values(
                description_document={**document, "analysis": {"without_grant": True}}
            )
        )
        session.commit()


def _stranger(directory) -> TestClient:
    node = open_node(directory)
    client = TestClient(
        create_app(node, base_url="http://testserver", dev_identity_provider=True)
    )
    token = client.post("/dev-idp/token", json={"subject": STRANGER}).json()
    client.headers["Authorization"] = f"Bearer {token['access_token']}"
    return client


def _denials(directory) -> list[AuditEntry]:
    with open_node(directory) as node, node.session() as session:
        return list(
            session.scalars(
                select(AuditEntry).where(
                    AuditEntry.actor == STRANGER,
                    AuditEntry.action == "analyse summary",
                    AuditEntry.outcome == "deny",
                )
            )
        )


def test_an_allowed_purpose_analyses_without_a_grant(node_templates, tmp_path):
    directory = tmp_path / "node"
    shutil.copytree(node_templates[0], directory)
    path = "/analysis/datasets/part-1/summary"
    body = {"variables": ["age"]}
    # Without the dataset's permission, the purpose changes nothing.
    client = _stranger(directory)
    assert client.post(path, json={**body, "purpose": ALLOWED}).status_code == 403
    _permit(directory, "part-1")
    client = _stranger(directory)
    allowed = client.post(path, json={**body, "purpose": ALLOWED})
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["age"]["num"] > 0
    before = len(_denials(directory))
    refused = client.post(path, json={**body, "purpose": OTHER})
    assert refused.status_code == 403
    assert "DUO:0000006" in refused.json()["detail"]
    denials = _denials(directory)
    assert len(denials) == before + 1
    assert denials[-1].details["purpose"]["term"] == "DUO:0000006"
    # No purpose: the grant rules, as before.
    assert client.post(path, json=body).status_code == 403
    # A malformed purpose is a clear 400.
    malformed = client.post(path, json={**body, "purpose": {"term": "GRU"}})
    assert malformed.status_code == 400 and "purpose" in malformed.text


def test_the_network_sends_the_declared_purpose_to_every_node(node_templates, tmp_path):
    templates = []
    for index, template in enumerate(node_templates, start=1):
        directory = tmp_path / "templates" / template.name
        shutil.copytree(template, directory)
        _permit(directory, f"part-{index}")
        templates.append(directory)
    with serve_network(templates, tmp_path / "served") as network:
        request = {
            "analysis": "gwas",
            "datasets": ["part-1", "part-2", "part-3"],
            "phenotype": "ICD10:I25.1",
            "model": "logistic",
            "covariates": ["sex"],
            "region": {"contig": "1", "start": 1, "end": 200_000},
        }
        job = network.submit({**request, "purpose": ALLOWED}, subject=STRANGER)
        status = network.wait(job["id"])
        assert status["state"] == "COMPLETE", status
        assert network.results(job["id"])["rows"]
        job = network.submit({**request, "purpose": OTHER}, subject=STRANGER)
        status = network.wait(job["id"])
        assert status["state"] == "EXECUTOR_ERROR"
        assert "DUO:0000006" in status["tasks"]["part-1"]["reason"]
