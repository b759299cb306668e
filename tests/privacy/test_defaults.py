"""The same attacks fail against a node's default settings, and discovery still works.

With disclosure control on (the default: budgets per identity, rare alleles
answered as absent, noisy thresholds and rounded, noisy counts; see
docs/privacy.md), the attacks of tests/privacy/test_attacks.py fall to at most
10 % power at a 5 % false-positive rate, on one node and through a network of
three; one attacker stays within its budget (what it is refused is counted), and
an attacker with a fresh address for every target fares no better. Variants with
an allele frequency of at least 1 % still answer as they did without protection.
"""

from __future__ import annotations

import contextlib

import httpx2
import numpy as np
import pytest

from genomenode.ingest.pipeline import ingest
from genomenode.privacy.cohort import read_genotypes, simulate_split_cohort
from genomenode.privacy.homer import homer_attack
from genomenode.privacy.oracle import BeaconOracle
from genomenode.privacy.sb import sb_attack
from genomenode.store.node import init_node

from ..conftest import in_process_workers
from .conftest import (
    DEFAULTS,
    MEMBERS,
    UNPROTECTED,
    loopback_clients,
    serve_network,
    serve_node,
)
from .test_attacks import HOMER_QUERIES, SB_QUERIES

pytestmark = pytest.mark.slow

UTILITY_MEMBERS = 500
UTILITY_VARIANTS = 300


@pytest.fixture(scope="module")
def default_node(attack_cohort):
    with serve_node(attack_cohort.single_node, DEFAULTS) as url:
        yield url


@pytest.fixture(scope="module")
def default_network(attack_cohort, tmp_path_factory):
    root = tmp_path_factory.mktemp("network-defaults")
    with serve_network(attack_cohort.trio_nodes, DEFAULTS, root) as url:
        yield url


@pytest.mark.parametrize("where", ["node", "network"])
def test_sb_fails_against_the_defaults_within_the_budget(where, attack_cohort, request):
    url = request.getfixturevalue(f"default_{where}")
    with httpx2.Client(timeout=60) as client:
        result = sb_attack(
            BeaconOracle(client, url, workers=4),
            attack_cohort.targets,
            attack_cohort.is_member,
            attack_cohort.reference,
            num_individuals=MEMBERS,
            queries=SB_QUERIES,
        )
    print(where, result.as_dict())
    assert result.power.power <= 0.1
    if where == "node":
        # The budget ran out, said so, and the attacker stopped asking.
        assert result.num_refused > 0
        assert result.num_unsent > 0


def test_sb_fails_against_the_defaults_with_an_address_per_target(
    attack_cohort, default_node
):
    with contextlib.ExitStack() as stack:
        clients = loopback_clients(len(attack_cohort.is_member), stack)
        result = sb_attack(
            [BeaconOracle(client, default_node, workers=4) for client in clients],
            attack_cohort.targets,
            attack_cohort.is_member,
            attack_cohort.reference,
            num_individuals=MEMBERS,
            queries=SB_QUERIES,
        )
    print("sybil", result.as_dict())
    assert result.power.power <= 0.1


@pytest.mark.parametrize("where", ["node", "network"])
def test_homer_fails_against_the_defaults_within_the_budget(
    where, attack_cohort, request
):
    url = request.getfixturevalue(f"default_{where}")
    with httpx2.Client(timeout=60) as client:
        result = homer_attack(
            BeaconOracle(client, url, workers=4),
            attack_cohort.targets,
            attack_cohort.is_member,
            attack_cohort.reference,
            queries=HOMER_QUERIES,
        )
    print(where, result.as_dict())
    assert result.power.power <= 0.1


@pytest.fixture(scope="module")
def utility_node(tmp_path_factory):
    """A beacon of 500 people (frequencies of 1 % are 10 alleles or more)."""
    root = tmp_path_factory.mktemp("utility")
    split = simulate_split_cohort(
        root / "cohort",
        members=UTILITY_MEMBERS,
        non_members=0,
        reference=0,
        length=300_000,
        seed=21,
    )
    with (
        in_process_workers(),
        init_node(root / "node", node_id="utility", country="DE") as node,
    ):
        ingest(node, split.dataset_yamls[0])
    members = read_genotypes(split.dataset_yamls[0].parent / "attack.vcf.gz")
    return root / "node", members


def test_discovery_of_variants_above_one_percent_is_unchanged(utility_node):
    node_dir, members = utility_node
    common = np.flatnonzero(members.frequencies() >= 0.01)
    rng = np.random.default_rng(5)
    chosen = np.sort(rng.choice(common, size=min(UTILITY_VARIANTS, common.size)))
    keys = members.variant_keys()
    variants = [keys[row] for row in chosen]
    answers = {}
    for name, environment in (("off", UNPROTECTED), ("defaults", DEFAULTS)):
        with serve_node(node_dir, environment) as url, contextlib.ExitStack() as stack:
            # Legitimate discovery by several researchers, each within a budget.
            clients = loopback_clients(6, stack)
            found: list[bool | None] = []
            for client, run in zip(
                clients, np.array_split(np.arange(len(variants)), 6), strict=True
            ):
                oracle = BeaconOracle(client, url, workers=4)
                found += oracle.exists_many([variants[index] for index in run])
            answers[name] = found
    assert all(answer is True for answer in answers["off"])
    same = np.mean(
        [a == b for a, b in zip(answers["off"], answers["defaults"], strict=True)]
    )
    print(f"utility: {same:.1%} of {len(variants)} answers unchanged")
    assert same >= 0.95
