"""The layer's entry points: who gets the truth, the rare-allele policy, consistent
noise, the budget, the mechanisms' distributions, failing closed."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from genomenode.disclosure.control import Asked, DisclosureControl
from genomenode.disclosure.settings import DisclosureSettings


def _control(node, **settings) -> DisclosureControl:
    # A fixed key: the draws, and so these tests, are reproducible.
    (node.config.node_dir / "keys" / "disclosure.key").write_text("3c" * 32)
    values = {
        "disclosure_epsilon_budget": 1e12,
        "disclosure_anonymous_epsilon_budget": 1e12,
        **settings,
    }
    return DisclosureControl.for_node(
        values, node.engine, node.config.node_dir / "keys"
    )


def _asked(question="q", kind="registered", **fields) -> Asked:
    return Asked(
        identity="ip:192.0.2.1",
        caller_kind=kind,
        dataset_id="d",
        security_level="REGISTERED",
        canonical=question,
        **fields,
    )


def test_granted_callers_get_the_truth(sqlite_node):
    control = _control(sqlite_node)
    asked = _asked(kind="granted")
    assert control.release_boolean(asked, 1, allele_count=1, allele_number=800).value
    assert control.release_frequency(asked, 1, 800).value == 1 / 800
    # A count of people below records keeps the floor, as it always did.
    assert control.release_count(asked, 3).value == 5
    assert control.release_count(asked, 37).value == 37


def test_rare_alleles_are_absent_below_records(sqlite_node):
    control = _control(sqlite_node)
    for kind in ("anonymous", "registered"):
        asked = _asked(kind=kind)
        released = control.release_boolean(asked, 3, allele_count=3, allele_number=800)
        assert (released.value, released.withheld) == (False, "rare-allele")
        assert (
            control.release_count(asked, 3, allele_count=3, allele_number=800).value
            == 0
        )
        assert control.release_frequency(asked, 3, 800).value is None
    common = control.release_boolean(_asked(), 40, allele_count=80, allele_number=800)
    assert common.value is True


def test_repeated_questions_get_the_same_answer(sqlite_node):
    control = _control(sqlite_node)
    answers = {control.release_count(_asked("same"), 123).value for _ in range(20)}
    assert len(answers) == 1
    # Another version of the data: another draw (possibly the same value).
    values = {
        control.release_count(_asked("same", generation=g), 123).value
        for g in range(30)
    }
    assert len(values) > 1


def test_counts_are_noisy_rounded_and_floored(sqlite_node):
    control = _control(sqlite_node)
    released = [control.release_count(_asked(f"q{i}"), 100).value for i in range(2000)]
    assert all(value % 5 == 0 for value in released)
    mean = sum(released) / len(released)
    # Laplace(2) then rounding to 5: unbiased, variance ≈ 8 + 25/12.
    variance = sum((v - mean) ** 2 for v in released) / len(released)
    assert abs(mean - 100) < 0.3
    assert 7 < variance < 13
    small = [control.release_count(_asked(f"s{i}"), 2).value for i in range(200)]
    assert all(value % 5 == 0 for value in small)
    # Laplace(2) beyond +8: 1.7 % of draws.
    assert sum(value <= 10 for value in small) >= 190
    # A zero over the whole dataset stays zero; over a filtered subset it is noisy.
    assert control.release_count(_asked(filtered=False), 0).value == 0
    zeros = [control.release_count(_asked(f"z{i}"), 0).value for i in range(500)]
    assert 0 < sum(1 for value in zeros if value) < 250


def test_noisy_threshold_booleans(sqlite_node):
    control = _control(sqlite_node)
    asked = dataclasses.replace
    common = [
        control.release_boolean(asked(_asked(f"c{i}"), filtered=False), 30).value
        for i in range(1000)
    ]
    assert sum(common) >= 995
    empty = [control.release_boolean(_asked(f"e{i}"), 0).value for i in range(2000)]
    # Laplace(2) ≥ 10 (twice the floor over a filtered subset): 0.34 %.
    assert sum(empty) / len(empty) < 0.01


def test_randomized_response_flips_at_the_calibrated_rate(sqlite_node):
    control = _control(sqlite_node, disclosure_boolean_mechanism="randomized-response")
    answers = [control.release_boolean(_asked(f"r{i}"), 7).value for i in range(20_000)]
    flipped = answers.count(False) / len(answers)
    expected = 1 / (1 + math.exp(0.5))
    assert abs(flipped - expected) < 4 * math.sqrt(expected * (1 - expected) / 20_000)


def test_the_budget_withholds_and_says_when(sqlite_node):
    control = _control(sqlite_node, disclosure_epsilon_budget=1.0)
    first = control.release_count(_asked(), 50)
    assert first.withheld is None and first.epsilon == 0.5
    control.release_count(_asked("other"), 50)
    refused = control.release_count(_asked("third"), 50)
    assert (refused.value, refused.withheld) == (None, "budget")
    assert refused.retry_after > 0
    # A rare (but not hidden) allele costs more: ceil(20 / 12) = 2 units.
    fresh = dataclasses.replace(_asked(), identity="ip:192.0.2.2")
    assert control.release_boolean(fresh, 6, allele_count=12).epsilon == 1.0


def test_answers_about_people_in_small_datasets_cost_more(sqlite_node):
    """Each person is 1/N of an answer about N people: below
    disclosure_small_dataset_individuals (100) an answer costs ceil(100 / N)
    units, so a 20-person dataset gives a caller a fifth of the answers; presence
    answers select nobody and are not weighted."""
    control = _control(sqlite_node, disclosure_epsilon_budget=5.0)

    def asked(question: str, individuals: int | None, number: int = 1) -> Asked:
        return dataclasses.replace(
            _asked(question), identity=f"ip:192.0.2.{number}", individuals=individuals
        )

    assert control.release_count(asked("a", 20), 50).epsilon == 2.5
    assert control.release_count(asked("b", 20), 50).epsilon == 2.5
    assert control.release_count(asked("c", 20), 50).withheld == "budget"
    assert control.release_count(asked("d", 1000, 2), 50).epsilon == 0.5
    assert control.release_count(asked("e", None, 2), 50).epsilon == 0.5
    # The larger of the two weights: ceil(20 / 2) = 10 units for AC 2.
    assert control.release_boolean(asked("f", 20, 3), 6, allele_count=2).epsilon == 5
    presence = control.release_presence(asked("g", 20, 4), 1, allele_count=500)
    assert presence.epsilon == 0.05
    off = _control(sqlite_node, disclosure_small_dataset_individuals=0)
    assert off.release_count(asked("h", 20, 5), 50).epsilon == 0.5


def test_many_anonymous_addresses_share_one_pool(sqlite_node):
    """Addresses are cheap: anonymous counts also spend a pool all anonymous callers
    share, so a thousand addresses get no more than the pool allows."""
    control = _control(
        sqlite_node,
        disclosure_epsilon_budget=10.0,
        disclosure_anonymous_epsilon_budget=2.0,
    )

    def from_address(number: int, kind: str = "anonymous") -> Asked:
        return dataclasses.replace(
            _asked(f"q{number}", kind=kind), identity=f"ip:198.51.100.{number}"
        )

    answered = [
        control.release_count(from_address(number), 50).withheld
        for number in range(1, 11)
    ]
    assert answered == [None] * 4 + ["budget"] * 6  # 2.0 / 0.5 per count
    # Registered callers have budgets of their own, and presence answers leave the
    # pool alone (nobody can spend a public Beacon's discovery for everyone).
    assert control.release_count(from_address(11, "registered"), 50).withheld is None
    presence = control.release_presence(from_address(12), 1, allele_count=500)
    assert presence.withheld is None
    # The operator's attack tool gives its run a pool of its own.
    control.anonymous_pool = "anonymous:privacy-attack-run"
    assert control.release_count(from_address(13), 50).withheld is None


def test_totals_are_published_facts_above_the_floor(sqlite_node):
    control = _control(sqlite_node, disclosure_epsilon_budget=1.0)
    assert [control.release_total(n).value for n in (0, 1, 4, 5, 2504)] == [
        0,
        5,
        5,
        5,
        2504,
    ]
    assert control.release_total(3).adjusted
    # No budget is spent on totals.
    assert all(control.release_total(3).epsilon == 0 for _ in range(50))
    off = _control(sqlite_node, disclosure_enabled=False)
    assert off.release_total(3).value == 3


def test_presence_spends_little(sqlite_node):
    control = _control(sqlite_node, disclosure_epsilon_budget=1.0)
    answers = [
        control.release_presence(_asked(), 1, allele_count=500) for _ in range(21)
    ]
    assert [a.withheld for a in answers].count("budget") == 1


def test_the_layer_off_keeps_only_the_floor(sqlite_node):
    control = _control(sqlite_node, disclosure_enabled=False)
    assert control.release_count(_asked(), 3).value == 5
    assert control.release_count(_asked(), 123).value == 123
    assert control.release_boolean(_asked(), 1, allele_count=1, allele_number=800).value
    assert DisclosureControl.off(3).release_count(_asked(), 2).value == 3
    assert DisclosureControl.off().check_subset(4).withheld == "subset"
    assert DisclosureControl.off().check_subset(5).withheld is None


def test_errors_withhold(sqlite_node, monkeypatch):
    control = _control(sqlite_node)

    def broken(*args, **kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(control.budgets, "charge", broken)
    for released in (
        control.release_count(_asked(), 50),
        control.release_boolean(_asked(), 50),
        control.release_frequency(_asked(), 50, 800),
        control.release_presence(_asked(), 1),
    ):
        assert (released.value, released.withheld) == (None, "error")


@pytest.mark.parametrize("enabled", [True, False])
def test_subset_rule(sqlite_node, enabled):
    control = _control(
        sqlite_node, disclosure_enabled=enabled, disclosure_nfilter_subset=8
    )
    least = 8 if enabled else 5
    assert control.check_subset(least - 1).withheld == "subset"
    assert control.check_subset(least).withheld is None
    assert control.check_subset(None).withheld is None
    assert control.check_subset(0).withheld is None
    assert DisclosureSettings().min_subset == 5


@pytest.mark.parametrize("kind", ["anonymous", "registered", "granted"])
def test_hides_many_equals_hides_one_at_a_time(sqlite_node, kind):
    control = _control(sqlite_node)
    counts = np.array([0, 1, 3, 9, 10, 11, 40, 80, 5000, 2])
    numbers = np.array([800, 800, 800, 800, 800, 4000, 10_000, 800, 10_000, 0])
    asked = _asked(kind=kind)
    assert control.hides_many(asked, counts, numbers).tolist() == [
        control.hides(asked, int(c), int(n))
        for c, n in zip(counts, numbers, strict=True)
    ]
