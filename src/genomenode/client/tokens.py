"""A researcher's sign-ins, one per broker, in one private JSON file.

``$GENOMENODE_CONFIG_DIR/tokens.json`` (default ``$XDG_CONFIG_HOME/genomenode``,
else ``~/.config/genomenode``), mode 0600 in a 0700 directory, written atomically;
a file that others can read is refused. Tokens are held as
:class:`~genomenode.config.Secret`, whose ``repr`` and ``str`` never show them::

    {"format_version": 1,
     "default": "https://broker.example/oidc",
     "brokers": {"https://broker.example/oidc": {
         "token_endpoint": "...", "userinfo_endpoint": "...", "client_id": "...",
         "access_token": "...", "refresh_token": "...", "expires_at": 1767225600.0,
         "subject": "researcher@example.org"}}}
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import pathlib
import stat
import time
from collections.abc import Iterator
from typing import Any

from ..config import Secret
from ..errors import AuthenticationRequired, ConfigError, FormatVersionError

__all__ = [
    "CONFIG_DIR_VARIABLE",
    "FORMAT_VERSION",
    "SignIn",
    "TokenStore",
    "config_dir",
]

#: Where the researcher's settings and sign-ins live, if set.
CONFIG_DIR_VARIABLE = "GENOMENODE_CONFIG_DIR"
FORMAT_VERSION = 1
_FILENAME = "tokens.json"
# An access token this close to its expiry is refreshed before use.
_EXPIRY_MARGIN_SECONDS = 30.0


def config_dir() -> pathlib.Path:
    """The researcher's configuration directory."""
    configured = os.environ.get(CONFIG_DIR_VARIABLE)
    if configured:
        return pathlib.Path(configured)
    base = os.environ.get("XDG_CONFIG_HOME") or pathlib.Path.home() / ".config"
    return pathlib.Path(base) / "genomenode"


@dataclasses.dataclass(frozen=True)
class SignIn:
    """The tokens a broker gave, and where to refresh them.

    Attributes
    ----------
    broker
        The broker's issuer URL (its discovery document's ``issuer``).
    token_endpoint
        Where tokens are refreshed.
    client_id
        The OAuth client the tokens were issued to.
    access_token
        The passport or access token sent to nodes.
    refresh_token
        Trades for a new access token, if the broker gave one.
    expires_at
        When the access token expires (seconds since the epoch), if known.
    subject
        Who signed in (the broker's ``sub``), if known; shown, never secret.
    userinfo_endpoint
        The broker's userinfo URL, if it has one.
    """

    broker: str
    token_endpoint: str
    client_id: str
    access_token: Secret
    refresh_token: Secret | None = None
    expires_at: float | None = None
    subject: str | None = None
    userinfo_endpoint: str | None = None

    def expired(self, now: float | None = None) -> bool:
        """Whether the access token has expired, or will within 30 s."""
        if self.expires_at is None:
            return False
        moment = time.time() if now is None else now
        return moment >= self.expires_at - _EXPIRY_MARGIN_SECONDS

    def to_file(self) -> dict[str, Any]:
        """The stored form: the only place the tokens are revealed."""
        return {
            "token_endpoint": self.token_endpoint,
            "userinfo_endpoint": self.userinfo_endpoint,
            "client_id": self.client_id,
            "access_token": self.access_token.reveal(),
            "refresh_token": (
                self.refresh_token.reveal() if self.refresh_token else None
            ),
            "expires_at": self.expires_at,
            "subject": self.subject,
        }

    @classmethod
    def from_file(cls, broker: str, document: Any, path: pathlib.Path) -> SignIn:
        if not isinstance(document, dict) or not isinstance(
            document.get("access_token"), str
        ):
            raise ConfigError(f"{path}: brokers.{broker}: not a sign-in")
        refresh = document.get("refresh_token")
        expires_at = document.get("expires_at")
        return cls(
            broker=broker,
            token_endpoint=str(document.get("token_endpoint") or ""),
            client_id=str(document.get("client_id") or ""),
            access_token=Secret(document["access_token"]),
            refresh_token=Secret(refresh) if isinstance(refresh, str) else None,
            expires_at=float(expires_at)
            if isinstance(expires_at, int | float)
            else None,
            subject=document.get("subject"),
            userinfo_endpoint=document.get("userinfo_endpoint"),
        )

    def public(self) -> dict[str, Any]:
        """What may be shown: everything but the tokens."""
        return {
            "broker": self.broker,
            "subject": self.subject,
            "client_id": self.client_id,
            "expires_at": self.expires_at,
            "refreshable": self.refresh_token is not None,
        }


