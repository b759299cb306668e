"""The attacks' statistics against their naive twins, and what they must mean."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genomenode.privacy.statistics import (
    beta_from_frequencies,
    homer_statistic,
    naive_homer_statistic,
    naive_power_at_fpr,
    naive_sb_statistic,
    power_at_fpr,
    sb_no_probabilities,
    sb_statistic,
)

probabilities = st.floats(min_value=1e-9, max_value=1 - 1e-9)


@given(st.lists(st.tuples(st.booleans(), probabilities, probabilities), max_size=40))
@settings(max_examples=200, deadline=None)
def test_sb_statistic_matches_its_twin(queries):
    answers = [answer for answer, _, _ in queries]
    null = [d0 for _, d0, _ in queries]
    alternative = [d1 for _, _, d1 in queries]
    fast = sb_statistic(np.array(answers), np.array(null), np.array(alternative))
    assert fast == pytest.approx(
        naive_sb_statistic(answers, null, alternative), rel=1e-9, abs=1e-9
    )


def test_sb_no_probabilities_follow_the_paper():
    # D_N = B(a, b + 2N) / B(a, b); with a = b = 1 (uniform f) it is 1 / (2N + 1).
    null, alternative = sb_no_probabilities(
        10, beta=(1.0, 1.0), num_queries=3, error_rate=1e-3
    )
    assert null == pytest.approx([1 / 21] * 3)
    assert alternative == pytest.approx([1e-3 / 19] * 3)
    null, alternative = sb_no_probabilities(
        10, frequencies=np.array([0.0, 0.1]), error_rate=1e-3
    )
    assert null == pytest.approx([1.0, 0.9**20])
    assert alternative == pytest.approx([1e-3, 1e-3 * 0.9**18])
    with pytest.raises(ValueError):
        sb_no_probabilities(10)


def test_a_yes_to_a_rare_allele_points_to_membership():
    null, alternative = sb_no_probabilities(100, beta=(0.1, 2.0), num_queries=5)
    all_yes = sb_statistic(np.ones(5, dtype=bool), null, alternative)
    one_no = sb_statistic(np.array([True] * 4 + [False]), null, alternative)
    assert all_yes > 0 > one_no


def test_beta_from_frequencies_recovers_the_moments():
    rng = np.random.default_rng(1)
    a, b = beta_from_frequencies(rng.beta(0.5, 4.0, size=200_000))
    assert a == pytest.approx(0.5, rel=0.05)
    assert b == pytest.approx(4.0, rel=0.05)
    assert beta_from_frequencies(np.array([0.2, 0.2])) == (1.0, 1.0)


@given(
    st.integers(min_value=1, max_value=4),
    st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=1),
            st.floats(min_value=0, max_value=1),
            st.booleans(),
        ),
        min_size=0,
        max_size=30,
    ),
    st.data(),
)
@settings(max_examples=150, deadline=None)
def test_homer_statistic_matches_its_twin(num_targets, snps, data):
    mixture = np.array([math.nan if gap else mix for mix, _, gap in snps])
    reference = np.array([pop for _, pop, _ in snps])
    target = np.array(
        data.draw(
            st.lists(
                st.lists(
                    st.sampled_from([0.0, 0.5, 1.0]),
                    min_size=len(snps),
                    max_size=len(snps),
                ),
                min_size=num_targets,
                max_size=num_targets,
            )
        )
    ).reshape(num_targets, len(snps))
    fast = homer_statistic(target, mixture, reference)
    for row, value in zip(target, fast, strict=True):
        expected = naive_homer_statistic(list(row), list(mixture), list(reference))
        assert value == pytest.approx(expected, rel=1e-7, abs=1e-7)


def test_homer_statistic_finds_who_is_in_the_mixture():
    rng = np.random.default_rng(3)
    frequencies = rng.uniform(0.05, 0.5, size=3000)
    people = (rng.random((60, 3000)) < frequencies).astype(float)
    panel = (rng.random((400, 3000)) < frequencies).mean(axis=0)
    mixture = people[:20].mean(axis=0)
    scores = homer_statistic(people, mixture, panel)
    assert scores[:20].min() > scores[20:].max()


@given(
    st.lists(st.integers(-5, 5), min_size=1, max_size=30),
    st.lists(st.integers(-5, 5), min_size=1, max_size=60),
    st.sampled_from([0.0, 0.05, 0.1, 0.5]),
)
@settings(max_examples=200, deadline=None)
def test_power_at_fpr_matches_its_twin(members, controls, fpr):
    result = power_at_fpr(np.array(members), np.array(controls), fpr)
    power, observed = naive_power_at_fpr(members, controls, fpr)
    assert (result.power, result.observed_fpr) == pytest.approx((power, observed))
    assert result.observed_fpr <= fpr + 1e-9


def test_power_is_one_when_members_stand_apart():
    result = power_at_fpr(np.arange(10, 20), np.arange(0, 100) / 10, 0.05)
    assert result.power == 1.0
    assert result.observed_fpr == pytest.approx(0.05)
