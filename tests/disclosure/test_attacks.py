"""The three differencing attacks of issue 12 over HTTP against one node.

Each attack runs against the node's defaults and fails, and against the same node
with ``disclosure_enabled: false`` and succeeds (so each test can fail):

1. filter differencing on REGISTERED counts recovers no count below the floor;
2. one-person isolation decides the person's carrier status no better than an
   attacker without data within the default budget; with an unlimited budget
   (noise and the rare-allele policy alone) the advantage stays below 0.25 but is
   not chance (127–132 of 200 right, p ≈ 0.01–0.04): the budget is what holds;
3. anonymous boolean differencing on PUBLIC data learns nothing of the two oldest
   people's rare variants.

Statistical criterion (attacks 2 and 3): the one-sided binomial test of the
attacker's correct decisions against an attacker who always guesses the more
common truth has p > 0.01, and the advantage (true-positive minus false-positive
rate) is below 0.25 (at ε = 0.5 per answer a pair of answers cannot give more
than tanh(ε) ≈ 0.46, :mod:`docs/privacy.md`). The disclosure key is fixed, so
the outcome is reproducible.
"""

from __future__ import annotations

import shutil

import pytest
from fastapi.testclient import TestClient

from genomenode.app import create_app
from genomenode.config import NodeConfig
from genomenode.ingest.pipeline import ingest
from genomenode.store.node import Node, init_node

from ..conftest import in_process_workers
from . import attacks
from .cohort import NUM_COMMON, NUM_RARE, build, write_description

REGISTERED = "attack-registered"
PUBLIC = "attack-public"
BASE = "http://testserver"
#: A fixed disclosure key: the noise, and so the outcome, is reproducible.
FIXED_KEY = "5a" * 32


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    root = tmp_path_factory.mktemp("attacked")
    cohort = build(root / REGISTERED)
    shutil.copytree(root / REGISTERED, root / PUBLIC)
    with in_process_workers():
        registered = write_description(root / REGISTERED, REGISTERED, "REGISTERED")
        public = write_description(root / PUBLIC, PUBLIC, "PUBLIC")
        node = init_node(root / "node", node_id="fi-node", country="FI")
        ingest(node, registered)
        ingest(node, public)
    (node.config.node_dir / "keys" / "disclosure.key").write_text(FIXED_KEY + "\n")
    node.cohort = cohort  # type: ignore[attr-defined]
    yield node
    node.close()


def _with_settings(node: Node, **settings) -> Node:
    """The same node directory (database, keys) with some settings changed."""
    config = node.config
    return Node(NodeConfig(config.node_dir, {**config.values, **settings}))


def _client(node: Node, **settings):
    app = create_app(
        _with_settings(node, **settings), base_url=BASE, dev_identity_provider=True
    )
    return TestClient(app)


def _post(client: TestClient, headers: dict[str, str] | None = None):
    def post(path, body):
        return client.post(path, json=body, headers=headers or {})

    return post


def _registered(client: TestClient, subject: str) -> dict[str, str]:
    response = client.post("/dev-idp/token", json={"subject": subject})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _fresh_budget(node: Node) -> None:
    with node.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM disclosure_budgets")


def test_filter_differencing_recovers_a_count_below_the_floor_without_defences(
    attacked,
):
    cohort = attacked.cohort
    with _client(attacked, disclosure_enabled=False) as client:
        post = _post(client, _registered(client, "attacker-1"))
        estimates = attacks.filter_differencing(post, dataset=REGISTERED)
    truth = {disease: cohort.old_count(disease) for disease in estimates}
    assert all(0 < value < 5 for value in truth.values())
    assert estimates == truth


def test_filter_differencing_recovers_no_count_below_the_floor(attacked):
    cohort = attacked.cohort
    _fresh_budget(attacked)
    with _client(
        attacked,
        disclosure_epsilon_budget=1e12,
        disclosure_anonymous_epsilon_budget=1e12,
    ) as client:
        post = _post(client, _registered(client, "attacker-1"))
        estimates = attacks.filter_differencing(post, dataset=REGISTERED)
        # Every spelling of a question that selects the same people gets the
        # same answer: averaging rewordings removes no noise.
        spellings = [
            [{"id": "ICD10:I10"}, {"id": "age", "operator": "<", "value": "86"}],
            [{"id": "age", "operator": "<", "value": "86"}, {"id": "ICD10:I10"}],
            [{"id": "ICD10:I10"}, {"id": "age", "operator": "<=", "value": "85"}],
            [{"id": "ICD10:I10"}, {"id": "age", "operator": "<", "value": "85.5"}],
        ]
        answers = {
            attacks.count(post, filters, dataset=REGISTERED) for filters in spellings
        }
    assert len(answers) == 1
    assert all(value is not None for value in estimates.values())
    for disease, estimate in estimates.items():
        true_count = cohort.old_count(disease)
        assert 0 < true_count < 5
        # Released counts are multiples of 5 (or the floor): differences too.
        assert estimate != true_count, disease
        assert estimate % 5 == 0


