"""Checking the audit log (:mod:`.audit`): the chain, the signed checkpoints.

:func:`verify` walks the chain from the first entry and names the first one whose
MAC does not check out, then checks the given and the stored checkpoints against
the log; :func:`checkpoint` signs the verified head now. The writing side (the
chain, appends, :class:`~genomenode.access.audit.AuditWriter`) is :mod:`.audit`.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Engine, Result, select
from sqlalchemy.orm import Session

from ..errors import StoreError
from ..store.models import AuditCheckpoint
from .audit import GENESIS, _Log, _log_of, _read, _rows, entry_hash, entry_mac
from .audit_keys import AuditKey, Checkpoint, CheckpointKeys

__all__ = ["AuditCheck", "checkpoint", "read_checkpoint_files", "verify"]

# -- checking ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AuditCheck:
    """What :func:`verify` found.

    ``first_bad_id`` is the first entry that does not check out (for a log cut
    short, the first one missing); it is None when the log is intact, and when
    the problem is a checkpoint that cannot be believed, or a row without an id.
    """

    num_entries: int
    first_bad_id: int | None = None
    problem: str | None = None
    num_checkpoints: int = 0

    @property
    def intact(self) -> bool:
        return self.problem is None

    def to_json(self) -> dict[str, Any]:
        return {
            "num_entries": self.num_entries,
            "intact": self.intact,
            "first_bad_id": self.first_bad_id,
            "problem": self.problem,
            "num_checkpoints": self.num_checkpoints,
        }

    def describe(self) -> str:
        """One line: intact with what was checked, or TAMPERED and where."""
        if self.intact:
            checked = (
                f"{self.num_checkpoints} checkpoints match"
                if self.num_checkpoints
                else "no checkpoints yet (`genomenode audit checkpoint` makes one)"
            )
            return f"Audit log intact: {self.num_entries} entries verified, {checked}."
        where = (
            f" at entry {self.first_bad_id}" if self.first_bad_id is not None else ""
        )
        return (
            f"Audit log TAMPERED{where}: {self.problem} "
            f"({self.num_entries} entries before it verified)."
        )


def read_checkpoint_files(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """The checkpoints (compact JWS, one per line) kept in files off the node.

    Whatever the files hold is returned for :func:`verify` to check: a garbled
    line is a checkpoint that fails, not one that is skipped.
    """
    return [
        token
        for path in paths
        for token in pathlib.Path(path).read_text(errors="replace").split()
    ]


@dataclasses.dataclass(frozen=True)
class _Head:
    entry_id: int
    mac: str


def verify(
    session: Session, *, checkpoints: Sequence[str] = (), batch: int = 10_000
) -> AuditCheck:
    """Walk the whole log; the first entry that does not check out, if any.

    Every row is read, whatever its id. Then each checkpoint (compact JWS), the
    given ones (kept outside the database) and those stored in the database, must
    be signed by this log's checkpoint keys, and the log must still hold the
    entry it names with the MAC it names.

    Parameters
    ----------
    session
        A session on the log's database (opened as a node, or by
        :mod:`genomenode.network.audit`).
    checkpoints
        Checkpoints kept elsewhere, as written by :func:`checkpoint`.
    batch
        Rows fetched at a time.
    """
    return _verify(session, _log_of(session), checkpoints, batch)[0]


def _verify(
    session: Session, log: _Log, tokens: Sequence[str], batch: int
) -> tuple[AuditCheck, _Head | None]:
    named = _named_checkpoints(session, log.checkpoint_keys, tokens)
    if isinstance(named, AuditCheck):
        return named, None
    wanted = {item.entry_id for _, item in named}
    rows = session.execute(_rows().execution_options(yield_per=batch))
    try:
        walked = _walk(rows, log.key, wanted)
    finally:
        rows.close()  # a server-side cursor when the walk stops early
    if isinstance(walked, AuditCheck):
        return walked, None
    count, head_mac, macs = walked
    for label, stated in named:
        signed = stated.signed_at.isoformat(timespec="seconds")
        if stated.entry_id not in macs:
            problem = (
                f"{label} (signed {signed}) names entry {stated.entry_id}, but the "
                f"log ends at entry {count}: entries were removed from its end"
            )
            return AuditCheck(count, count + 1, problem), None
        if macs[stated.entry_id] != stated.mac:
            problem = (
                f"{label} (signed {signed}) names another entry {stated.entry_id}: "
                "the log was rewritten up to there (by someone holding its key)"
            )
            return AuditCheck(count, stated.entry_id, problem), None
    head = _Head(count, head_mac) if count else None
    return AuditCheck(count, num_checkpoints=len(named)), head


def _named_checkpoints(
    session: Session, keys: CheckpointKeys, tokens: Sequence[str]
) -> list[tuple[str, Checkpoint]] | AuditCheck:
    """The given and the stored checkpoints, each with a label, once each is
    believed; or what is wrong with the first that cannot be."""
    public_keys = keys.public_keys()
    named = []
    for number, token in enumerate(tokens, 1):
        given, problem = keys.read(token, public_keys)
        if given is None:
            return AuditCheck(0, None, f"given checkpoint {number} {problem}")
        named.append((f"given checkpoint {number}", given))
    stored_rows = session.execute(
        select(
            AuditCheckpoint.id,
            AuditCheckpoint.entry_id,
            AuditCheckpoint.mac,
            AuditCheckpoint.token,
        ).order_by(AuditCheckpoint.id)
    )
    for row_id, entry_id, mac, token in stored_rows:
        stored, problem = keys.read(token, public_keys)
        if stored is not None and (stored.entry_id, stored.mac) != (entry_id, mac):
            problem = "does not say what its row says"
        if stored is None or problem is not None:
            return AuditCheck(0, None, f"stored checkpoint {row_id} {problem}")
        named.append((f"stored checkpoint {row_id}", stored))
    return named


def _walk(
    rows: Result[Any], key: AuditKey, wanted: set[int]
) -> tuple[int, str, dict[int, str]] | AuditCheck:
    """Check every row in id order: (entries, last MAC, MACs of ``wanted`` ids),
    or where the first bad one is."""
    previous_hash, expected_id, count = GENESIS, 1, 0
    macs: dict[int, str] = {}
    for row in rows:
        fields, problem = _read(row)
        entry_id = fields["id"]
        if problem is not None:
            where = entry_id if isinstance(entry_id, int) else None
            return AuditCheck(count, where, problem)
        if entry_id != expected_id:
            problem = (
                f"entry {expected_id} is missing before it"
                if entry_id > expected_id
                else f"it is out of place: ids run 1, 2, 3... and {expected_id} "
                "was next (a row was inserted)"
            )
        elif fields["previous_hash"] != previous_hash:
            problem = "does not chain to the entry before it"
        elif entry_id <= key.unkeyed_entries:
            if entry_hash(fields) != fields["hash"]:
                problem = "its content was changed"
            elif entry_id == key.unkeyed_entries and fields["hash"] != key.unkeyed_head:
                problem = "it is not the last entry written before the log had a key"
        elif entry_mac(key, fields) != fields["hash"]:
            problem = "its content was changed (its MAC does not verify with the key)"
        if problem is not None:
            return AuditCheck(count, entry_id, problem)
        if entry_id in wanted:
            macs[entry_id] = fields["hash"]
        previous_hash, expected_id = fields["hash"], entry_id + 1
        count += 1
    if count < key.unkeyed_entries:
        problem = (
            f"the log ends at entry {count}, but its key was made when it held "
            f"{key.unkeyed_entries}: entries were removed from its end"
        )
        return AuditCheck(count, count + 1, problem)
    return count, previous_hash, macs


def checkpoint(engine: Engine) -> Checkpoint:
    """Verify the log, then sign and store a checkpoint of its head.

    Keep the returned ``token`` outside the node (see docs/audit.md):
    ``verify(..., checkpoints=[token])`` later detects a log cut short before that
    entry, or rewritten up to it.

    Raises
    ------
    StoreError
        If the log does not verify (nothing is signed) or is empty.
    """
    with Session(engine) as session:
        log = _log_of(session)
        check, head = _verify(session, log, (), 10_000)
    if not check.intact:
        where = (
            f" at entry {check.first_bad_id}" if check.first_bad_id is not None else ""
        )
        raise StoreError(
            f"the audit log is not intact{where}: {check.problem}; "
            "no checkpoint was signed"
        )
    if head is None:
        raise StoreError("the audit log is empty: there is nothing to checkpoint")
    row = log.sign(head.entry_id, head.mac)
    # Its own short transaction: the verifying read may have taken long, and the
    # head it verified is what the checkpoint states, wherever the log is now.
    with Session(engine, expire_on_commit=False) as session, session.begin():
        session.add(row)
    keys = log.checkpoint_keys
    signed, problem = keys.read(row.token, keys.public_keys())
    if signed is None:  # pragma: no cover - we just signed it
        raise StoreError(f"the new checkpoint {problem}")
    return signed
