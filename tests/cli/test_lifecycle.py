"""``genomenode datasets unpublish|publish|set-access|remove``: the operator's view."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from genomenode.cli import cli
from genomenode.ingest import ingest
from genomenode.store.models import AuditEntry
from tests.conftest import grant_access, write_dataset_yaml, write_small_cohort

DATASET = "small"


@pytest.fixture(autouse=True)
def _operator_login(monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "tester")


@pytest.fixture
def node(sqlite_node, tmp_path):
    directory = tmp_path / "cohort"
    write_small_cohort(directory, dataset_id=DATASET, num_samples=6, num_variants=20)
    ingest(sqlite_node, write_dataset_yaml(directory, id=DATASET))
    return sqlite_node


def run(node, *arguments: str, expect: int = 0, stdin: str | None = None):
    """``genomenode datasets ARGUMENTS --node NODE``; checks the exit code."""
    result = CliRunner().invoke(
        cli,
        ["datasets", *arguments, "--node", str(node.config.node_dir)],
        input=stdin,
    )
    assert result.exit_code == expect, (result.stdout, result.stderr)
    return result


def _published(node) -> list[str]:
    listed = run(node, "--json")
    return [row["id"] for row in json.loads(listed.stdout)]


def test_unpublish_and_publish_again(node):
    assert _published(node) == [DATASET]
    grant_access(node, DATASET, "alice")

    result = run(node, "unpublish", DATASET)

    assert "Unpublished small" in result.stdout
    assert "grant 1 (application 1, alice" in result.stderr
    assert _published(node) == []
    assert json.loads(run(node, "publish", DATASET, "--json").stdout)["changed"]
    assert _published(node) == [DATASET]
    with node.session() as session:
        actors = {
            entry.actor
            for entry in session.query(AuditEntry).filter(
                AuditEntry.action.like("dataset.%")
            )
        }
    assert actors == {"operator:tester"}


def test_set_access_refuses_then_forces(node):
    grant_access(node, DATASET, "alice")
    refused = run(node, "set-access", DATASET, "--security-level", "PUBLIC", expect=1)
    assert "without a grant" in refused.stderr and "--force" in refused.stderr

    forced = run(
        node,
        "set-access",
        DATASET,
        "--security-level",
        "PUBLIC",
        "--beacon",
        "anonymous=count",
        "--duo",
        "DUO:0000007=ICD10:I25.1",
        "--force",
        "--json",
    )

    change = json.loads(forced.stdout)
    assert change["changes"]["security_level"] == {
        "before": "CONTROLLED",
        "after": "PUBLIC",
    }
    assert change["changes"]["beacon"]["after"]["anonymous"] == "count"
    assert change["changes"]["data_use"]["after"] == [
        {"id": "DUO:0000007", "disease": "ICD10:I25.1"}
    ]
    assert [grant["subject"] for grant in change["affected_grants"]] == ["alice"]
    listed = json.loads(run(node, "--json").stdout)
    assert listed[0]["security_level"] == "PUBLIC"


def test_set_access_needs_something_to_change_and_names_bad_values(node):
    assert "give --security-level" in run(node, "set-access", DATASET, expect=2).stderr
    bad = run(node, "set-access", DATASET, "--beacon", "anonymous", expect=2)
    assert "LEVEL=GRANULARITY" in bad.stderr
    wrong = run(node, "set-access", DATASET, "--beacon", "everyone=count", expect=1)
    assert "beacon.everyone" in wrong.stderr


def test_remove_asks_refuses_and_deletes(node):
    grant_access(node, DATASET, "alice")
    run(node, "remove", DATASET, stdin="n\n", expect=1)  # not confirmed: aborted
    assert _published(node) == [DATASET]
    refused = run(node, "remove", DATASET, "--yes", expect=1)
    assert "grants are active" in refused.stderr

    removed = run(node, "remove", DATASET, "--yes", "--force")

    assert "Removed small" in removed.stdout
    assert not (node.datasets_dir / DATASET).exists()
    assert _published(node) == []
    missing = run(node, "remove", DATASET, "--yes", expect=1)
    assert "no dataset 'small'" in missing.stderr


def test_the_listing_still_needs_a_node(monkeypatch):
    result = CliRunner().invoke(cli, ["datasets"])
    assert result.exit_code == 2
    assert "--node" in result.stderr
