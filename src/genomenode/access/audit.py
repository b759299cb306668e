"""A tamper-evident audit log: every entry carries the hash of the one before.

Entries live in the node's database (table ``audit_log``). Entry ``n`` stores
``sha256`` of its own canonical JSON, which includes the hash of entry ``n - 1``
(64 zeros for the first). Changing, inserting or deleting any entry breaks the
chain at that point, and :func:`verify` names the first entry that does not
check out. (Removing entries from the *end* leaves a shorter valid chain; anchoring
the head outside the database is the next step, see docs/audit.md.)

Appends are serialised by the primary key: an entry's id is the previous id plus
one, so two writers racing for the same id cannot both commit; the loser reads the
new head and tries again. This holds on SQLite and PostgreSQL alike.

The log never holds tokens, keys or genotypes: :func:`append` refuses details
whose keys name secrets or whose values look like JWTs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import queue
import re
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from ..errors import StoreError
from ..store.models import AuditEntry

__all__ = [
    "GENESIS",
    "AuditCheck",
    "AuditWriter",
    "add_entry",
    "append",
    "entry_hash",
    "verify",
]

GENESIS = "0" * 64
_ATTEMPTS = 50
_log = logging.getLogger(__name__)
_SECRET_KEYS = re.compile(r"token|authorization|password|secret|passphrase|key$", re.I)
_JWT = re.compile(r"^[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*$")


def entry_hash(fields: Mapping[str, Any]) -> str:
    """The hash of one entry's fields (everything but ``hash`` itself)."""
    document = {key: fields[key] for key in sorted(fields) if key != "hash"}
    text = json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _fields(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at,
        "actor": entry.actor,
        "action": entry.action,
        "dataset_id": entry.dataset_id,
        "outcome": entry.outcome,
        "reason": entry.reason,
        "details": entry.details,
        "previous_hash": entry.previous_hash,
    }


