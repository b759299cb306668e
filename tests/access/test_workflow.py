"""The DAC workflow: every transition, every refusal, grants in time, races."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from collections.abc import Callable

import pytest
from sqlalchemy import event, func, select

from genomenode.access import applications, committee, workflow
from genomenode.access import duo as access_duo
from genomenode.access.applications import (
    APPROVED,
    DRAFT,
    EXPIRED,
    REJECTED,
    RETURNED,
    REVOKED,
    STATES,
    SUBMITTED,
    TRANSITIONS,
)
from genomenode.access.audit_check import verify
from genomenode.access.duo import DataUseCondition, ResearchPurpose
from genomenode.errors import (
    AuthenticationRequired,
    ConflictError,
    InputError,
    NotFoundError,
    PermissionDenied,
)
from genomenode.store.models import (
    AccessApplication,
    AccessApplicationEvent,
    AuditEntry,
    Dataset,
    DataUseTerm,
    Entitlement,
)

NOW = dt.datetime(2030, 3, 1, 12, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(days=90)
GRU, HMB, DS, POA = "DUO:0000042", "DUO:0000006", "DUO:0000007", "DUO:0000011"
COMMITTEE = "dac-carol"


def add_dataset(
    node,
    dataset_id: str = "d1",
    *,
    terms: tuple[tuple[str, str | None], ...] = ((GRU, None),),
    dac: tuple[str, ...] | None = (COMMITTEE,),
    status: str = "published",
) -> str:
    """A dataset row with its DUO terms and dataset.yaml ``dac`` block."""
    document = {"id": dataset_id}
    if dac is not None:
        document["dac"] = {"members": list(dac)}
    with node.session() as session, session.begin():
        session.add(
            Dataset(
                id=dataset_id,
                name=f"Dataset {dataset_id}",
                description="for tests",
                country="FI",
                contact_name="c",
                contact_email="c@example.org",
                security_level="CONTROLLED",
                assembly="GRCh38",
                status=status,
                fingerprint="0" * 64,
                num_individuals=1,
                num_samples=1,
                num_variants=1,
                description_document=document,
                created_at=NOW,
            )
        )
        session.flush()
        for term, disease in terms:
            session.add(
                DataUseTerm(
                    dataset_id=dataset_id, term_id=term, label=term, disease_id=disease
                )
            )
    return dataset_id


def apply(node, *, dataset_id="d1", applicant="alice", purpose=HMB, **options):
    return workflow.create_application(
        node.engine,
        dataset_id=dataset_id,
        applicant=applicant,
        project_title=options.pop("project_title", "Heart study"),
        purpose=ResearchPurpose(purpose),
        now=options.pop("now", NOW),
        **options,
    )


def audit_entries(node) -> list[AuditEntry]:
    with node.session() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def assert_audit_intact(node) -> None:
    with node.session() as session:
        check = verify(session)
    assert check.intact, check


def active(node, subject="alice", now=NOW) -> frozenset[str]:
    with node.session() as session:
        return applications.active_grants(session, subject, now=now)


def reach(node, state: str) -> int:
    """An application of alice's to d1 in ``state``, by the workflow's own steps."""
    engine = node.engine
    if state == DRAFT:
        return apply(node).id
    application_id = apply(node, submit=True).id
    if state == SUBMITTED:
        return application_id
    if state == RETURNED:
        workflow.return_for_changes(engine, application_id, actor=COMMITTEE, now=NOW)
    elif state == REJECTED:
        workflow.reject(engine, application_id, actor=COMMITTEE, now=NOW)
    else:
        ends_at = NOW + dt.timedelta(days=1) if state == EXPIRED else LATER
        workflow.approve(
            engine, application_id, actor=COMMITTEE, ends_at=ends_at, now=NOW
        )
        if state == REVOKED:
            workflow.revoke(engine, application_id, actor=COMMITTEE, now=NOW)
        elif state == EXPIRED:
            expired = workflow.expire_due(engine, now=NOW + dt.timedelta(days=2))
            assert expired == [application_id]
    assert applications.get_application(
        engine, application_id, as_operator=True
    ).state == (state)
    return application_id


ACTIONS: dict[str, Callable[..., applications.Application]] = {
    "edit": lambda engine, i: workflow.edit_application(
        engine, i, actor="alice", project_title="New title", now=NOW
    ),
    "submit": lambda engine, i: workflow.submit(engine, i, actor="alice", now=NOW),
    "approve": lambda engine, i: workflow.approve(
        engine, i, actor=COMMITTEE, ends_at=LATER, now=NOW
    ),
    "reject": lambda engine, i: workflow.reject(engine, i, actor=COMMITTEE, now=NOW),
    "return": lambda engine, i: workflow.return_for_changes(
        engine, i, actor=COMMITTEE, now=NOW
    ),
    "revoke": lambda engine, i: workflow.revoke(engine, i, actor=COMMITTEE, now=NOW),
}


# -- the life of an application ------------------------------------------------------


def test_apply_edit_submit_approve_revoke(node):
    add_dataset(node)
    engine = node.engine

    draft = apply(node, members=["bob", "bob", "alice"], purpose_text=" hearts ")
    assert (draft.state, draft.version, draft.grant) == (DRAFT, 1, None)
    assert draft.members == ("bob",)  # each once; the applicant is not a member
    assert draft.purpose_text == "hearts"
    assert [(e.action, e.from_state, e.to_state) for e in draft.events] == [
        ("create", None, DRAFT)
    ]

    edited = workflow.edit_application(
        engine,
        draft.id,
        actor="alice",
        project_title="Heart failure cohort",
        purpose=ResearchPurpose(DS, disease="ICD10:I50"),
        members=["dave"],
        now=NOW,
    )
    assert (edited.state, edited.version) == (DRAFT, 2)
    assert edited.project_title == "Heart failure cohort"
    assert edited.purpose == ResearchPurpose(DS, disease="ICD10:I50")
    assert edited.members == ("dave",)
    assert edited.purpose_text == "hearts"  # not given: unchanged

    submitted = workflow.submit(engine, draft.id, actor="alice", now=NOW)
    assert (submitted.state, submitted.version) == (SUBMITTED, 3)
    assert active(node) == frozenset()

    approved = workflow.approve(
        engine, draft.id, actor=COMMITTEE, ends_at=LATER, comment="fine", now=NOW
    )
    assert (approved.state, approved.version) == (APPROVED, 4)
    grant = approved.grant
    assert grant is not None
    assert (grant.subject, grant.dataset_id, grant.application_id) == (
        "alice",
        "d1",
        draft.id,
    )
    assert (grant.starts_at, grant.ends_at, grant.revoked_at) == (NOW, LATER, None)
    assert grant.active(NOW)
    assert approved.events[-1].comment == "fine"
    assert active(node) == {"d1"}
    assert active(node, "dave") == frozenset()  # the grant is the applicant's

    revoked = workflow.revoke(
        engine, draft.id, actor=COMMITTEE, comment="misuse", now=NOW
    )
    assert revoked.state == REVOKED
    assert (revoked.grant.revoked_at, revoked.grant.revoked_by) == (NOW, COMMITTEE)
    assert active(node) == frozenset()  # at once, at the same instant

    assert [(e.action, e.actor, e.from_state, e.to_state) for e in revoked.events] == [
        ("create", "alice", None, DRAFT),
        ("edit", "alice", DRAFT, DRAFT),
        ("submit", "alice", DRAFT, SUBMITTED),
        ("approve", COMMITTEE, SUBMITTED, APPROVED),
        ("revoke", COMMITTEE, APPROVED, REVOKED),
    ]
    entries = audit_entries(node)
    assert [(e.action, e.outcome, e.actor) for e in entries] == [
        ("access.create", "allow", "alice"),
        ("access.edit", "allow", "alice"),
        ("access.submit", "allow", "alice"),
        ("access.approve", "allow", COMMITTEE),
        ("access.revoke", "allow", COMMITTEE),
    ]
    assert all(entry.dataset_id == "d1" for entry in entries)
    assert entries[3].details == {
        "application": draft.id,
        "from": SUBMITTED,
        "to": APPROVED,
        "grantee": "alice",
        "ends_at": LATER.isoformat(),
        "recommendation": "approve",
    }
    assert entries[4].details["to"] == REVOKED
    assert_audit_intact(node)


def test_apply_and_submit_at_once(node):
    add_dataset(node)

    application = apply(node, submit=True)

    assert application.state == SUBMITTED
    assert [e.action for e in application.events] == ["create", "submit"]
    assert [e.action for e in audit_entries(node)] == ["access.create", "access.submit"]


def test_return_edit_resubmit_then_reject(node):
    add_dataset(node)
    engine = node.engine
    application_id = apply(node, submit=True).id

    returned = workflow.return_for_changes(
        engine, application_id, actor=COMMITTEE, comment="say which cohort", now=NOW
    )
    assert returned.state == RETURNED
    assert returned.events[-1].comment == "say which cohort"
    edited = workflow.edit_application(
        engine, application_id, actor="alice", purpose_text="FINRISK 2002", now=NOW
    )
    assert (edited.state, edited.purpose_text) == (RETURNED, "FINRISK 2002")
    resubmitted = workflow.submit(engine, application_id, actor="alice", now=NOW)
    assert resubmitted.state == SUBMITTED
    rejected = workflow.reject(
        engine, application_id, actor=COMMITTEE, comment="  ", now=NOW
    )

    assert rejected.state == REJECTED
    assert rejected.grant is None
    assert rejected.events[-1].comment is None  # blank comments are none
    assert [e.action for e in rejected.events] == [
        "create",
        "submit",
        "return",
        "edit",
        "submit",
        "reject",
    ]
    assert [e.action for e in audit_entries(node)][-4:] == [
        "access.return",
        "access.edit",
        "access.submit",
        "access.reject",
    ]
    assert_audit_intact(node)


def test_operator_decides_without_being_on_the_committee(node):
    add_dataset(node, dac=None)
    first = apply(node, submit=True).id
    second = apply(node, submit=True).id

    approved = workflow.approve(
        node.engine,
        first,
        actor="operator:root",
        ends_at=LATER,
        as_operator=True,
        now=NOW,
    )
    rejected = workflow.reject(
        node.engine, second, actor="operator:root", as_operator=True, now=NOW
    )

    assert (approved.state, rejected.state) == (APPROVED, REJECTED)
    assert audit_entries(node)[-1].reason == "rejected by an operator"


# -- refusals ------------------------------------------------------------------------


@pytest.mark.parametrize("state", STATES)
def test_every_action_outside_its_states_is_a_conflict(node, state):
    add_dataset(node)
    application_id = reach(node, state)
    for action, (sources, _target) in TRANSITIONS.items():
        if action == "expire" or state in sources:
            continue
        before = applications.get_application(
            node.engine, application_id, as_operator=True
        )
        with pytest.raises(ConflictError) as caught:
            ACTIONS[action](node.engine, application_id)
        assert caught.value.status == 409
        assert f"is {state}" in str(caught.value)
        assert f"cannot {action}" in str(caught.value)
        after = applications.get_application(
            node.engine, application_id, as_operator=True
        )
        assert after == before
    assert_audit_intact(node)


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_every_action_on_an_unknown_application_is_not_found(node, action):
    add_dataset(node)
    with pytest.raises(NotFoundError, match="no application 99"):
        ACTIONS[action](node.engine, 99)


def _add_member(node, application_id: int, member: str) -> None:
    """Make ``member`` a co-applicant of an application (a co-applicant sees it)."""
    with node.session() as session, session.begin():
        row = session.get(AccessApplication, application_id)
        row.members = [*row.members, member]


@pytest.mark.parametrize(
    ("state", "action", "actor", "message"),
    [
        # Each actor may see the application (applicant, member or committee)
        # but not take the action: 403, naming why.
        (DRAFT, "edit", COMMITTEE, "only the applicant may edit"),
        (DRAFT, "edit", "bob", "only the applicant may edit"),
        (DRAFT, "submit", COMMITTEE, "only the applicant may submit"),
        (SUBMITTED, "approve", "bob", "not on the data access committee of d1"),
        (SUBMITTED, "approve", "alice", "may not approve their own application"),
        (SUBMITTED, "reject", "alice", "not on the data access committee"),
        (SUBMITTED, "return", "bob", "not on the data access committee"),
        (APPROVED, "revoke", "alice", "not on the data access committee"),
    ],
)
def test_refusals_change_nothing_and_are_audited(node, state, action, actor, message):
    add_dataset(node)
    application_id = reach(node, state)
    if actor == "bob":
        _add_member(node, application_id, "bob")
    before = applications.get_application(node.engine, application_id, as_operator=True)
    num_entries = len(audit_entries(node))
    calls = {
        "edit": lambda: workflow.edit_application(
            node.engine, application_id, actor=actor, project_title="x", now=NOW
        ),
        "submit": lambda: workflow.submit(
            node.engine, application_id, actor=actor, now=NOW
        ),
        "approve": lambda: workflow.approve(
            node.engine, application_id, actor=actor, ends_at=LATER, now=NOW
        ),
        "reject": lambda: workflow.reject(
            node.engine, application_id, actor=actor, now=NOW
        ),
        "return": lambda: workflow.return_for_changes(
            node.engine, application_id, actor=actor, now=NOW
        ),
        "revoke": lambda: workflow.revoke(
            node.engine, application_id, actor=actor, now=NOW
        ),
    }

    with pytest.raises(PermissionDenied, match=message) as caught:
        calls[action]()

    assert caught.value.status == 403
    after = applications.get_application(node.engine, application_id, as_operator=True)
    assert after == before
    entries = audit_entries(node)
    assert len(entries) == num_entries + 1
    denied = entries[-1]
    assert (denied.action, denied.outcome, denied.actor, denied.dataset_id) == (
        f"access.{action}",
        "deny",
        actor,
        "d1",
    )
    assert message in denied.reason
    assert denied.details == {"application": application_id, "state": state}
    assert_audit_intact(node)


def test_the_applicant_on_the_committee_still_cannot_approve(node):
    add_dataset(node, dac=("alice", COMMITTEE))
    application_id = apply(node, submit=True).id

    with pytest.raises(PermissionDenied, match="their own"):
        workflow.approve(
            node.engine, application_id, actor="alice", ends_at=LATER, now=NOW
        )
    # ... but another member can.
    approved = workflow.approve(
        node.engine, application_id, actor=COMMITTEE, ends_at=LATER, now=NOW
    )
    assert approved.state == APPROVED


def test_committee_of_another_dataset_may_not_decide_nor_learn_of_it(node):
    add_dataset(node, "d1", dac=(COMMITTEE,))
    add_dataset(node, "d2", dac=("dac-dan",))
    application_id = apply(node, submit=True).id

    with pytest.raises(NotFoundError) as caught:
        workflow.reject(node.engine, application_id, actor="dac-dan", now=NOW)
    assert "d1" not in str(caught.value)


def _hidden_calls(engine, application_id: int, actor: str) -> dict[str, Callable]:
    return {
        "read": lambda: applications.get_application(
            engine, application_id, viewer=actor
        ),
        "edit": lambda: workflow.edit_application(
            engine, application_id, actor=actor, project_title="x", now=NOW
        ),
        "submit": lambda: workflow.submit(engine, application_id, actor=actor, now=NOW),
        "approve": lambda: workflow.approve(
            engine, application_id, actor=actor, ends_at=LATER, now=NOW
        ),
        "reject": lambda: workflow.reject(engine, application_id, actor=actor, now=NOW),
        "return": lambda: workflow.return_for_changes(
            engine, application_id, actor=actor, now=NOW
        ),
        "revoke": lambda: workflow.revoke(engine, application_id, actor=actor, now=NOW),
    }


@pytest.mark.parametrize(
    "action", ["read", "edit", "submit", "approve", "reject", "return", "revoke"]
)
def test_an_application_one_may_not_see_reads_as_a_missing_one(node, action):
    add_dataset(node, "d1", dac=(COMMITTEE,))
    add_dataset(node, "d2", dac=("dac-dan",))
    state = {"edit": DRAFT, "submit": DRAFT, "revoke": APPROVED}.get(action, SUBMITTED)
    application_id = reach(node, state)
    missing_id = application_id + 1000
    before = applications.get_application(node.engine, application_id, as_operator=True)
    num_entries = len(audit_entries(node))

    answers = []
    for probed in (application_id, missing_id):
        for actor in ("mallory", "dac-dan"):
            with pytest.raises(NotFoundError) as caught:
                _hidden_calls(node.engine, probed, actor)[action]()
            assert caught.value.status == 404
            answers.append(str(caught.value).replace(str(probed), "ID"))

    # One answer, which names neither the dataset nor its committee.
    assert len(set(answers)) == 1, answers
    assert "d1" not in answers[0] and COMMITTEE not in answers[0]
    after = applications.get_application(node.engine, application_id, as_operator=True)
    assert after == before
    # Every refusal is in the audit log: who, which application, why.
    entries = audit_entries(node)[num_entries:]
    assert [
        (entry.actor, entry.action, entry.outcome, entry.details["application"])
        for entry in entries
    ] == [
        (actor, f"access.{action}", "deny", probed)
        for probed in (application_id, missing_id)
        for actor in ("mallory", "dac-dan")
    ]
    assert [entry.dataset_id for entry in entries] == ["d1", "d1", None, None]
    assert "neither an applicant" in entries[0].reason
    assert entries[2].reason == f"no application {missing_id}"
    assert_audit_intact(node)


@pytest.mark.parametrize(
    ("ends_at", "message"),
    [
        (dt.datetime(2031, 1, 1), "has no timezone"),
        (NOW, "not in the future"),
        (NOW - dt.timedelta(days=1), "not in the future"),
    ],
)
def test_approve_needs_an_aware_end_in_the_future(node, ends_at, message):
    add_dataset(node)
    application_id = apply(node, submit=True).id

    with pytest.raises(InputError, match=message) as caught:
        workflow.approve(
            node.engine, application_id, actor=COMMITTEE, ends_at=ends_at, now=NOW
        )

    assert caught.value.field == "ends_at"
    state = applications.get_application(node.engine, application_id, as_operator=True)
    assert state.state == SUBMITTED


def test_approve_accepts_any_timezone_and_stores_utc(node):
    add_dataset(node)
    application_id = apply(node, submit=True).id
    helsinki = dt.timezone(dt.timedelta(hours=2))

    approved = workflow.approve(
        node.engine,
        application_id,
        actor=COMMITTEE,
        ends_at=dt.datetime(2030, 6, 1, 2, 0, tzinfo=helsinki),
        now=NOW,
    )

    assert approved.grant.ends_at == dt.datetime(2030, 6, 1, 0, 0, tzinfo=dt.UTC)
    assert approved.grant.ends_at.tzinfo == dt.UTC


@pytest.mark.parametrize("status", ["staging", None])
def test_only_published_datasets_take_applications(node, status):
    if status is not None:
        add_dataset(node, status=status)

    with pytest.raises(NotFoundError, match="'d1' is not published"):
        apply(node)

    assert audit_entries(node) == []


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"project_title": "  "}, "project_title"),
        ({"applicant": ""}, "applicant"),
        ({"applicant": "x" * 256}, "applicant"),
        ({"members": ["bob", ""]}, "members[1]"),
        ({"purpose": "DUO:0000019"}, "purpose.term"),
        ({"purpose": DS}, "purpose.disease"),
        ({"now": dt.datetime(2030, 1, 1)}, "now"),
    ],
)
def test_application_input_errors_name_the_field(node, options, field):
    add_dataset(node)

    with pytest.raises(InputError) as caught:
        apply(node, **options)

    assert caught.value.field == field


def test_edit_needs_something_to_change(node):
    add_dataset(node)
    application_id = apply(node).id

    with pytest.raises(InputError, match="nothing to change"):
        workflow.edit_application(node.engine, application_id, actor="alice")


# -- research purposes and DUO -------------------------------------------------------


def test_purpose_json_round_trips():
    purpose = ResearchPurpose(
        DS,
        disease="ICD10:I50",
        commercial=True,
        genetic_study=False,
        accepted=frozenset({"DUO:0000019", "DUO:0000024"}),
    )

    document = access_duo.purpose_to_json(purpose)

    assert document["term"] == DS
    assert document["label"] == "disease specific research"
    assert document["accepted"] == ["DUO:0000019", "DUO:0000024"]
    assert json.loads(json.dumps(document)) == document
    assert access_duo.purpose_from_json(document) == purpose
    assert access_duo.purpose_from_json({"term": GRU}) == ResearchPurpose(GRU)


@pytest.mark.parametrize(
    ("document", "field", "message"),
    [
        ({}, "purpose.term", "not a DUO research purpose"),
        ({"term": "DUO:0000019"}, "purpose.term", "DUO:0000042 (GRU)"),
        ({"term": "HMB"}, "purpose.term", "not a DUO research purpose"),
        ({"term": DS}, "purpose.disease", "needs a disease"),
        ({"term": DS, "disease": "heart"}, "purpose.disease", "needs a disease"),
        ({"term": GRU, "disease": "ICD10:I50"}, "purpose.disease", "takes no disease"),
        ({"term": GRU, "commercial": "yes"}, "purpose.commercial", "true or false"),
        ({"term": GRU, "accepted": "DUO:0000019"}, "purpose.accepted", "a list"),
        ({"term": GRU, "accepted": [GRU]}, "purpose.accepted[0]", "modifier"),
        ({"term": GRU, "goal": "x"}, "purpose.goal", "unknown key"),
    ],
)
def test_purpose_errors_name_the_field(document, field, message):
    with pytest.raises(InputError, match=re.escape(message)) as caught:
        access_duo.purpose_from_json(document)

    assert caught.value.field == field
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("terms", "purpose", "outcome"),
    [
        (((GRU, None),), HMB, "approve"),
        (((HMB, None),), POA, "deny"),
        (((HMB, None), ("DUO:0000021", None)), HMB, "abstain"),
    ],
)
def test_the_application_carries_the_duo_recommendation(node, terms, purpose, outcome):
    add_dataset(node, terms=terms)

    application = apply(node, purpose=purpose)

    assert application.recommendation.outcome == outcome
    assert application.to_json()["recommendation"] == {
        "outcome": outcome,
        "reasons": list(application.recommendation.reasons),
    }
    # A recommendation decides nothing: the committee may still approve (against
    # a deny, with the reason for overriding it).
    workflow.submit(node.engine, application.id, actor="alice", now=NOW)
    approved = workflow.approve(
        node.engine,
        application.id,
        actor=COMMITTEE,
        ends_at=LATER,
        now=NOW,
        override_reason="ethics board agreed" if outcome == "deny" else None,
    )
    assert approved.state == APPROVED


def test_approving_against_a_deny_needs_a_reason_that_is_audited(node):
    add_dataset(node, terms=((HMB, None),))
    application = apply(node, purpose=POA)
    workflow.submit(node.engine, application.id, actor="alice", now=NOW)

    with pytest.raises(InputError, match="is deny") as refused:
        workflow.approve(
            node.engine, application.id, actor=COMMITTEE, ends_at=LATER, now=NOW
        )
    assert refused.value.field == "override_reason"
    assert "only health, medical or biomedical research" in str(refused.value)
    blank = "   "
    with pytest.raises(InputError, match="is deny"):
        workflow.approve(
            node.engine,
            application.id,
            actor=COMMITTEE,
            ends_at=LATER,
            now=NOW,
            override_reason=blank,
        )
    assert (
        applications.get_application(
            node.engine, application.id, as_operator=True
        ).state
        == SUBMITTED
    )

    approved = workflow.approve(
        node.engine,
        application.id,
        actor=COMMITTEE,
        ends_at=LATER,
        now=NOW,
        override_reason=" ethics board agreed ",
    )

    assert approved.state == APPROVED
    entry = audit_entries(node)[-1]
    assert (entry.action, entry.outcome) == ("access.approve", "allow")
    assert entry.details["recommendation"] == "deny"
    assert entry.details["override_reason"] == "ethics board agreed"
    assert "overriding the DUO recommendation deny: ethics board agreed" in (
        entry.reason
    )


def test_an_override_without_a_deny_is_refused(node):
    add_dataset(node, terms=((GRU, None),))
    application = apply(node, purpose=HMB)
    workflow.submit(node.engine, application.id, actor="alice", now=NOW)

    with pytest.raises(InputError, match="is approve, not deny") as refused:
        workflow.approve(
            node.engine,
            application.id,
            actor=COMMITTEE,
            ends_at=LATER,
            now=NOW,
            override_reason="just in case",
        )
    assert refused.value.field == "override_reason"


def test_editing_the_purpose_changes_the_recommendation(node):
    add_dataset(node, terms=((HMB, None),))
    application = apply(node, purpose=POA)
    assert application.recommendation.outcome == "deny"

    edited = workflow.edit_application(
        node.engine, application.id, actor="alice", purpose=ResearchPurpose(HMB)
    )

    assert edited.recommendation.outcome == "approve"


# -- grants in time ------------------------------------------------------------------


def test_a_grant_ends_at_its_end_before_expiry_is_recorded(node):
    add_dataset(node)
    application_id = apply(node, submit=True).id
    ends_at = NOW + dt.timedelta(days=30)
    workflow.approve(
        node.engine, application_id, actor=COMMITTEE, ends_at=ends_at, now=NOW
    )
    last_moment = ends_at - dt.timedelta(microseconds=1)

    assert active(node, now=NOW - dt.timedelta(seconds=1)) == frozenset()
    assert active(node, now=NOW) == {"d1"}
    assert active(node, now=last_moment) == {"d1"}
    assert active(node, now=ends_at) == frozenset()  # expire_due has not run
    application = applications.get_application(
        node.engine, application_id, viewer="alice"
    )
    assert application.state == APPROVED
    assert application.grant.active(last_moment)
    assert not application.grant.active(ends_at)

    assert workflow.expire_due(node.engine, now=last_moment) == []
    assert workflow.expire_due(node.engine, now=ends_at) == [application_id]
    assert workflow.expire_due(node.engine, now=ends_at) == []

    expired = applications.get_application(node.engine, application_id, viewer="alice")
    assert expired.state == EXPIRED
    assert expired.events[-1].actor == applications.EXPIRY_ACTOR
    assert (expired.events[-1].from_state, expired.events[-1].to_state) == (
        APPROVED,
        EXPIRED,
    )
    entry = audit_entries(node)[-1]
    assert (entry.action, entry.outcome, entry.actor) == (
        "access.expire",
        "allow",
        applications.EXPIRY_ACTOR,
    )
    assert ends_at.isoformat() in entry.reason
    assert_audit_intact(node)


def test_expire_due_leaves_revoked_and_unexpired_alone(node):
    add_dataset(node)
    engine = node.engine
    short, long, revoked = (apply(node, submit=True).id for _ in range(3))
    soon = NOW + dt.timedelta(days=1)
    workflow.approve(engine, short, actor=COMMITTEE, ends_at=soon, now=NOW)
    workflow.approve(engine, long, actor=COMMITTEE, ends_at=LATER, now=NOW)
    workflow.approve(engine, revoked, actor=COMMITTEE, ends_at=soon, now=NOW)
    workflow.revoke(engine, revoked, actor=COMMITTEE, now=NOW)

    assert workflow.expire_due(engine, now=soon) == [short]

    states = {
        item.id: item.state
        for item in applications.list_applications(engine, as_operator=True)
    }
    assert states == {short: EXPIRED, long: APPROVED, revoked: REVOKED}


def test_grants_lists_active_or_all(node):
    add_dataset(node, "d1")
    add_dataset(node, "d2")
    engine = node.engine
    first = apply(node, submit=True).id
    second = apply(node, dataset_id="d2", submit=True).id
    third = apply(node, applicant="bob", submit=True).id
    for application_id in (first, second, third):
        workflow.approve(
            engine, application_id, actor=COMMITTEE, ends_at=LATER, now=NOW
        )
    workflow.revoke(engine, second, actor=COMMITTEE, now=NOW)

    with node.session() as session:
        in_force = applications.grants(session, now=NOW)
        everything = applications.grants(session, include_inactive=True, now=NOW)
        alices = applications.grants(session, subject="alice", include_inactive=True)
        on_d2 = applications.grants(session, dataset_id="d2", include_inactive=True)
        after_the_end = applications.grants(session, now=LATER)

    assert [g.application_id for g in in_force] == [first, third]
    assert [g.application_id for g in everything] == [first, second, third]
    assert [g.application_id for g in alices] == [first, second]
    assert [(g.application_id, g.revoked_by) for g in on_d2] == [(second, COMMITTEE)]
    assert after_the_end == []
    assert json.loads(json.dumps(everything[1].to_json()))["revoked_at"] == (
        NOW.isoformat()
    )


def test_active_grants_reads_only_the_entitlements_index(node):
    """The per-request check: one SELECT of dataset ids, no other table."""
    add_dataset(node)
    application_id = apply(node, submit=True).id
    workflow.approve(
        node.engine, application_id, actor=COMMITTEE, ends_at=LATER, now=NOW
    )
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(node.engine, "before_cursor_execute", record)
    try:
        assert active(node) == {"d1"}
    finally:
        event.remove(node.engine, "before_cursor_execute", record)

    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1
    query = " ".join(selects[0].split())
    assert query.startswith("SELECT entitlements.dataset_id FROM entitlements WHERE")
    for other in ("applications", "datasets", "JOIN"):
        assert other not in query


# -- who sees what -------------------------------------------------------------------


def test_who_may_see_an_application(node):
    add_dataset(node)
    application_id = apply(node, members=["bob"]).id

    for viewer in ("alice", "bob", COMMITTEE):
        seen = applications.get_application(node.engine, application_id, viewer=viewer)
        assert seen.id == application_id
    assert applications.get_application(node.engine, application_id, as_operator=True)
    with pytest.raises(NotFoundError):
        applications.get_application(node.engine, application_id, viewer="mallory")
    with pytest.raises(AuthenticationRequired):
        applications.get_application(node.engine, application_id)
    with pytest.raises(NotFoundError):
        applications.get_application(node.engine, 404, as_operator=True)


def test_list_applications_by_viewer_dataset_and_state(node):
    add_dataset(node, "d1", dac=(COMMITTEE,))
    add_dataset(node, "d2", dac=("dac-dan",))
    engine = node.engine
    alice_d1 = apply(node).id
    alice_d2 = apply(node, dataset_id="d2", submit=True).id
    bob_d2 = apply(node, dataset_id="d2", applicant="bob", members=["erin"]).id

    def ids(**options):
        return [item.id for item in applications.list_applications(engine, **options)]

    assert ids(as_operator=True) == [alice_d1, alice_d2, bob_d2]
    assert ids(viewer="alice") == [alice_d1, alice_d2]
    assert ids(viewer="erin") == [bob_d2]
    assert ids(viewer=COMMITTEE) == [alice_d1]
    assert ids(viewer="dac-dan") == [alice_d2, bob_d2]
    assert ids(viewer="mallory") == []
    assert ids(viewer="dac-dan", state=SUBMITTED) == [alice_d2]
    assert ids(as_operator=True, dataset_id="d2") == [alice_d2, bob_d2]
    with pytest.raises(AuthenticationRequired):
        ids()
    with pytest.raises(InputError) as caught:
        ids(as_operator=True, state="pending")
    assert caught.value.field == "state"


def test_application_json(node):
    add_dataset(node)
    application_id = apply(node, submit=True, members=["bob"]).id
    workflow.approve(
        node.engine, application_id, actor=COMMITTEE, ends_at=LATER, now=NOW
    )

    document = applications.get_application(
        node.engine, application_id, as_operator=True
    ).to_json()

    assert json.loads(json.dumps(document)) == document
    assert document["id"] == application_id
    assert document["members"] == ["bob"]
    assert document["purpose"]["term"] == HMB
    assert document["state"] == APPROVED
    assert document["created_at"] == NOW.isoformat()
    assert [event["action"] for event in document["events"]] == [
        "create",
        "submit",
        "approve",
    ]
    assert document["events"][0]["at"] == NOW.isoformat()
    assert document["grant"]["ends_at"] == LATER.isoformat()
    assert document["recommendation"]["outcome"] == "approve"


# -- the committee and the catalogue -------------------------------------------------


def test_committee_is_dataset_yaml_and_added_members(node):
    add_dataset(node, dac=("yaml-member",))
    engine = node.engine

    committee.add_dac_member(engine, dataset_id="d1", subject=" added ", actor="op:x")
    committee.add_dac_member(engine, dataset_id="d1", subject="added", actor="op:x")
    committee.add_dac_member(engine, dataset_id="d1", subject="yaml-member", actor="o")
    with node.session() as session:
        assert applications.dac_members(session, "d1") == {"yaml-member", "added"}
        assert applications.dac_members(session, "nowhere") == frozenset()

    application_id = apply(node, submit=True).id
    workflow.reject(node.engine, application_id, actor="added", now=NOW)

    with pytest.raises(ConflictError, match=r"dataset\.yaml"):
        committee.remove_dac_member(
            engine, dataset_id="d1", subject="yaml-member", actor="op:x"
        )
    committee.remove_dac_member(engine, dataset_id="d1", subject="added", actor="op:x")
    with pytest.raises(NotFoundError):
        committee.remove_dac_member(
            engine, dataset_id="d1", subject="added", actor="op:x"
        )
    with pytest.raises(NotFoundError):
        committee.add_dac_member(engine, dataset_id="d9", subject="x", actor="op:x")
    with node.session() as session:
        assert applications.dac_members(session, "d1") == {"yaml-member"}

    changes = [
        (e.action, e.actor, e.details)
        for e in audit_entries(node)
        if e.action.startswith("access.dac")
    ]
    assert changes == [
        ("access.dac_add", "op:x", {"subject": "added"}),
        ("access.dac_remove", "op:x", {"subject": "added"}),
    ]
    assert_audit_intact(node)


def test_catalogue_lists_published_datasets_with_conditions(node):
    add_dataset(node, "d1", terms=((DS, "ICD10:I50"), ("DUO:0000019", None)))
    add_dataset(node, "d0", dac=None)
    add_dataset(node, "staged", status="staging")
    committee.add_dac_member(node.engine, dataset_id="d1", subject="zed", actor="op")

    with node.session() as session:
        items = applications.catalogue_items(session)

    assert [item.dataset_id for item in items] == ["d0", "d1"]
    d1 = items[1]
    assert d1.conditions == (
        DataUseCondition(DS, "ICD10:I50"),
        DataUseCondition("DUO:0000019"),
    )
    assert d1.dac_members == (COMMITTEE, "zed")
    assert d1.to_json() == {
        "dataset_id": "d1",
        "name": "Dataset d1",
        "security_level": "CONTROLLED",
        "conditions": [
            {"term": DS, "disease": "ICD10:I50"},
            {"term": "DUO:0000019", "disease": None},
        ],
        "dac_members": [COMMITTEE, "zed"],
    }
    assert items[0].dac_members == ()


def test_grant_active_bounds():
    grant = applications.Grant(
        id=1,
        application_id=1,
        subject="alice",
        dataset_id="d1",
        starts_at=NOW,
        ends_at=LATER,
        revoked_at=None,
        revoked_by=None,
    )

    assert not grant.active(NOW - dt.timedelta(microseconds=1))
    assert grant.active(NOW)
    assert not grant.active(LATER)
    revoked = applications.Grant(
        **{**grant.__dict__, "revoked_at": NOW, "revoked_by": "c"}
    )
    assert not revoked.active(NOW)


# -- races ---------------------------------------------------------------------------


def run_together(calls: list[Callable[[], object]]) -> list[object]:
    """Run each call in its own thread, all released at once; results or errors."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = calls[index]()
        except Exception as error:
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def count(node, model, *where) -> int:
    with node.session() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def replay(events) -> str:
    """The state a sequence of events leads to, checking each step is allowed."""
    assert (events[0].action, events[0].from_state) == ("create", None)
    state = events[0].to_state
    for step in events[1:]:
        sources, target = TRANSITIONS[step.action]
        assert step.from_state == state, events
        assert state in sources, events
        state = target or state
        assert step.to_state == state
    return state


