"""Disclosure control and authorisation of the node's analyses.

The filters on one node in-process (a copy of a template node, its settings
from the environment), and the refusal of a caller without grants through the
network, audited on every node.
"""

from __future__ import annotations

import json

import numpy as np
from sqlalchemy import select

from genomenode.analysis.codec import decode
from genomenode.disclosure.filters import coarse_quantiles
from genomenode.disclosure.settings import DisclosureSettings
from genomenode.store.models import AuditEntry
from genomenode.store.node import open_node

from .conftest import STRANGER

WINDOW = {"contig": "1", "start": 1, "end": 2_000_000}


def _part_one(cohort) -> dict[str, dict]:
    return {
        sample: json.loads(
            (cohort.pool_dir / "phenopackets" / f"{sample}.json").read_text()
        )
        for sample in cohort.samples[0]
    }


def test_a_stratum_below_nfilter_tab_is_refused(node_client, cohort):
    # A term few people of part-1 have: crossed with sex, a cell of 1 or 2.
    packets = _part_one(cohort)
    chosen = None
    for term in ("ICD10:I21", "ICD10:I48", "ICD10:E11", "ICD10:F32", "ICD10:J45"):
        for sex in ("MALE", "FEMALE"):
            having = sum(
                1
                for packet in packets.values()
                if packet["subject"]["sex"] == sex
                and term in {d["term"]["id"] for d in packet.get("diseases", [])}
            )
            if 0 < having < 3:
                chosen = term
    assert chosen is not None, "the cohort has no small stratum to test with"
    client = node_client()
    refused = client.post(
        "/analysis/datasets/part-1/frequencies",
        json={"strata": ["sex", chosen], "window": WINDOW},
    )
    assert refused.status_code == 403
    assert "nfilter.tab" in refused.json()["detail"]
    allowed = client.post(
        "/analysis/datasets/part-1/frequencies",
        json={"strata": ["sex"], "window": WINDOW},
    )
    assert allowed.status_code == 200
    assert min(allowed.json()["num_individuals"]) >= 3


def test_a_model_with_too_many_parameters_is_refused(node_client):
    # 4 parameters for 200 people: more than 0.01 per observation.
    client = node_client(disclosure_nfilter_glm="0.01")
    refused = client.post(
        "/analysis/datasets/part-1/glm",
        json={
            "model": "linear",
            "outcome": "age",
            "covariates": ["sex", "ICD10:I10"],
            "window": WINDOW,
        },
    )
    assert refused.status_code == 403
    assert "nfilter.glm" in refused.json()["detail"]


def test_a_factor_with_too_many_levels_is_refused(node_client):
    refused = node_client().post(
        "/analysis/datasets/part-1/frequencies",
        json={"strata": ["age"], "window": WINDOW},
    )
    assert refused.status_code == 403
    assert "nfilter.levels" in refused.json()["detail"]


def test_rare_variants_are_withheld_per_node(node_client, pooled, cohort):
    client = node_client(disclosure_min_minor_allele_count="7")
    answer = client.post(
        "/analysis/datasets/part-1/glm",
        json={
            "model": "linear",
            "outcome": "age",
            "covariates": ["sex"],
            "window": WINDOW,
        },
    ).json()
    index = {key: row for row, key in enumerate(pooled.keys)}
    columns = [pooled.samples.index(sample) for sample in cohort.samples[0]]
    here = pooled.dosages[:, columns]
    minor = np.minimum(here.sum(axis=1), 2 * here.shape[1] - here.sum(axis=1))
    assert answer["withheld"] and answer["variants"]
    assert all(minor[index[key]] < 7 for key in answer["withheld"])
    assert all(minor[index[key]] >= 7 for key in answer["variants"])
    assert decode(answer["xtx"], field="xtx").shape[0] == len(answer["variants"])


def test_rare_variants_are_withheld_from_the_federated_result(network, pooled, cohort):
    """A variant common in the pool but rare on one node is not in the result:
    its pooled estimate would not be exact without that node."""
    job = network.submit(
        {
            "analysis": "gwas",
            "datasets": ["part-1", "part-2", "part-3"],
            "phenotype": "age",
            "model": "linear",
            "covariates": ["sex"],
        }
    )
    assert network.wait(job["id"])["state"] == "COMPLETE"
    result = network.results(job["id"])
    reported = {
        f"{r['position']}:{r['reference']}:{r['alternate']}" for r in result["rows"]
    }
    per_node = []
    for samples in cohort.samples:
        columns = [pooled.samples.index(sample) for sample in samples]
        here = pooled.dosages[:, columns]
        per_node.append(
            np.minimum(here.sum(axis=1), 2 * len(columns) - here.sum(axis=1))
        )
    everywhere = np.min(per_node, axis=0) >= 5
    expected = {key for key, ok in zip(pooled.keys, everywhere, strict=True) if ok}
    assert reported == expected
    assert result["num_withheld"] == len(pooled.keys) - len(expected)


