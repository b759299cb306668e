"""Applications, grants and catalogue items as read from the database.

The read side of the DAC workflow (:mod:`genomenode.access.workflow` changes them):
the frozen values that leave this package (:class:`Application`, :class:`Grant`,
:class:`CatalogueItem`), research purposes to and from JSON, who sits on a
dataset's committee, and :func:`active_grants`, the per-request access check: one
indexed query on the entitlements, right at any moment whether or not
:func:`~genomenode.access.workflow.expire_due` has recorded an expiry yet.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from sqlalchemy import Connection, Engine, select
from sqlalchemy.orm import Session

from ..errors import (
    AuthenticationRequired,
    InputError,
    NotFoundError,
)
from ..store.models import (
    STATUS_PUBLISHED,
    AccessApplication,
    AccessApplicationEvent,
    DacMember,
    Dataset,
    DataUseTerm,
    Entitlement,
)
from .audit import append
from .duo import (
    DataUseCondition,
    Recommendation,
    ResearchPurpose,
    match,
    purpose_from_json,
    purpose_to_json,
)

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
    "catalogue_items",
    "dac_members",
    "get_application",
    "grants",
    "list_applications",
]

DRAFT = "draft"
SUBMITTED = "submitted"
RETURNED = "returned"
APPROVED = "approved"
REJECTED = "rejected"
REVOKED = "revoked"
EXPIRED = "expired"
STATES = (DRAFT, SUBMITTED, RETURNED, APPROVED, REJECTED, REVOKED, EXPIRED)

#: Each action after ``create``: the states it starts from and the state it leads to
#: (``edit`` leaves the state as it is).
TRANSITIONS: Mapping[str, tuple[frozenset[str], str | None]] = {
    "edit": (frozenset({DRAFT, RETURNED}), None),
    "submit": (frozenset({DRAFT, RETURNED}), SUBMITTED),
    "approve": (frozenset({SUBMITTED}), APPROVED),
    "reject": (frozenset({SUBMITTED}), REJECTED),
    "return": (frozenset({SUBMITTED}), RETURNED),
    "revoke": (frozenset({APPROVED}), REVOKED),
    "expire": (frozenset({APPROVED}), EXPIRED),
}
#: The actor of expiries recorded by :func:`expire_due`.
EXPIRY_ACTOR = "node:expiry"

_Role = Literal["applicant", "committee", "node"]
_ROLES: Mapping[str, _Role] = {
    "edit": "applicant",
    "submit": "applicant",
    "approve": "committee",
    "reject": "committee",
    "return": "committee",
    "revoke": "committee",
    "expire": "node",
}
_MAX_SUBJECT = 255


@dataclasses.dataclass(frozen=True)
class ApplicationEvent:
    """One step of an application: who did what, from which state to which."""

    at: dt.datetime
    actor: str
    action: str
    from_state: str | None
    to_state: str
    comment: str | None

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "at": self.at.isoformat()}


@dataclasses.dataclass(frozen=True)
class Grant:
    """An entitlement: ``subject`` may access ``dataset_id`` from ``starts_at`` until
    (not including) ``ends_at``, unless revoked."""

    id: int
    application_id: int
    subject: str
    dataset_id: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    revoked_at: dt.datetime | None
    revoked_by: str | None

    def active(self, now: dt.datetime) -> bool:
        """Whether the grant gives access at ``now`` (timezone-aware)."""
        return self.revoked_at is None and self.starts_at <= now < self.ends_at

    def describe(self, now: dt.datetime | None = None) -> str:
        """One line: who, what, when, and whether it is active, ended or revoked."""
        if self.revoked_at is not None:
            status = f"revoked {self.revoked_at.isoformat()} by {self.revoked_by}"
        elif self.active(now or dt.datetime.now(dt.UTC)):
            status = "active"
        else:
            status = "ended"
        return (
            f"{self.subject} on {self.dataset_id} "
            f"from {self.starts_at.isoformat(timespec='seconds')} "
            f"until {self.ends_at.isoformat(timespec='seconds')} ({status})"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self),
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


@dataclasses.dataclass(frozen=True)
class Application:
    """An application as it stands, with its history, grant and DUO recommendation.

    ``recommendation`` is :func:`~genomenode.access.duo.match` of the purpose against
    the dataset's data-use conditions, for the committee; it decides nothing.
    """

    id: int
    dataset_id: str
    applicant: str
    members: tuple[str, ...]
    project_title: str
    purpose: ResearchPurpose
    purpose_text: str
    state: str
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    events: tuple[ApplicationEvent, ...]
    grant: Grant | None
    recommendation: Recommendation

    def summary(self) -> str:
        """One line for a list: id, state, dataset, applicant, DUO, title."""
        return (
            f"{self.id:>5}  {self.state:<9}  {self.dataset_id}  {self.applicant}  "
            f"DUO says {self.recommendation.outcome}  {self.project_title!r}"
        )

    def describe(self) -> str:
        """Several lines: purpose, DUO recommendation and why, grant, history."""
        purpose = self.purpose
        lines = [
            f"Application {self.id}: {self.project_title}",
            f"  dataset:    {self.dataset_id}",
            f"  applicant:  {self.applicant}",
            f"  members:    {', '.join(self.members) or '-'}",
            f"  state:      {self.state} (version {self.version})",
            f"  purpose:    {purpose.term} {purpose.disease or ''}".rstrip(),
        ]
        if self.purpose_text:
            lines.append(f"              {self.purpose_text}")
        lines.append(f"  DUO recommendation: {self.recommendation.outcome}")
        lines += [f"    - {reason}" for reason in self.recommendation.reasons]
        if self.grant is not None:
            lines.append(f"  grant:      {self.grant.describe()}")
        lines.append("  events:")
        for event in self.events:
            lines.append(
                f"    {event.at.isoformat(timespec='seconds')}  {event.actor}  "
                f"{event.action}: {event.from_state or '-'} -> {event.to_state}"
                + (f"  ({event.comment})" if event.comment else "")
            )
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "dataset_id": self.dataset_id,
            "applicant": self.applicant,
            "members": list(self.members),
            "project_title": self.project_title,
            "purpose": purpose_to_json(self.purpose),
            "purpose_text": self.purpose_text,
            "state": self.state,
            "version": self.version,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "events": [event.to_json() for event in self.events],
            "grant": self.grant.to_json() if self.grant else None,
            "recommendation": {
                "outcome": self.recommendation.outcome,
                "reasons": list(self.recommendation.reasons),
            },
        }


@dataclasses.dataclass(frozen=True)
class CatalogueItem:
    """A published dataset as an applicant sees it: what may be applied for."""

    dataset_id: str
    name: str
    security_level: str
    conditions: tuple[DataUseCondition, ...]
    dac_members: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset_id": self.dataset_id,
            "name": self.name,
            "security_level": self.security_level,
            "conditions": [dataclasses.asdict(item) for item in self.conditions],
            "dac_members": list(self.dac_members),
        }


# -- values --------------------------------------------------------------------------


def _aware(value: dt.datetime, field: str) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InputError(
            f"{value.isoformat()} has no timezone; give one (e.g. UTC)", field=field
        )
    return value.astimezone(dt.UTC)


def _now(now: dt.datetime | None) -> dt.datetime:
    return dt.datetime.now(dt.UTC) if now is None else _aware(now, "now")


def _subject(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(
            f"{value!r} is not a subject (a non-empty string)", field=field
        )
    if len(value.strip()) > _MAX_SUBJECT:
        raise InputError(f"longer than {_MAX_SUBJECT} characters", field=field)
    return value.strip()


def _members(values: Iterable[str], applicant: str) -> list[str]:
    """Each co-applicant once, in the order given; the applicant is not repeated."""
    found: dict[str, None] = {}
    for index, value in enumerate(values):
        subject = _subject(value, f"members[{index}]")
        if subject != applicant:
            found[subject] = None
    return list(found)


def _title(value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError("is required", field="project_title")
    return value.strip()


# -- reading -------------------------------------------------------------------------


def _yaml_members(document: object) -> tuple[str, ...]:
    """The ``dac.members`` of a dataset's stored description (checked at ingest)."""
    block = document.get("dac") if isinstance(document, Mapping) else None
    members = block.get("members") if isinstance(block, Mapping) else None
    if not isinstance(members, list):
        return ()
    return tuple(item for item in members if isinstance(item, str))


