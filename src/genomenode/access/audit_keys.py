"""The keys of an audit log, kept outside its database (see :mod:`.audit`).

- :class:`AuditKey`: the HMAC-SHA256 key of the entry chain, in a JSON file of mode
  0600 that also anchors the entries written before the log had a key;
- :class:`CheckpointKeys`: the ES256 keys that sign checkpoints, statements
  ``{log, entry id, that entry's MAC, time}`` as compact JWS (:class:`Checkpoint`).

Nothing here touches the database; :mod:`.audit` decides what to MAC and sign.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import math
import os
import pathlib
import re
import secrets
import uuid
from collections.abc import Mapping
from typing import Any

import jwt

from ..config import Secret
from ..errors import ConfigError, TokenError
from . import jws
from .visas import SigningKeys

#: Stands for the checkpoint keys where the JWS routine asks for a key URL
#: (checkpoints name none: their keys are this log's own).
_CHECKPOINT_KEYS = "genomenode:audit-checkpoint-keys"

__all__ = [
    "CHECKPOINT_TYPE",
    "KEY_FORMAT_VERSION",
    "AuditKey",
    "Checkpoint",
    "CheckpointKeys",
]

#: The ``typ`` header of a checkpoint JWS.
CHECKPOINT_TYPE = "genomenode-audit-checkpoint+jwt"
#: The key file format this genomenode reads.
KEY_FORMAT_VERSION = 1
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class AuditKey:
    """The secret of an audit log's chain, kept in a file outside its database.

    The file (JSON, mode 0600) also records how many entries the log held when the
    key was made (``unkeyed_entries``, written by a genomenode without keys) and
    the hash of the last of them (``unkeyed_head``). ``repr`` never shows the key.
    """

    def __init__(
        self,
        secret: Secret,
        *,
        unkeyed_entries: int = 0,
        unkeyed_head: str = "0" * 64,
        path: pathlib.Path | None = None,
    ) -> None:
        raw = base64.urlsafe_b64decode(secret.reveal() + "==")
        if len(raw) < 32:
            raise ValueError("an audit key has at least 32 bytes")
        self._secret = secret
        self._template = hmac.new(raw, digestmod=hashlib.sha256)
        self.unkeyed_entries = unkeyed_entries
        self.unkeyed_head = unkeyed_head
        self.path = path

    def __repr__(self) -> str:
        return f"AuditKey(path={self.path!r}, key={self._secret!r})"

    def mac(self, message: bytes) -> str:
        """The HMAC-SHA256 of ``message``, in hex."""
        code = self._template.copy()
        code.update(message)
        return code.hexdigest()

    @classmethod
    def load(cls, path: pathlib.Path) -> AuditKey:
        """Read a key file.

        Raises
        ------
        ConfigError
            If the file cannot be read or is not an audit key (the message never
            quotes the file: it holds the key).
        """
        try:
            document = json.loads(path.read_text())
            version = document.get("format_version")
            if version != KEY_FORMAT_VERSION:
                raise ValueError(f"format_version {version!r} is not supported")
            count, head = document["unkeyed_entries"], document["unkeyed_head"]
            if not isinstance(count, int) or count < 0:
                raise ValueError("unkeyed_entries must be a count")
            if not isinstance(head, str) or not _HEX64.match(head):
                raise ValueError("unkeyed_head must be 64 hex digits")
            secret = Secret(str(document["key"]))
            return cls(secret, unkeyed_entries=count, unkeyed_head=head, path=path)
        except OSError as error:
            reason = error.strerror
        except KeyError as error:
            reason = f"no {error}"
        except (ValueError, TypeError, AttributeError) as error:
            reason = str(error) if isinstance(error, ValueError) else "not a mapping"
        raise ConfigError(f"{path}: not a readable audit key ({reason})")

    @classmethod
    def create(
        cls, path: pathlib.Path, *, unkeyed_entries: int, unkeyed_head: str
    ) -> AuditKey:
        """Write a new key file (0600, its directory 0700) unless one exists.

        Atomic: readers see no file or the whole file, and when processes race,
        all go on with the key of the one that got there first.
        """
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        document = {
            "format_version": KEY_FORMAT_VERSION,
            "algorithm": "HMAC-SHA256",
            "key": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "unkeyed_entries": unkeyed_entries,
            "unkeyed_head": unkeyed_head,
        }
        partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w") as handle:
                json.dump(document, handle, indent=2)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            # A link never replaces a key that another process made meanwhile.
            with contextlib.suppress(FileExistsError):
                os.link(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        return cls.load(path)


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A signed statement that log ``log_id`` held ``entry_id`` with ``mac``."""

    log_id: str
    entry_id: int
    mac: str
    signed_at: dt.datetime
    kid: str
    token: str

    def to_json(self) -> dict[str, Any]:
        return {
            "log_id": self.log_id,
            "entry_id": self.entry_id,
            "mac": self.mac,
            "signed_at": self.signed_at.isoformat(),
            "kid": self.kid,
            "token": self.token,
        }


