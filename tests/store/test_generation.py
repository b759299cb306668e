"""The datasets' generation and its signal file (store/generation.py).

A process reads the signal file on every request and the database only when the
file's token changed, so the token must change with every committed bump, and only
after the commit (a reader that saw a new token but an old number would keep the
old list until the next change).
"""

from __future__ import annotations

import pathlib

import pytest
from sqlalchemy import event

from genomenode.store.generation import (
    bump_generation,
    read_generation,
    read_signal,
    write_signal,
)


def _generation(node) -> int:
    with node.engine.connect() as connection:
        return read_generation(connection)


def test_a_committed_bump_changes_the_token_after_the_commit(node):
    write_signal(node.generation_file)
    before = read_signal(node.generation_file)
    seen_at_commit: list[str | None] = []
    with node.session() as session:
        event.listen(
            session,
            "before_commit",
            lambda _: seen_at_commit.append(read_signal(node.generation_file)),
        )
        with session.begin():
            bump_generation(session)
    after = read_signal(node.generation_file)
    assert seen_at_commit == [before]
    assert after is not None and after != before


def test_a_rolled_back_bump_changes_neither_number_nor_token(node):
    write_signal(node.generation_file)
    number, token = _generation(node), read_signal(node.generation_file)
    with node.session() as session, pytest.raises(RuntimeError), session.begin():
        bump_generation(session)
        raise RuntimeError("the change failed")
    assert _generation(node) == number
    assert read_signal(node.generation_file) == token


def test_every_bump_gives_a_new_token(node):
    tokens = set()
    for _ in range(20):
        with node.session() as session, session.begin():
            bump_generation(session)
        tokens.add(read_signal(node.generation_file))
    assert len(tokens) == 20 and None not in tokens


def test_a_missing_or_unreadable_signal_reads_as_none(node, tmp_path):
    assert read_signal(tmp_path / "absent") is None
    garbled = tmp_path / "garbled"
    garbled.write_bytes(b"\xff\xfe")
    assert read_signal(garbled) is None


def test_the_token_is_read_again_only_when_the_file_was_replaced(tmp_path, monkeypatch):
    """Each write is seen at once (back-to-back writes included), and an unchanged
    file is not read again."""
    signal = tmp_path / "generation.signal"
    tokens = []
    for _ in range(200):
        write_signal(signal)
        tokens.append(read_signal(signal))
        assert tokens[-1] == signal.read_text(encoding="ascii")
    assert len(set(tokens)) == 200
    reads: list[pathlib.Path] = []
    original = pathlib.Path.read_text
    monkeypatch.setattr(
        pathlib.Path,
        "read_text",
        lambda self, *a, **k: reads.append(self) or original(self, *a, **k),
    )
    for _ in range(5):
        assert read_signal(signal) == tokens[-1]
    assert reads == []
    write_signal(signal)
    assert read_signal(signal) != tokens[-1]
    assert reads == [signal]
