"""The data access committee (DAC) workflow: applications, decisions, entitlements.

Modelled on REMS: a researcher applies for one dataset with a research purpose, the
dataset's committee decides, and an approval creates an entitlement with an end
date. The states and the actions between them::

    create ─> draft ──submit──> submitted ──approve──> approved ──revoke──> revoked
              (edit)             │   │   ↑                 │
                                 │   │   └──submit──┐      └─ends_at passes─> expired
                                 │   └──return──> returned (edit)
                                 └──reject──> rejected

Who may act: the applicant edits and submits (only in ``draft`` or ``returned``); a
member of the dataset's committee, or an operator, approves, rejects, returns and
revokes; nobody approves their own application. A dataset's committee is the
``dac.members`` of its dataset.yaml plus the members operators added
(:func:`genomenode.access.committee.add_dac_member`).

Every change is one transaction: the application row is updated only where its
``version`` and ``state`` are still those read (optimistic locking), and the event,
the entitlement change and the audit entry commit with it. A writer that loses a
race reads again: if the state moved it gets :class:`~genomenode.errors.ConflictError`,
if only the audit chain's head moved it tries again. Refusals for want of permission
are audited too (outcome ``deny``), each in its own transaction. An actor who may not
even see the application (not its applicant, a member or on its committee) gets
:class:`~genomenode.errors.NotFoundError` in the same words as for a missing one,
so that ids cannot be probed; one who may see it but not act gets
:class:`~genomenode.errors.PermissionDenied`.

:func:`genomenode.access.applications.active_grants` is the per-request access
check: one indexed query on the entitlements, which is right at any moment whether
or not :func:`expire_due` has recorded the expiry yet.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from ..errors import (
    ConflictError,
    InputError,
)
from ..store.models import (
    AccessApplication,
    AccessApplicationEvent,
    Entitlement,
)
from .applications import (
    APPROVED,
    DRAFT,
    EXPIRY_ACTOR,
    SUBMITTED,
    Application,
    _aware,
    _build,
    _conditions,
    _members,
    _now,
    _subject,
    _title,
)
from .audit import add_entry
from .duo import (
    Recommendation,
    ResearchPurpose,
    checked_purpose,
    match,
    purpose_from_json,
    purpose_to_json,
)
from .transactions import (
    by_whom,
    clean_comment,
    in_transaction,
    require_published,
    transition,
)

__all__ = [
    "approve",
    "create_application",
    "edit_application",
    "expire_due",
    "reject",
    "return_for_changes",
    "revoke",
    "submit",
]


def create_application(
    engine: Engine,
    *,
    dataset_id: str,
    applicant: str,
    project_title: str,
    purpose: ResearchPurpose,
    purpose_text: str = "",
    members: Sequence[str] = (),
    submit: bool = False,
    now: dt.datetime | None = None,
) -> Application:
    """Apply for access to a published dataset; a draft, or submitted with ``submit``.

    ``members`` are co-applicants (subjects) who may see the application; the
    entitlement an approval creates is the applicant's.

    Raises
    ------
    NotFoundError
        The dataset is not published on this node.
    InputError
        A field is empty or invalid (the error names it).
    """
    moment = _now(now)
    applicant = _subject(applicant, "applicant")
    title = _title(project_title)
    checked = checked_purpose(purpose)
    co_applicants = _members(members, applicant)
    if not isinstance(purpose_text, str):
        raise InputError("must be text", field="purpose_text")
    steps: list[tuple[str, str | None, str]] = [("create", None, DRAFT)]
    if submit:
        steps.append(("submit", DRAFT, SUBMITTED))

    def work(session: Session) -> Application:
        require_published(session, dataset_id)
        row = AccessApplication(
            dataset_id=dataset_id,
            applicant=applicant,
            members=co_applicants,
            project_title=title,
            purpose=purpose_to_json(checked),
            purpose_text=purpose_text.strip(),
            state=steps[-1][2],
            version=1,
            created_at=moment,
            updated_at=moment,
        )
        session.add(row)
        session.flush()
        for action, from_state, to_state in steps:
            session.add(
                AccessApplicationEvent(
                    application_id=row.id,
                    at=moment,
                    actor=applicant,
                    action=action,
                    from_state=from_state,
                    to_state=to_state,
                )
            )
            add_entry(
                session,
                actor=applicant,
                action=f"access.{action}",
                outcome="allow",
                reason=f"application {action}d by the applicant",
                dataset_id=dataset_id,
                details={"application": row.id, "from": from_state, "to": to_state},
                at=moment,
            )
        return _build(session, [row])[0]

    return in_transaction(engine, work)


def edit_application(
    engine: Engine,
    application_id: int,
    *,
    actor: str,
    project_title: str | None = None,
    purpose: ResearchPurpose | None = None,
    purpose_text: str | None = None,
    members: Sequence[str] | None = None,
    now: dt.datetime | None = None,
) -> Application:
    """Change a draft or returned application (its applicant only).

    Fields left ``None`` stay as they are.

    Raises
    ------
    NotFoundError
        No such application, or ``actor`` may not see it (audited).
    PermissionDenied
        ``actor`` sees it but is not the applicant (audited).
    ConflictError
        The application is not a draft or returned.
    """
    changes: dict[str, Any] = {}
    if project_title is not None:
        changes["project_title"] = _title(project_title)
    if purpose is not None:
        changes["purpose"] = purpose_to_json(checked_purpose(purpose))
    if purpose_text is not None:
        if not isinstance(purpose_text, str):
            raise InputError("must be text", field="purpose_text")
        changes["purpose_text"] = purpose_text.strip()
    if members is not None:
        changes["members"] = _members(members, actor)
    if not changes:
        raise InputError("nothing to change: give at least one field")
    return transition(
        engine,
        application_id,
        "edit",
        actor=actor,
        now=_now(now),
        reason=f"application edited by the applicant ({', '.join(sorted(changes))})",
        changes=changes,
    )


def submit(
    engine: Engine, application_id: int, *, actor: str, now: dt.datetime | None = None
) -> Application:
    """Submit a draft or returned application to the committee (its applicant only)."""
    return transition(
        engine,
        application_id,
        "submit",
        actor=actor,
        now=_now(now),
        reason="application submitted by the applicant",
    )


def approve(
    engine: Engine,
    application_id: int,
    *,
    actor: str,
    ends_at: dt.datetime,
    comment: str | None = None,
    override_reason: str | None = None,
    as_operator: bool = False,
    now: dt.datetime | None = None,
) -> Application:
    """Approve a submitted application: the applicant is granted the dataset from
    ``now`` until ``ends_at`` (exclusive; timezone-aware, in the future).

    An application whose DUO recommendation is ``deny`` is approved only with an
    ``override_reason``, which the audit entry records with the recommendation
    (every approval's entry names the recommendation it was made against).

    Raises
    ------
    InputError
        ``ends_at`` is naive or not after ``now``; the recommendation is ``deny``
        and no ``override_reason`` is given (the message says why it is deny), or
        it is not ``deny`` and one is (field ``override_reason``).
    NotFoundError
        No such application, or ``actor`` may not see it (audited).
    PermissionDenied
        ``actor`` sees it but is not on the dataset's committee (and not
        ``as_operator``), or is the applicant (audited).
    ConflictError
        The application is not submitted (or another decision got there first).
    """
    moment = _now(now)
    until = _aware(ends_at, "ends_at")
    if until <= moment:
        raise InputError(
            f"{until.isoformat()} is not in the future (now {moment.isoformat()})",
            field="ends_at",
        )
    if override_reason is not None and not isinstance(override_reason, str):
        raise InputError("must be text", field="override_reason")
    override = (override_reason or "").strip() or None

    def grant(session: Session, row: AccessApplication) -> Mapping[str, Any]:
        recommendation = match(
            purpose_from_json(row.purpose),
            _conditions(session, [row.dataset_id]).get(row.dataset_id, ()),
        )
        _check_override(row.id, recommendation, override)
        session.add(
            Entitlement(
                application_id=row.id,
                subject=row.applicant,
                dataset_id=row.dataset_id,
                starts_at=moment,
                ends_at=until,
            )
        )
        details = {
            "grantee": row.applicant,
            "ends_at": until.isoformat(),
            "recommendation": recommendation.outcome,
        }
        if override is not None:
            details["override_reason"] = override
        return details

    reason = f"approved by {by_whom(as_operator)} until {until.isoformat()}"
    if override is not None:
        reason += f", overriding the DUO recommendation deny: {override}"
    return transition(
        engine,
        application_id,
        "approve",
        actor=actor,
        now=moment,
        reason=reason,
        comment=clean_comment(comment),
        as_operator=as_operator,
        on_change=grant,
    )


def _check_override(
    application_id: int, recommendation: Recommendation, override: str | None
) -> None:
    """An approval against a ``deny`` needs a reason; one that is not, none."""
    if recommendation.outcome == "deny" and override is None:
        why = "; ".join(recommendation.reasons)
        raise InputError(
            f"the DUO recommendation for application {application_id} is deny "
            f"({why}): approving it anyway needs the reason for overriding it "
            "(`genomenode access approve --override --reason TEXT`; "
            "over HTTP, override_reason), which the audit log records",
            field="override_reason",
        )
    if recommendation.outcome != "deny" and override is not None:
        raise InputError(
            f"the DUO recommendation for application {application_id} is "
            f"{recommendation.outcome}, not deny: there is nothing to override",
            field="override_reason",
        )


def reject(
    engine: Engine,
    application_id: int,
    *,
    actor: str,
    comment: str | None = None,
    as_operator: bool = False,
    now: dt.datetime | None = None,
) -> Application:
    """Reject a submitted application (committee or operator); final."""
    return transition(
        engine,
        application_id,
        "reject",
        actor=actor,
        now=_now(now),
        reason=f"rejected by {by_whom(as_operator)}",
        comment=clean_comment(comment),
        as_operator=as_operator,
    )


def return_for_changes(
    engine: Engine,
    application_id: int,
    *,
    actor: str,
    comment: str | None = None,
    as_operator: bool = False,
    now: dt.datetime | None = None,
) -> Application:
    """Send a submitted application back to its applicant to change and resubmit."""
    return transition(
        engine,
        application_id,
        "return",
        actor=actor,
        now=_now(now),
        reason=f"returned for changes by {by_whom(as_operator)}",
        comment=clean_comment(comment),
        as_operator=as_operator,
    )


def revoke(
    engine: Engine,
    application_id: int,
    *,
    actor: str,
    comment: str | None = None,
    as_operator: bool = False,
    now: dt.datetime | None = None,
) -> Application:
    """Revoke an approved application: its grant stops giving access at once."""
    moment = _now(now)

    def end_grant(session: Session, row: AccessApplication) -> Mapping[str, Any]:
        session.execute(
            update(Entitlement)
            .where(
                Entitlement.application_id == row.id, Entitlement.revoked_at.is_(None)
            )
            .values(revoked_at=moment, revoked_by=actor)
            .execution_options(synchronize_session=False)
        )
        return {"grantee": row.applicant}

    return transition(
        engine,
        application_id,
        "revoke",
        actor=actor,
        now=moment,
        reason=f"revoked by {by_whom(as_operator)}",
        comment=clean_comment(comment),
        as_operator=as_operator,
        on_change=end_grant,
    )


def expire_due(engine: Engine, *, now: dt.datetime | None = None) -> list[int]:
    """Record as ``expired`` the approved applications whose grant has ended.

    Returns their ids. Access does not wait for this (see :func:`active_grants`);
    it keeps the states and the audit log telling what happened. An application
    revoked meanwhile is left as it is.
    """
    moment = _now(now)
    with Session(engine) as session:
        due = session.execute(
            select(AccessApplication.id, Entitlement.ends_at)
            .join(Entitlement, Entitlement.application_id == AccessApplication.id)
            .where(AccessApplication.state == APPROVED, Entitlement.ends_at <= moment)
            .order_by(AccessApplication.id)
        ).all()
    expired = []
    for application_id, ends_at in due:
        try:
            transition(
                engine,
                application_id,
                "expire",
                actor=EXPIRY_ACTOR,
                now=moment,
                reason=f"the grant ended at {ends_at.isoformat()}",
            )
        except ConflictError:
            continue  # revoked, or expired by another process, meanwhile
        expired.append(application_id)
    return expired
