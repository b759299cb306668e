"""Crypt4GH keys and whole-file encryption of originals at rest.

The node's keypair is written in the Crypt4GH key format (``crypt4gh-keygen``), so
the ``crypt4gh`` command line reads it. Files are encrypted to the node's public key
with a fresh session key and an ephemeral sender key per file.

The ``crypt4gh`` library logs private and session keys at DEBUG level; its logger is
capped at WARNING here so that no configuration of ours can print key material.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
import os
import pathlib
import threading

from crypt4gh import header as c4gh_header
from crypt4gh import sodium as c4gh_sodium
from crypt4gh.keys import c4gh as c4gh_keys
from crypt4gh.keys import get_private_key, get_public_key

from ..config import Secret
from ..errors import ConfigError, Stopped

__all__ = [
    "EncryptedFile",
    "encrypt_file",
    "generate_keypair",
    "read_private_key",
    "read_public_key",
]

logging.getLogger("crypt4gh").setLevel(logging.WARNING)

SEGMENT_SIZE = 65_536
_READ_SIZE = SEGMENT_SIZE * 64


def generate_keypair(
    private_key_path: pathlib.Path,
    public_key_path: pathlib.Path,
    *,
    passphrase: Secret | None = None,
    comment: str = "genomenode node key",
) -> None:
    """Write a new Crypt4GH keypair; the private key file is readable by its owner only.

    With an empty passphrase the private key is stored unencrypted (like
    ``crypt4gh-keygen --nocrypt``); protect the node directory accordingly.
    """
    secret_key = os.urandom(32)
    if passphrase:
        encoded = c4gh_keys.encode_private_key(
            secret_key, passphrase.reveal().encode(), comment.encode()
        )
    else:
        encoded = (
            c4gh_keys.MAGIC_WORD
            + c4gh_keys.encode_string(None)
            + c4gh_keys.encode_string(None)
            + c4gh_keys.encode_string(secret_key)
            + c4gh_keys.encode_string(comment.encode())
        )
    private_key_path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(private_key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(b"-----BEGIN CRYPT4GH PRIVATE KEY-----\n")
        out.write(base64.b64encode(encoded))
        out.write(b"\n-----END CRYPT4GH PRIVATE KEY-----\n")
    public_key = c4gh_sodium.derive_pk(secret_key)
    public_key_path.write_bytes(
        b"-----BEGIN CRYPT4GH PUBLIC KEY-----\n"
        + base64.b64encode(public_key)
        + b"\n-----END CRYPT4GH PUBLIC KEY-----\n"
    )


def read_public_key(path: pathlib.Path) -> bytes:
    """The 32-byte X25519 public key in a Crypt4GH (or OpenSSH) public key file."""
    try:
        return bytes(get_public_key(os.fspath(path)))
    except (OSError, ValueError) as error:
        raise ConfigError(
            f"{path}: not a readable Crypt4GH public key: {error}"
        ) from None


def read_private_key(path: pathlib.Path, passphrase: Secret | None = None) -> bytes:
    """The 32-byte secret key of a Crypt4GH private key file."""
    secret = passphrase.reveal() if passphrase else ""
    try:
        return bytes(get_private_key(os.fspath(path), lambda: secret))
    # crypt4gh exits the process on a wrong passphrase; a node must not.
    except (OSError, ValueError, SystemExit) as error:
        raise ConfigError(
            f"{path}: cannot read the node's private key (wrong passphrase? set "
            f"GENOMENODE_KEY_PASSPHRASE): {type(error).__name__}"
        ) from None


@dataclasses.dataclass(frozen=True)
class EncryptedFile:
    """What encrypting one file produced."""

    size_plain: int
    size_encrypted: int
    sha256_plain: str
    sha256_encrypted: str


def encrypt_file(
    source: pathlib.Path,
    target: pathlib.Path,
    recipient_public_keys: list[bytes],
    *,
    stop: threading.Event | None = None,
) -> EncryptedFile:
    """Encrypt ``source`` to ``target`` (Crypt4GH, no edit list), atomically.

    The result is first written to ``target`` + ``.part`` and renamed when complete,
    so a killed run never leaves a truncated ``target``. Raises :class:`Stopped`,
    leaving no ``.part``, when ``stop`` is set while it reads.
    """
    session_key = os.urandom(32)
    sender_secret = os.urandom(32)
    keys = [(0, sender_secret, recipient) for recipient in recipient_public_keys]
    packet = c4gh_header.make_packet_data_enc(0, session_key)
    header_bytes = c4gh_header.serialize(c4gh_header.encrypt(packet, keys))

    sha_plain = hashlib.sha256()
    sha_encrypted = hashlib.sha256(header_bytes)
    size_plain = 0
    size_encrypted = len(header_bytes)
    partial = target.with_name(target.name + ".part")
    cipher_segment = bytearray(SEGMENT_SIZE + 28)
    with open(source, "rb") as plain, open(partial, "wb") as out:
        out.write(header_bytes)
        while True:
            if stop is not None and stop.is_set():
                out.close()
                os.unlink(partial)
                raise Stopped(f"encryption of {source} stopped")
            block = plain.read(_READ_SIZE)
            if not block:
                break
            sha_plain.update(block)
            size_plain += len(block)
            view = memoryview(block)
            for start in range(0, len(block), SEGMENT_SIZE):
                length = c4gh_sodium.chacha20poly1305_encrypt(
                    cipher_segment, view[start : start + SEGMENT_SIZE], session_key
                )
                encrypted = cipher_segment[:length]
                sha_encrypted.update(encrypted)
                out.write(encrypted)
                size_encrypted += length
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, target)
    return EncryptedFile(
        size_plain=size_plain,
        size_encrypted=size_encrypted,
        sha256_plain=sha_plain.hexdigest(),
        sha256_encrypted=sha_encrypted.hexdigest(),
    )
