"""The generation of the published datasets: a counter that every change bumps.

A server process caches what it knows of the published datasets (their access
settings, opened genotype stores). Whatever changes what is published, or how
(ingest's publish, and :mod:`genomenode.access.lifecycle`: unpublish, publish
again, set access, remove), calls :func:`bump_generation` in the transaction that
makes the change, and reloads its cache when the number moved.

Reading the number is a database round trip (~0.1–0.2 ms on SQLite), too much for
the path of every request. So each commit that bumps it also rewrites a small
*signal file* beside the node's database (its path is the engine's
``GENERATION_FILE_OPTION``, set by :class:`~genomenode.store.node.Node`) with a fresh
random token; a process looks at that file (one ``stat``, a microsecond) on every
request, reads it when it was replaced, and the database only when the token
changed or ``refresh_seconds`` passed. A change made on the node's host (any
command, any worker) therefore shows in the very next answer of every worker; one
made by another host sharing a PostgreSQL database shows within
``refresh_seconds``.
"""

from __future__ import annotations

import os
import pathlib
import secrets
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, event, insert, select, update
from sqlalchemy.orm import Session

from .models import DatasetGeneration

__all__ = [
    "GENERATION_FILE_OPTION",
    "bump_generation",
    "read_generation",
    "read_signal",
    "write_signal",
]

#: The engine execution option naming the generation's signal file.
GENERATION_FILE_OPTION = "genomenode_generation_file"

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
    signal = session.get_bind().get_execution_options().get(GENERATION_FILE_OPTION)
    if signal is not None:
        # After the commit, never before: a reader that saw the new token but read
        # the old number would keep the old list until the next change.
        event.listen(session, "after_commit", lambda _: write_signal(signal), once=True)


# The token last read per signal file, with the file's identity when read.
_READ: dict[pathlib.Path, tuple[tuple[int, int, int], str]] = {}


def read_signal(path: pathlib.Path) -> str | None:
    """The signal file's token, or None when there is none (yet).

    Read again only when the file is another one: each write replaces it (a new
    inode, a new modification time in nanoseconds), so one ``stat`` tells, and the
    request path saves the open, read and close (a tenth of a relayed count
    query's work). The file is read after the ``stat``: a token is never taken for
    a file older than it.
    """
    try:
        status = os.stat(path)
    except OSError:
        return None
    identity = (status.st_ino, status.st_mtime_ns, status.st_size)
    known = _READ.get(path)
    if known is not None and known[0] == identity:
        return known[1]
    try:
        token = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return None
    _READ[path] = (identity, token)
    return token


def write_signal(path: pathlib.Path) -> None:
    """Replace the signal file's token by a fresh one (atomically: no reader sees a
    half-written token). A failure is left to ``refresh_seconds``."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    try:
        temporary.write_text(secrets.token_hex(16), encoding="ascii")
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)
