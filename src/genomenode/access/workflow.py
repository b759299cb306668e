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
(:func:`add_dac_member`).

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

:func:`active_grants` is the per-request access check: one indexed query on the
entitlements, which is right at any moment whether or not :func:`expire_due` has
recorded the expiry yet.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import CursorResult, Engine, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from ..errors import (
    ConflictError,
    InputError,
    NotFoundError,
    PermissionDenied,
    did_you_mean,
)
from ..store.models import (
    STATUS_PUBLISHED,
    AccessApplication,
    AccessApplicationEvent,
    DacMember,
    Dataset,
    Entitlement,
)
from .applications import (
    _ROLES,
    APPROVED,
    DRAFT,
    EXPIRED,
    EXPIRY_ACTOR,
    REJECTED,
    RETURNED,
    REVOKED,
    STATES,
    SUBMITTED,
    TRANSITIONS,
    Application,
    ApplicationEvent,
    CatalogueItem,
    Grant,
    _aware,
    _build,
    _checked_purpose,
    _conditions,
    _is_published,
    _may_see,
    _members,
    _not_found,
    _now,
    _row,
    _rows,
    _subject,
    _title,
    active_grants,
    catalogue_items,
    dac_members,
    get_application,
    grants,
    list_applications,
    purpose_from_json,
    purpose_to_json,
)
from .audit import add_entry, append
from .duo import Recommendation, ResearchPurpose, match

__all__ = [
    "APPROVED",
    "DRAFT",
    "EXPIRED",
    "EXPIRY_ACTOR",
    "REJECTED",
    "RETURNED",
    "REVOKED",
    "STATES",
    "SUBMITTED",
    "TRANSITIONS",
    "Application",
    "ApplicationEvent",
    "CatalogueItem",
    "Grant",
    "active_grants",
    "add_dac_member",
    "approve",
    "catalogue_items",
    "change_dac_members",
    "create_application",
    "dac_members",
    "edit_application",
    "expire_due",
    "get_application",
    "grants",
    "list_applications",
    "purpose_from_json",
    "purpose_to_json",
    "reject",
    "remove_dac_member",
    "return_for_changes",
    "revoke",
    "submit",
]

_T = TypeVar("_T")
_ATTEMPTS = 50


# -- changing ------------------------------------------------------------------------


class _Changed(Exception):
    """The application changed between reading it and updating it: read again."""


def _in_transaction(engine: Engine, work: Callable[[Session], _T]) -> _T:
    """``work`` in one transaction, run again while it loses a race.

    Two writers chaining to the same audit head cannot both commit (IntegrityError,
    or OperationalError on a busy SQLite): the loser's whole transaction runs again
    and re-reads everything. ``_Changed`` re-runs it at once.
    """
    last_error: Exception | None = None
    for attempt in range(_ATTEMPTS):
        try:
            with Session(engine, expire_on_commit=False) as session, session.begin():
                return work(session)
        except _Changed:
            continue
        except (IntegrityError, OperationalError) as error:
            last_error = error
            time.sleep(0.002 * attempt)
    if last_error is not None:
        raise last_error  # the database itself, most likely: not a 409
    raise ConflictError(
        f"gave up after {_ATTEMPTS} attempts: other changes kept getting there first"
    )


def _comment(comment: str | None) -> str | None:
    if comment is None:
        return None
    if not isinstance(comment, str):
        raise InputError("must be text", field="comment")
    return comment.strip() or None


def _refusal(
    action: str,
    row: AccessApplication,
    *,
    actor: str,
    as_operator: bool,
    committee: frozenset[str],
) -> str | None:
    """Why ``actor`` may not take ``action`` on ``row``; None when they may."""
    role = _ROLES[action]
    if role == "applicant" and actor != row.applicant:
        return f"only the applicant may {action} application {row.id}"
    if role == "committee":
        if action == "approve" and actor == row.applicant:
            return f"{actor} may not approve their own application {row.id}"
        if not as_operator and actor not in committee:
            return f"{actor} is not on the data access committee of {row.dataset_id}"
    return None


@dataclasses.dataclass(frozen=True)
class _Refused:
    dataset_id: str | None
    state: str | None
    reason: str
    # Missing, or not the actor's to see: answered 404, never 403, so that
    # application ids cannot be probed.
    hidden: bool = False


