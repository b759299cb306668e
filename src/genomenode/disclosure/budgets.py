"""Privacy budgets per caller and dataset, kept in the node's database.

A caller (an identity key, :mod:`.identity`) may spend ``epsilon_budget`` on one
dataset per budget window. :meth:`Budgets.charge` spends with one conditional
upsert (``INSERT ... ON CONFLICT DO UPDATE ... WHERE spent + cost <= budget``),
which the database applies atomically: workers sharing the database cannot
overspend, and a restart changes nothing. The first charge of a window also
deletes the caller's rows of windows that ended.

Called off the event loop (Beacon answers run in the thread pool). A charge must
not cost a disk flush (milliseconds): on SQLite the budgets use their own
connections with ``synchronous=NORMAL`` (WAL: a commit is durable once the OS has
it; a power cut may forget the last charges, never corrupt), on PostgreSQL each
charge commits with ``synchronous_commit`` off (likewise). Losing the last
charges in a crash lets a caller spend them again: a bounded, documented loss.

Leases. A process does not write every charge: it takes a *lease* of up to
``LEASE_CHARGES`` charges' worth (never more than 1/``LEASE_FRACTION`` of the
budget) with the same conditional upsert, and spends it from memory. Overspending
stays impossible (what a process spends was first added to the database under
the budget's limit); what a lease holds unspent counts as spent for the other
processes and is lost if the process stops (fail closed: a caller may be refused
up to one lease per worker process early, never allowed late). One process, the
embedded default, behaves exactly as without leases. At a budget of 10 and a
presence cost of 0.05 a caller's lookups cost one database write per 12.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable
from typing import Any, cast

import sqlalchemy
from sqlalchemy import Connection, delete, event, text
from sqlalchemy.engine import Engine

from ..store.models import DisclosureBudget

__all__ = ["Budgets", "Charge"]

#: Refusals remembered per process before the memo starts again (memory bound).
_MAX_REFUSED = 100_000

#: A lease holds at most this many charges of the cost that took it...
LEASE_CHARGES = 16
#: ... and at most 1/n of the budget (whole charges: at a budget of 25 and a cost
#: of 1, one charge, which is no lease at all).
LEASE_FRACTION = 16

# One statement, the same on SQLite (3.35+) and PostgreSQL; written out rather
# than built per call, which cost more than running it.
_UPSERT = text(
    "INSERT INTO disclosure_budgets (identity, dataset_id, window_start, spent) "
    "VALUES (:identity, :dataset_id, :window_start, :cost) "
    "ON CONFLICT (identity, dataset_id, window_start) DO UPDATE "
    "SET spent = disclosure_budgets.spent + excluded.spent "
    "WHERE disclosure_budgets.spent + excluded.spent <= :limit "
    "RETURNING spent"
)


@dataclasses.dataclass(frozen=True)
class Charge:
    """The outcome of one charge: spent or refused, and when to come back."""

    allowed: bool
    retry_after: int = 0


class Budgets:
    """The ε budgets of one node's callers (see the module docstring).

    Parameters
    ----------
    engine
        The node's database.
    budget
        ε one identity may spend on one dataset per window.
    window_seconds
        Length of a window; windows are fixed (``floor(now / window)``).
    clock
        Seconds since the epoch.
    """

    def __init__(
        self,
        engine: Engine | None,
        *,
        budget: float,
        window_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = _unflushed(engine) if engine is not None else None
        self.budget = budget
        self.window_seconds = window_seconds
        self._clock = clock
        self._table = cast(Any, DisclosureBudget.__table__)
        # The least cost refused per (identity, dataset, limit) in the current
        # window: what is spent never goes down within a window, so a cost at
        # least as big is refused again without asking the database (a caller
        # hammering a spent budget costs the node a dictionary look-up).
        self._refused: dict[tuple[str, str, float], float] = {}
        self._refused_window = -1
        # What this process leased and has not spent yet, per (identity,
        # dataset, limit) in the current window (the module docstring).
        self._leases: dict[tuple[str, str, float], float] = {}
        self._lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("these budgets have no database")
        return self._engine

    def _begin(self) -> Any:
        return _transaction(self.engine)

    def _window(self) -> tuple[int, int]:
        now = self._clock()
        start = int(now // self.window_seconds) * self.window_seconds
        return start, max(1, math.ceil(start + self.window_seconds - now))

    def charge(
        self,
        identity: str,
        dataset_id: str,
        cost: float,
        *,
        budget: float | None = None,
    ) -> Charge:
        """Spend ``cost`` of ``identity``'s budget on ``dataset_id``, or refuse.

        ``budget`` replaces :attr:`budget` for this identity (the pool all
        anonymous callers share has its own).

        From this process's lease when it holds enough; otherwise one statement
        takes a new lease: ``INSERT ... ON CONFLICT DO UPDATE SET spent = spent +
        lease WHERE spent + lease <= budget RETURNING spent``; a row back means
        taken (when a whole lease no longer fits, the charge alone is asked). The
        first take of a window also deletes the caller's ended windows.
        """
        window, retry_after = self._window()
        limit = self.budget if budget is None else budget
        if cost > limit:
            return Charge(False, retry_after)
        key = (identity, dataset_id, limit)
        with self._lock:
            if window != self._refused_window or len(self._refused) > _MAX_REFUSED:
                # Leases are of one window: a new one starts with none (what the
                # old ones held unspent was counted in the window that ended).
                self._refused = {}
                self._leases = {}
                self._refused_window = window
            if cost >= self._refused.get(key, math.inf):
                return Charge(False, retry_after)
            held = self._leases.pop(key, 0.0)
            if held >= cost - 1e-12:
                if held - cost > 1e-12:
                    self._leases[key] = held - cost
                return Charge(True)
        needed = cost - held
        charges = max(1, min(LEASE_CHARGES, math.floor(limit / LEASE_FRACTION / cost)))
        lease = needed + (charges - 1) * cost
        taken = self._take(identity, dataset_id, window, limit, lease)
        if taken == 0.0 and lease > needed:
            # Not a whole lease left: the one charge may still fit.
            taken = self._take(identity, dataset_id, window, limit, needed)
        with self._lock:
            if taken == 0.0:
                # What was held stays held; the cost is refused from now on.
                if held > 0.0:
                    self._leases[key] = self._leases.get(key, 0.0) + held
                self._refused[key] = min(self._refused.get(key, math.inf), cost)
                return Charge(False, retry_after)
            left = held + taken - cost
            if left > 1e-12:
                self._leases[key] = self._leases.get(key, 0.0) + left
        return Charge(True)

    def _take(
        self, identity: str, dataset_id: str, window: int, limit: float, amount: float
    ) -> float:
        """Add ``amount`` to what the database says ``identity`` spent, if it fits
        under ``limit``: the amount taken, or 0."""
        with self._begin() as connection:
            spent = connection.execute(
                _UPSERT,
                {
                    "identity": identity,
                    "dataset_id": dataset_id,
                    "window_start": window,
                    "cost": amount,
                    # A hair of slack: twenty charges of 0.05 must make 1.0.
                    "limit": limit + 1e-9,
                },
            ).scalar()
            if spent is None:
                return 0.0
            if spent == amount:
                # A new window began for this caller: forget its ended ones.
                table = self._table
                connection.execute(
                    delete(table).where(
                        table.c.identity == identity,
                        table.c.dataset_id == dataset_id,
                        table.c.window_start < window,
                    )
                )
        return amount

    def spent(self, identity: str, dataset_id: str) -> float:
        """What ``identity`` spent on ``dataset_id`` in the current window: what
        the database holds, less what this process leased and has not spent."""
        window, _ = self._window()
        table = self._table
        with self.engine.connect() as connection:
            value = connection.scalar(
                table.select()
                .with_only_columns(table.c.spent)
                .where(
                    table.c.identity == identity,
                    table.c.dataset_id == dataset_id,
                    table.c.window_start == window,
                )
            )
        with self._lock:
            held = sum(
                left
                for (who, dataset, _), left in self._leases.items()
                if (who, dataset) == (identity, dataset_id)
            )
        return float(value or 0.0) - held


def _unflushed(engine: Engine) -> Engine:
    """The engine budgets write with: on SQLite, another engine on the same file
    whose commits do not wait for the disk (see the module docstring)."""
    if engine.dialect.name != "sqlite":
        return engine
    own = sqlalchemy.create_engine(engine.url)

    @event.listens_for(own, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return own


class _transaction:
    """``engine.begin()``; on PostgreSQL with ``synchronous_commit`` off for it."""

    def __init__(self, engine: Engine) -> None:
        self._context = engine.begin()
        self._postgresql = engine.dialect.name == "postgresql"

    def __enter__(self) -> Connection:
        connection = self._context.__enter__()
        if self._postgresql:
            connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
        return connection

    def __exit__(self, *exc_info: Any) -> None:
        self._context.__exit__(*exc_info)
