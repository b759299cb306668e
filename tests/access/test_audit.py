"""The keyed audit log: appends chain, tampering is found, checkpoints pin the log.

The attacks run as plain SQL on the node's real database (SQLite and PostgreSQL),
the way someone holding only the database's credentials would run them.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import hmac
import itertools
import json
import logging
import os
import stat
import subprocess
import sys
import threading
import time

import jwt
import pytest
from click.testing import CliRunner
from sqlalchemy import delete, event, func, select, text, update
from sqlalchemy.orm import Session

from genomenode.access.audit import (
    GENESIS,
    AuditWriter,
    add_entry,
    append,
    entry_hash,
    entry_mac,
)
from genomenode.access.audit_check import checkpoint, verify
from genomenode.access.audit_keys import AuditKey
from genomenode.access.visas import SigningKeys
from genomenode.cli import cli
from genomenode.config import Secret
from genomenode.store.models import (
    AUDIT_FILES_OPTION,
    AuditCheckpoint,
    AuditEntry,
)
from tests.access.test_workflow import add_dataset
from tests.conftest import grant_access

COLUMNS = "id, at, actor, action, dataset_id, outcome, reason, details, previous_hash"


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


def _check(node, checkpoints=()):
    with node.session() as session:
        return verify(session, checkpoints=checkpoints)


def _cli_verify(node, *options):
    """``genomenode audit verify --json`` in-process: (exit code, JSON result)."""
    result = CliRunner().invoke(
        cli,
        ["audit", "verify", "--json", "--node", str(node.config.node_dir), *options],
    )
    assert "Traceback" not in result.output
    return result.exit_code, json.loads(result.stdout)


def _key(node) -> AuditKey:
    return AuditKey.load(node.audit_files.key_file)


def _reseal(node, first_id: int, mac=entry_hash) -> None:
    """The attacker's tool: recompute ``previous_hash`` and ``hash`` of every entry
    from ``first_id`` on with ``mac`` (plain SQL: read, recompute, UPDATE)."""
    with node.engine.begin() as connection:
        before = connection.execute(
            text("SELECT hash FROM audit_log WHERE id < :id ORDER BY id DESC LIMIT 1"),
            {"id": first_id},
        ).scalar()
        previous = before or GENESIS
        rows = connection.execute(
            text(f"SELECT {COLUMNS} FROM audit_log WHERE id >= :id ORDER BY id"),
            {"id": first_id},
        ).all()
        for row in rows:
            fields = dict(row._mapping)
            if isinstance(fields["details"], str):  # SQLite gives the JSON text
                fields["details"] = json.loads(fields["details"])
            fields["previous_hash"] = previous
            previous = mac(fields)
            connection.execute(
                text(
                    "UPDATE audit_log SET previous_hash = :p, hash = :h WHERE id = :id"
                ),
                {"p": fields["previous_hash"], "h": previous, "id": row.id},
            )


# -- the chain -----------------------------------------------------------------------


def test_entries_chain_from_genesis_with_the_key(node):
    _fill(node)
    with node.session() as session:
        entries = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [entry.id for entry in entries] == [1, 2, 3, 4, 5, 6]
    assert entries[0].previous_hash == GENESIS
    for before, after in itertools.pairwise(entries):
        assert after.previous_hash == before.hash
    # Each hash is the HMAC-SHA256 of the canonical fields under the key file's key,
    # not anything computable without it.
    document = json.loads(node.audit_files.key_file.read_text())
    raw = base64.urlsafe_b64decode(document["key"])
    first = entries[0]
    canonical = json.dumps(
        {
            "action": first.action,
            "actor": first.actor,
            "at": first.at,
            "dataset_id": first.dataset_id,
            "details": first.details,
            "id": first.id,
            "outcome": first.outcome,
            "previous_hash": first.previous_hash,
            "reason": first.reason,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    assert first.hash == hmac.new(raw, canonical, hashlib.sha256).hexdigest()
    assert first.hash != hashlib.sha256(canonical).hexdigest()
    check = _check(node)
    assert check.intact and check.num_entries == 6


def test_the_key_is_a_private_file_and_never_shows(node, caplog):
    caplog.set_level(logging.DEBUG)
    _fill(node, 2)
    key_file = node.audit_files.key_file
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    document = json.loads(key_file.read_text())
    assert document["unkeyed_entries"] == 0 and document["format_version"] == 1
    key = _key(node)
    assert document["key"] not in repr(key) and "****" in repr(key)
    assert document["key"] not in caplog.text
    # The database never holds it.
    with node.engine.connect() as connection:
        dump = json.dumps(
            [
                list(map(str, row))
                for row in connection.execute(text("SELECT * FROM audit_log"))
            ]
        )
    assert document["key"] not in dump


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


def test_rewriting_an_entry_with_a_fresh_hash_is_detected_at_that_entry(node):
    _fill(node)
    with node.session() as session, session.begin():
        session.execute(
            update(AuditEntry)
            .where(AuditEntry.id == 3)
            .values(reason="edited, and re-hashed to cover it up")
        )
    _reseal(node, 3)  # SHA-256, as the chain was before it had a key
    check = _check(node)
    assert check.first_bad_id == 3
    assert "MAC does not verify" in check.problem


def test_deleting_an_entry_is_detected(node):
    _fill(node)
    with node.session() as session, session.begin():
        session.execute(delete(AuditEntry).where(AuditEntry.id == 2))
    check = _check(node)
    assert check.first_bad_id == 3 and "missing" in check.problem


# -- the three attacks of issue 10, in plain SQL -----------------------------------


def test_attack_a_changing_who_approved_and_resealing_is_detected(node):
    add_dataset(node)
    grant_access(node, "d1", "alice", actor="operator:carol")
    _fill(node, 5)
    with node.engine.connect() as connection:
        approval = connection.execute(
            text("SELECT id FROM audit_log WHERE action = 'access.approve'")
        ).scalar_one()
    assert _cli_verify(node)[0] == 0
    with node.engine.begin() as connection:
        connection.execute(
            text("UPDATE audit_log SET actor = 'operator:mallory' WHERE id = :id"),
            {"id": approval},
        )
    _reseal(node, approval)
    code, result = _cli_verify(node)
    assert code == 1
    assert result["first_bad_id"] == approval and not result["intact"]
    # A guessed key does no better than no key.
    guessed = AuditKey(Secret(base64.urlsafe_b64encode(bytes(32)).decode()))
    _reseal(node, approval, functools.partial(entry_mac, guessed))
    code, result = _cli_verify(node)
    assert (code, result["first_bad_id"]) == (1, approval)


def test_attack_b_deleting_18_entries_and_renumbering_is_detected(node):
    _fill(node, 40)
    with node.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_log WHERE id BETWEEN 11 AND 28"))
        # One row at a time, in order: the primary key is checked on every UPDATE.
        for old_id in range(29, 41):
            connection.execute(
                text("UPDATE audit_log SET id = :new WHERE id = :old"),
                {"new": old_id - 18, "old": old_id},
            )
    _reseal(node, 11)
    with node.engine.connect() as connection:
        ids = connection.execute(text("SELECT id FROM audit_log ORDER BY id")).scalars()
        assert list(ids) == list(range(1, 23))  # a gap-free, re-hashed chain
    code, result = _cli_verify(node)
    assert (code, result["first_bad_id"], result["num_entries"]) == (1, 11, 10)


@pytest.mark.parametrize("inserted", [[0], [0, -1], [-5]])
def test_attack_c_rows_with_ids_below_one_are_read_and_detected(node, inserted):
    _fill(node, 4)
    with node.engine.begin() as connection:
        for entry_id in inserted:
            # A copy of entry 1 under the new id, hashed as the old chain would be.
            row = connection.execute(
                text(f"SELECT {COLUMNS} FROM audit_log WHERE id = 1")
            ).one()
            fields = dict(row._mapping)
            if isinstance(fields["details"], str):
                fields["details"] = json.loads(fields["details"])
            fields.update(id=entry_id, actor="ghost", previous_hash=GENESIS)
            connection.execute(
                text(
                    "INSERT INTO audit_log (id, at, actor, action, dataset_id, "
                    "outcome, reason, details, previous_hash, hash) VALUES (:id, :at, "
                    ":actor, :action, :dataset_id, :outcome, :reason, :details, "
                    ":previous_hash, :hash)"
                ),
                {
                    **fields,
                    "details": json.dumps(fields["details"]),
                    "hash": entry_hash(fields),
                },
            )
    code, result = _cli_verify(node)
    assert code == 1
    assert result["first_bad_id"] == min(inserted)
    assert "out of place" in result["problem"]


def test_unreadable_details_are_reported_as_tampering_not_a_traceback(node):
    _fill(node, 5)
    with node.engine.begin() as connection:
        if node.engine.dialect.name == "postgresql":
            # PostgreSQL checks JSON on input: an attacker changes the type first.
            connection.execute(
                text("ALTER TABLE audit_log ALTER COLUMN details TYPE text")
            )
        connection.execute(
            text("UPDATE audit_log SET details = '{\"granularity\": ' WHERE id = 3")
        )
    code, result = _cli_verify(node)
    assert (code, result["first_bad_id"]) == (1, 3)
    assert "not valid JSON" in result["problem"]


@pytest.mark.parametrize("column", ["actor", "details", "hash", "at"])
def test_a_null_column_is_reported_as_tampering(node, column):
    _fill(node, 5)
    with node.engine.begin() as connection:
        if node.engine.dialect.name == "postgresql":
            connection.execute(
                text(f"ALTER TABLE audit_log ALTER COLUMN {column} DROP NOT NULL")
            )
        else:
            # SQLite cannot drop NOT NULL: the attacker rebuilds the table.
            connection.execute(text("CREATE TABLE copied AS SELECT * FROM audit_log"))
            connection.execute(text("DROP TABLE audit_log"))
            connection.execute(text("ALTER TABLE copied RENAME TO audit_log"))
        connection.execute(text(f"UPDATE audit_log SET {column} = NULL WHERE id = 2"))
    code, result = _cli_verify(node)
    assert (code, result["first_bad_id"]) == (1, 2)
    assert f"{column} is NULL" in result["problem"]


def test_details_that_are_json_but_not_an_object_are_unreadable(node):
    _fill(node, 3)
    with node.engine.begin() as connection:
        connection.execute(text("UPDATE audit_log SET details = '[1, 2]' WHERE id = 2"))
    check = _check(node)
    assert (check.first_bad_id, check.problem) == (
        2,
        "unreadable: details is not a JSON object",
    )


# -- checkpoints -------------------------------------------------------------------


def test_a_checkpoint_is_a_signed_statement_of_the_head(node):
    _fill(node, 7)
    signed = checkpoint(node.engine)
    with node.session() as session:
        head = session.get(AuditEntry, 7)
        stored = session.scalars(select(AuditCheckpoint)).all()
    assert (signed.log_id, signed.entry_id, signed.mac) == ("test-node", 7, head.hash)
    assert [(row.entry_id, row.mac, row.token) for row in stored] == [
        (7, head.hash, signed.token)
    ]
    header, claims = (
        json.loads(base64.urlsafe_b64decode(part + "=="))
        for part in signed.token.split(".")[:2]
    )
    assert (
        header["alg"] == "ES256" and header["typ"] == "genomenode-audit-checkpoint+jwt"
    )
    assert claims == {
        "iss": "test-node",
        "entry_id": 7,
        "mac": head.hash,
        "iat": claims["iat"],
    }
    assert abs(claims["iat"] - time.time()) < 60
    keys_dir = node.audit_files.checkpoint_keys
    assert stat.S_IMODE(keys_dir.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in keys_dir.glob("*.pem"))
    check = _check(node, [signed.token])
    assert check.intact and check.num_checkpoints == 2  # given, and stored


def test_a_checkpoint_kept_outside_detects_a_cut_tail(node, tmp_path):
    _fill(node, 10)
    kept = tmp_path / "kept.jws"
    runner = CliRunner()
    node_dir = str(node.config.node_dir)
    made = runner.invoke(
        cli, ["audit", "checkpoint", "--node", node_dir, "--out", str(kept)]
    )
    assert made.exit_code == 0, made.output
    assert "entry 10" in made.output
    with node.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_log WHERE id > 7"))
    # The stored checkpoint still names entry 10, so even without the kept copy...
    code, result = _cli_verify(node)
    assert (code, result["first_bad_id"]) == (1, 8)
    assert "removed from its end" in result["problem"]
    # ... and when the attacker deletes the stored ones too, only the kept copy can.
    with node.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_checkpoints"))
    assert _cli_verify(node)[0] == 0
    code, result = _cli_verify(node, "--checkpoint", str(kept))
    assert (code, result["first_bad_id"]) == (1, 8)
    assert "given checkpoint 1" in result["problem"]


def test_a_checkpoint_detects_a_rewrite_by_someone_with_the_key(node, tmp_path):
    _fill(node, 12)
    kept = checkpoint(node.engine).token
    _fill(node, 3)
    with node.engine.begin() as connection:
        connection.execute(text("UPDATE audit_log SET actor = 'x' WHERE id = 5"))
        connection.execute(text("DELETE FROM audit_checkpoints"))
    _reseal(
        node, 5, functools.partial(entry_mac, _key(node))
    )  # the attacker read the key file
    assert _check(node).intact  # the chain alone cannot tell
    check = _check(node, [kept])
    assert (check.first_bad_id, check.num_entries) == (12, 15)
    assert "rewritten" in check.problem


def test_checkpoints_that_cannot_be_believed_are_reported(node, tmp_path):
    _fill(node, 3)
    good = checkpoint(node.engine).token
    header, claims, signature = good.split(".")
    other = SigningKeys(tmp_path / "elsewhere")
    forged_kid, forged_key = other.active()
    forged = jwt.encode(
        {"iss": "test-node", "entry_id": 3, "mac": "0" * 64, "iat": 1},
        forged_key,
        algorithm="ES256",
        headers={"kid": forged_kid, "typ": "genomenode-audit-checkpoint+jwt"},
    )
    node_key = node.audit_files.checkpoint_keys
    own_kid, own_key = SigningKeys(node_key).active()
    wrong_log = jwt.encode(
        {"iss": "another-node", "entry_id": 3, "mac": "0" * 64, "iat": 1},
        own_key,
        algorithm="ES256",
        headers={"kid": own_kid, "typ": "genomenode-audit-checkpoint+jwt"},
    )
    not_checkpoint = jwt.encode(
        {"iss": "test-node", "entry_id": 3, "mac": "0" * 64, "iat": 1},
        own_key,
        algorithm="ES256",
        headers={"kid": own_kid, "typ": "JWT"},
    )
    cases = {
        "not a JWS": "garbage",
        "does not verify": f"{header}.{claims[:-4]}AAAA.{signature}",
        "which this log does not have": forged,
        "is not a checkpoint of 'test-node'": wrong_log,
        "is not an audit checkpoint": not_checkpoint,
    }
    for expected, token in cases.items():
        check = _check(node, [good, token])
        assert not check.intact and check.first_bad_id is None
        assert (
            check.problem.startswith("given checkpoint 2 ")
            and expected in check.problem
        )
    # A checkpoint row slipped into the database is caught as well.
    with node.session() as session, session.begin():
        row = session.scalars(select(AuditCheckpoint)).one()
        session.add(
            AuditCheckpoint(
                entry_id=3, mac="0" * 64, signed_at=row.signed_at, token=forged
            )
        )
        session.add(
            AuditCheckpoint(
                entry_id=2, mac=row.mac, signed_at=row.signed_at, token=row.token
            )
        )
    check = _check(node)
    assert "stored checkpoint" in check.problem


def test_checkpoint_refuses_a_log_that_does_not_verify(node):
    runner = CliRunner()
    node_dir = str(node.config.node_dir)
    empty = runner.invoke(cli, ["audit", "checkpoint", "--node", node_dir])
    assert empty.exit_code == 1 and "empty" in empty.output
    _fill(node, 4)
    with node.engine.begin() as connection:
        connection.execute(text("UPDATE audit_log SET reason = 'x' WHERE id = 2"))
    refused = runner.invoke(cli, ["audit", "checkpoint", "--node", node_dir, "--json"])
    assert refused.exit_code == 1
    assert (
        "not intact at entry 2" in refused.output and "Traceback" not in refused.output
    )
    with node.session() as session:
        assert session.scalar(select(func.count()).select_from(AuditCheckpoint)) == 0


def _with_schedule(node, **schedule):
    """Use a checkpoint schedule other than the settings' on this node's engine."""
    files = dataclasses.replace(node.audit_files, **schedule)
    node.engine.update_execution_options(**{AUDIT_FILES_OPTION: files})


def _checkpointed(node) -> list[int]:
    with node.session() as session:
        return list(
            session.scalars(
                select(AuditCheckpoint.entry_id).order_by(AuditCheckpoint.id)
            )
        )


def test_appends_sign_a_checkpoint_every_n_entries(node):
    _with_schedule(node, checkpoint_every_entries=10, checkpoint_every_seconds=0)
    _fill(node, 35)
    assert _checkpointed(node) == [10, 20, 30]
    writer = AuditWriter(node.engine, max_delay_seconds=0.01)
    for index in range(30):
        writer.record(actor="a", action="beacon.query", outcome="allow", reason="r")
        if index % 7 == 0:
            writer.flush()
    writer.close()
    # Batches that pass a multiple of 10 sign their last entry.
    marks = _checkpointed(node)[3:]
    assert marks and all(mark >= 40 for mark in marks)
    assert len({mark // 10 for mark in marks}) == len(marks)
    check = _check(node)
    assert check.intact and check.num_checkpoints == len(marks) + 3


def test_appends_sign_a_checkpoint_after_an_interval_and_only_when_committed(node):
    _fill(node, 1)  # the log's keys are read
    _with_schedule(node, checkpoint_every_entries=0, checkpoint_every_seconds=0.2)
    _fill(node, 1)
    assert _checkpointed(node) == []
    time.sleep(0.25)
    with Session(node.engine) as session:
        add_entry(session, actor="a", action="x", outcome="allow", reason="r")
        session.rollback()  # the checkpoint goes with the entry it names
    assert _checkpointed(node) == []
    _fill(node, 2)  # due still: the rolled-back one did not count
    assert _checkpointed(node) == [3]
    assert _check(node).num_checkpoints == 1


# -- logs written before the key -----------------------------------------------------


def _old_entries(node, number: int) -> None:
    """Entries as genomenode wrote them before the log had a key (SHA-256 chain)."""
    previous = GENESIS
    with node.session() as session, session.begin():
        for entry_id in range(1, number + 1):
            entry = AuditEntry(
                id=entry_id,
                at=f"2026-11-{entry_id:02d}T00:00:00.000000+00:00",
                actor="old",
                action="beacon.query",
                dataset_id=None,
                outcome="allow",
                reason="before the key",
                details={"n": entry_id},
                previous_hash=previous,
            )
            entry.hash = entry_hash({c: getattr(entry, c) for c in COLUMNS.split(", ")})
            session.add(entry)
            previous = entry.hash


def test_a_log_from_before_the_key_is_anchored_by_the_new_key_file(node):
    assert not node.audit_files.key_file.exists()
    _old_entries(node, 5)
    _fill(node, 3)  # the first keyed append makes the key
    document = json.loads(node.audit_files.key_file.read_text())
    with node.session() as session:
        fifth = session.get(AuditEntry, 5)
    assert (document["unkeyed_entries"], document["unkeyed_head"]) == (5, fifth.hash)
    check = _check(node)
    assert check.intact and check.num_entries == 8
    # Rewriting the old part consistently is caught where it meets the anchor...
    with node.engine.begin() as connection:
        connection.execute(text("UPDATE audit_log SET actor = 'x' WHERE id = 2"))
    _reseal(node, 2)
    check = _check(node)
    assert check.first_bad_id == 5 and "before the log had a key" in check.problem


def test_turning_keyed_entries_into_old_style_ones_is_detected(node):
    _old_entries(node, 3)
    _fill(node, 4)
    _reseal(node, 1)  # everything SHA-256, as if the log had never had a key
    check = _check(node)
    assert check.first_bad_id == 4 and "MAC" in check.problem
    with node.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_log WHERE id > 1"))
    check = _check(node)  # cut back into the old part: the key file remembers 3
    assert (check.first_bad_id, check.num_entries) == (2, 1)


def test_a_keyed_log_without_its_key_file_is_refused(node):
    _fill(node, 3)
    os.unlink(node.audit_files.key_file)
    # A fresh process (this one keeps the key it read).
    command = [sys.executable, "-m", "genomenode", "audit", "verify", "--json"]
    command += ["--node", str(node.config.node_dir)]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 1
    assert "audit.key is missing" in result.stderr and "Traceback" not in result.stderr
    assert not node.audit_files.key_file.exists()  # no new key to paper over it


# -- writing -------------------------------------------------------------------------


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


_PROCESS_WRITER = """
import sys
from genomenode.access.audit import AuditWriter, append
from genomenode.store.node import open_node