def test_racing_approvals_grant_once(node):
    members = tuple(f"dac-{number}" for number in range(8))
    add_dataset(node, dac=members)
    application_id = apply(node, submit=True).id

    results = run_together(
        [
            lambda member=member: workflow.approve(
                node.engine, application_id, actor=member, ends_at=LATER, now=NOW
            )
            for member in members
        ]
    )

    won = [r for r in results if isinstance(r, applications.Application)]
    lost = [r for r in results if not isinstance(r, applications.Application)]
    assert len(won) == 1
    assert len(lost) == 7
    for error in lost:
        assert isinstance(error, ConflictError), repr(error)
        assert "approved" in str(error)
    assert count(node, Entitlement) == 1
    assert (
        count(
            node,
            AccessApplicationEvent,
            AccessApplicationEvent.action == "approve",
        )
        == 1
    )
    assert count(node, AuditEntry, AuditEntry.action == "access.approve") == 1
    final = applications.get_application(node.engine, application_id, as_operator=True)
    assert final.grant.id == won[0].grant.id
    assert final.events[-1].actor == won[0].events[-1].actor
    assert_audit_intact(node)


def test_many_decisions_at_once_lose_no_update(node):
    add_dataset(node)
    num_threads, per_thread = 8, 4
    application_ids = [
        apply(node, applicant=f"user-{n}", submit=True).id
        for n in range(num_threads * per_thread)
    ]

    def decide(batch: list[int]) -> None:
        for position, application_id in enumerate(batch):
            workflow.approve(
                node.engine, application_id, actor=COMMITTEE, ends_at=LATER, now=NOW
            )
            if position % 2 == 0:
                workflow.revoke(node.engine, application_id, actor=COMMITTEE, now=NOW)

    batches = [
        application_ids[n * per_thread : (n + 1) * per_thread]
        for n in range(num_threads)
    ]
    results = run_together([lambda batch=batch: decide(batch) for batch in batches])

    assert results == [None] * num_threads
    expected = {}
    for batch in batches:
        for position, application_id in enumerate(batch):
            expected[application_id] = REVOKED if position % 2 == 0 else APPROVED
    found = applications.list_applications(node.engine, as_operator=True)
    assert {item.id: item.state for item in found} == expected
    for item in found:
        assert replay(item.events) == item.state
        assert len(item.events) == (4 if item.state == REVOKED else 3)
        assert item.version == len(item.events) - 1
    with node.session() as session:
        granted = applications.grants(session, now=NOW)
    assert {grant.application_id for grant in granted} == {
        i for i, state in expected.items() if state == APPROVED
    }
    # create, submit, approve and, for half of them, revoke.
    num_entries = sum(4 if state == REVOKED else 3 for state in expected.values())
    assert len(audit_entries(node)) == num_entries
    assert_audit_intact(node)


