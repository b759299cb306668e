"""The network's own audit log: beside NETWORK.yaml, keyed, checkpointed, verified."""

from __future__ import annotations

import json
import os
import stat

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import text

from genomenode.cli import cli
from genomenode.errors import StoreError
from genomenode.network.audit import (
    CHECKPOINT_KEYS_DIRNAME,
    DATABASE_FILENAME,
    KEY_FILENAME,
    checkpoint_network_audit,
    open_network_audit,
    verify_network_audit,
)

NETWORK_ID = "gdi-test"


@pytest.fixture
def network_yaml(tmp_path):
    path = tmp_path / "NETWORK.yaml"
    document = {
        "format_version": 1,
        "network_id": NETWORK_ID,
        "public_url": "https://network.example.org",
        "nodes": [{"id": "fi-node", "country": "FI", "url": "https://fi.example.org"}],
    }
    path.write_text(yaml.safe_dump(document))
    return path


def _record(writer, number: int, first: int = 0) -> None:
    for index in range(first, first + number):
        writer.record(
            actor=f"researcher-{index % 3}@example.org",
            action="GET /api/g_variants",
            outcome="allow",
            reason="forwarded to 1 node",
            details={"nodes": ["fi-node"], "assertion": f"jti-{index}"},
        )


def _open(directory, database, **options):
    return open_network_audit(
        directory,
        database,
        network_id=NETWORK_ID,
        db_schema=os.environ.get("GENOMENODE_DB_SCHEMA"),
        **options,
    )


def _close(writer) -> None:
    writer.close()
    writer.engine.dispose()


def _write(directory, database, number: int, first: int = 0) -> None:
    """``number`` entries, by a writer opened and closed for them."""
    writer = _open(directory, database)
    _record(writer, number, first)
    _close(writer)


def _verify(directory, database, checkpoints=()):
    return verify_network_audit(
        directory,
        database,
        network_id=NETWORK_ID,
        checkpoints=checkpoints,
        db_schema=os.environ.get("GENOMENODE_DB_SCHEMA"),
    )


def test_open_record_flush_verify_and_tamper(network_yaml, database):
    directory = network_yaml.parent
    writer = _open(directory, database)
    try:
        _record(writer, 25)
        writer.flush()
        check = _verify(directory, database)
        assert check.intact and check.num_entries == 25
        with writer.engine.begin() as connection:
            connection.execute(
                text("UPDATE audit_log SET actor = 'someone-else' WHERE id = 9")
            )
        check = _verify(directory, database)
        assert (check.intact, check.first_bad_id, check.num_entries) == (False, 9, 8)
    finally:
        _close(writer)


def test_the_files_beside_network_yaml_are_private(network_yaml):
    directory = network_yaml.parent
    _write(directory, None, 2)
    checkpoint_network_audit(directory, network_id=NETWORK_ID)
    assert stat.S_IMODE((directory / DATABASE_FILENAME).stat().st_mode) == 0o600
    assert stat.S_IMODE((directory / KEY_FILENAME).stat().st_mode) == 0o600
    keys = directory / CHECKPOINT_KEYS_DIRNAME
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    assert [stat.S_IMODE(path.stat().st_mode) for path in keys.glob("*.pem")] == [0o600]


def test_a_reopened_log_goes_on_with_the_same_chain(network_yaml, database):
    directory = network_yaml.parent
    for round_number in range(2):
        _write(directory, database, 5, first=5 * round_number)
    check = _verify(directory, database)
    assert check.intact and check.num_entries == 10


def test_periodic_checkpoints_and_a_cut_tail(network_yaml, database):
    directory = network_yaml.parent
    writer = _open(directory, database, checkpoint_every_entries=10)
    try:
        for round_number in range(4):
            _record(writer, 6, first=6 * round_number)
            writer.flush()
        check = _verify(directory, database)
        assert check.intact and check.num_entries == 24 and check.num_checkpoints >= 1
        with writer.engine.begin() as connection:
            connection.execute(text("DELETE FROM audit_log WHERE id > 15"))
        check = _verify(directory, database)
        assert not check.intact and "removed from its end" in check.problem
    finally:
        _close(writer)


def test_cli_audit_verify_and_checkpoint(network_yaml, tmp_path):
    directory = network_yaml.parent
    _write(directory, None, 12)
    runner = CliRunner()
    kept = tmp_path / "outside" / "network-checkpoints.jws"
    kept.parent.mkdir()
    made = runner.invoke(
        cli, ["network", "audit-checkpoint", str(network_yaml), "--out", str(kept)]
    )
    assert made.exit_code == 0, made.output
    assert len(kept.read_text().split()) == 1
    verify_command = ["network", "audit-verify", str(network_yaml), "--json"]
    ok = runner.invoke(cli, [*verify_command, "--checkpoint", str(kept)])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["num_checkpoints"] == 2  # given, and stored
    engine = _open(directory, None).engine
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_log WHERE id > 10"))
        connection.execute(text("DELETE FROM audit_checkpoints"))
    engine.dispose()
    assert runner.invoke(cli, verify_command).exit_code == 0  # the chain alone
    cut = runner.invoke(cli, [*verify_command, "--checkpoint", str(kept)])
    assert cut.exit_code == 1
    assert json.loads(cut.stdout)["first_bad_id"] == 11


def test_verify_refuses_a_network_without_a_log(network_yaml):
    with pytest.raises(StoreError, match="no audit log"):
        verify_network_audit(network_yaml.parent, network_id=NETWORK_ID)
    result = CliRunner().invoke(cli, ["network", "audit-verify", str(network_yaml)])
    assert result.exit_code == 1 and "no audit log" in result.output
    assert not (network_yaml.parent / DATABASE_FILENAME).exists()


def test_checkpoints_name_the_network(network_yaml, tmp_path):
    directory = network_yaml.parent
    _write(directory, None, 3)
    signed = checkpoint_network_audit(directory, network_id=NETWORK_ID)
    assert (signed.log_id, signed.entry_id) == (NETWORK_ID, 3)
    check = verify_network_audit(
        directory, network_id="another-network", checkpoints=[signed.token]
    )
    assert not check.intact and "is not a checkpoint of 'another-network'" in (
        check.problem
    )
