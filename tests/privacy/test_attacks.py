"""The published membership attacks succeed against an unprotected node.

``disclosure_enabled=false`` leaves what a node did before disclosure control:
granularity by security level and the floor of 5 on small counts. Against it the
Shringarpure & Bustamante test (yes/no answers) and Homer's test (counts of
carriers) detect members at >= 90 % power for a 5 % false-positive rate, over HTTP
to a real node process and through a network of three nodes. These are the
baselines the defaults must bring down (tests/privacy/test_defaults.py).
"""

from __future__ import annotations

import httpx2
import pytest

from genomenode.privacy.homer import homer_attack
from genomenode.privacy.oracle import BeaconOracle
from genomenode.privacy.sb import sb_attack

from .conftest import MEMBERS, UNPROTECTED, serve_network, serve_node

pytestmark = pytest.mark.slow

SB_QUERIES = 10
HOMER_QUERIES = 2000


@pytest.fixture(scope="module")
def unprotected_node(attack_cohort):
    with serve_node(attack_cohort.single_node, UNPROTECTED) as url:
        yield url


@pytest.fixture(scope="module")
def unprotected_network(attack_cohort, tmp_path_factory):
    root = tmp_path_factory.mktemp("network-unprotected")
    with serve_network(attack_cohort.trio_nodes, UNPROTECTED, root) as url:
        yield url


def _sb(url, cohort):
    with httpx2.Client(timeout=60) as client:
        return sb_attack(
            BeaconOracle(client, url, workers=4),
            cohort.targets,
            cohort.is_member,
            cohort.reference,
            num_individuals=MEMBERS,
            queries=SB_QUERIES,
        )


def _homer(url, cohort):
    with httpx2.Client(timeout=60) as client:
        return homer_attack(
            BeaconOracle(client, url, workers=4),
            cohort.targets,
            cohort.is_member,
            cohort.reference,
            queries=HOMER_QUERIES,
        )


@pytest.mark.parametrize("where", ["node", "network"])
def test_sb_detects_members_of_an_unprotected_beacon(where, attack_cohort, request):
    url = request.getfixturevalue(f"unprotected_{where}")
    result = _sb(url, attack_cohort)
    print(where, result.as_dict())
    assert result.power.power >= 0.9
    assert result.power.observed_fpr <= 0.05
    assert result.num_refused == 0


@pytest.mark.parametrize("where", ["node", "network"])
def test_homer_detects_members_through_unprotected_counts(
    where, attack_cohort, request
):
    url = request.getfixturevalue(f"unprotected_{where}")
    result = _homer(url, attack_cohort)
    print(where, result.as_dict())
    assert result.power.power >= 0.9
    assert result.power.observed_fpr <= 0.05
    assert result.num_queries == HOMER_QUERIES
