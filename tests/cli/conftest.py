"""Helpers for the ``genomenode`` command's tests: run it in-process."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner, Result

from genomenode.cli import cli


@pytest.fixture(autouse=True)
def _no_node_from_the_environment(monkeypatch):
    # A developer's own $GENOMENODE_NODE must not leak into these tests.
    monkeypatch.delenv("GENOMENODE_NODE", raising=False)
    monkeypatch.delenv("C4GH_PASSPHRASE", raising=False)


def invoke(*arguments: str, expect: int = 0, **keywords) -> Result:
    """``genomenode ARGUMENTS`` in-process; checks the exit code."""
    result = CliRunner().invoke(
        cli, [str(item) for item in arguments], prog_name="genomenode", **keywords
    )
    assert result.exit_code == expect, (result.stdout, result.stderr)
    return result


def invoke_json(*arguments: str, **keywords):
    return json.loads(invoke(*arguments, "--json", **keywords).stdout)