def dac_members(session: Session, dataset_id: str) -> frozenset[str]:
    """The data access committee of a dataset (empty for an unknown one).

    The subjects under ``dac.members`` in its dataset.yaml and those operators added
    with :func:`add_dac_member`.
    """
    document = session.scalar(
        select(Dataset.description_document).where(Dataset.id == dataset_id)
    )
    added = session.scalars(
        select(DacMember.subject).where(DacMember.dataset_id == dataset_id)
    )
    return frozenset(_yaml_members(document)) | frozenset(added)


def _committees_of(session: Session, subject: str) -> frozenset[str]:
    """The ids of the datasets on whose committee ``subject`` sits."""
    added = session.scalars(
        select(DacMember.dataset_id).where(DacMember.subject == subject)
    )
    listed = (
        dataset_id
        for dataset_id, document in session.execute(
            select(Dataset.id, Dataset.description_document)
        )
        if subject in _yaml_members(document)
    )
    return frozenset(added) | frozenset(listed)


def _is_published(session: Session, dataset_id: str) -> bool:
    status = session.scalar(select(Dataset.status).where(Dataset.id == dataset_id))
    return status == STATUS_PUBLISHED


def _conditions(
    session: Session, dataset_ids: Iterable[str]
) -> dict[str, tuple[DataUseCondition, ...]]:
    found: dict[str, list[DataUseCondition]] = collections.defaultdict(list)
    for term in session.scalars(
        select(DataUseTerm)
        .where(DataUseTerm.dataset_id.in_(set(dataset_ids)))
        .order_by(DataUseTerm.id)
    ):
        found[term.dataset_id].append(DataUseCondition(term.term_id, term.disease_id))
    return {dataset_id: tuple(items) for dataset_id, items in found.items()}


