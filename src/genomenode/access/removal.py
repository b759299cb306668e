"""Removing a dataset: its files, its metadata, its applications and grants.

Refused without ``force`` while grants are active or applications open. The
dataset first becomes ``removing`` (invisible everywhere at once) in one
transaction, then its stored files are deleted (every object under its prefix
in an object store; its directory, renamed out of ``datasets/`` first, on a
local store), then its rows go in one last transaction; so a removal killed at
any point is finished by running it again, and nothing is ever half visible.
See docs/datasets.md.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ..errors import ConflictError, NotFoundError
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
from ..store.node import Node
from .audit import add_entry
from .lifecycle import (
    REMOVED,
    DatasetChange,
    _active_grants,
    _application,
    _dataset_row,
    _grant,
    _open_applications,
    _Refusal,
    _refuse,
)
from .transactions import in_transaction

__all__ = ["remove"]

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


def remove(
    node: Node, dataset_id: str, *, actor: str, force: bool = False
) -> DatasetChange:
    """Delete a dataset: its files, its metadata, its applications and grants.

    The dataset first becomes ``removing`` (invisible everywhere at once), then its
    stored files (:meth:`Node.delete_dataset_files`), then its rows in one
    transaction. Killed at any point, the removal is finished by calling this
    again (a dataset found ``removing`` is not asked about again). Two audit
    entries: the decision (with the grants and applications it ends) and the
    completion.

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
        node.delete_dataset_files(dataset_id)
        return _delete_rows(node, dataset_id, actor=actor, decided=decided)


def _start_removal(
    node: Node, dataset_id: str, *, actor: str, force: bool
) -> DatasetChange:
    def work(session: Session) -> DatasetChange | _Refusal:
        row = _dataset_row(
            session, dataset_id, allowed=(STATUS_PUBLISHED, STATUS_UNPUBLISHED)
        )
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

    result = in_transaction(node.engine, work)
    if isinstance(result, _Refusal):
        raise _refuse(node, result.change, actor=actor, reason=result.reason)
    return result


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

    return in_transaction(node.engine, work)