node = open_node(sys.argv[1])
writer = AuditWriter(node.engine, max_delay_seconds=0.005)
for index in range(40):
    writer.record(actor=sys.argv[2], action="beacon.query", outcome="allow",
                  reason="r", details={"index": index})
    if index % 10 == 0:
        append(node.engine, actor=sys.argv[2], action="access.approve",
               outcome="allow", reason="dac")
writer.close()
"""


def test_processes_racing_for_a_new_key_and_the_head_keep_one_chain(node):
    # The node has no key yet: the processes race to make it, then for each id.
    node_dir = str(node.config.node_dir)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _PROCESS_WRITER, node_dir, f"process-{number}"],
            stderr=subprocess.PIPE,
            text=True,
        )
        for number in range(3)
    ]
    try:
        for process in processes:
            _, error = process.communicate(timeout=120)
            assert process.returncode == 0, error
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    check = _check(node)
    assert check.intact and check.num_entries == 3 * 44
    assert len(list(node.audit_files.key_file.parent.glob(".audit.key.*"))) == 0


def test_cli_verify(node):
    _fill(node)
    command = [sys.executable, "-m", "genomenode", "audit", "verify", "--json"]
    command += ["--node", str(node.config.node_dir)]
    ok = subprocess.run(command, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["intact"] is True
    with node.session() as session, session.begin():
        session.execute(update(AuditEntry).where(AuditEntry.id == 5).values(reason="x"))
    bad = subprocess.run(command, capture_output=True, text=True)
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["first_bad_id"] == 5
    command.remove("--json")
    text_output = subprocess.run(command, capture_output=True, text=True)
    assert text_output.returncode == 1
    assert "TAMPERED at entry 5" in text_output.stdout


def test_cli_reports_a_garbled_checkpoint_file_as_a_failed_check(node, tmp_path):
    _fill(node, 2)
    garbled = tmp_path / "garbled.jws"
    garbled.write_bytes(b"\xff\xfe not a checkpoint\n")
    code, result = _cli_verify(node, "--checkpoint", str(garbled))
    assert code == 1 and result["first_bad_id"] is None
    assert result["problem"] == "given checkpoint 1 is not a JWS"
    out = tmp_path / "missing-directory" / "kept.jws"
    made = CliRunner().invoke(
        cli,
        ["audit", "checkpoint", "--node", str(node.config.node_dir), "--out", str(out)],
    )
    assert made.exit_code == 1 and "Traceback" not in made.output


def test_values_longer_than_their_columns_never_block_the_writer(node):
    # A request path of any length becomes an action: on PostgreSQL a value over
    # its column would fail the batch for ever, and with it every later entry.
    writer = AuditWriter(node.engine)
    writer.record(
        actor="anonymous",
        action="GET /api/individuals/" + "x" * 5000,
        outcome="deny" * 20,
        reason="r",
        dataset_id="d" * 500,
    )
    writer.record(actor="a", action="after", outcome="allow", reason="r")
    writer.flush(timeout=10)
    writer.close()
    with node.session() as session:
        actions = [entry.action for entry in session.scalars(select(AuditEntry))]
    assert actions[-1] == "after"
    assert actions[-2] == ("GET /api/individuals/" + "x" * 5000)[:64]
    assert _check(node).intact


def test_details_that_are_not_json_are_refused_at_once(node):
    writer = AuditWriter(node.engine)
    with pytest.raises(ValueError, match="JSON"):
        writer.record(
            actor="a", action="x", outcome="o", reason="r", details={"v": {1, 2}}
        )
    with pytest.raises(ValueError, match="JSON"):
        writer.record(
            actor="a", action="x", outcome="o", reason="r", details={"v": float("nan")}
        )
    writer.close()


def test_a_busy_writer_commits_less_often_and_keeps_every_entry(node):
    """After a batch of BUSY_BATCH entries the writer waits BUSY_FACTOR times
    longer: fewer transactions for the same entries, all chained and intact."""

    writer = AuditWriter(node.engine, max_delay_seconds=0.05)
    commits: list[int] = []
    event.listen(node.engine, "commit", lambda *_: commits.append(1))
    start = time.monotonic()
    for _ in range(120):  # 12 entries every 10 ms: every batch holds 8 or more
        for _ in range(12):
            writer.record(
                actor="a", action="GET /api/g_variants", outcome="allow", reason="r"
            )
        time.sleep(0.01)
    writer.close()
    elapsed = time.monotonic() - start
    with Session(node.engine) as session:
        count = session.scalar(select(func.count()).select_from(AuditEntry))
    assert count == 120 * 12
    # At 50 ms per batch the run would take about elapsed / 0.05 commits; busy
    # batches of 200 ms about a quarter of that.
    assert len(commits) <= elapsed / 0.12 + 2
    assert _check(node).intact
