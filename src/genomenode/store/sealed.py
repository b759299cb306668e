"""Encryption at rest of a dataset's VCF Zarr: every object sealed with
ChaCha20-Poly1305 under a key derived from the node's private key.

The originals are Crypt4GH files; the VCF Zarr is what queries read, so it is
sealed object by object when a dataset is published (``encrypt_at_rest``
setting): each stored object (chunk or metadata) becomes ``nonce (12 bytes) ||
ciphertext || tag (16 bytes)``, with the object's key inside the store
(``call_genotype/3.0.0``) as associated data, so a chunk moved to another place
(or another array, or another dataset: each dataset has its own key) fails to
decrypt instead of answering wrongly.

The key is HKDF-SHA256 of the node's Crypt4GH secret key with a random salt per
dataset, kept in ``genomenode-at-rest.json`` beside the arrays (a salt is not a
secret); the key itself is never stored. Whoever holds the store's objects but
not the node's key file (and its passphrase) reads nothing: no genotype, no
sample id, no array name's contents.

Readers see plaintext through :class:`SealedStore`, a zarr 3 store wrapper that
opens objects as zarr reads them, or :meth:`Sealer.open` for the chunks the
genotype store decodes itself.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Iterable
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from zarr.abc.store import (
    ByteRequest,
    OffsetByteRequest,
    RangeByteRequest,
    SuffixByteRequest,
)
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.storage import WrapperStore

from ..errors import FormatVersionError, StoreError
from .objects import Storage, upload_tree

__all__ = [
    "MARKER",
    "OVERHEAD",
    "SealedStore",
    "Sealer",
    "read_marker",
    "seal_tree",
]

#: The plaintext file that says a VCF Zarr is sealed, and how.
MARKER = "genomenode-at-rest.json"
FORMAT_VERSION = 1
_NONCE = 12
#: Bytes a sealed object has beyond its plaintext.
OVERHEAD = _NONCE + 16
_INFO = b"genomenode vcf-zarr at rest v1"


class Sealer:
    """Seals and opens the objects of one dataset's VCF Zarr.

    Parameters
    ----------
    node_secret
        The node's 32-byte Crypt4GH secret key.
    salt
        The dataset's salt (from its marker).
    """

    def __init__(self, node_secret: bytes, salt: bytes) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_INFO).derive(
            node_secret
        )
        self._cipher = ChaCha20Poly1305(key)
        self.salt = salt

    def __repr__(self) -> str:
        return "Sealer(<key hidden>)"

    def seal(self, name: str, data: bytes) -> bytes:
        """``data`` of the object ``name`` (its key in the VCF Zarr), sealed."""
        nonce = os.urandom(_NONCE)
        return nonce + self._cipher.encrypt(nonce, bytes(data), name.encode())

    def open(self, name: str, sealed: bytes) -> bytes:
        """The plaintext of the sealed object ``name``.

        Raises
        ------
        StoreError
            The object does not decrypt under this key as ``name``: damaged,
            moved from elsewhere, or sealed by another node.
        """
        try:
            return self._cipher.decrypt(sealed[:_NONCE], sealed[_NONCE:], name.encode())
        except (InvalidTag, ValueError):
            raise StoreError(
                f"{name}: does not decrypt with this node's key (damaged, moved "
                "from another place in the store, or sealed by another node)"
            ) from None


def read_marker(document: bytes) -> bytes:
    """The salt from a sealed VCF Zarr's marker (checking its format)."""
    marker = json.loads(document)
    if marker.get("format_version") != FORMAT_VERSION:
        raise FormatVersionError(
            f"{MARKER}: format_version {marker.get('format_version')!r} is not "
            f"supported (this genomenode reads {FORMAT_VERSION}); upgrade genomenode"
        )
    return bytes.fromhex(marker["salt"])


def seal_tree(
    source: pathlib.Path,
    storage: Storage,
    prefix: str,
    node_secret: bytes,
) -> dict[str, int]:
    """Seal every file of the VCF Zarr ``source`` into ``storage`` under ``prefix``.

    The marker is written last: a tree without it is incomplete (a run killed
    midway), and is written again whole. Returns each object's key and size.
    """
    salt = os.urandom(16)
    sealer = Sealer(node_secret, salt)
    written = upload_tree(storage, source, prefix, transform=sealer.seal)
    marker = {
        "format_version": FORMAT_VERSION,
        "cipher": "ChaCha20-Poly1305",
        "kdf": "HKDF-SHA256(node secret key, salt)",
        "associated_data": "the object's key in the store",
        "salt": salt.hex(),
    }
    document = json.dumps(marker, indent=2).encode()
    storage.write(f"{prefix}/{MARKER}", document)
    written[f"{prefix}/{MARKER}"] = len(document)
    return written


def _slice(data: bytes, byte_range: ByteRequest | None) -> bytes:
    if byte_range is None:
        return data
    if isinstance(byte_range, RangeByteRequest):
        return data[byte_range.start : byte_range.end]
    if isinstance(byte_range, OffsetByteRequest):
        return data[byte_range.offset :]
    if isinstance(byte_range, SuffixByteRequest):
        return data[-byte_range.suffix :]
    raise TypeError(f"unexpected byte range {byte_range!r}")


class SealedStore(WrapperStore[Any]):
    """A read-only zarr store whose objects are sealed by a :class:`Sealer`."""

    def __init__(self, store: Any, sealer: Sealer) -> None:
        super().__init__(store)
        self._sealer = sealer

    def _with_store(self, store: Any) -> SealedStore:
        return type(self)(store, self._sealer)

    async def get(
        self,
        key: str,
        prototype: BufferPrototype,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        sealed = await self._store.get(key, prototype)
        if sealed is None:
            return None
        plain = self._sealer.open(key, sealed.to_bytes())
        return prototype.buffer.from_bytes(_slice(plain, byte_range))

    async def get_partial_values(
        self,
        prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        return [await self.get(key, prototype, rng) for key, rng in key_ranges]

    async def getsize(self, key: str) -> int:
        return await self._store.getsize(key) - OVERHEAD

    async def set(self, key: str, value: Buffer) -> None:
        raise StoreError("a sealed VCF Zarr is read-only")
