"""What htsget and DRS share: stored files, their decrypting readers, and the one
authorisation (and audit) of every ticket, object, access URL and block request.

Every request for data is decided by :func:`genomenode.access.decision.authorize`
with the action ``download`` (record granularity on the dataset), and audited
synchronously (a download is rare and heavy next to a Beacon query; its audit entry
commits before the first byte leaves). A request that follows a signed link
(:mod:`~genomenode.transfer.links`) is decided again with the caller's grants as
they are *now*, so a revocation stops every block requested after it.
"""

from __future__ import annotations

import collections
import dataclasses
import pathlib
import threading
from typing import Any

from fastapi import Request
from sqlalchemy import select

from ..access import applications
from ..access.audit import append
from ..access.callers import caller_of
from ..access.decision import Caller, authorize, dataset_access
from ..access.service import AccessService
from ..errors import NotFoundError, PermissionDenied, TokenError
from ..store import crypt
from ..store.models import StoredFile
from ..store.node import Node
from ..store.objects import StoredPath
from ..store.published import PublishedDataset, PublishedDatasets
from .crypt4gh import Crypt4GHReader
from .links import LinkClaims, LinkSigner, load_link_secret

__all__ = ["StoredObject", "TransferService", "transfer_service"]

_READERS = 64


@dataclasses.dataclass(frozen=True)
class StoredObject:
    """One stored file of a published dataset, as DRS and htsget name it."""

    id: str
    dataset_id: str
    role: str
    name: str
    #: A local file, or an object of the node's object store (ranged reads).
    path: pathlib.Path | StoredPath
    file_format: str
    size: int
    size_encrypted: int
    sha256: str
    sha256_encrypted: str
    created_at: Any


