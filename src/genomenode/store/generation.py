"""The generation of the published datasets: a counter that every change bumps.

A server process caches what it knows of the published datasets (their access
settings, opened genotype stores). Whatever changes what is published, or how
(ingest's publish, and :mod:`genomenode.access.lifecycle`: unpublish, publish
again, set access, remove), calls :func:`bump_generation` in the transaction that
makes the change; each process reads :func:`read_generation` on every request (one
primary-key read) and reloads its cache when the number moved. So a change shows in
the very next answer of every worker, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Connection, CursorResult, insert, select, update
from sqlalchemy.orm import Session

from .models import DatasetGeneration

__all__ = ["bump_generation", "read_generation"]

_ROW = 1


def read_generation(connection: Connection | Session) -> int:
    """The current generation (0 when nothing was ever published).

    A plain connection reads it in about a third of the time a session takes,
    which matters on the path of every request.
    """
    found = connection.scalar(
        select(DatasetGeneration.generation).where(DatasetGeneration.id == _ROW)
    )
    return int(found or 0)


def bump_generation(session: Session) -> None:
    """Add one to the generation, inside ``session``'s transaction.

    On PostgreSQL the UPDATE locks the row until the transaction ends, so two
    changes committing at once still leave two increments.
    """
    # A DML statement's result is a CursorResult; Session.execute types it wider.
    result = cast(
        CursorResult[Any],
        session.execute(
            update(DatasetGeneration)
            .where(DatasetGeneration.id == _ROW)
            .values(generation=DatasetGeneration.generation + 1)
            .execution_options(synchronize_session=False)
        ),
    )
    if result.rowcount == 0:
        # The migration inserts the row; a database restored without it gets it back.
        session.execute(insert(DatasetGeneration).values(id=_ROW, generation=1))
