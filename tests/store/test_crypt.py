"""Crypt4GH keys and encryption: readable by the crypt4gh CLI, keys never logged."""

from __future__ import annotations

import logging
import os
import pathlib
import subprocess
import sys

import pytest

from genomenode.config import Secret
from genomenode.errors import ConfigError
from genomenode.store.crypt import (
    SEGMENT_SIZE,
    encrypt_file,
    generate_keypair,
    read_private_key,
    read_public_key,
)

CRYPT4GH = str(pathlib.Path(sys.prefix) / "bin" / "crypt4gh")


@pytest.mark.parametrize("passphrase", ["", "correct horse battery staple"])
@pytest.mark.parametrize(
    "size",
    [0, 1, SEGMENT_SIZE - 1, SEGMENT_SIZE, SEGMENT_SIZE + 1, 5 * SEGMENT_SIZE + 7],
)
def test_encrypted_file_decrypts_with_the_crypt4gh_cli(tmp_path, size, passphrase):
    secret_key, public_key = tmp_path / "node.sec", tmp_path / "node.pub"
    generate_keypair(secret_key, public_key, passphrase=Secret(passphrase))
    assert oct(secret_key.stat().st_mode & 0o777) == "0o600"
    plain = tmp_path / "plain.bin"
    plain.write_bytes(os.urandom(size))
    result = encrypt_file(plain, tmp_path / "out.c4gh", [read_public_key(public_key)])
    assert result.size_plain == size
    assert (tmp_path / "out.c4gh").stat().st_size == result.size_encrypted
    assert not (tmp_path / "out.c4gh.part").exists()
    decrypted = subprocess.run(
        [CRYPT4GH, "decrypt", "--sk", str(secret_key)],
        input=(tmp_path / "out.c4gh").read_bytes(),
        capture_output=True,
        env=dict(os.environ, C4GH_PASSPHRASE=passphrase),
        check=True,
    ).stdout
    assert decrypted == plain.read_bytes()
    assert len(read_private_key(secret_key, Secret(passphrase))) == 32


def test_wrong_passphrase_is_a_clear_error(tmp_path):
    generate_keypair(tmp_path / "k.sec", tmp_path / "k.pub", passphrase=Secret("right"))
    with pytest.raises(ConfigError, match="wrong passphrase"):
        read_private_key(tmp_path / "k.sec", Secret("wrong"))


def test_no_key_material_is_logged(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    generate_keypair(tmp_path / "k.sec", tmp_path / "k.pub", passphrase=Secret("pw"))
    secret = read_private_key(tmp_path / "k.sec", Secret("pw"))
    plain = tmp_path / "p"
    plain.write_bytes(b"genotypes" * 1000)
    encrypt_file(plain, tmp_path / "p.c4gh", [read_public_key(tmp_path / "k.pub")])
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert secret.hex() not in logged.lower()
    assert "pw" not in [record.getMessage() for record in caplog.records]
    assert not any(
        record.name.startswith("crypt4gh") and record.levelno < logging.WARNING
        for record in caplog.records
    )


def test_secret_never_prints():
    secret = Secret("s3cr3t-passphrase")
    assert "s3cr3t" not in repr(secret)
    assert "s3cr3t" not in str(secret)
    assert "s3cr3t" not in f"{secret}"
    assert secret.reveal() == "s3cr3t-passphrase"
