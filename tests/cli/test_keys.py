"""cli/keys.py: ``genomenode keys generate``; no secret on the command line."""

from __future__ import annotations

import pytest

from genomenode.config import Secret
from genomenode.errors import ConfigError
from genomenode.store.crypt import read_private_key

from .conftest import invoke, invoke_json


def _secret_key(path, passphrase: str) -> bytes:
    return read_private_key(path, Secret(passphrase))


def test_without_a_passphrase_the_key_is_stored_plain_and_it_says_so(tmp_path):
    result = invoke("keys", "generate", tmp_path / "me")
    assert "NOT passphrase-protected" in result.stdout
    assert len(_secret_key(tmp_path / "me.sec", "")) == 32
    assert (tmp_path / "me.pub").read_text().startswith("-----BEGIN CRYPT4GH PUBLIC")


def test_the_passphrase_is_asked_for_twice_and_never_echoed(tmp_path):
    result = invoke(
        "keys", "generate", tmp_path / "me", "--passphrase", input="s3cret\ns3cret\n"
    )
    assert "s3cret" not in result.stdout + result.stderr
    assert "passphrase-protected" in result.stdout
    assert len(_secret_key(tmp_path / "me.sec", "s3cret")) == 32
    with pytest.raises(ConfigError, match="wrong passphrase"):
        _secret_key(tmp_path / "me.sec", "wrong")


def test_the_passphrase_comes_from_c4gh_passphrase(tmp_path, monkeypatch):
    monkeypatch.setenv("C4GH_PASSPHRASE", "from-env")
    assert invoke_json("keys", "generate", tmp_path / "me")["encrypted"] is True
    assert len(_secret_key(tmp_path / "me.sec", "from-env")) == 32


def test_a_passphrase_on_the_command_line_is_refused(tmp_path):
    refused = invoke(
        "keys", "generate", tmp_path / "me", "--passphrase", "hunter2", expect=2
    )
    assert "unexpected extra argument" in refused.stderr
    assert not (tmp_path / "me.sec").exists()


def test_a_bad_path_is_one_clear_line(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    bad = invoke("keys", "generate", tmp_path / "file" / "me", expect=1)
    assert bad.stderr.startswith(f"error: {tmp_path / 'file'}")
    assert "Traceback" not in bad.stderr
    invoke("keys", "generate", tmp_path / "me")
    again = invoke("keys", "generate", tmp_path / "me", expect=1)
    assert "already exists; keys are not overwritten" in again.stderr
