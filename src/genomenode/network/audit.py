"""The network aggregator's own audit log of the queries it forwards.

A network has no metadata database. Its audit log is a small database of its own,
kept exactly as a node's (:mod:`genomenode.access.audit`: a keyed chain of entries
and signed checkpoints), with its files beside NETWORK.yaml::

    NETWORK.yaml
    network-audit.db        entries and checkpoints (SQLite, 0600; or db_url)
    network-audit.key       the chain's HMAC key (0600, made on first use)
    network-audit-keys/     the ES256 keys that sign checkpoints (0700)

Examples
--------
>>> writer = open_network_audit(directory, network_id="gdi-demo")  # doctest: +SKIP
>>> writer.record(  # doctest: +SKIP
...     actor="alice@example.org",
...     action="GET /api/g_variants",
...     outcome="allow",
...     reason="forwarded to 3 nodes",
...     details={"nodes": ["fi-node", "se-node", "ee-node"]},
... )
>>> writer.close()  # doctest: +SKIP
>>> verify_network_audit(directory, network_id="gdi-demo").intact  # doctest: +SKIP
True
"""

from __future__ import annotations

import contextlib
import os
import pathlib
from collections.abc import Sequence

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from ..access.audit import AuditWriter
from ..access.audit_check import AuditCheck, checkpoint, verify
from ..access.audit_keys import Checkpoint
from ..errors import StoreError
from ..store.db import create_engine
from ..store.models import AUDIT_FILES_OPTION, AuditFiles, Base

__all__ = [
    "CHECKPOINT_KEYS_DIRNAME",
    "DATABASE_FILENAME",
    "KEY_FILENAME",
    "checkpoint_network_audit",
    "network_audit_files",
    "open_network_audit",
    "open_network_audit_database",
    "verify_network_audit",
]

DATABASE_FILENAME = "network-audit.db"
KEY_FILENAME = "network-audit.key"
CHECKPOINT_KEYS_DIRNAME = "network-audit-keys"
_TABLES = ("audit_log", "audit_checkpoints")


def network_audit_files(
    directory: pathlib.Path,
    *,
    network_id: str,
    checkpoint_every_entries: int = 1000,
    checkpoint_every_seconds: float = 600.0,
) -> AuditFiles:
    """Where the keys of the network's audit log live: beside NETWORK.yaml."""
    return AuditFiles(
        key_file=directory / KEY_FILENAME,
        checkpoint_keys=directory / CHECKPOINT_KEYS_DIRNAME,
        log_id=network_id,
        checkpoint_every_entries=checkpoint_every_entries,
        checkpoint_every_seconds=checkpoint_every_seconds,
    )


def open_network_audit_database(
    directory: pathlib.Path,
    db_url: str | None = None,
    *,
    network_id: str,
    db_schema: str | None = None,
    create: bool = True,
    checkpoint_every_entries: int = 1000,
    checkpoint_every_seconds: float = 600.0,
) -> Engine:
    """An engine on the network's audit database, its tables created if needed.

    Parameters
    ----------
    directory
        The directory of NETWORK.yaml; the SQLite file and the keys live there.
    db_url
        A SQLAlchemy URL instead of the SQLite file (PostgreSQL in production).
    network_id
        The network's id (``network_id`` of NETWORK.yaml): checkpoints name it.
    db_schema
        PostgreSQL schema of the tables (default: the connection's).
    create
        False: refuse (:class:`~genomenode.errors.StoreError`) when the default
        SQLite file does not exist yet, rather than start an empty log.
    checkpoint_every_entries, checkpoint_every_seconds
        How often appends sign a checkpoint (0: never).
    """
    directory = pathlib.Path(directory).absolute()
    if db_url is None:
        path = directory / DATABASE_FILENAME
        if not path.exists():
            if not create:
                raise StoreError(f"{path}: the network has no audit log here")
            # It names who asked what: readable by the network's account only.
            with contextlib.suppress(FileExistsError):
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        db_url = f"sqlite:///{path}"
    engine = create_engine(db_url, db_schema)
    tables = [Base.metadata.tables[name] for name in _TABLES]
    try:
        Base.metadata.create_all(engine, tables=tables)
    except (OperationalError, ProgrammingError):
        # Another process created them between our check and our CREATE.
        Base.metadata.create_all(engine, tables=tables)
    files = network_audit_files(
        directory,
        network_id=network_id,
        checkpoint_every_entries=checkpoint_every_entries,
        checkpoint_every_seconds=checkpoint_every_seconds,
    )
    engine.update_execution_options(**{AUDIT_FILES_OPTION: files})
    return engine


def open_network_audit(
    directory: pathlib.Path,
    db_url: str | None = None,
    *,
    network_id: str,
    db_schema: str | None = None,
    checkpoint_every_entries: int = 1000,
    checkpoint_every_seconds: float = 600.0,
    max_delay_seconds: float = 0.05,
) -> AuditWriter:
    """A writer of the network's audit log (one per process; ``close()`` at exit).

    ``writer.record(actor=..., action=..., outcome=..., reason=..., details=...)``
    queues one entry and returns at once; a background thread commits what is
    queued every ``max_delay_seconds``. It fails closed: when the database does not
    take entries and too many wait, ``record`` raises
    :class:`~genomenode.errors.StoreError`. Parameters as for
    :func:`open_network_audit_database`.
    """
    engine = open_network_audit_database(
        directory,
        db_url,
        network_id=network_id,
        db_schema=db_schema,
        checkpoint_every_entries=checkpoint_every_entries,
        checkpoint_every_seconds=checkpoint_every_seconds,
    )
    return AuditWriter(engine, max_delay_seconds=max_delay_seconds)


def verify_network_audit(
    directory: pathlib.Path,
    db_url: str | None = None,
    *,
    network_id: str,
    checkpoints: Sequence[str] = (),
    db_schema: str | None = None,
) -> AuditCheck:
    """Walk the network's audit log and check ``checkpoints`` (compact JWS) and
    the stored ones against it (:func:`genomenode.access.audit_check.verify`)."""
    engine = open_network_audit_database(
        directory, db_url, network_id=network_id, db_schema=db_schema, create=False
    )
    try:
        with Session(engine) as session:
            return verify(session, checkpoints=checkpoints)
    finally:
        engine.dispose()


def checkpoint_network_audit(
    directory: pathlib.Path,
    db_url: str | None = None,
    *,
    network_id: str,
    db_schema: str | None = None,
) -> Checkpoint:
    """Verify the network's audit log, then sign and store a checkpoint of its
    head (:func:`genomenode.access.audit_check.checkpoint`); keep its ``token``
    apart."""
    engine = open_network_audit_database(
        directory, db_url, network_id=network_id, db_schema=db_schema, create=False
    )
    try:
        return checkpoint(engine)
    finally:
        engine.dispose()