class CheckpointKeys:
    """Signs and reads the checkpoints of log ``log_id`` (ES256 keys in
    ``directory``, created 0700 with files 0600, rotatable as visa keys are)."""

    def __init__(self, directory: pathlib.Path, log_id: str) -> None:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.signing_keys = SigningKeys(directory)
        self.log_id = log_id

    def sign(self, entry_id: int, mac: str, now: dt.datetime) -> str:
        """A compact JWS stating that the log held ``entry_id`` with ``mac``."""
        kid, private_key = self.signing_keys.active()
        claims = {
            "iss": self.log_id,
            "entry_id": entry_id,
            "mac": mac,
            "iat": int(now.timestamp()),
        }
        return jws.sign_es256(claims, private_key, kid=kid, token_type=CHECKPOINT_TYPE)

    def public_keys(self) -> dict[str, jwt.PyJWK]:
        """The public keys of every checkpoint key on disk, by kid."""
        return {
            document["kid"]: jwt.PyJWK.from_dict(document)
            for document in self.signing_keys.jwks()["keys"]
        }

    def read(
        self, token: Any, public_keys: Mapping[str, jwt.PyJWK]
    ) -> tuple[Checkpoint | None, str | None]:
        """The checkpoint ``token`` states, or why it cannot be believed.

        Verified by the one JWS routine (:func:`genomenode.access.jws.verify`);
        the header is read first only to say precisely what is wrong.
        """
        if not isinstance(token, str):
            return None, "is not a JWS"
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            return None, "is not a JWS"
        if header.get("typ") != CHECKPOINT_TYPE:
            return None, f"is not an audit checkpoint (typ {header.get('typ')!r})"
        kid = header.get("kid")
        if not isinstance(kid, str) or kid not in public_keys:
            return None, f"is signed with key {kid!r}, which this log does not have"
        try:
            claims = jws.verify(
                token,
                issuer=self.log_id,
                jku=_CHECKPOINT_KEYS,
                keys=lambda _jku, wanted: public_keys.get(wanted or ""),
                # When it was signed matters, not clocks: no time is too late.
                now=math.inf,
                required=("iss", "iat", "entry_id", "mac"),
                token_type=CHECKPOINT_TYPE,
            )
        except TokenError as error:
            peeked = jws.peek(token)
            if peeked is not None and peeked[1].get("iss") != self.log_id:
                return None, f"is not a checkpoint of {self.log_id!r}"
            return None, f"does not verify ({error})"
        entry_id, mac, iat = claims["entry_id"], claims["mac"], claims["iat"]
        if (
            not isinstance(entry_id, int)
            or isinstance(entry_id, bool)
            or not isinstance(mac, str)
            or not _HEX64.match(mac)
            or not isinstance(iat, int)
        ):
            return None, "is signed, but its entry_id, mac or iat is malformed"
        signed_at = dt.datetime.fromtimestamp(iat, dt.UTC)
        return Checkpoint(self.log_id, entry_id, mac, signed_at, kid, token), None
