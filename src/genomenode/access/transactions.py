"""One step of the DAC workflow as one transaction.

:func:`in_transaction` runs a step and tries it again when only the audit chain's
head moved; :func:`transition` moves an application from one state to another
under optimistic locking (its ``version`` and ``state`` are still those read) and
commits the event, the entitlement change and the audit entry with it; refusals
for want of permission are audited too, each in its own transaction. The workflow
(:mod:`.workflow`), the committee (:mod:`.committee`) and the dataset lifecycle
share it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Mapping
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
    Dataset,
)
from .applications import (
    _ROLES,
    TRANSITIONS,
    Application,
    _build,
    _is_published,
    _may_see,
    _not_found,
    _row,
    _rows,
    dac_members,
)
from .audit import add_entry, append

__all__ = [
    "by_whom",
    "clean_comment",
    "in_transaction",
    "require_published",
    "transition",
]

_T = TypeVar("_T")
_ATTEMPTS = 50


# -- changing ------------------------------------------------------------------------


class _Changed(Exception):
    """The application changed between reading it and updating it: read again."""


def in_transaction(engine: Engine, work: Callable[[Session], _T]) -> _T:
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


def clean_comment(comment: str | None) -> str | None:
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


def transition(
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

    result = in_transaction(engine, work)
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


def require_published(session: Session, dataset_id: str) -> None:
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


def by_whom(as_operator: bool) -> str:
    return "an operator" if as_operator else "the data access committee"
