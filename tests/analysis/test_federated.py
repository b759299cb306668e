"""The coordinator's arithmetic on its own: stacked solves with a singular
variant among them, and a logistic fit run off to separation."""

from __future__ import annotations

import numpy as np

from genomenode.analysis import federated, statistics


def test_a_singular_variant_gives_nan_and_the_others_their_solution():
    generator = np.random.default_rng(1)
    matrices = generator.normal(size=(20, 4, 4))
    matrices = matrices @ matrices.transpose(0, 2, 1) + np.eye(4)
    vectors = generator.normal(size=(20, 4))
    matrices[3] = 0.0
    beta, change = federated.logistic_step(np.zeros((20, 4)), matrices, vectors)
    assert np.isnan(beta[3]).all() and np.isnan(change[3])
    others = np.delete(np.arange(20), 3)
    np.testing.assert_allclose(
        np.einsum("vij,vj->vi", matrices[others], beta[others]), vectors[others]
    )
    _, se, _ = federated.logistic_wald(beta, matrices)
    assert np.isnan(se[3]) and np.isfinite(se[others]).all()


def test_complete_separation_runs_off_past_the_separation_line():
    # Every carrier a case, every non-carrier a control: no finite optimum.
    samples = 60
    dosage = np.repeat([0.0, 1.0], samples // 2)[None, :]
    outcome = dosage[0].copy()
    covariates = np.ones((samples, 1))
    beta = np.zeros((1, 2))
    for _ in range(federated.MAX_ITERATIONS):
        found = statistics.logistic_statistics(dosage, covariates, outcome, beta)
        beta, _ = federated.logistic_step(beta, found["information"], found["score"])
    assert abs(beta[0, -1]) > federated.SEPARATION_BETA