def _transition(
    engine: Engine,
    application_id: int,
    action: str,
    *,
    actor: str,
    now: dt.datetime,
    reason: str,
    comment: str | None = None,
    as_operator: bool = False,
    changes: Mapping[str, Any] | None = None,
    on_change: Callable[[Session, AccessApplication], Mapping[str, Any]] | None = None,
) -> Application:
    """Take ``action`` on an application: update, event, grant change, audit entry.

    ``changes`` are further column values (an edit); ``on_change`` makes the grant's
    change and returns what to add to the audit entry's details.
    """
    sources, target = TRANSITIONS[action]
    first_seen: list[str] = []

    # The node's own steps (expiry) and operators see every application.
    sees_all = as_operator or _ROLES[action] == "node"

    def work(session: Session) -> Application | _Refused:
        found = _rows(session, AccessApplication.id == application_id)
        if not found:
            if sees_all:
                raise _not_found(application_id)
            return _Refused(None, None, f"no application {application_id}", True)
        row = found[0]
        if not sees_all and not _may_see(session, row, actor):
            return _Refused(
                row.dataset_id,
                row.state,
                f"{actor} is neither an applicant of application {application_id} "
                f"nor on the committee of {row.dataset_id}",
                True,
            )
        committee = (
            dac_members(session, row.dataset_id)
            if _ROLES[action] == "committee"
            else frozenset()
        )
        refusal = _refusal(
            action, row, actor=actor, as_operator=as_operator, committee=committee
        )
        if refusal is not None:
            return _Refused(row.dataset_id, row.state, refusal)
        from_state, version = row.state, row.version
        if not first_seen:
            first_seen.append(from_state)
        if from_state != first_seen[0]:
            raise ConflictError(
                f"application {application_id} became {from_state} while {actor} "
                f"tried to {action} it"
            )
        if from_state not in sources:
            raise ConflictError(
                f"application {application_id} is {from_state}: cannot {action} it "
                f"({action} needs {' or '.join(sorted(sources))})"
            )
        to_state = target or from_state
        # A DML statement's result is a CursorResult; Session.execute types it wider.
        updated = cast(
            CursorResult[Any],
            session.execute(
                update(AccessApplication)
                .where(
                    AccessApplication.id == application_id,
                    AccessApplication.version == version,
                    AccessApplication.state == from_state,
                )
                .values(
                    state=to_state,
                    version=version + 1,
                    updated_at=now,
                    **(changes or {}),
                )
                .execution_options(synchronize_session=False)
            ),
        )
        if updated.rowcount != 1:
            raise _Changed
        session.add(
            AccessApplicationEvent(
                application_id=application_id,
                at=now,
                actor=actor,
                action=action,
                from_state=from_state,
                to_state=to_state,
                comment=comment,
            )
        )
        details: dict[str, Any] = {
            "application": application_id,
            "from": from_state,
            "to": to_state,
        }
        if on_change is not None:
            details.update(on_change(session, row))
        add_entry(
            session,
            actor=actor,
            action=f"access.{action}",
            outcome="allow",
            reason=reason,
            dataset_id=row.dataset_id,
            details=details,
            at=now,
        )
        return _build(session, [_row(session, application_id)])[0]

    result = _in_transaction(engine, work)
    if isinstance(result, _Refused):
        # Every decision is audited, refusals too; the refusal changed nothing else.
        details: dict[str, Any] = {"application": application_id}
        if result.state is not None:
            details["state"] = result.state
        append(
            engine,
            actor=actor,
            action=f"access.{action}",
            outcome="deny",
            reason=result.reason,
            dataset_id=result.dataset_id,
            details=details,
            at=now,
        )
        if result.hidden:
            raise _not_found(application_id)
        raise PermissionDenied(result.reason)
    return result


def _require_published(session: Session, dataset_id: str) -> None:
    """Raise NotFoundError (naming the closest published ids) unless published."""
    if _is_published(session, dataset_id):
        return
    known = session.scalars(
        select(Dataset.id).where(Dataset.status == STATUS_PUBLISHED)
    )
    raise NotFoundError(
        f"dataset {dataset_id!r} is not published on this node"
        + did_you_mean(dataset_id, known)
    )


