"""Budgets: atomic charges on SQLite and PostgreSQL, across threads and processes,
kept across restarts, with the seconds to the next window."""

from __future__ import annotations

import concurrent.futures
import multiprocessing

import sqlalchemy

from genomenode.disclosure.budgets import Budgets
from genomenode.store.db import create_engine
from genomenode.store.node import open_node


def _budgets(node, budget=5.0, window=3600, clock=None) -> Budgets:
    options = {"clock": clock} if clock is not None else {}
    return Budgets(node.engine, budget=budget, window_seconds=window, **options)


def test_charges_until_the_budget_is_spent(node):
    budgets = _budgets(node, budget=2.0)
    assert [budgets.charge("ip:1.2.3.4", "d", 0.5).allowed for _ in range(5)] == [
        True,
        True,
        True,
        True,
        False,
    ]
    assert budgets.spent("ip:1.2.3.4", "d") == 2.0
    # Per identity and per dataset.
    assert budgets.charge("ip:1.2.3.5", "d", 0.5).allowed
    assert budgets.charge("ip:1.2.3.4", "other", 0.5).allowed
    assert not budgets.charge("ip:9.9.9.9", "d", 2.5).allowed


def test_a_refusal_says_when_the_next_window_begins(node):
    now = [7200.0 + 1000.0]
    budgets = _budgets(node, budget=1.0, window=3600, clock=lambda: now[0])
    assert budgets.charge("a", "d", 1.0).allowed
    refused = budgets.charge("a", "d", 1.0)
    assert (refused.allowed, refused.retry_after) == (False, 2600)
    now[0] = 10800.0  # the next window
    assert budgets.charge("a", "d", 1.0).allowed
    # The ended window's row is gone.
    with node.engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT window_start FROM disclosure_budgets"
        ).all()
    assert rows == [(10800,)]


def test_concurrent_threads_cannot_overspend(node):
    budgets = _budgets(node, budget=10.0)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(lambda _: budgets.charge("sub:x|y", "d", 1.0).allowed, range(40))
        )
    assert sum(results) == 10
    assert budgets.spent("sub:x|y", "d") == 10.0


def _charge_many(url: str, schema: str | None, count: int) -> int:
    engine = create_engine(url, schema)
    budgets = Budgets(engine, budget=25.0, window_seconds=3600)
    allowed = sum(budgets.charge("ip:10.0.0.1", "d", 1.0).allowed for _ in range(count))
    engine.dispose()
    return allowed


def test_concurrent_processes_cannot_overspend(node):
    url = node.config.database_url
    schema = node.config.values.get("db_schema")
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(4, mp_context=context) as pool:
        allowed = sum(pool.map(_charge_many, [url] * 4, [schema] * 4, [15] * 4))
    assert allowed == 25
    assert _budgets(node, budget=25.0).spent("ip:10.0.0.1", "d") == 25.0


def test_a_restart_does_not_reset_a_budget(node):
    budgets = _budgets(node, budget=1.0)
    assert budgets.charge("a", "d", 1.0).allowed
    node.close()
    with open_node(node.config.node_dir) as reopened:
        assert not _budgets(reopened, budget=1.0).charge("a", "d", 1.0).allowed


def test_a_spent_budget_is_refused_again_without_the_database(node):
    """What is spent never goes down within a window, so a refused cost (or a
    bigger one) is refused from memory; a smaller one still asks, and a new window
    forgets."""
    now = [1000.0]
    budgets = _budgets(node, budget=1.0, window=3600, clock=lambda: now[0])
    assert budgets.charge("a", "d", 0.75).allowed
    assert not budgets.charge("a", "d", 0.5).allowed
    statements: list[str] = []
    sqlalchemy.event.listen(
        budgets.engine,
        "before_cursor_execute",
        lambda *arguments: statements.append(arguments[2]),
    )
    for _ in range(20):
        assert not budgets.charge("a", "d", 0.5).allowed
        assert not budgets.charge("a", "d", 0.75).allowed
    assert statements == []
    assert budgets.charge("a", "d", 0.25).allowed  # smaller: asked, and it fits
    assert statements
    now[0] = 3600.0 + 1000.0
    assert budgets.charge("a", "d", 0.5).allowed


def test_a_lease_spends_from_memory_and_never_overspends(node):
    """Cheap charges against a big budget take leases: one database write serves
    several charges, and the budget is still never exceeded."""
    budgets = _budgets(node, budget=10.0)
    statements: list[str] = []
    sqlalchemy.event.listen(
        budgets.engine,
        "before_cursor_execute",
        lambda *arguments: statements.append(arguments[2]),
    )
    allowed = [budgets.charge("a", "d", 0.05).allowed for _ in range(260)]
    assert sum(allowed) == 200  # exactly the budget: one process spends its leases
    assert allowed[-1] is False
    upserts = [statement for statement in statements if "INSERT" in statement]
    # Leases of 12 charges (1/16 of the budget); the last lease's worth is taken
    # one charge at a time (a whole lease no longer fits): 16 + 2 x 8 + 1.
    assert len(upserts) <= 34
    assert abs(budgets.spent("a", "d") - 10.0) < 1e-9


def _charge_cheaply(url: str, schema: str | None, count: int) -> int:
    engine = create_engine(url, schema)
    budgets = Budgets(engine, budget=100.0, window_seconds=3600)
    allowed = sum(budgets.charge("ip:10.0.0.2", "d", 1.0).allowed for _ in range(count))
    engine.dispose()
    return allowed


def test_leases_across_processes_cannot_overspend(node):
    """Four processes with leases of 6 charges: never more than the budget, and
    at most one lease per process unspent (refused early, never allowed late)."""
    url = node.config.database_url
    schema = node.config.values.get("db_schema")
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(4, mp_context=context) as pool:
        allowed = sum(pool.map(_charge_cheaply, [url] * 4, [schema] * 4, [40] * 4))
    assert 100 - 4 * 5 <= allowed <= 100
    with node.engine.connect() as connection:
        spent = connection.exec_driver_sql(
            "SELECT spent FROM disclosure_budgets WHERE identity = 'ip:10.0.0.2'"
        ).scalar()
    assert spent <= 100.0 + 1e-9
