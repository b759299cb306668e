"""The researcher's token store: private, versioned, never showing a token."""

from __future__ import annotations

import json
import os
import stat

import pytest

from genomenode.client.tokens import CONFIG_DIR_VARIABLE, SignIn, TokenStore, config_dir
from genomenode.config import Secret
from genomenode.errors import AuthenticationRequired, ConfigError, FormatVersionError

ACCESS = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJtZSJ9.c2lnbmF0dXJl"


def _sign_in(broker="https://broker.example", **fields) -> SignIn:
    return SignIn(
        broker=broker,
        token_endpoint=f"{broker}/token",
        client_id="genomenode-cli",
        access_token=Secret(fields.pop("access", ACCESS)),
        refresh_token=Secret("refresh-" + broker),
        expires_at=fields.pop("expires_at", 2_000_000_000.0),
        subject="me@example.org",
    )


def test_the_directory_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(CONFIG_DIR_VARIABLE, str(tmp_path / "mine"))
    assert config_dir() == tmp_path / "mine"
    monkeypatch.delenv(CONFIG_DIR_VARIABLE)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config_dir() == tmp_path / "xdg" / "genomenode"


def test_sign_ins_are_kept_0600_and_never_shown(tmp_path, permissive_umask):
    store = TokenStore(tmp_path / "config")
    sign_in = _sign_in()
    store.put(sign_in)

    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    found = store.get()
    assert found == sign_in
    assert found.access_token.reveal() == ACCESS
    for shown in (repr(found), str(found), json.dumps(found.public()), repr(store)):
        assert ACCESS not in shown and "refresh-" not in shown
    document = json.loads(store.path.read_text())
    assert document["format_version"] == 1
    assert document["default"] == "https://broker.example"


def test_the_default_is_the_last_sign_in_and_forget_moves_it(tmp_path):
    store = TokenStore(tmp_path)
    store.put(_sign_in("https://a.example"))
    store.put(_sign_in("https://b.example"))
    assert store.get().broker == "https://b.example"
    assert store.get("https://a.example/").broker == "https://a.example"
    assert store.brokers() == ["https://b.example", "https://a.example"]
    assert store.forget().broker == "https://b.example"
    assert store.get().broker == "https://a.example"
    assert store.forget("https://nowhere.example") is None
    store.forget()
    with pytest.raises(AuthenticationRequired, match="genomenode login"):
        store.get()
    assert store.find() is None


def test_expiry_has_a_margin():
    assert _sign_in(expires_at=1000.0).expired(now=971.0)
    assert not _sign_in(expires_at=1000.0).expired(now=969.0)
    assert not _sign_in(expires_at=None).expired()


def test_a_file_others_can_read_or_of_another_version_is_refused(tmp_path):
    store = TokenStore(tmp_path)
    store.put(_sign_in())
    os.chmod(store.path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        store.get()
    os.chmod(store.path, 0o600)
    store.path.write_text(json.dumps({"format_version": 9, "brokers": {}}))
    with pytest.raises(FormatVersionError, match="format_version 9"):
        store.get()
    store.path.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read"):
        store.get()
