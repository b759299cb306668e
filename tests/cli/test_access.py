"""``genomenode access`` (cli/access.py): the operator's side of the DAC workflow."""

from __future__ import annotations

import datetime as dt
import json

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from genomenode.access import applications, workflow
from genomenode.access.duo import ResearchPurpose
from genomenode.cli import cli
from genomenode.cli.access import STATES, access_applications
from genomenode.cli.options import access_end
from genomenode.ingest.pipeline import ingest
from genomenode.store.models import AuditEntry
from tests.access.test_workflow import COMMITTEE, HMB, POA, add_dataset
from tests.conftest import write_dataset_yaml, write_small_cohort

UNTIL = "2099-12-31"
ENDS_AT = "2100-01-01T00:00:00+00:00"  # the end of UNTIL, UTC


@pytest.fixture(autouse=True)
def _operator_login(monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "tester")


def run(node, *arguments: str, expect: int = 0):
    """``genomenode access ARGUMENTS --node NODE``; checks the exit code."""
    result = CliRunner().invoke(
        cli, ["access", *arguments, "--node", str(node.config.node_dir)]
    )
    assert result.exit_code == expect, (result.stdout, result.stderr)
    return result


def run_json(node, *arguments: str):
    return json.loads(run(node, *arguments, "--json").stdout)


def submitted(node, *, dataset_id="d1", applicant="alice", purpose=HMB) -> int:
    return workflow.create_application(
        node.engine,
        dataset_id=dataset_id,
        applicant=applicant,
        project_title="Heart study",
        purpose=ResearchPurpose(purpose),
        submit=True,
    ).id


def test_from_ingest_to_revocation(sqlite_node, tmp_path):
    """A dataset.yaml with a committee, ingested; an application through its life."""
    node = sqlite_node
    directory = tmp_path / "cohort"
    write_small_cohort(directory, dataset_id="small", num_samples=6, num_variants=20)
    yaml_path = write_dataset_yaml(
        directory,
        id="small",
        data_use=[{"id": "DUO:0000006"}],
        dac={"members": [COMMITTEE]},
    )
    ingest(node, yaml_path)
    application_id = submitted(node, dataset_id="small", purpose=POA)

    typo = run(node, "members", "smal", expect=1)
    assert "'smal' is not published on this node; did you mean 'small'?" in typo.stderr
    members = run_json(node, "members", "small", "--add", "dac-dan")
    assert members == {"dataset_id": "small", "members": [COMMITTEE, "dac-dan"]}
    listed = run_json(node, "applications")
    assert [(a["id"], a["state"]) for a in listed] == [(application_id, "submitted")]
    assert listed[0]["recommendation"]["outcome"] == "deny"  # HMB data, POA purpose
    shown = run(node, "show", str(application_id)).stdout
    assert f"Application {application_id}: Heart study" in shown
    assert "DUO recommendation: deny" in shown
    assert "DUO:0000006: only health, medical or biomedical research" in shown

    # HMB data, a POA purpose: the committee must say why it overrides the deny.
    refused = run(node, "approve", str(application_id), "--until", UNTIL, expect=1)
    assert "recommendation for application" in refused.stderr
    assert "is deny (DUO:0000006: only health" in refused.stderr
    assert "--override --reason" in refused.stderr
    half = run(
        node, "approve", str(application_id), "--until", UNTIL, "--override", expect=2
    )
    assert "--override and --reason go together" in half.stderr
    approved = run_json(
        node,
        *("approve", str(application_id), "--until", UNTIL),
        *("--override", "--reason", "ethics board: method work only"),
    )
    assert approved["state"] == "approved"
    with node.session() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "access.approve")
        ).one()
    assert entry.details["recommendation"] == "deny"
    assert entry.details["override_reason"] == "ethics board: method work only"
    assert approved["grant"]["ends_at"] == ENDS_AT
    assert approved["events"][-1]["actor"] == "operator:tester"
    granted = run_json(node, "grants", "--user", "alice")
    assert [(g["application_id"], g["dataset_id"]) for g in granted] == [
        (application_id, "small")
    ]
    with node.session() as session:
        assert applications.active_grants(session, "alice") == {"small"}

    revoked = run(node, "revoke", str(application_id), "--comment", "ended early")
    assert f"Revoked application {application_id} (small, alice)" in revoked.stdout
    with node.session() as session:
        assert applications.active_grants(session, "alice") == frozenset()
    assert run(node, "grants").stdout.strip() == "No grants."
    everything = run(node, "grants", "--all").stdout
    assert "revoked" in everything and "operator:tester" in everything
    shown = run(node, "show", str(application_id)).stdout
    assert "approve: submitted -> approved" in shown
    assert "revoke: approved -> revoked  (ended early)" in shown

    audit = CliRunner().invoke(
        cli, ["audit", "verify", "--json", "--node", str(node.config.node_dir)]
    )
    assert json.loads(audit.stdout) == {
        "intact": True,
        "num_entries": 5,  # create, submit, DAC add, approve, revoke
        "first_bad_id": None,
        "problem": None,
        "num_checkpoints": 0,
    }


