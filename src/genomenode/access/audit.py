"""A tamper-evident audit log: a keyed chain of entries, and signed checkpoints.

Entries live in a database (table ``audit_log``). Entry ``n`` stores in ``hash``
the HMAC-SHA256 of its own canonical JSON, which includes the ``hash`` of entry
``n - 1`` (64 zeros for the first). The key is a file outside the database
(:class:`~genomenode.store.models.AuditFiles` says where; a node keeps it in
``NODE_DIR/keys/audit.key``), so someone who can write to the database but cannot
read that file may change, insert, delete or renumber entries, but cannot make the
chain check out again: :func:`.audit_check.verify` names the first entry that does
not.

A *checkpoint* is a statement ``{log, entry id, that entry's MAC, time}`` signed
(ES256) with a key that is not in the database either. Kept outside the node, a
checkpoint detects what the chain alone cannot: entries removed from the end, and
a rewrite by someone who holds the HMAC key. :func:`.audit_check.checkpoint` signs
the verified head now; appends sign one whenever an id passes a multiple of
``checkpoint_every_entries`` and after ``checkpoint_every_seconds`` (stored in
``audit_checkpoints``, committed with the entries they name);
:func:`.audit_check.verify` checks the given and the stored checkpoints against the log.

Entries written before audit logs had a key keep their plain SHA-256 hashes
(:func:`entry_hash`). The key file, written on the log's first use after the
upgrade, records how many there were and the hash of the last one, which anchors
them outside the database (docs/audit.md, "Logs written before the key").

Appends are serialised by the primary key: an entry's id is the previous id plus
one, so two writers racing for the same id cannot both commit; the loser reads the
new head and tries again. This holds on SQLite and PostgreSQL alike.

The key file and the checkpoint signatures are :mod:`.audit_keys`.

The log never holds tokens, keys or genotypes: :func:`add_entry` refuses details
whose keys name secrets or whose values look like JWTs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import pathlib
import queue
import re
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, Select, Text, cast, event, insert, select
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from ..errors import GenomenodeError, StoreError
from ..store.models import AUDIT_FILES_OPTION, AuditCheckpoint, AuditEntry, AuditFiles
from .audit_keys import AuditKey, CheckpointKeys

__all__ = [
    "GENESIS",
    "AuditWriter",
    "add_entry",
    "append",
    "entry_hash",
    "entry_mac",
]

GENESIS = "0" * 64
_ATTEMPTS = 50
_log = logging.getLogger(__name__)
_SECRET_KEYS = re.compile(r"token|authorization|password|secret|passphrase|key$", re.I)
_JWT = re.compile(r"^[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*$")
_TEXT_COLUMNS = ("at", "actor", "action", "outcome", "reason", "previous_hash", "hash")


# -- the chain -----------------------------------------------------------------------


def _canonical(fields: Mapping[str, Any]) -> bytes:
    document = {key: fields[key] for key in sorted(fields) if key != "hash"}
    text = json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return text.encode()


def entry_hash(fields: Mapping[str, Any]) -> str:
    """The unkeyed hash of one entry's fields (everything but ``hash`` itself).

    The rule of entries written before the log had a key; anyone can compute it,
    so it protects nothing on its own (see :class:`~.audit_keys.AuditKey`).
    """
    return hashlib.sha256(_canonical(fields)).hexdigest()


def entry_mac(key: AuditKey, fields: Mapping[str, Any]) -> str:
    """The keyed hash (HMAC-SHA256) of one entry's fields (everything but ``hash``)."""
    return key.mac(_canonical(fields))


def _read(row: Row[Any]) -> tuple[dict[str, Any], str | None]:
    """An entry's fields from a raw row, or why the row cannot be read."""
    values = dict(row._mapping)
    entry_id = values["id"]
    if not isinstance(entry_id, int) or isinstance(entry_id, bool):
        what = "NULL" if entry_id is None else "not a whole number"
        return values, f"unreadable: its id is {what}"
    for name in _TEXT_COLUMNS:
        if not isinstance(values[name], str):
            what = "NULL" if values[name] is None else "not text"
            return values, f"unreadable: {name} is {what}"
    if values["dataset_id"] is not None and not isinstance(values["dataset_id"], str):
        return values, "unreadable: dataset_id is not text"
    if values["details"] is None:
        return values, "unreadable: details is NULL"
    try:
        details = json.loads(values["details"])
    except (TypeError, ValueError, RecursionError):
        return values, "unreadable: details is not valid JSON"
    if not isinstance(details, dict):
        return values, "unreadable: details is not a JSON object"
    values["details"] = details
    return values, None