class TransferService:
    """Stored files of published datasets, and who may have them.

    Parameters
    ----------
    node
        The node (its store, database and private key).
    published
        The published datasets (shared with the Beacon).
    access
        Callers, grants and the audit log.
    """

    def __init__(
        self, node: Node, published: PublishedDatasets, access: AccessService
    ) -> None:
        self.node = node
        self.published = published
        self.access = access
        self.links = LinkSigner(
            load_link_secret(node.config.node_dir / "keys" / "links.key")
        )
        self._private_key = crypt.read_private_key(
            node.config.path("private_key"), node.config.key_passphrase
        )
        # Keyed by path and content: a dataset removed and ingested again under
        # its id has new files at the same paths.
        self._readers: collections.OrderedDict[
            tuple[pathlib.Path | StoredPath, str], Crypt4GHReader
        ] = collections.OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TransferService(node={self.node.config.node_id!r})"

    # -- stored files ---------------------------------------------------------------

    def objects(self, dataset_id: str, role: str | None = None) -> list[StoredObject]:
        """The stored files of a published dataset (optionally of one role)."""
        handle = self.published.get(dataset_id)
        if handle is None:
            raise NotFoundError(f"no published dataset {dataset_id!r}")
        query = select(StoredFile).where(StoredFile.dataset_id == dataset_id)
        if role is not None:
            query = query.where(StoredFile.role == role)
        with self.node.session() as session:
            rows = session.scalars(query.order_by(StoredFile.id)).all()
            return [self._object(row, handle) for row in rows]

    def object(self, object_id: str) -> StoredObject:
        """A stored file of a published dataset by id (``<dataset>:<stored name>``)."""
        with self.node.session() as session:
            row = session.get(StoredFile, object_id)
            if row is None or self.published.get(row.dataset_id) is None:
                raise NotFoundError(f"no object {object_id!r}")
            handle = self.published.get(row.dataset_id)
            assert handle is not None
            return self._object(row, handle)

    def _object(self, row: StoredFile, handle: PublishedDataset) -> StoredObject:
        return StoredObject(
            id=row.id,
            dataset_id=row.dataset_id,
            role=row.role,
            name=row.original_name,
            path=self.node.dataset_file(
                row.dataset_id, handle.manifest["fingerprint"], row.stored_path
            ),
            file_format=row.file_format,
            size=row.size_plain,
            size_encrypted=row.size_encrypted,
            sha256=row.sha256_plain,
            sha256_encrypted=row.sha256_encrypted,
            created_at=handle.facts.published_at,
        )

    def reader(self, stored: StoredObject) -> Crypt4GHReader:
        """A decrypting reader of ``stored`` (kept open for later requests)."""
        key = (stored.path, stored.sha256_encrypted)
        with self._lock:
            found = self._readers.get(key)
            if found is not None:
                self._readers.move_to_end(key)
                return found
        reader = Crypt4GHReader(stored.path, self._private_key)
        with self._lock:
            self._readers[key] = reader
            if len(self._readers) > _READERS:
                self._readers.popitem(last=False)
        return reader

    # -- authorisation --------------------------------------------------------------

    def require(self, request: Request, dataset_id: str, *, what: str) -> Caller:
        """The caller of ``request`` if they may download from ``dataset_id``.

        Raises
        ------
        NotFoundError
            No such published dataset.
        PermissionDenied
            The caller may not download from it (audited either way).
        """
        caller = caller_of(request)
        return self._decide(caller, dataset_id, what=what, via="passport")

    def require_link(
        self, token: str, *, resource: str, what: str
    ) -> tuple[Caller, LinkClaims]:
        """The caller a signed link speaks for, if they may *still* download.

        Raises
        ------
        TokenError
            The link is forged, expired or for another resource (401).
        PermissionDenied
            The grant is gone (revoked, expired) since the link was signed.
        """
        try:
            claims = self.links.verify(token, resource=resource)
        except TokenError as error:
            # A forged, replayed or stale link is an access decision too.
            self.access.audit.record(
                actor="unknown",
                action=what,
                outcome="deny",
                reason=f"download link refused: {error}",
                details={"resource": resource[:200]},
            )
            raise
        granted: set[str] = set()
        if claims.subject is not None:
            with self.access.authoriser.engine.connect() as connection:
                granted |= applications.active_grants(connection, claims.subject)
        if claims.foreign_grant:
            # A grant from another trusted visa issuer: the node cannot see its
            # revocation; it lasts as long as the link (minutes) at most.
            granted.add(claims.dataset_id)
        caller = Caller(
            subject=claims.subject,
            registered=claims.registered,
            granted_datasets=frozenset(granted),
        )
        return self._decide(caller, claims.dataset_id, what=what, via="link"), claims

    def link(self, caller: Caller, dataset_id: str, resource: str) -> str:
        """A signed link opening ``resource`` for ``caller``."""
        foreign = False
        if dataset_id in caller.granted_datasets and caller.subject is not None:
            with self.access.authoriser.engine.connect() as connection:
                own = applications.active_grants(connection, caller.subject)
            foreign = dataset_id not in own
        return self.links.sign(
            subject=caller.subject,
            registered=caller.registered,
            dataset_id=dataset_id,
            resource=resource,
            foreign_grant=foreign,
        )

    def _decide(
        self, caller: Caller, dataset_id: str, *, what: str, via: str
    ) -> Caller:
        handle = self.published.get(dataset_id)
        if handle is None:
            raise NotFoundError(f"no published dataset {dataset_id!r}")
        decision = authorize(caller, "download", dataset_access(handle))
        append(
            self.access.authoriser.engine,
            actor=caller.subject or "anonymous",
            action=what,
            outcome="allow" if decision.allowed else "deny",
            reason=decision.reason,
            dataset_id=dataset_id,
            details={"via": via},
        )
        if not decision.allowed:
            raise PermissionDenied(
                f"no grant to download from dataset {dataset_id!r}: apply to its data "
                "access committee (/access/catalogue)"
            )
        return caller


def transfer_service(request: Request) -> TransferService:
    """The transfer service of the app answering ``request``
    (``app.state.transfer``)."""
    service: TransferService = request.app.state.transfer
    return service
