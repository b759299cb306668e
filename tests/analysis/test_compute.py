"""The node's computations on a real ``distributed.LocalCluster`` (worker
processes, the ``dask_scheduler`` setting) give the numbers of the in-process
threads, bit for bit; and the vectorised kernels equal their naive twins."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from distributed import LocalCluster
from fastapi.testclient import TestClient

from genomenode.analysis import statistics
from genomenode.analysis.codec import decode
from genomenode.app import create_app
from genomenode.store.node import open_node

from .conftest import RESEARCHER

BODY = {
    "model": "logistic",
    "outcome": "ICD10:I25.1",
    "covariates": ["sex", "age"],
    "window": {"contig": "1", "start": 1, "end": 2_000_000},
}


def _answer(directory) -> dict:
    with open_node(directory) as node:
        client = TestClient(
            create_app(node, base_url="http://testserver", dev_identity_provider=True)
        )
        token = client.post("/dev-idp/token", json={"subject": RESEARCHER}).json()
        response = client.post(
            "/analysis/datasets/part-1/glm",
            json=BODY,
            headers={"Authorization": f"Bearer {token['access_token']}"},
        )
        assert response.status_code == 200, response.text
        return response.json()


def test_a_local_cluster_gives_the_in_process_numbers(
    node_templates, tmp_path, monkeypatch
):
    directory = tmp_path / "node"
    shutil.copytree(node_templates[0], directory)
    in_process = _answer(directory)
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        monkeypatch.setenv("GENOMENODE_DASK_SCHEDULER", cluster.scheduler_address)
        with cluster.get_client() as client:
            distributed = _answer(directory)
            # The blocks were read by the cluster's workers, not in this process.
            prefixes = client.run_on_scheduler(
                lambda dask_scheduler: list(dask_scheduler.task_prefixes)
            )
            assert "read_block" in prefixes
    assert distributed["variants"] == in_process["variants"]
    for name in ("information", "score", "log_likelihood", "num_observations"):
        np.testing.assert_array_equal(
            decode(distributed[name], field=name), decode(in_process[name], field=name)
        )


@pytest.mark.parametrize("seed", [1, 2])
def test_kernels_equal_their_naive_twins(seed):
    generator = np.random.default_rng(seed)
    samples, variants = 80, 12
    dosages = generator.integers(0, 3, size=(variants, samples)).astype(float)
    dosages[generator.random(dosages.shape) < 0.05] = np.nan
    covariates = np.column_stack(
        [np.ones(samples), generator.normal(size=samples), generator.random(samples)]
    )
    outcome = (generator.random(samples) < 0.4).astype(float)
    beta = generator.normal(scale=0.3, size=(variants, 4))
    fast = statistics.logistic_statistics(dosages, covariates, outcome, beta)
    slow = statistics.naive_logistic_statistics(dosages, covariates, outcome, beta)
    for name in fast:
        np.testing.assert_allclose(fast[name], slow[name], rtol=1e-12, atol=1e-12)
    fast = statistics.linear_statistics(dosages, covariates, outcome)
    slow = statistics.naive_linear_statistics(dosages, covariates, outcome)
    for name in fast:
        np.testing.assert_allclose(fast[name], slow[name], rtol=1e-12, atol=1e-12)


def test_the_log_likelihood_is_left_out_only_when_asked():
    generator = np.random.default_rng(5)
    dosages = generator.integers(0, 3, size=(6, 40)).astype(np.float32)
    covariates = np.column_stack([np.ones(40), generator.normal(size=40)])
    outcome = (generator.random(40) < 0.5).astype(float)
    beta = generator.normal(scale=0.2, size=(6, 3))
    full = statistics.logistic_statistics(dosages, covariates, outcome, beta)
    lean = statistics.logistic_statistics(
        dosages, covariates, outcome, beta, log_likelihood=False
    )
    assert "log_likelihood" in full and "log_likelihood" not in lean
    for name in lean:
        np.testing.assert_array_equal(lean[name], full[name])
    slow = statistics.naive_logistic_statistics(
        dosages.astype(float), covariates, outcome, beta
    )
    for name in full:
        np.testing.assert_allclose(full[name], slow[name], rtol=1e-12, atol=1e-12)


def test_the_firth_term_equals_its_naive_twin():
    generator = np.random.default_rng(6)
    dosages = generator.integers(0, 3, size=(7, 50)).astype(float)
    dosages[generator.random(dosages.shape) < 0.05] = np.nan
    covariates = np.column_stack(
        [np.ones(50), generator.normal(size=50), generator.random(50)]
    )
    outcome = (generator.random(50) < 0.4).astype(float)
    beta = generator.normal(scale=0.3, size=(7, 4))
    inverse = generator.normal(size=(7, 4, 4))
    inverse = inverse @ inverse.transpose(0, 2, 1) + np.eye(4)
    fast = statistics.logistic_statistics(
        dosages, covariates, outcome, beta, inverse=inverse
    )["firth_score"]
    slow = statistics.naive_firth_score(dosages, covariates, outcome, beta, inverse)
    np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("missing", [False, True])
def test_the_first_round_at_one_shared_start_equals_the_naive_twin(missing):
    # Every variant at (null model, 0): the kernel's shortcut (one μ for all).
    generator = np.random.default_rng(7)
    dosages = generator.integers(0, 3, size=(9, 60)).astype(np.float32)
    if missing:
        dosages[generator.random(dosages.shape) < 0.05] = np.nan
    covariates = np.column_stack(
        [np.ones(60), generator.normal(size=60), generator.random(60)]
    )
    outcome = (generator.random(60) < 0.4).astype(float)
    beta = np.tile(np.append(generator.normal(scale=0.3, size=3), 0.0), (9, 1))
    fast = statistics.logistic_statistics(
        dosages, covariates, outcome, beta, log_likelihood=False
    )
    slow = statistics.naive_logistic_statistics(
        dosages.astype(float), covariates, outcome, beta
    )
    for name in fast:
        assert fast[name].shape == slow[name].shape
        np.testing.assert_allclose(fast[name], slow[name], rtol=1e-12, atol=1e-12)


def test_a_round_of_several_windows_answers_as_one_round_each(node_templates, tmp_path):
    directory = tmp_path / "node"
    shutil.copytree(node_templates[0], directory)
    first = {"contig": "1", "start": 1, "end": 400_000}
    second = {"contig": "1", "start": 400_000, "end": 2_000_000}
    model = {
        "model": "logistic",
        "outcome": "ICD10:I25.1",
        "covariates": ["sex", "age"],
        "start": [-1.0, 0.1, 0.01],
        "log_likelihood": False,
    }
    with open_node(directory) as node:
        client = TestClient(
            create_app(node, base_url="http://testserver", dev_identity_provider=True)
        )
        token = client.post("/dev-idp/token", json={"subject": RESEARCHER}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}

        def post(body: dict) -> dict:
            response = client.post(
                "/analysis/datasets/part-1/glm", json=body, headers=headers
            )
            assert response.status_code == 200, response.text
            return response.json()

        alone = post({**model, "window": second})
        named = alone["variants"][:7]
        beta = np.random.default_rng(8).normal(scale=0.1, size=(7, 4))
        later = post(
            {**model, "window": second, "variants": named, "beta": beta.tolist()}
        )
        opening = post({**model, "window": first})
        both = post(
            {
                **model,
                "parts": [{"window": first}, {"window": second, "variants": named}],
                "beta": beta.tolist(),
            }
        )
        assert both["variants"] == [opening["variants"], named]
        assert both["withheld"] == [opening["withheld"], later["withheld"]]
        for name in ("information", "score", "num_observations"):
            np.testing.assert_array_equal(
                decode(both[name], field=name),
                np.concatenate(
                    [decode(opening[name], field=name), decode(later[name], field=name)]
                ),
            )
        for wrong, field in (
            ({"parts": [{"window": first}] * 9}, "parts"),
            ({"parts": [{"window": first}], "window": first}, "parts"),
            (
                {"parts": [{"window": second, "variants": named}], "beta": [[0.0] * 4]},
                "beta",
            ),
        ):
            response = client.post(
                "/analysis/datasets/part-1/glm",
                json={**model, **wrong},
                headers=headers,
            )
            assert response.status_code == 400, response.text
            assert field in response.text