def test_a_caller_without_grants_gets_403_and_an_audit_row_on_every_node(network):
    job = network.submit(
        {
            "analysis": "summary",
            "datasets": ["part-1", "part-2", "part-3"],
            "variables": ["age"],
            "on_node_failure": "continue",
        },
        subject=STRANGER,
    )
    status = network.wait(job["id"])
    assert status["state"] == "EXECUTOR_ERROR"
    for dataset, task in status["tasks"].items():
        assert task["state"] == "EXECUTOR_ERROR", dataset
        assert "HTTP 403" in task["reason"] and "no grant" in task["reason"]
    for index, directory in enumerate(network.node_dirs, start=1):
        with open_node(directory) as node, node.session() as session:
            rows = session.scalars(
                select(AuditEntry).where(
                    AuditEntry.actor == STRANGER,
                    AuditEntry.dataset_id == f"part-{index}",
                    AuditEntry.outcome == "deny",
                )
            ).all()
        assert any(row.action.startswith("analyse") for row in rows), index


def test_a_window_over_the_limit_is_a_clear_400(node_client):
    client = node_client(analysis_max_window_variants="100")
    refused = client.post(
        "/analysis/datasets/part-1/tables",
        json={"outcome": "ICD10:I25.1", "window": WINDOW},
    )
    assert refused.status_code == 400
    assert "analysis_max_window_variants" in refused.json()["detail"]
    malformed = client.post(
        "/analysis/datasets/part-1/glm",
        json={"model": "probit", "outcome": "age", "window": WINDOW},
    )
    assert malformed.status_code == 400
    assert "model" in malformed.json()["detail"]


def test_an_empty_window_or_unknown_contig_is_an_empty_answer(node_client):
    client = node_client()
    for path, body in (
        ("frequencies", {"strata": ["sex"]}),
        ("tables", {"outcome": "ICD10:I25.1"}),
        ("glm", {"model": "linear", "outcome": "age", "covariates": ["sex"]}),
    ):
        answer = client.post(
            f"/analysis/datasets/part-1/{path}",
            json={**body, "window": {"contig": "22", "start": 1, "end": 100}},
        )
        assert answer.status_code == 200, (path, answer.text)
        assert answer.json()["variants"] == []


def test_quantiles_are_released_coarsened_and_refused_for_a_small_group(
    network, cohort, node_client
):
    job = network.submit(
        {
            "analysis": "summary",
            "datasets": ["part-1", "part-2", "part-3"],
            "variables": ["age"],
            "quantiles": True,
        }
    )
    assert network.wait(job["id"])["state"] == "COMPLETE"
    found = network.results(job["id"])["variables"]["age"]["quantiles"]
    settings = DisclosureSettings()
    sizes = []
    for number, dataset in enumerate(["part-1", "part-2", "part-3"]):
        ages = [
            float(
                json.loads(
                    (cohort.pool_dir / "phenopackets" / f"{sample}.json").read_text()
                )["subject"]["timeAtLastEncounter"]["age"]["iso8601duration"][1:-1]
            )
            for sample in cohort.samples[number]
        ]
        expected, _ = coarse_quantiles(settings, ages)
        assert found["per_dataset"][dataset] == expected
        sizes.append(len(ages))
    combined = np.average(
        [found["per_dataset"][d] for d in ["part-1", "part-2", "part-3"]],
        axis=0,
        weights=sizes,
    )
    np.testing.assert_allclose(found["combined"], combined, rtol=1e-12)
    # A node whose group is below nfilter.tab refuses the quantiles (and says
    # which filter), while the same summary without them is still answered.
    client = node_client(disclosure_nfilter_tab="1000")
    refused = client.post(
        "/analysis/datasets/part-1/summary",
        json={"variables": ["age"], "quantiles": True},
    )
    assert refused.status_code == 403
    assert "nfilter.tab" in refused.json()["detail"]
    plain = client.post(
        "/analysis/datasets/part-1/summary", json={"variables": ["age"]}
    )
    assert plain.status_code == 200 and "quantiles" not in plain.json()["age"]


def test_a_linkage_band_beyond_nfilter_glm_is_refused(node_client):
    client = node_client()
    layout = client.post(
        "/analysis/datasets/part-1/frequencies",
        json={"strata": [], "window": {"contig": "1", "start": 1, "end": 100_000}},
    ).json()
    keys = layout["variants"][:5]
    body = {
        "window": {"contig": "1", "start": 1, "end": 100_000},
        "variants": keys,
        "frequencies": [0.3] * len(keys),
    }
    fine = client.post(
        "/analysis/datasets/part-1/pca/linkage", json={**body, "band": 4}
    )
    assert fine.status_code == 200, fine.text
    assert decode(fine.json()["products"], field="products").shape == (5, 5)
    # 101 numbers of a Gram block per 200 people: more than nfilter.glm allows.
    refused = client.post(
        "/analysis/datasets/part-1/pca/linkage", json={**body, "band": 100}
    )
    assert refused.status_code == 403 and "nfilter.glm" in refused.json()["detail"]
