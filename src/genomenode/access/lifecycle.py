"""The life of a dataset after ingest: unpublish, publish again, change access, remove.

An operator's change to a published dataset, each one audited (actor, dataset, what
changed, the grants and applications it touches) and each visible to every server
process on its next request (the change bumps the datasets' generation,
:mod:`genomenode.store.generation`, in the transaction that makes it):

- :func:`unpublish`: the dataset leaves Beacon, htsget, DRS, the catalogues and
  the access catalogue; its data, grants and applications are kept.
  :func:`publish` undoes it. Grant holders and open applications are listed.
- :func:`set_access`: a new security level, Beacon granularities or DUO terms.
  Refused without ``force`` when it widens access to a CONTROLLED dataset beyond
  its grant holders, or narrows what active grants give (a lower granted
  granularity, DUO terms the grant's purpose no longer fits); the grants and
  applications affected are listed either way.
- :func:`remove`: deletes the dataset's files and metadata, with its applications
  and grants (the audit log keeps their history). Refused without ``force`` while
  grants are active or applications open. The dataset first becomes ``removing``
  (invisible) in one transaction, then its directory goes, then its rows in one
  last transaction, so a removal killed at any point is finished by running it
  again, and nothing is ever half visible.

Each change holds the dataset's lock (:mod:`genomenode.store.locks`), so it never
races an ingest of the same id. A refusal is audited too (outcome ``deny``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from ..dataset import (
    SECURITY_LEVELS,
    check_beacon_granularity,
    check_data_use,
)
from ..errors import ConflictError, InputError, NotFoundError, StoreError
from ..node import Node
from ..store.generation import bump_generation
from ..store.locks import dataset_lock
from ..store.models import (
    STATUS_PUBLISHED,
    STATUS_REMOVING,
    STATUS_STAGING,
    STATUS_UNPUBLISHED,
    AccessApplication,
    AccessApplicationEvent,
    Biosample,
    DacMember,
    Dataset,
    DataUseTerm,
    Disease,
    Entitlement,
    Individual,
    Measure,
    PhenotypicFeature,
    StoredFile,
)
from .applications import DRAFT, RETURNED, SUBMITTED, Application, _build, _rows
from .audit import add_entry, append
from .decision import (
    DEFAULT_GRANULARITY,
    GRANULARITY_ORDER,
    Caller,
    DatasetAccess,
    allowed_granularity,
)
from .duo import DataUseCondition, match
from .workflow import _in_transaction

__all__ = [
    "OPEN_STATES",
    "AffectedApplication",
    "AffectedGrant",
    "DatasetChange",
    "publish",
    "remove",
    "set_access",
    "unpublish",
]

#: Application states still waiting for a decision.
OPEN_STATES = (DRAFT, SUBMITTED, RETURNED)
#: The status a removed dataset is reported with (it has no row any more).
REMOVED = "removed"

# Rows that belong to a dataset, children first.
_DATASET_TABLES = (
    StoredFile,
    Measure,
    Disease,
    PhenotypicFeature,
    Biosample,
    Individual,
    DataUseTerm,
    DacMember,
)
_KINDS = ("anonymous", "registered", "granted")


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


def _row(session: Session, dataset_id: str, *, allowed: Sequence[str]) -> Dataset:
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
        row = _row(session, dataset_id, allowed=(*from_statuses, to_status))
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
        return _in_transaction(node.engine, work)


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
        Its directory is missing from the store.
    """
    manifest = node.datasets_dir / dataset_id / "dataset.json"
    with node.session() as session:
        row = session.get(Dataset, dataset_id)
    if row is not None and row.status == STATUS_UNPUBLISHED and not manifest.exists():
        raise StoreError(
            f"dataset {dataset_id!r} cannot be published: {manifest} is missing"
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


# -- access --------------------------------------------------------------------------


def _rank(granularity: str | None) -> int:
    order: tuple[str, ...] = GRANULARITY_ORDER
    return -1 if granularity is None else order.index(granularity)


def _allowed(dataset: DatasetAccess) -> dict[str, str | None]:
    """The granularity each kind of caller gets from ``dataset`` (None: nothing)."""
    callers = {
        "anonymous": Caller(),
        "registered": Caller(subject="-", registered=True),
        "granted": Caller(subject="-", granted_datasets=frozenset({dataset.id})),
    }
    return {kind: allowed_granularity(callers[kind], dataset) for kind in _KINDS}


def _data_use_document(
    conditions: Sequence[DataUseCondition],
) -> list[dict[str, str]]:
    """DUO terms as dataset.yaml's ``data_use:`` lists them."""
    return [
        {"id": item.term, **({"disease": item.disease} if item.disease else {})}
        for item in conditions
    ]


def set_access(
    node: Node,
    dataset_id: str,
    *,
    actor: str,
    security_level: str | None = None,
    beacon: Mapping[str, str] | None = None,
    data_use: Sequence[str | Mapping[str, Any]] | None = None,
    force: bool = False,
) -> DatasetChange:
    """Change who may see a dataset and what: its security level, its Beacon
    granularities per kind of caller, its DUO terms.

    Parameters
    ----------
    node
        The node holding the dataset (published or unpublished).
    dataset_id
        The dataset.
    actor
        Who changes it (``operator:<login>``), for the audit log.
    security_level
        ``PUBLIC``, ``REGISTERED`` or ``CONTROLLED``; None keeps it.
    beacon
        Granularities to change, e.g. ``{"anonymous": "count"}``, merged over the
        current ones and checked as dataset.yaml's ``beacon:`` block is (a more
        trusted caller never sees less); None keeps them.
    data_use
        The new DUO terms, replacing the current ones, as dataset.yaml's
        ``data_use:`` takes them (``"DUO:0000042"`` or ``{"id": "DUO:0000007",
        "disease": "ICD10:I25.1"}``); None keeps them.
    force
        Make a change that needs it (see Raises).

    Returns
    -------
    DatasetChange
        The fields changed (before, after) and the grants and open applications
        the change touches: grants whose granularity drops or whose purpose no
        longer fits the DUO terms, applications whose DUO recommendation changes,
        and every grant and open application when a CONTROLLED dataset opens up.

    Raises
    ------
    InputError
        A value is not valid (the error names it).
    NotFoundError
        No such dataset.
    ConflictError
        Without ``force``: the change lets callers without a grant see a CONTROLLED
        dataset (more than before), or takes from active grants what they gave
        (record granularity, a purpose the DUO terms allowed). Audited; nothing is
        changed.
    """
    if security_level is not None and security_level not in SECURITY_LEVELS:
        raise InputError(
            f"{security_level!r}: use one of {', '.join(SECURITY_LEVELS)}",
            field="security_level",
        )
    new_terms = check_data_use(list(data_use)) if data_use is not None else None

    def work(session: Session) -> DatasetChange | _Refusal:
        row = _row(session, dataset_id, allowed=(STATUS_PUBLISHED, STATUS_UNPUBLISHED))
        document = dict(row.description_document or {})
        old_beacon = {**DEFAULT_GRANULARITY, **(document.get("beacon") or {})}
        new_beacon = (
            check_beacon_granularity({**old_beacon, **beacon})
            if beacon is not None
            else old_beacon
        )
        new_level = security_level or row.security_level
        old_conditions = tuple(
            DataUseCondition(term.term_id, term.disease_id)
            for term in session.scalars(
                select(DataUseTerm)
                .where(DataUseTerm.dataset_id == dataset_id)
                .order_by(DataUseTerm.id)
            )
        )
        new_conditions = (
            tuple(DataUseCondition(term.id, term.disease) for term in new_terms)
            if new_terms is not None
            else old_conditions
        )
        changes: dict[str, tuple[Any, Any]] = {}
        if new_level != row.security_level:
            changes["security_level"] = (row.security_level, new_level)
        if new_beacon != old_beacon:
            changes["beacon"] = (old_beacon, new_beacon)
        if new_conditions != old_conditions:
            changes["data_use"] = (
                _data_use_document(old_conditions),
                _data_use_document(new_conditions),
            )
        if not changes:
            return DatasetChange(dataset_id, "set_access", False, row.status)

        before = _allowed(DatasetAccess(dataset_id, row.security_level, old_beacon))
        after = _allowed(DatasetAccess(dataset_id, new_level, new_beacon))
        opened = [
            kind
            for kind in ("anonymous", "registered")
            if _rank(after[kind]) > _rank(before[kind])
        ]
        widens_controlled = row.security_level == "CONTROLLED" and bool(opened)
        granted_drops = _rank(after["granted"]) < _rank(before["granted"])
        grants: list[AffectedGrant] = []
        needs_force: list[str] = []
        for entitlement, application in _active_grants(session, dataset_id):
            why = []
            if widens_controlled:
                why.append(
                    f"{' and '.join(opened)} callers now get "
                    + " and ".join(str(after[kind]) for kind in opened)
                    + " without a grant"
                )
            if granted_drops:
                why.append(
                    f"grant holders get {after['granted'] or 'nothing'} instead of "
                    f"{before['granted']}"
                )
            fits_before = match(application.purpose, old_conditions)
            fits_after = match(application.purpose, new_conditions)
            if fits_after.outcome == "deny" and fits_before.outcome != "deny":
                why.append(
                    "its purpose no longer fits the DUO terms: "
                    + "; ".join(fits_after.reasons)
                )
            if why:
                grants.append(_grant(entitlement, "; ".join(why)))
        if granted_drops and grants:
            needs_force.append("grant holders would get less than they were granted")
        if any("purpose no longer fits" in item.why for item in grants):
            needs_force.append("active grants would no longer fit the DUO terms")
        if widens_controlled:
            needs_force.append(
                f"CONTROLLED data would be shown to {' and '.join(opened)} callers "
                "without a grant"
            )
        applications = []
        for application in _open_applications(session, dataset_id):
            recommendation = match(application.purpose, new_conditions)
            if widens_controlled:
                applications.append(
                    _application(application, "access no longer needs a grant")
                )
            elif recommendation.outcome != application.recommendation.outcome:
                applications.append(
                    _application(
                        application,
                        f"DUO now says {recommendation.outcome} "
                        f"(was {application.recommendation.outcome})",
                    )
                )
        change = DatasetChange(
            dataset_id,
            "set_access",
            True,
            row.status,
            changes,
            tuple(grants),
            tuple(applications),
        )
        if needs_force and not force:
            return _Refusal(change, "; ".join(needs_force))
        document["security_level"] = new_level
        document["beacon"] = dict(new_beacon)
        if new_terms is not None:
            document["data_use"] = _data_use_document(new_conditions)
            session.execute(
                delete(DataUseTerm).where(DataUseTerm.dataset_id == dataset_id)
            )
            session.execute(
                insert(DataUseTerm),
                [
                    {
                        "dataset_id": dataset_id,
                        "term_id": term.id,
                        "label": term.label,
                        "disease_id": term.disease,
                    }
                    for term in new_terms
                ],
            )
        session.execute(
            update(Dataset)
            .where(Dataset.id == dataset_id)
            .values(security_level=new_level, description_document=document)
        )
        bump_generation(session)
        add_entry(
            session,
            actor=actor,
            action="dataset.set_access",
            outcome="allow",
            reason="access changed by an operator ("
            + ", ".join(sorted(changes))
            + (", forced: " + "; ".join(needs_force) if needs_force else "")
            + ")",
            dataset_id=dataset_id,
            details=change.audit_details(force=force),
        )
        return change

    with dataset_lock(node.staging_dir, dataset_id):
        result = _in_transaction(node.engine, work)
    if isinstance(result, _Refusal):
        raise _refuse(node, result.change, actor=actor, reason=result.reason)
    return result


# -- removal -------------------------------------------------------------------------


def remove(
    node: Node, dataset_id: str, *, actor: str, force: bool = False
) -> DatasetChange:
    """Delete a dataset: its files, its metadata, its applications and grants.

    The dataset first becomes ``removing`` (invisible everywhere at once), then its
    directory is deleted, then its rows in one transaction. Killed at any point,
    the removal is finished by calling this again (a dataset found ``removing`` is
    not asked about again). Two audit entries: the decision (with the grants and
    applications it ends) and the completion.

    Raises
    ------
    NotFoundError
        No such dataset (also one already removed).
    ConflictError
        Without ``force``: grants of the dataset are active or applications open
        (each listed; audited). An ingest of the id has not finished (use
        ``genomenode discard``).
    """
    with dataset_lock(node.staging_dir, dataset_id):
        with node.session() as session:
            row = session.get(Dataset, dataset_id)
            status = None if row is None else row.status
        if status is None:
            raise NotFoundError(f"no dataset {dataset_id!r} on this node")
        if status == STATUS_STAGING:
            raise ConflictError(
                f"dataset {dataset_id!r} is an unfinished ingest, not a published "
                "dataset: remove its partial work with `genomenode discard`"
            )
        decided: DatasetChange | None = None
        if status != STATUS_REMOVING:
            decided = _start_removal(node, dataset_id, actor=actor, force=force)
        _delete_files(node, dataset_id)
        return _delete_rows(node, dataset_id, actor=actor, decided=decided)


def _start_removal(
    node: Node, dataset_id: str, *, actor: str, force: bool
) -> DatasetChange:
    def work(session: Session) -> DatasetChange | _Refusal:
        row = _row(session, dataset_id, allowed=(STATUS_PUBLISHED, STATUS_UNPUBLISHED))
        change = DatasetChange(
            dataset_id,
            "remove",
            True,
            STATUS_REMOVING,
            {"status": (row.status, REMOVED)},
            tuple(
                _grant(entitlement, "ends with the dataset")
                for entitlement, _ in _active_grants(session, dataset_id)
            ),
            tuple(
                _application(item, "is deleted with the dataset")
                for item in _open_applications(session, dataset_id)
            ),
        )
        busy = change.affected_grants or change.affected_applications
        if busy and not force:
            return _Refusal(
                change, "grants are active or applications open for this dataset"
            )
        session.execute(
            update(Dataset)
            .where(Dataset.id == dataset_id)
            .values(status=STATUS_REMOVING)
        )
        bump_generation(session)
        add_entry(
            session,
            actor=actor,
            action="dataset.remove",
            outcome="allow",
            reason="removal started by an operator: files and metadata to be deleted"
            + (" (forced past active grants or open applications)" if busy else ""),
            dataset_id=dataset_id,
            details=change.audit_details(force=force),
        )
        return change

    result = _in_transaction(node.engine, work)
    if isinstance(result, _Refusal):
        raise _refuse(node, result.change, actor=actor, reason=result.reason)
    return result


def _delete_files(node: Node, dataset_id: str) -> None:
    """Delete the dataset's directory: one rename out of ``datasets/``, then the
    tree (a rerun deletes what a killed run left)."""
    directory = node.datasets_dir / dataset_id
    trash = node.staging_dir / f".removing-{dataset_id}"
    if directory.exists():
        if trash.exists():
            shutil.rmtree(trash)
        os.rename(directory, trash)
    if trash.exists():
        shutil.rmtree(trash)
    shutil.rmtree(node.staging_dir / dataset_id, ignore_errors=True)


def _delete_rows(
    node: Node, dataset_id: str, *, actor: str, decided: DatasetChange | None
) -> DatasetChange:
    def work(session: Session) -> DatasetChange:
        applications = select(AccessApplication.id).where(
            AccessApplication.dataset_id == dataset_id
        )
        num_applications = len(session.scalars(applications).all())
        session.execute(delete(Entitlement).where(Entitlement.dataset_id == dataset_id))
        session.execute(
            delete(AccessApplicationEvent).where(
                AccessApplicationEvent.application_id.in_(applications)
            )
        )
        session.execute(
            delete(AccessApplication).where(AccessApplication.dataset_id == dataset_id)
        )
        for table in _DATASET_TABLES:
            session.execute(delete(table).where(table.dataset_id == dataset_id))
        session.execute(delete(Dataset).where(Dataset.id == dataset_id))
        bump_generation(session)
        add_entry(
            session,
            actor=actor,
            action="dataset.remove",
            outcome="allow",
            reason="dataset removed: files and metadata deleted"
            + ("" if decided is not None else " (an interrupted removal finished)"),
            dataset_id=dataset_id,
            details={"num_applications_deleted": num_applications},
        )
        if decided is not None:
            return dataclasses.replace(decided, status=REMOVED)
        return DatasetChange(
            dataset_id, "remove", True, REMOVED, {"status": (STATUS_REMOVING, REMOVED)}
        )

    return _in_transaction(node.engine, work)