def _rows(newest_first: bool = False) -> Select[*tuple[Any, ...]]:
    """A select of every entry as raw values (details as text, parsed by _read)."""
    order = AuditEntry.id.desc() if newest_first else AuditEntry.id
    return select(
        AuditEntry.id,
        AuditEntry.at,
        AuditEntry.actor,
        AuditEntry.action,
        AuditEntry.dataset_id,
        AuditEntry.outcome,
        AuditEntry.reason,
        # As text: a JSON column would parse it on fetch, and a row that is not
        # JSON would then raise instead of being reported.
        cast(AuditEntry.details, Text).label("details"),
        AuditEntry.previous_hash,
        AuditEntry.hash,
    ).order_by(order)


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


# -- the log's files -----------------------------------------------------------------


class _Log:
    """An audit log's keys and checkpoint schedule (one per AuditFiles)."""

    def __init__(self, files: AuditFiles, key: AuditKey) -> None:
        self.files = files
        self.key = key
        self.checkpoint_keys = CheckpointKeys(files.checkpoint_keys, files.log_id)
        self.last_checkpoint = time.monotonic()

    def checkpoint_due(self, head_before: int, head_after: int) -> bool:
        every = self.files.checkpoint_every_entries
        if every and head_after // every > head_before // every:
            return True
        seconds = self.files.checkpoint_every_seconds
        return bool(seconds) and time.monotonic() - self.last_checkpoint >= seconds

    def sign(self, entry_id: int, mac: str) -> AuditCheckpoint:
        now = dt.datetime.now(dt.UTC)
        token = self.checkpoint_keys.sign(entry_id, mac, now)
        return AuditCheckpoint(entry_id=entry_id, mac=mac, signed_at=now, token=token)


_LOGS: dict[AuditFiles, _Log] = {}


def _log_of(session: Session) -> _Log:
    """The keys of the log in ``session``'s database (read once per process)."""
    bind = session.get_bind()
    files = bind.get_execution_options().get(AUDIT_FILES_OPTION)
    if not isinstance(files, AuditFiles):
        raise StoreError(
            "this database's audit log has no key: open it as a node "
            "(genomenode.store.node) or with genomenode.network.audit"
        )
    log = _LOGS.get(files)
    if log is None:
        log = _LOGS.setdefault(files, _Log(files, _open_key(session, files.key_file)))
    return log


def _open_key(session: Session, path: pathlib.Path) -> AuditKey:
    """The log's key; made now if there is none and the log has no keyed entry."""
    if path.exists():
        return AuditKey.load(path)
    head = session.execute(_rows(newest_first=True).limit(1)).first()
    if path.exists():
        # Another process made it meanwhile. A key file is in place before any
        # entry is written with it, so a keyed head read above implies this.
        return AuditKey.load(path)
    if head is None:
        return AuditKey.create(path, unkeyed_entries=0, unkeyed_head=GENESIS)
    fields, problem = _read(head)
    if problem is not None or entry_hash(fields) != fields["hash"]:
        # A keyed log whose key is missing: a new key could never verify it.
        raise StoreError(
            f"{path} is missing, but the audit log's last entry ({fields['id']}) "
            "was written with a key (or is damaged): restore the key file from a "
            "backup, or from the machine that wrote the log"
        )
    key = AuditKey.create(
        path, unkeyed_entries=fields["id"], unkeyed_head=fields["hash"]
    )
    if key.unkeyed_entries:
        _log.warning(
            "audit log: new key %s; the %d entries written before it are anchored "
            "by it (their hashes stay unkeyed)",
            path,
            key.unkeyed_entries,
        )
    return key