def test_reject_and_return(node):
    add_dataset(node)
    first, second = submitted(node), submitted(node, applicant="bob")

    rejected = run(node, "reject", str(first), "--comment", "no ethics approval")
    returned = run_json(node, "return", str(second), "--comment", "which cohort?")

    assert rejected.stdout.strip() == (
        f"Rejected application {first} (d1, alice): now rejected."
    )
    assert returned["state"] == "returned"
    assert returned["events"][-1] == {
        "at": returned["events"][-1]["at"],
        "actor": "operator:tester",
        "action": "return",
        "from_state": "submitted",
        "to_state": "returned",
        "comment": "which cohort?",
    }
    text = run(node, "applications").stdout.splitlines()
    assert len(text) == 2
    assert f"{first}" in text[0] and "rejected" in text[0] and "alice" in text[0]
    assert "returned" in text[1] and "'Heart study'" in text[1]


def test_refusals_exit_1_with_the_reason(node):
    add_dataset(node)
    application_id = submitted(node)
    run(node, "reject", str(application_id))

    refused = run(node, "approve", str(application_id), "--until", UNTIL, expect=1)
    assert "is rejected: cannot approve it" in refused.stderr
    missing = run(node, "revoke", "99", expect=1)
    assert "no application 99" in missing.stderr
    past = run(node, "approve", str(application_id), "--until", "2001-01-01", expect=1)
    assert "'ends_at'" in past.stderr and "not in the future" in past.stderr
    bad_date = run(node, "approve", str(application_id), "--until", "soon", expect=2)
    assert "YYYY-MM-DD" in bad_date.stderr or "%Y-%m-%d" in bad_date.stderr
    assert run(node, "show", "99", expect=1).stderr.startswith("error: ")


def test_applications_filters_and_records_expiry(node):
    add_dataset(node, "d1")
    add_dataset(node, "d2")
    now = dt.datetime.now(dt.UTC)
    lapsed = submitted(node)
    workflow.approve(
        node.engine,
        lapsed,
        actor=COMMITTEE,
        ends_at=now - dt.timedelta(days=1),
        now=now - dt.timedelta(days=30),
    )
    waiting = submitted(node, dataset_id="d2")

    assert run_json(node, "applications", "--state", "approved") == []
    expired = run_json(node, "applications", "--state", "expired")
    assert [a["id"] for a in expired] == [lapsed]
    assert expired[0]["events"][-1]["actor"] == applications.EXPIRY_ACTOR
    on_d2 = run_json(node, "applications", "--dataset", "d2")
    assert [a["id"] for a in on_d2] == [waiting]
    assert run(node, "applications", "--dataset", "d9").stdout.strip() == (
        "No applications."
    )
    run(node, "applications", "--state", "pending", expect=2)


def test_members(node):
    add_dataset(node, dac=("yaml-member",))

    assert run_json(node, "members", "d1")["members"] == ["yaml-member"]
    added = run(node, "members", "d1", "--add", "bob", "--add", "erin")
    assert added.stdout.strip() == (
        "Data access committee of d1: bob, erin, yaml-member"
    )
    removed = run_json(node, "members", "d1", "--remove", "bob")
    assert removed["members"] == ["erin", "yaml-member"]
    refused = run(node, "members", "d1", "--remove", "yaml-member", expect=1)
    assert "dataset.yaml" in refused.stderr
    unknown = run(node, "members", "d9", expect=1)
    assert "'d9' is not published" in unknown.stderr


def test_state_choices_are_the_workflow_states():
    # Spelled out in the CLI so that --help does not import the database layer.
    state_option = next(p for p in access_applications.params if p.name == "state")
    assert isinstance(state_option.type, click.Choice)
    assert tuple(state_option.type.choices) == STATES == applications.STATES


def test_approve_says_the_last_day_given_not_the_midnight_after(node):
    add_dataset(node)
    application_id = submitted(node)
    approved = run(node, "approve", str(application_id), "--until", UNTIL)
    assert approved.stdout.strip().endswith(
        "may access d1 until the end of 2099-12-31 (UTC)."
    )


@pytest.mark.parametrize(
    ("ends_at", "shown"),
    [
        ("2031-01-01T00:00:00+00:00", "the end of 2030-12-31 (UTC)"),
        (dt.datetime(2031, 1, 1, 1, tzinfo=dt.UTC), "2031-01-01T01:00:00+00:00"),
        ("2031-03-01T00:00:00", "the end of 2031-02-28 (UTC)"),
    ],
)
def test_access_end_reads_as_people_do(ends_at, shown):
    assert access_end(ends_at) == shown
