"""The life of a dataset after ingest: unpublish, publish again, change access, remove.

An operator's change to a published dataset, each one audited (actor, dataset, what
changed, the grants and applications it touches) and each visible to every server
process on its next request (the change bumps the datasets' generation,
:mod:`genomenode.store.generation`, in the transaction that makes it):

- :func:`unpublish`: the dataset leaves Beacon, htsget, DRS, the catalogues and
  the access catalogue; its data, grants and applications are kept.
  :func:`publish` undoes it. Grant holders and open applications are listed.
- :func:`genomenode.access.access_change.set_access`: a new security level, Beacon
  granularities or DUO terms.
- :func:`genomenode.access.removal.remove`: deletes the dataset's files and
  metadata, with its applications and grants.

This module holds what the three share: the :class:`DatasetChange` they answer,
the grants and applications a change touches, and the audited refusal of a change
that needs ``force``. Each change holds the dataset's lock
(:mod:`genomenode.store.locks`), so it never races an ingest of the same id. See
docs/datasets.md.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..errors import ConflictError, NotFoundError, StoreError
from ..store.generation import bump_generation
from ..store.locks import dataset_lock
from ..store.models import (
    STATUS_PUBLISHED,
    STATUS_STAGING,
    STATUS_UNPUBLISHED,
    AccessApplication,
    Dataset,
    Entitlement,
)
from ..store.node import Node
from .applications import DRAFT, RETURNED, SUBMITTED, Application, _build, _rows
from .audit import add_entry, append
from .transactions import in_transaction

__all__ = [
    "OPEN_STATES",
    "REMOVED",
    "AffectedApplication",
    "AffectedGrant",
    "DatasetChange",
    "publish",
    "unpublish",
]

#: Application states still waiting for a decision.
OPEN_STATES = (DRAFT, SUBMITTED, RETURNED)
#: The status a removed dataset is reported with (it has no row any more).
REMOVED = "removed"


@dataclasses.dataclass(frozen=True)
class AffectedGrant:
    """An active grant a change touches, and how."""

    id: int
    application_id: int
    subject: str
    ends_at: dt.datetime
    why: str

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "ends_at": self.ends_at.isoformat()}


@dataclasses.dataclass(frozen=True)
class AffectedApplication:
    """An open application (draft, submitted, returned) a change touches, and how."""

    id: int
    applicant: str
    state: str
    why: str

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class DatasetChange:
    """What a lifecycle function did (or, refused, would have done).

    ``changes`` maps each field that changed to its value before and after;
    ``status`` is the dataset's status afterwards (``removed`` once removed).
    """

    dataset_id: str
    action: str
    changed: bool
    status: str
    changes: Mapping[str, tuple[Any, Any]] = dataclasses.field(default_factory=dict)
    affected_grants: tuple[AffectedGrant, ...] = ()
    affected_applications: tuple[AffectedApplication, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset_id": self.dataset_id,
            "action": self.action,
            "changed": self.changed,
            "status": self.status,
            "changes": {
                field: {"before": before, "after": after}
                for field, (before, after) in self.changes.items()
            },
            "affected_grants": [item.to_json() for item in self.affected_grants],
            "affected_applications": [
                item.to_json() for item in self.affected_applications
            ],
        }

    def audit_details(self, *, force: bool) -> dict[str, Any]:
        """What the audit entry keeps: the change, who it touches, ``force``."""
        document = self.to_json()
        return {
            "changes": document["changes"],
            "affected_grants": [
                {"id": item.id, "subject": item.subject}
                for item in self.affected_grants
            ],
            "affected_applications": [
                {"id": item.id, "applicant": item.applicant, "state": item.state}
                for item in self.affected_applications
            ],
            "force": force,
        }


# -- reading -------------------------------------------------------------------------


def _dataset_row(
    session: Session, dataset_id: str, *, allowed: Sequence[str]
) -> Dataset:
    row = session.get(Dataset, dataset_id, populate_existing=True)
    if row is None or row.status == STATUS_STAGING:
        raise NotFoundError(f"no dataset {dataset_id!r} on this node")
    if row.status not in allowed:
        raise ConflictError(
            f"dataset {dataset_id!r} is {row.status}; this needs it "
            + " or ".join(allowed)
        )
    return row


def _open_applications(session: Session, dataset_id: str) -> list[Application]:
    return _build(
        session,
        _rows(
            session,
            AccessApplication.dataset_id == dataset_id,
            AccessApplication.state.in_(OPEN_STATES),
        ),
    )


def _active_grants(
    session: Session, dataset_id: str
) -> list[tuple[Entitlement, Application]]:
    """The dataset's grants in force now, each with its application."""
    now = dt.datetime.now(dt.UTC)
    entitlements = list(
        session.scalars(
            select(Entitlement)
            .where(
                Entitlement.dataset_id == dataset_id,
                Entitlement.revoked_at.is_(None),
                Entitlement.starts_at <= now,
                Entitlement.ends_at > now,
            )
            .order_by(Entitlement.id)
        )
    )
    applications = {
        item.id: item
        for item in _build(
            session,
            _rows(
                session,
                AccessApplication.id.in_([row.application_id for row in entitlements]),
            ),
        )
    }
    return [(row, applications[row.application_id]) for row in entitlements]