# -- writing -------------------------------------------------------------------------


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

    def __post_init__(self) -> None:
        # Callers put request paths and ids here: an over-long value would make
        # PostgreSQL refuse the whole batch for ever (the writer never drops
        # entries), so values are cut to their columns, and details that cannot
        # be stored as JSON are refused now, not in the writer thread.
        object.__setattr__(self, "action", self.action[:_ACTION_LENGTH])
        object.__setattr__(self, "outcome", self.outcome[:_OUTCOME_LENGTH])
        if self.dataset_id is not None:
            object.__setattr__(self, "dataset_id", self.dataset_id[:_DATASET_LENGTH])
        try:
            json.dumps(self.details, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise ValueError(f"details cannot be stored as JSON: {error}") from None


#: Lengths of the audit_log columns (store/models.py AuditEntry).
_ACTION_LENGTH = 64
_OUTCOME_LENGTH = 32
_DATASET_LENGTH = 64


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
    """Add checked entries in order, chained to the head read once, and flush.

    A checkpoint of the last one is added to the same transaction when one is due,
    so it never names an entry that did not commit.
    """
    log = _log_of(session)
    head = session.execute(
        select(AuditEntry.id, AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)
    ).first()
    last_id, last_hash = (head[0], head[1]) if head else (0, GENESIS)
    head_before = last_id
    rows: list[dict[str, Any]] = []
    for item in batch:
        row: dict[str, Any] = {
            "id": last_id + 1,
            "at": item.at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
            "actor": item.actor,
            "action": item.action,
            "dataset_id": item.dataset_id,
            "outcome": item.outcome,
            "reason": item.reason,
            "details": item.details,
            "previous_hash": last_hash,
        }
        row["hash"] = entry_mac(log.key, row)
        rows.append(row)
        last_id, last_hash = row["id"], row["hash"]
    # One Core INSERT for the batch: the ORM's unit of work per entry cost the
    # writer thread more than the rest of its work.
    session.execute(insert(AuditEntry), rows)
    entries = [AuditEntry(**row) for row in rows]
    if log.checkpoint_due(head_before, last_id):
        session.add(log.sign(last_id, last_hash))

        def _signed(_session: Session) -> None:
            log.last_checkpoint = time.monotonic()

        event.listen(session, "after_commit", _signed, once=True)
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


#: A batch of at least this many entries means the node is busy...
BUSY_BATCH = 8
#: ... and the next batch then waits this many times ``max_delay_seconds``.
BUSY_FACTOR = 4


class AuditWriter:
    """Appends entries from one background thread, many per transaction.

    For decisions on the request path (every Beacon query), where a commit per
    request would cost more than the query itself. :meth:`record` checks the
    entry (no secrets) and queues it; the thread writes what is queued every
    ``max_delay_seconds`` (or ``max_batch`` at a time; ``BUSY_FACTOR`` times that
    after a batch of ``BUSY_BATCH`` or more), chaining the batch to the head in one
    transaction. A process killed between the two loses at most that interval of
    query entries; decisions that change rights (DAC actions) use
    :func:`add_entry` in their own transaction instead.

    Fail closed: when the database cannot take entries (or the log's key cannot
    be read) and ``max_pending`` are waiting, :meth:`record` raises
    :class:`~genomenode.errors.StoreError`, so the request fails rather than goes
    unaudited.
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

    @property
    def engine(self) -> Engine:
        """The database the entries go to."""
        return self._engine

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
        busy = False
        while not self._closed:
            try:
                first = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            batch = [first]
            # A commit costs the writer about as much as 15 entries: when the last
            # batch was a busy one, wait BUSY_FACTOR times longer (fewer, bigger
            # transactions); a quiet node still writes within max_delay.
            delay = self._max_delay * (BUSY_FACTOR if busy else 1)
            deadline = time.monotonic() + delay
            while len(batch) < self._max_batch:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(self._queue.get(timeout=remaining))
                except queue.Empty:
                    break
            self._write(batch)
            busy = len(batch) >= BUSY_BATCH
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
            except (IntegrityError, OperationalError, GenomenodeError) as error:
                # Another process took the head first (or the DB is busy/down, or
                # the key cannot be read): chain again to the new head; keep the
                # entries, never drop them.
                attempt += 1
                time.sleep(min(0.002 * attempt, 1.0))
                if attempt % 500 == 0 or (
                    attempt == 1 and isinstance(error, GenomenodeError)
                ):
                    _log.error(
                        "audit log: %d entries wait for the database: %s",
                        len(batch),
                        error if isinstance(error, GenomenodeError) else "busy",
                    )