def _by_whom(as_operator: bool) -> str:
    return "an operator" if as_operator else "the data access committee"


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
    checked = _checked_purpose(purpose)
    co_applicants = _members(members, applicant)
    if not isinstance(purpose_text, str):
        raise InputError("must be text", field="purpose_text")
    steps: list[tuple[str, str | None, str]] = [("create", None, DRAFT)]
    if submit:
        steps.append(("submit", DRAFT, SUBMITTED))

    def work(session: Session) -> Application:
        _require_published(session, dataset_id)
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

    return _in_transaction(engine, work)


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
        changes["purpose"] = purpose_to_json(_checked_purpose(purpose))
    if purpose_text is not None:
        if not isinstance(purpose_text, str):
            raise InputError("must be text", field="purpose_text")
        changes["purpose_text"] = purpose_text.strip()
    if members is not None:
        changes["members"] = _members(members, actor)
    if not changes:
        raise InputError("nothing to change: give at least one field")
    return _transition(
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
    return _transition(
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

    reason = f"approved by {_by_whom(as_operator)} until {until.isoformat()}"
    if override is not None:
        reason += f", overriding the DUO recommendation deny: {override}"
    return _transition(
        engine,
        application_id,
        "approve",
        actor=actor,
        now=moment,
        reason=reason,
        comment=_comment(comment),
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
    return _transition(
        engine,
        application_id,
        "reject",
        actor=actor,
        now=_now(now),
        reason=f"rejected by {_by_whom(as_operator)}",
        comment=_comment(comment),
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
    return _transition(
        engine,
        application_id,
        "return",
        actor=actor,
        now=_now(now),
        reason=f"returned for changes by {_by_whom(as_operator)}",
        comment=_comment(comment),
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

    return _transition(
        engine,
        application_id,
        "revoke",
        actor=actor,
        now=moment,
        reason=f"revoked by {_by_whom(as_operator)}",
        comment=_comment(comment),
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
            _transition(
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


def add_dac_member(
    engine: Engine, *, dataset_id: str, subject: str, actor: str
) -> None:
    """Put ``subject`` on the committee of a published dataset (audited).

    For operators: the caller decides who may. Adding a member twice changes nothing.
    """
    subject = _subject(subject, "subject")

    def work(session: Session) -> None:
        _require_published(session, dataset_id)
        if subject in dac_members(session, dataset_id):
            return
        session.add(
            DacMember(
                dataset_id=dataset_id,
                subject=subject,
                added_by=actor,
                added_at=dt.datetime.now(dt.UTC),
            )
        )
        add_entry(
            session,
            actor=actor,
            action="access.dac_add",
            outcome="allow",
            reason=f"{subject} put on the data access committee",
            dataset_id=dataset_id,
            details={"subject": subject},
        )

    _in_transaction(engine, work)


def remove_dac_member(
    engine: Engine, *, dataset_id: str, subject: str, actor: str
) -> None:
    """Take ``subject`` off the committee of a dataset (audited; for operators).

    Raises
    ------
    NotFoundError
        ``subject`` is not on the committee.
    ConflictError
        ``subject`` is listed in the dataset's dataset.yaml, which the node does not
        change.
    """
    subject = _subject(subject, "subject")

    def work(session: Session) -> None:
        row = session.get(DacMember, (dataset_id, subject))
        if row is None:
            if subject in dac_members(session, dataset_id):
                raise ConflictError(
                    f"{subject} is on the committee of {dataset_id} through its "
                    "dataset.yaml (dac.members); that list is not changed here"
                )
            raise NotFoundError(f"{subject} is not on the committee of {dataset_id}")
        session.delete(row)
        add_entry(
            session,
            actor=actor,
            action="access.dac_remove",
            outcome="allow",
            reason=f"{subject} taken off the data access committee",
            dataset_id=dataset_id,
            details={"subject": subject},
        )

    _in_transaction(engine, work)


def change_dac_members(
    engine: Engine,
    dataset_id: str,
    *,
    added: Sequence[str] = (),
    removed: Sequence[str] = (),
    actor: str,
) -> tuple[str, ...]:
    """Add and remove members of a published dataset's committee (each change
    audited, as :func:`add_dac_member` and :func:`remove_dac_member` do); returns
    the committee after the changes, sorted. With neither, it only reads it.

    Raises
    ------
    NotFoundError
        The dataset is not published (naming the closest published ids), or a
        subject to remove is not on the committee.
    ConflictError
        A subject to remove is listed in the dataset's dataset.yaml.
    """
    with Session(engine) as session:
        _require_published(session, dataset_id)
    for subject in added:
        add_dac_member(engine, dataset_id=dataset_id, subject=subject, actor=actor)
    for subject in removed:
        remove_dac_member(engine, dataset_id=dataset_id, subject=subject, actor=actor)
    with Session(engine) as session:
        return tuple(sorted(dac_members(session, dataset_id)))