def test_isolation_decides_carrier_status_without_defences(attacked):
    with _client(attacked, disclosure_enabled=False) as client:
        post = _post(client, _registered(client, "attacker-2"))
        decisions = attacks.isolation(post, attacked.cohort, dataset=REGISTERED)
    assert decisions.decided >= NUM_COMMON  # every common variant
    assert decisions.correct == decisions.decided
    assert decisions.p_value() < 1e-6


def test_isolation_fails_within_the_default_budget(attacked):
    _fresh_budget(attacked)
    with _client(attacked) as client:
        post = _post(client, _registered(client, "attacker-2"))
        decisions = attacks.isolation(post, attacked.cohort, dataset=REGISTERED)
    # ε budget 10 at 0.5 per count: 20 counts, 10 variants; then 429.
    assert decisions.decided + decisions.undecided <= 10
    assert decisions.unanswered >= NUM_COMMON + NUM_RARE - 10
    assert decisions.p_value() > 0.01


def test_isolation_with_an_unlimited_budget_is_bounded_by_the_noise(attacked):
    _fresh_budget(attacked)
    with _client(
        attacked,
        disclosure_epsilon_budget=1e12,
        disclosure_anonymous_epsilon_budget=1e12,
    ) as client:
        post = _post(client, _registered(client, "attacker-2"))
        decisions = attacks.isolation(post, attacked.cohort, dataset=REGISTERED)
    assert decisions.decided >= 150
    # Noise alone bounds what the differences say, not that they say nothing.
    assert decisions.advantage() < 0.25, (decisions.correct, decisions.decided)


def test_boolean_differencing_finds_rare_variants_of_the_oldest_without_defences(
    attacked,
):
    with _client(attacked, disclosure_enabled=False) as client:
        decisions = attacks.boolean_differencing(_post(client), attacked.cohort)
    found = [g for g in decisions.guess if g]
    assert len(found) >= 10
    assert all(
        truth
        for truth, guess in zip(decisions.truth, decisions.guess, strict=True)
        if guess
    )


def test_boolean_differencing_learns_nothing(attacked):
    _fresh_budget(attacked)
    with _client(
        attacked,
        disclosure_epsilon_budget=1e12,
        disclosure_anonymous_epsilon_budget=1e12,
    ) as client:
        decisions = attacks.boolean_differencing(_post(client), attacked.cohort)
    assert decisions.decided == NUM_RARE
    assert decisions.advantage() == 0.0
    assert decisions.p_value() > 0.01


def test_legitimate_discovery_of_common_variants_is_exact(attacked):
    """Anonymous yes/no on variants with AF >= 1 %: the same answers as without
    the layer (g_variants: all of them; carriers: at least 95 %). The budget is
    unlimited here: it bounds how many questions, not what they answer."""
    cohort = attacked.cohort
    common = range(NUM_COMMON)

    def answers(client, entry):
        found = []
        for variant in common:
            body = {
                "meta": {"apiVersion": "2.0"},
                "query": {
                    "requestParameters": attacks._variant(cohort, variant),
                    "requestedGranularity": "boolean",
                },
            }
            response = client.post(f"/api/{entry}", json=body)
            assert response.status_code == 200, response.text
            found.append(response.json()["responseSummary"]["exists"])
        return found

    _fresh_budget(attacked)
    with _client(attacked, disclosure_enabled=False) as client:
        exact = {
            entry: answers(client, entry) for entry in ("g_variants", "individuals")
        }
    with _client(
        attacked,
        disclosure_epsilon_budget=1e12,
        disclosure_anonymous_epsilon_budget=1e12,
    ) as client:
        protected = {
            entry: answers(client, entry) for entry in ("g_variants", "individuals")
        }
    assert all(exact["g_variants"])
    assert protected["g_variants"] == exact["g_variants"]
    same = sum(
        a == b
        for a, b in zip(protected["individuals"], exact["individuals"], strict=True)
    )
    assert same >= 0.95 * len(common)
