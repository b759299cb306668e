"""The hash-chained audit log: appends chain, any tampering is found."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading

import pytest
from sqlalchemy import delete, func, select, update

from genomenode.access.audit import GENESIS, append, entry_hash, verify
from genomenode.store.models import AuditEntry


def _fill(node, number: int = 6) -> None:
    for index in range(number):
        append(
            node.engine,
            actor=f"user-{index % 2}",
            action="beacon.query",
            outcome="allow" if index % 3 else "deny",
            reason="granted ControlledAccessGrants" if index % 3 else "not registered",
            dataset_id="d1",
            details={"granularity": "record", "index": index, "label": "Ålesund"},
        )


def _check(node):
    with node.session() as session:
        return verify(session)


def test_entries_chain_from_genesis(node):
    _fill(node)
    with node.session() as session:
        entries = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [entry.id for entry in entries] == [1, 2, 3, 4, 5, 6]
    assert entries[0].previous_hash == GENESIS
    for before, after in itertools.pairwise(entries):
        assert after.previous_hash == before.hash
    check = _check(node)
    assert check.intact and check.num_entries == 6


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("actor", "someone-else"),
        ("outcome", "allow"),
        ("reason", "edited"),
        ("dataset_id", "d2"),
        ("at", "2020-01-01T00:00:00.000000+00:00"),
        ("details", {"granularity": "count"}),
        ("hash", "f" * 64),
        ("previous_hash", "e" * 64),
    ],
)
def test_changing_any_column_of_any_entry_is_detected(node, column, value):
    _fill(node)
    with node.session() as session, session.begin():
        session.execute(
            update(AuditEntry).where(AuditEntry.id == 4).values({column: value})
        )
    check = _check(node)
    assert not check.intact
    # A changed hash shows at its own entry; a changed previous_hash too.
    assert check.first_bad_id == 4
    assert check.num_entries == 3


def test_rewriting_an_entry_with_a_fresh_hash_breaks_the_next_link(node):
    _fill(node)
    with node.session() as session, session.begin():
        entry = session.get(AuditEntry, 3)
        entry.reason = "edited, and re-hashed to cover it up"
        fields = {
            c: getattr(entry, c)
            for c in (
                "id",
                "at",
                "actor",
                "action",
                "dataset_id",
                "outcome",
                "reason",
                "details",
                "previous_hash",
            )
        }
        entry.hash = entry_hash(fields)
    check = _check(node)
    assert (check.first_bad_id, check.problem) == (
        4,
        "does not chain to the entry before it",
    )


def test_deleting_an_entry_is_detected(node):
    _fill(node)
    with node.session() as session, session.begin():
        session.execute(delete(AuditEntry).where(AuditEntry.id == 2))
    check = _check(node)
    assert check.first_bad_id == 3 and "missing" in check.problem


def test_secrets_never_enter_the_log(node):
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz"
    for details in (
        {"access_token": "x"},
        {"nested": {"Authorization": "x"}},
        {"visa": token},
        {"list": [token]},
    ):
        with pytest.raises(ValueError, match="never"):
            append(
                node.engine,
                actor="a",
                action="x",
                outcome="deny",
                reason="r",
                details=details,
            )
    with node.session() as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_parallel_appends_keep_one_chain(node):
    errors: list[BaseException] = []

    def writer(number: int) -> None:
        try:
            for index in range(15):
                append(
                    node.engine,
                    actor=f"writer-{number}",
                    action="access.approve",
                    outcome="allow",
                    reason="dac",
                    details={"index": index},
                )
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(number,)) for number in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    check = _check(node)
    assert check.intact and check.num_entries == 60


def test_cli_verify(node):
    _fill(node)
    command = [sys.executable, "-m", "genomenode", "audit", "verify", "--json"]
    command += ["--node", str(node.config.node_dir)]
    environment = None
    ok = subprocess.run(command, capture_output=True, text=True, env=environment)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["intact"] is True
    with node.session() as session, session.begin():
        session.execute(update(AuditEntry).where(AuditEntry.id == 5).values(reason="x"))
    bad = subprocess.run(command, capture_output=True, text=True, env=environment)
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["first_bad_id"] == 5
