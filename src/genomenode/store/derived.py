"""Derived results of a dataset (its QC results, its reference) in the node's
storage, published atomically without a rename and sealed on a sealed node.

A plain local node keeps the directories it always had
(``datasets/<id>/qc/``, ``datasets/<id>/reference.zarr``), replaced by a rename.
A node whose datasets are in an object store, or sealed (``encrypt_at_rest``),
writes each result as objects of the node's storage, under the dataset's prefix
(:meth:`~genomenode.store.node.Node.dataset_prefix`)::

    <dataset prefix>/<kind>/<version>/...      the objects of one run
    <dataset prefix>/<kind>/current.json       the switch: which version is read

A run writes its objects under a new ``<version>``, checks them against a
listing, and only then writes ``current.json`` (one small object): readers see
the previous run or the new one, never a mixture, and a run killed midway
leaves objects nobody reads (the next run deletes them). The version before
the current one is kept, so a reader that read the switch a moment before it
changed still finds its objects; older ones are deleted.

On a sealed node every object is sealed as the VCF Zarr's are
(:class:`~genomenode.store.sealed.Sealer`, ChaCha20-Poly1305 with the object's
name in the run as associated data), under a key derived from the node's key
with a salt per run kept in ``current.json``. The QC results hold per-sample
metrics: personal data, sealed like the genotypes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import os
import pathlib
from typing import Any

from ..errors import FormatVersionError, StoreError
from .node import Node
from .objects import Storage, upload_tree

__all__ = [
    "SWITCH",
    "DerivedObjects",
    "current_objects",
    "publish_objects",
    "writes_objects",
]

#: The object that names a result's current version.
SWITCH = "current.json"
FORMAT_VERSION = 1


def writes_objects(node: Node) -> bool:
    """Whether the node keeps derived results as (possibly sealed) objects rather
    than the plain local directories of the embedded default."""
    return node.remote or bool(node.config.encrypt_at_rest)


def _base(node: Node, dataset_id: str, fingerprint: str, kind: str) -> str:
    return f"{node.dataset_prefix(dataset_id, fingerprint)}/{kind}"


@dataclasses.dataclass(frozen=True)
class DerivedObjects:
    """The current version of one derived result of a dataset."""

    node: Node
    prefix: str
    version: str
    salt: bytes | None  # None: plaintext

    @property
    def storage(self) -> Storage:
        return self.node.objects

    @functools.cached_property
    def sealer(self) -> Any:
        """The run's :class:`~genomenode.store.sealed.Sealer`, or None (derived
        on first use: finding the current version costs no key derivation)."""
        if self.salt is None:
            return None
        from .sealed import Sealer

        return Sealer(self.node.node_secret, self.salt)

    @property
    def where(self) -> str:
        return f"{self.storage.url}/{self.prefix}"

    def read(self, name: str) -> bytes:
        """The plaintext of object ``name``; ``FileNotFoundError`` if absent."""
        data = self.storage.read(f"{self.prefix}/{name}")
        return self.sealer.open(name, data) if self.sealer is not None else data

    def zarr_store(self) -> Any:
        """A read-only zarr store over the version (a Zarr group's objects)."""
        from .sealed import SealedStore

        store = self.storage.zarr_store(self.prefix)
        return SealedStore(store, self.sealer) if self.sealer is not None else store


def _read_switch(storage: Storage, key: str) -> dict[str, Any] | None:
    try:
        text = storage.read(key)
    except FileNotFoundError:
        return None
    try:
        document = json.loads(text)
    except ValueError:
        raise StoreError(f"{storage.url}/{key}: not JSON") from None
    if not isinstance(document, dict) or "version" not in document:
        raise StoreError(f"{storage.url}/{key}: no 'version'")
    if document.get("format_version") != FORMAT_VERSION:
        raise FormatVersionError(
            f"{storage.url}/{key}: format_version "
            f"{document.get('format_version')!r} is not supported (this genomenode "
            f"reads {FORMAT_VERSION}); upgrade genomenode"
        )
    return document


def current_objects(
    node: Node, dataset_id: str, fingerprint: str, kind: str
) -> DerivedObjects | None:
    """The current version of result ``kind`` (``qc``, ``reference``) of a
    dataset's content, or None when none was published as objects."""
    base = _base(node, dataset_id, fingerprint, kind)
    storage = node.objects
    switch = _read_switch(storage, f"{base}/{SWITCH}")
    if switch is None:
        return None
    salt = bytes.fromhex(switch["salt"]) if switch.get("salt") else None
    version = str(switch["version"])
    return DerivedObjects(node, f"{base}/{version}", version, salt)


def publish_objects(
    node: Node,
    dataset_id: str,
    fingerprint: str,
    kind: str,
    content: dict[str, bytes] | pathlib.Path,
    *,
    replaces: tuple[str, ...] = (),
) -> str:
    """Publish ``content`` (named objects, or every file of a local directory) as
    the new current version of result ``kind``; returns where it is.

    ``replaces``: keys (prefixes) of the dataset holding an earlier layout of
    the same result (a plain directory), deleted once the switch is written.
    """
    storage = node.objects
    base = _base(node, dataset_id, fingerprint, kind)
    previous = _read_switch(storage, f"{base}/{SWITCH}")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    version = f"{stamp}-{os.urandom(4).hex()}"
    prefix = f"{base}/{version}"
    sealer = None
    salt = b""
    if node.config.encrypt_at_rest:
        from .sealed import Sealer

        salt = os.urandom(16)
        sealer = Sealer(node.node_secret, salt)
    if isinstance(content, pathlib.Path):
        expected = upload_tree(
            storage, content, prefix, transform=sealer.seal if sealer else None
        )
    else:
        expected = {}
        for name, data in content.items():
            stored = sealer.seal(name, data) if sealer else data
            storage.write(f"{prefix}/{name}", stored)
            expected[f"{prefix}/{name}"] = len(stored)
    listed = storage.listing(prefix)
    wrong = sorted(key for key, size in expected.items() if listed.get(key) != size)
    if wrong:
        raise StoreError(
            f"{storage.url}/{prefix}: {len(wrong)} object(s) missing or of the "
            f"wrong size after writing (first: {wrong[0]}); nothing was published, "
            "run again"
        )
    switch = {
        "format_version": FORMAT_VERSION,
        "version": version,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "salt": salt.hex() if sealer else None,
        "cipher": "ChaCha20-Poly1305" if sealer else None,
    }
    storage.write(f"{base}/{SWITCH}", json.dumps(switch, indent=2).encode())
    # Keep the new version and the one before (a reader may hold it still).
    keep = {prefix + "/"}
    if previous is not None:
        keep.add(f"{base}/{previous['version']}/")
    for key in storage.listing(base):
        name = key[len(base) + 1 :]
        if key == f"{base}/{SWITCH}" or any(key.startswith(k) for k in keep):
            continue
        if "/" in name:
            storage.delete_prefix(f"{base}/{name.split('/')[0]}")
        else:
            storage.delete(key)  # a file of the plain-directory layout
    for old in replaces:
        storage.delete_prefix(old)
    return f"{storage.url}/{prefix}"