def _grant(row: Entitlement) -> Grant:
    return Grant(
        id=row.id,
        application_id=row.application_id,
        subject=row.subject,
        dataset_id=row.dataset_id,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
    )


def _rows(session: Session, *where: Any) -> list[AccessApplication]:
    # populate_existing: rows changed by UPDATE statements in this session are read
    # afresh, not taken from the identity map.
    return list(
        session.scalars(
            select(AccessApplication)
            .where(*where)
            .order_by(AccessApplication.id)
            .execution_options(populate_existing=True)
        )
    )


def _not_found(application_id: int) -> NotFoundError:
    """The one answer for an application that is missing *or* hidden from the
    caller: the same status and words, so that ids cannot be probed."""
    return NotFoundError(
        f"no application {application_id} on this node that you may see"
    )


def _row(session: Session, application_id: int) -> AccessApplication:
    found = _rows(session, AccessApplication.id == application_id)
    if not found:
        raise _not_found(application_id)
    return found[0]


def _may_see(session: Session, row: AccessApplication, viewer: str) -> bool:
    """Whether ``viewer`` is its applicant, a listed member or on the committee."""
    return (
        viewer == row.applicant
        or viewer in row.members
        or viewer in dac_members(session, row.dataset_id)
    )


def _build(session: Session, rows: Sequence[AccessApplication]) -> list[Application]:
    """Applications with their events, grants and recommendations (three queries)."""
    if not rows:
        return []
    ids = [row.id for row in rows]
    events: dict[int, list[ApplicationEvent]] = collections.defaultdict(list)
    for event in session.scalars(
        select(AccessApplicationEvent)
        .where(AccessApplicationEvent.application_id.in_(ids))
        .order_by(AccessApplicationEvent.id)
    ):
        events[event.application_id].append(
            ApplicationEvent(
                at=event.at,
                actor=event.actor,
                action=event.action,
                from_state=event.from_state,
                to_state=event.to_state,
                comment=event.comment,
            )
        )
    entitlements = {
        row.application_id: _grant(row)
        for row in session.scalars(
            select(Entitlement)
            .where(Entitlement.application_id.in_(ids))
            .execution_options(populate_existing=True)
        )
    }
    conditions = _conditions(session, (row.dataset_id for row in rows))
    applications = []
    for row in rows:
        purpose = purpose_from_json(row.purpose)
        applications.append(
            Application(
                id=row.id,
                dataset_id=row.dataset_id,
                applicant=row.applicant,
                members=tuple(row.members),
                project_title=row.project_title,
                purpose=purpose,
                purpose_text=row.purpose_text,
                state=row.state,
                version=row.version,
                created_at=row.created_at,
                updated_at=row.updated_at,
                events=tuple(events[row.id]),
                grant=entitlements.get(row.id),
                recommendation=match(purpose, conditions.get(row.dataset_id, ())),
            )
        )
    return applications