def _check_no_secrets(value: Any, path: str = "details") -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if _SECRET_KEYS.search(str(key)):
                raise ValueError(f"{path}.{key}: secrets never go into the audit log")
            _check_no_secrets(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for number, item in enumerate(value):
            _check_no_secrets(item, f"{path}[{number}]")
    elif isinstance(value, str) and _JWT.match(value):
        raise ValueError(f"{path}: looks like a token; tokens never go into the log")


@dataclasses.dataclass(frozen=True)
class _Pending:
    actor: str
    action: str
    outcome: str
    reason: str
    dataset_id: str | None
    details: dict[str, Any]
    at: dt.datetime


def add_entry(
    session: Session,
    *,
    actor: str,
    action: str,
    outcome: str,
    reason: str,
    dataset_id: str | None = None,
    details: Mapping[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> AuditEntry:
    """Add one entry chained to the current head, inside ``session``'s transaction.

    For callers that want the entry and their own change to commit together (a
    DAC decision and its audit entry). If another writer takes the same id first,
    the commit raises :class:`~sqlalchemy.exc.IntegrityError`; roll back and run
    the whole transaction again.
    """
    payload = dict(details or {})
    _check_no_secrets(payload)
    moment = at or dt.datetime.now(dt.UTC)
    pending = _Pending(actor, action, outcome, reason, dataset_id, payload, moment)
    return _chain(session, [pending])[0]


def _chain(session: Session, batch: Sequence[_Pending]) -> list[AuditEntry]:
    """Add checked entries in order, chained to the head read once, and flush."""
    head = session.execute(
        select(AuditEntry.id, AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)
    ).first()
    last_id, last_hash = (head[0], head[1]) if head else (0, GENESIS)
    entries = []
    for item in batch:
        entry = AuditEntry(
            id=last_id + 1,
            at=item.at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
            actor=item.actor,
            action=item.action,
            dataset_id=item.dataset_id,
            outcome=item.outcome,
            reason=item.reason,
            details=item.details,
            previous_hash=last_hash,
        )
        entry.hash = entry_hash(_fields(entry))
        session.add(entry)
        entries.append(entry)
        last_id, last_hash = entry.id, entry.hash
    session.flush()
    return entries


def append(
    engine: Engine,
    *,
    actor: str,
    action: str,
    outcome: str,
    reason: str,
    dataset_id: str | None = None,
    details: Mapping[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> AuditEntry:
    """Append one entry, chained to the current head; returns it (committed).

    Details holding secrets are refused by :func:`add_entry` (``ValueError``,
    raised on the first attempt, never retried).
    """
    moment = at or dt.datetime.now(dt.UTC)
    for attempt in range(_ATTEMPTS):
        try:
            with Session(engine, expire_on_commit=False) as session, session.begin():
                entry = add_entry(
                    session,
                    actor=actor,
                    action=action,
                    outcome=outcome,
                    reason=reason,
                    dataset_id=dataset_id,
                    details=details,
                    at=moment,
                )
            return entry
        except (IntegrityError, OperationalError):
            # Another writer took this id first (or SQLite was busy): re-read the
            # head and chain to it, backing off a little more each time.
            time.sleep(0.002 * attempt)
            continue
    raise RuntimeError(f"audit log: no append after {_ATTEMPTS} attempts")


class AuditWriter:
    """Appends entries from one background thread, many per transaction.

    For decisions on the request path (every Beacon query), where a commit per
    request would cost more than the query itself. :meth:`record` checks the
    entry (no secrets) and queues it; the thread writes what is queued every
    ``max_delay_seconds`` (or ``max_batch`` at a time), chaining the batch to the
    head in one transaction. A process killed between the two loses at most that
    interval of query entries; decisions that change rights (DAC actions) use
    :func:`add_entry` in their own transaction instead.

    Fail closed: when the database cannot take entries and ``max_pending`` are
    waiting, :meth:`record` raises :class:`~genomenode.errors.StoreError`, so the
    request fails rather than goes unaudited.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        max_batch: int = 1000,
        max_delay_seconds: float = 0.05,
        max_pending: int = 100_000,
    ) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._max_delay = max_delay_seconds
        self._queue: queue.Queue[_Pending] = queue.Queue(maxsize=max_pending)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False

    def record(
        self,
        *,
        actor: str,
        action: str,
        outcome: str,
        reason: str,
        dataset_id: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Queue one entry (written within ``max_delay_seconds``)."""
        payload = dict(details or {})
        _check_no_secrets(payload)
        pending = _Pending(
            actor, action, outcome, reason, dataset_id, payload, dt.datetime.now(dt.UTC)
        )
        self._ensure_thread()
        try:
            self._queue.put_nowait(pending)
        except queue.Full:
            raise StoreError(
                "the audit log cannot be written (too many entries waiting); "
                "refusing to answer unaudited"
            ) from None

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until everything recorded so far is committed."""
        if self._thread is None:
            return
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                raise StoreError("the audit log did not take its entries in time")
            time.sleep(0.001)

    def close(self) -> None:
        """Write what is queued and stop the thread."""
        self.flush()
        self._closed = True
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._closed = False
                self._thread = threading.Thread(
                    target=self._run, name="genomenode-audit", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            try:
                first = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            batch = [first]
            deadline = time.monotonic() + self._max_delay
            while len(batch) < self._max_batch:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(self._queue.get(timeout=remaining))
                except queue.Empty:
                    break
            self._write(batch)
            for _ in batch:
                self._queue.task_done()

    def _write(self, batch: list[_Pending]) -> None:
        attempt = 0
        while True:
            try:
                # Checked by record(); chained to the head read once per batch.
                with Session(self._engine) as session, session.begin():
                    _chain(session, batch)
                return
            except (IntegrityError, OperationalError):
                # Another process took the head first (or the DB is busy/down):
                # chain again to the new head; keep the entries, never drop them.
                attempt += 1
                time.sleep(min(0.002 * attempt, 1.0))
                if attempt % 500 == 0:
                    _log.error(
                        "audit log: %d entries wait for the database", len(batch)
                    )


@dataclasses.dataclass(frozen=True)
class AuditCheck:
    """What :func:`verify` found."""

    num_entries: int
    first_bad_id: int | None = None
    problem: str | None = None

    @property
    def intact(self) -> bool:
        return self.first_bad_id is None


def verify(session: Session, *, batch: int = 10_000) -> AuditCheck:
    """Walk the whole chain; the first entry that does not check out, if any."""
    previous_hash, expected_id, count = GENESIS, 1, 0
    last_id = 0
    while True:
        entries = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.id > last_id)
            .order_by(AuditEntry.id)
            .limit(batch)
        ).all()
        if not entries:
            return AuditCheck(count)
        for entry in entries:
            if entry.id != expected_id:
                return AuditCheck(
                    count, entry.id, f"entry {expected_id} is missing before it"
                )
            if entry.previous_hash != previous_hash:
                return AuditCheck(
                    count, entry.id, "does not chain to the entry before it"
                )
            if entry_hash(_fields(entry)) != entry.hash:
                return AuditCheck(count, entry.id, "its content was changed")
            previous_hash, expected_id = entry.hash, entry.id + 1
            count += 1
        last_id = entries[-1].id
