"""Short-lived signed links: how a ticket or access URL carries its authorisation.

An htsget ticket or a DRS access URL points back at the node; the request that
follows carries no passport, only the link. A link is a JWT (HS256) signed with a
secret only the node holds (``NODE_DIR/keys/links.key``, 0600, made on first use,
shared by every worker), naming the caller, the dataset and the one resource it
opens, and expiring after ``lifetime_seconds``.

A link proves what was decided when it was signed; it is not the decision. The
request that uses it is authorised again (:func:`genomenode.transfer.service`), so
a grant revoked after the ticket stops the blocks requested after the revocation.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import secrets
import time
from collections.abc import Callable
from typing import Any

import jwt

from ..errors import TokenError

__all__ = ["LinkClaims", "LinkSigner", "load_link_secret"]

_ALGORITHM = "HS256"


def load_link_secret(path: pathlib.Path) -> bytes:
    """The node's link secret at ``path``, created (0600) if missing."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another worker made it first; use theirs.
        return path.read_bytes()
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(secrets.token_bytes(32))
    return path.read_bytes()


@dataclasses.dataclass(frozen=True)
class LinkClaims:
    """What a verified link says."""

    subject: str | None
    registered: bool
    dataset_id: str
    resource: str
    foreign_grant: bool
    expires: int


class LinkSigner:
    """Signs and verifies links for one node.

    Parameters
    ----------
    secret
        At least 32 random bytes, never published.
    lifetime_seconds
        How long a link stays valid.
    """

    def __init__(
        self,
        secret: bytes,
        *,
        lifetime_seconds: int = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(secret) < 32:
            raise ValueError("a link secret needs at least 32 bytes")
        self._secret = secret
        self.lifetime_seconds = lifetime_seconds
        self._clock = clock

    def __repr__(self) -> str:
        return f"LinkSigner(lifetime_seconds={self.lifetime_seconds})"

    def sign(
        self,
        *,
        subject: str | None,
        registered: bool,
        dataset_id: str,
        resource: str,
        foreign_grant: bool = False,
    ) -> str:
        """A link token opening ``resource`` of ``dataset_id`` for the caller."""
        now = int(self._clock())
        claims: dict[str, Any] = {
            "sub": subject or "",
            "reg": registered,
            "ds": dataset_id,
            "res": resource,
            "fg": foreign_grant,
            "iat": now,
            "exp": now + self.lifetime_seconds,
        }
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM)

    def verify(self, token: str, *, resource: str) -> LinkClaims:
        """The claims of a link for ``resource``.

        Raises
        ------
        TokenError
            The link is malformed, forged, expired or for another resource.
        """
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                options={"require": ["exp", "iat"], "verify_exp": False},
            )
        except jwt.PyJWTError:
            raise TokenError("the link is not valid") from None
        if int(claims["exp"]) < self._clock():
            raise TokenError("the link has expired; ask for a new ticket")
        if claims.get("res") != resource:
            raise TokenError("the link is for another resource")
        return LinkClaims(
            subject=str(claims.get("sub") or "") or None,
            registered=bool(claims.get("reg")),
            dataset_id=str(claims.get("ds")),
            resource=resource,
            foreign_grant=bool(claims.get("fg")),
            expires=int(claims["exp"]),
        )
