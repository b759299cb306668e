"""Privacy budgets per caller and dataset, kept in the node's database.

A caller (an identity key, :mod:`.identity`) may spend ``epsilon_budget`` on one
dataset per budget window. :meth:`Budgets.charge` spends with one conditional
UPDATE (``spent + cost <= budget``), which the database applies atomically: workers
sharing the database cannot overspend, and a restart changes nothing. A window's
row is created by the first charge in it (``INSERT ... ON CONFLICT DO NOTHING``,
then the UPDATE again if another worker won), which also deletes rows of windows
that ended.

Called off the event loop (Beacon answers run in the thread pool).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import CursorResult, delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from ..store.models import DisclosureBudget

__all__ = ["Budgets", "Charge"]


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
        self._engine = engine
        self.budget = budget
        self.window_seconds = window_seconds
        self._clock = clock
        self._table = cast(Any, DisclosureBudget.__table__)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("these budgets have no database")
        return self._engine

    def _window(self) -> tuple[int, int]:
        now = self._clock()
        start = int(now // self.window_seconds) * self.window_seconds
        return start, max(1, math.ceil(start + self.window_seconds - now))

    def charge(self, identity: str, dataset_id: str, cost: float) -> Charge:
        """Spend ``cost`` of ``identity``'s budget on ``dataset_id``, or refuse."""
        window, retry_after = self._window()
        if cost > self.budget:
            return Charge(False, retry_after)
        table = self._table
        spend = (
            update(table)
            .where(
                table.c.identity == identity,
                table.c.dataset_id == dataset_id,
                table.c.window_start == window,
                table.c.spent + cost <= self.budget,
            )
            .values(spent=table.c.spent + cost)
        )
        with self.engine.begin() as connection:
            if cast(CursorResult[Any], connection.execute(spend)).rowcount == 1:
                return Charge(True)
        inserted = self._insert(identity, dataset_id, window, cost)
        if inserted:
            return Charge(True)
        with self.engine.begin() as connection:
            if cast(CursorResult[Any], connection.execute(spend)).rowcount == 1:
                return Charge(True)
        return Charge(False, retry_after)

    def _insert(self, identity: str, dataset_id: str, window: int, cost: float) -> bool:
        """The window's first charge: a new row (False if another worker's won)."""
        table = self._table
        dialect = self.engine.dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = (
            insert(table)
            .values(
                identity=identity,
                dataset_id=dataset_id,
                window_start=window,
                spent=cost,
            )
            .on_conflict_do_nothing()
        )
        with self.engine.begin() as connection:
            result = cast(CursorResult[Any], connection.execute(statement))
            if result.rowcount != 1:
                return False
            # A new window began for this caller: forget its ended ones.
            connection.execute(
                delete(table).where(
                    table.c.identity == identity,
                    table.c.dataset_id == dataset_id,
                    table.c.window_start < window,
                )
            )
        return True

    def spent(self, identity: str, dataset_id: str) -> float:
        """What ``identity`` spent on ``dataset_id`` in the current window."""
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
        return float(value or 0.0)
