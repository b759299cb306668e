"""Analyses read genotypes through the node's store API: a dataset sealed at rest
(``encrypt_at_rest``) or in an S3 bucket (a real ``moto.server`` process) gives
the numbers of the same dataset on a plain local node, bit for bit."""

from __future__ import annotations

import os

import numpy as np
import pytest
from fastapi.testclient import TestClient

from genomenode.analysis.codec import decode
from genomenode.app import create_app
from genomenode.ingest.pipeline import ingest
from genomenode.store.node import init_node, open_node

from ..conftest import grant_access, in_process_workers
from ..scale.moto_server import BUCKET, s3_in_environment
from .conftest import RESEARCHER

BODIES = {
    "glm": {
        "model": "logistic",
        "outcome": "ICD10:I25.1",
        "covariates": ["sex", "age"],
        "window": {"contig": "1", "start": 1, "end": 2_000_000},
    },
    "tables": {
        "outcome": "ICD10:I25.1",
        "window": {"contig": "1", "start": 1, "end": 2_000_000},
    },
}


def _node(directory, description, *, sealed: bool, storage=None, endpoint=None):
    saved = os.environ.get("GENOMENODE_ENCRYPT_AT_REST")
    os.environ["GENOMENODE_ENCRYPT_AT_REST"] = "true" if sealed else "false"
    try:
        with (
            in_process_workers(),
            init_node(
                directory,
                node_id="node-1",
                country="FI",
                storage=storage,
                storage_endpoint=endpoint,
            ) as node,
        ):
            ingest(node, description)
            grant_access(node, "part-1", RESEARCHER)
    finally:
        if saved is None:
            os.environ.pop("GENOMENODE_ENCRYPT_AT_REST")
        else:
            os.environ["GENOMENODE_ENCRYPT_AT_REST"] = saved
    return directory


def _answers(directory) -> dict[str, dict]:
    with open_node(directory) as node:
        client = TestClient(
            create_app(node, base_url="http://testserver", dev_identity_provider=True)
        )
        token = client.post("/dev-idp/token", json={"subject": RESEARCHER}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        out = {}
        for action, body in BODIES.items():
            response = client.post(
                f"/analysis/datasets/part-1/{action}", json=body, headers=headers
            )
            assert response.status_code == 200, response.text
            out[action] = response.json()
        return out


def _assert_same(found: dict, expected: dict) -> None:
    assert found["glm"]["variants"], "the window must hold released variants"
    assert found["glm"]["variants"] == expected["glm"]["variants"]
    for name in ("information", "score", "log_likelihood", "num_observations"):
        np.testing.assert_array_equal(
            decode(found["glm"][name], field=name),
            decode(expected["glm"][name], field=name),
        )
    assert found["tables"] == expected["tables"]


@pytest.fixture(scope="module")
def plain(cohort, tmp_path_factory):
    root = tmp_path_factory.mktemp("plain-store")
    return _answers(_node(root / "node", cohort.dataset_yamls[0], sealed=False))


def test_a_sealed_store_gives_the_plain_numbers(cohort, plain, tmp_path):
    directory = _node(tmp_path / "node", cohort.dataset_yamls[0], sealed=True)
    _assert_same(_answers(directory), plain)


def test_an_object_store_gives_the_plain_numbers(cohort, plain, tmp_path):
    with s3_in_environment() as service:
        directory = _node(
            tmp_path / "node",
            cohort.dataset_yamls[0],
            sealed=True,
            storage=f"s3://{BUCKET}/analysis-node",
            endpoint=service.endpoint,
        )
        # Nothing of the dataset's genotypes is in the node directory.
        assert not list(directory.rglob("call_genotype"))
        _assert_same(_answers(directory), plain)