class TokenStore:
    """The sign-ins kept in ``directory/tokens.json`` (default :func:`config_dir`)."""

    def __init__(self, directory: pathlib.Path | None = None) -> None:
        self.directory = directory if directory is not None else config_dir()
        self.path = self.directory / _FILENAME

    def __repr__(self) -> str:
        return f"TokenStore({str(self.path)!r})"

    def _read(self) -> dict[str, Any]:
        try:
            mode = stat.S_IMODE(self.path.stat().st_mode)
        except FileNotFoundError:
            return {"format_version": FORMAT_VERSION, "default": None, "brokers": {}}
        if mode & 0o077:
            raise ConfigError(
                f"{self.path} is readable by others (mode {mode:o}); it holds your "
                f"tokens: `chmod 600 {self.path}`, or delete it and sign in again"
            )
        try:
            document = json.loads(self.path.read_text())
        except (OSError, ValueError) as error:
            raise ConfigError(f"{self.path}: cannot read: {error}") from None
        if not isinstance(document, dict):
            raise ConfigError(f"{self.path}: not a JSON object")
        if document.get("format_version") != FORMAT_VERSION:
            raise FormatVersionError(
                f"{self.path}: format_version {document.get('format_version')!r} is "
                f"not supported (this genomenode reads {FORMAT_VERSION})"
            )
        if not isinstance(document.get("brokers"), dict):
            raise ConfigError(f"{self.path}: brokers must be an object")
        return document

    def _write(self, document: dict[str, Any]) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".part")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            json.dump(document, out, indent=2, sort_keys=True)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(partial, 0o600)  # an older partial file may have had another mode
        os.replace(partial, self.path)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's lock (a refresh and a login do not overwrite each other)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(
            self.directory / (_FILENAME + ".lock"), os.O_RDWR | os.O_CREAT, 0o600
        )
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)

    def brokers(self) -> list[str]:
        """The brokers signed in to, the default first."""
        document = self._read()
        default = document.get("default")
        return sorted(document["brokers"], key=lambda broker: broker != default)

    def find(self, broker: str | None = None) -> SignIn | None:
        """The sign-in at ``broker`` (None: the default one), or None."""
        document = self._read()
        chosen = _normalised(broker) if broker else document.get("default")
        entry = document["brokers"].get(chosen) if chosen else None
        if entry is None:
            return None
        return SignIn.from_file(str(chosen), entry, self.path)

    def get(self, broker: str | None = None) -> SignIn:
        """Like :meth:`find`, but a missing sign-in is an error that says what to do.

        Raises
        ------
        AuthenticationRequired
            Not signed in there.
        """
        found = self.find(broker)
        if found is None:
            where = f"to {broker}" if broker else "to any broker"
            raise AuthenticationRequired(
                f"not signed in {where}: run `genomenode login --broker URL`"
            )
        return found

    def put(self, sign_in: SignIn, *, make_default: bool = True) -> None:
        """Keep ``sign_in`` (replacing the broker's previous one)."""
        document = self._read()
        document["brokers"][sign_in.broker] = sign_in.to_file()
        if make_default or not document.get("default"):
            document["default"] = sign_in.broker
        self._write(document)

    def forget(self, broker: str | None = None) -> SignIn | None:
        """Delete the sign-in at ``broker`` (None: the default); returns it."""
        document = self._read()
        chosen = _normalised(broker) if broker else document.get("default")
        if not chosen or chosen not in document["brokers"]:
            return None
        found = SignIn.from_file(chosen, document["brokers"].pop(chosen), self.path)
        if document.get("default") == chosen:
            document["default"] = next(iter(sorted(document["brokers"])), None)
        self._write(document)
        return found


def _normalised(broker: str) -> str:
    return broker.rstrip("/")