def get_application(
    engine: Engine,
    application_id: int,
    *,
    viewer: str | None = None,
    as_operator: bool = False,
) -> Application:
    """One application, for its applicant, a listed member, the committee or operators.

    A viewer who may not see it is answered as if it did not exist, and the
    refusal is audited (``access.read``, outcome ``deny``), as is a viewer's
    request for a missing one: both cost the same and read the same.

    Raises
    ------
    NotFoundError
        No such application, or ``viewer`` is none of the above.
    AuthenticationRequired
        No ``viewer`` and not ``as_operator``.
    """
    if not as_operator and viewer is None:
        raise AuthenticationRequired("seeing an application needs an identity")
    with Session(engine) as session:
        found = _rows(session, AccessApplication.id == application_id)
        row = found[0] if found else None
        if row is not None and (as_operator or _may_see(session, row, str(viewer))):
            return _build(session, [row])[0]
    if row is None:
        reason = f"no application {application_id}"
    else:
        reason = (
            f"{viewer} is neither an applicant of application {application_id} "
            f"nor on the committee of {row.dataset_id}"
        )
    if not as_operator:
        append(
            engine,
            actor=str(viewer),
            action="access.read",
            outcome="deny",
            reason=reason,
            dataset_id=None if row is None else row.dataset_id,
            details={"application": application_id},
        )
    raise _not_found(application_id)


def list_applications(
    engine: Engine,
    *,
    viewer: str | None = None,
    as_operator: bool = False,
    dataset_id: str | None = None,
    state: str | None = None,
) -> list[Application]:
    """The applications ``viewer`` may see, oldest first (operators: all of them).

    A viewer sees the applications they made or are a member of, and those for the
    datasets on whose committee they sit. ``dataset_id`` and ``state`` narrow the list.
    """
    if state is not None and state not in STATES:
        raise InputError(f"{state!r}: use one of {', '.join(STATES)}", field="state")
    if not as_operator and viewer is None:
        raise AuthenticationRequired("listing applications needs an identity")
    where = []
    if dataset_id is not None:
        where.append(AccessApplication.dataset_id == dataset_id)
    if state is not None:
        where.append(AccessApplication.state == state)
    with Session(engine) as session:
        rows = _rows(session, *where)
        if not as_operator:
            # Co-applicants are a JSON list, which SQLite and PostgreSQL query
            # differently; a node's applications are few enough to filter here.
            committees = _committees_of(session, str(viewer))
            rows = [
                row
                for row in rows
                if row.applicant == viewer
                or viewer in row.members
                or row.dataset_id in committees
            ]
        return _build(session, rows)


def catalogue_items(session: Session) -> list[CatalogueItem]:
    """The published datasets one may apply for, with conditions and committee."""
    datasets = session.execute(
        select(Dataset.id, Dataset.name, Dataset.security_level, Dataset.status)
        .where(Dataset.status == STATUS_PUBLISHED)
        .order_by(Dataset.id)
    ).all()
    conditions = _conditions(session, (row.id for row in datasets))
    return [
        CatalogueItem(
            dataset_id=row.id,
            name=row.name,
            security_level=row.security_level,
            conditions=conditions.get(row.id, ()),
            dac_members=tuple(sorted(dac_members(session, row.id))),
        )
        for row in datasets
    ]


def active_grants(
    session: Session | Connection, subject: str, *, now: dt.datetime | None = None
) -> frozenset[str]:
    """The ids of the datasets ``subject`` is granted at ``now`` (default: now).

    On the path of every request: one query on the (subject, dataset_id) index that
    reads dataset ids only. Revocation shows at once; expiry does not wait for
    :func:`expire_due`.
    """
    moment = _now(now)
    found = session.scalars(
        select(Entitlement.dataset_id).where(
            Entitlement.subject == subject,
            Entitlement.revoked_at.is_(None),
            Entitlement.starts_at <= moment,
            Entitlement.ends_at > moment,
        )
    )
    return frozenset(found)


def grants(
    session: Session,
    *,
    subject: str | None = None,
    dataset_id: str | None = None,
    include_inactive: bool = False,
    now: dt.datetime | None = None,
) -> list[Grant]:
    """Entitlements, oldest first; only those active at ``now`` unless
    ``include_inactive`` (then revoked and ended ones too)."""
    query = select(Entitlement).order_by(Entitlement.id)
    if subject is not None:
        query = query.where(Entitlement.subject == subject)
    if dataset_id is not None:
        query = query.where(Entitlement.dataset_id == dataset_id)
    if not include_inactive:
        moment = _now(now)
        query = query.where(
            Entitlement.revoked_at.is_(None),
            Entitlement.starts_at <= moment,
            Entitlement.ends_at > moment,
        )
    return [_grant(row) for row in session.scalars(query)]