def test_approve_reject_return_revoke_race_ends_consistent(node):
    add_dataset(node, dac=("dac-a", "dac-b", "dac-c", "dac-d"))
    engine = node.engine
    for race in range(5):
        applicant = f"user-{race}"
        application_id = apply(node, applicant=applicant, submit=True).id
        results = run_together(
            [
                lambda i=application_id: workflow.approve(
                    engine, i, actor="dac-a", ends_at=LATER, now=NOW
                ),
                lambda i=application_id: workflow.reject(
                    engine, i, actor="dac-b", now=NOW
                ),
                lambda i=application_id: workflow.return_for_changes(
                    engine, i, actor="dac-c", now=NOW
                ),
                lambda i=application_id: workflow.revoke(
                    engine, i, actor="dac-d", now=NOW
                ),
            ]
        )
        for result in results:
            assert isinstance(result, applications.Application | ConflictError), result
        final = applications.get_application(
            node.engine, application_id, as_operator=True
        )
        assert replay(final.events) == final.state
        actions = [event.action for event in final.events]
        # Exactly one of the decisions on the submitted application took effect.
        assert sum(actions.count(a) for a in ("approve", "reject", "return")) == 1
        succeeded = [r for r in results if isinstance(r, applications.Application)]
        assert len(succeeded) == len(actions) - 2
        approved = "approve" in actions
        assert (final.grant is not None) == approved
        if "revoke" in actions:
            assert final.state == REVOKED
            assert final.grant.revoked_by == "dac-d"
        with node.session() as session:
            granted = applications.active_grants(session, applicant, now=NOW)
        assert ("d1" in granted) == (final.state == APPROVED)
        assert count(
            node, Entitlement, Entitlement.application_id == application_id
        ) == int(approved)
    assert_audit_intact(node)
