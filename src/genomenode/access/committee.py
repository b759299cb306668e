"""A dataset's data access committee: the members operators add and remove.

A dataset's committee is the ``dac.members`` of its dataset.yaml plus the members
operators added here; every change is audited, in the transaction that makes it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ..errors import (
    ConflictError,
    NotFoundError,
)
from ..store.models import (
    DacMember,
)
from .applications import (
    _subject,
    dac_members,
)
from .audit import add_entry
from .transactions import in_transaction, require_published

__all__ = ["add_dac_member", "change_dac_members", "remove_dac_member"]


def add_dac_member(
    engine: Engine, *, dataset_id: str, subject: str, actor: str
) -> None:
    """Put ``subject`` on the committee of a published dataset (audited).

    For operators: the caller decides who may. Adding a member twice changes nothing.
    """
    subject = _subject(subject, "subject")

    def work(session: Session) -> None:
        require_published(session, dataset_id)
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

    in_transaction(engine, work)


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

    in_transaction(engine, work)


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
        require_published(session, dataset_id)
    for subject in added:
        add_dac_member(engine, dataset_id=dataset_id, subject=subject, actor=actor)
    for subject in removed:
        remove_dac_member(engine, dataset_id=dataset_id, subject=subject, actor=actor)
    with Session(engine) as session:
        return tuple(sorted(dac_members(session, dataset_id)))