def _grant(row: Entitlement, why: str) -> AffectedGrant:
    return AffectedGrant(row.id, row.application_id, row.subject, row.ends_at, why)


def _application(application: Application, why: str) -> AffectedApplication:
    return AffectedApplication(
        application.id, application.applicant, application.state, why
    )


def _listing(change: DatasetChange) -> str:
    """The grants and applications of ``change`` in words, for an error message."""
    parts = [
        f"grant {item.id} ({item.subject}, until {item.ends_at.date().isoformat()}): "
        f"{item.why}"
        for item in change.affected_grants
    ] + [
        f"application {item.id} ({item.applicant}, {item.state}): {item.why}"
        for item in change.affected_applications
    ]
    return "; ".join(parts)


# -- writing -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Refusal:
    """A change that needs ``force``, found inside a transaction (audited after it,
    in a transaction of its own)."""

    change: DatasetChange
    reason: str


def _refuse(
    node: Node, change: DatasetChange, *, actor: str, reason: str
) -> ConflictError:
    """Audit a refused change and return the error that says what would need force."""
    append(
        node.engine,
        actor=actor,
        action=f"dataset.{change.action}",
        outcome="deny",
        reason=reason,
        dataset_id=change.dataset_id,
        details=change.audit_details(force=False),
    )
    listing = _listing(change)
    return ConflictError(
        f"dataset {change.dataset_id!r}: {reason}"
        + (f". Affected: {listing}" if listing else "")
        + ". Nothing was changed; force it (--force) if the committee agrees"
    )


def _set_status(
    node: Node,
    dataset_id: str,
    *,
    action: str,
    actor: str,
    reason: str,
    to_status: str,
    from_statuses: Sequence[str],
    affected: bool,
) -> DatasetChange:
    """Move a dataset between statuses in one audited transaction."""

    def work(session: Session) -> DatasetChange:
        row = _dataset_row(session, dataset_id, allowed=(*from_statuses, to_status))
        if row.status == to_status:
            return DatasetChange(dataset_id, action, False, to_status)
        grants: tuple[AffectedGrant, ...] = ()
        applications: tuple[AffectedApplication, ...] = ()
        if affected:
            grants = tuple(
                _grant(entitlement, "cannot reach the dataset until it is published")
                for entitlement, _ in _active_grants(session, dataset_id)
            )
            applications = tuple(
                _application(item, "the dataset is not published while it is open")
                for item in _open_applications(session, dataset_id)
            )
        change = DatasetChange(
            dataset_id,
            action,
            True,
            to_status,
            {"status": (row.status, to_status)},
            grants,
            applications,
        )
        session.execute(
            update(Dataset).where(Dataset.id == dataset_id).values(status=to_status)
        )
        bump_generation(session)
        add_entry(
            session,
            actor=actor,
            action=f"dataset.{action}",
            outcome="allow",
            reason=reason,
            dataset_id=dataset_id,
            details=change.audit_details(force=False),
        )
        return change

    with dataset_lock(node.staging_dir, dataset_id):
        return in_transaction(node.engine, work)


def unpublish(node: Node, dataset_id: str, *, actor: str) -> DatasetChange:
    """Take a published dataset out of every service; its data stay.

    Beacon, htsget, DRS, the DCAT catalogue and the access catalogue stop showing
    it from their next request; nobody may apply for it. Grants and applications
    are kept (and listed in the result and the audit entry): they count again once
    the dataset is published again with :func:`publish`. Unpublishing an
    unpublished dataset changes nothing.

    Raises
    ------
    NotFoundError
        No such dataset.
    ConflictError
        The dataset is being removed.
    """
    return _set_status(
        node,
        dataset_id,
        action="unpublish",
        actor=actor,
        reason="unpublished by an operator: no longer discoverable or fetchable",
        to_status=STATUS_UNPUBLISHED,
        from_statuses=(STATUS_PUBLISHED,),
        affected=True,
    )


def publish(node: Node, dataset_id: str, *, actor: str) -> DatasetChange:
    """Publish an unpublished dataset again (undoes :func:`unpublish`).

    Raises
    ------
    NotFoundError
        No such dataset.
    ConflictError
        The dataset is being removed.
    StoreError
        Its dataset.json is missing from the store.
    """
    with node.session() as session:
        row = session.get(Dataset, dataset_id)
    if (
        row is not None
        and row.status == STATUS_UNPUBLISHED
        and not node.has_manifest(dataset_id, row.fingerprint)
    ):
        key = f"{node.dataset_prefix(dataset_id, row.fingerprint)}/dataset.json"
        raise StoreError(
            f"dataset {dataset_id!r} cannot be published: "
            f"{node.objects.url}/{key} is missing"
        )
    return _set_status(
        node,
        dataset_id,
        action="publish",
        actor=actor,
        reason="published again by an operator",
        to_status=STATUS_PUBLISHED,
        from_statuses=(STATUS_UNPUBLISHED,),
        affected=False,
    )
