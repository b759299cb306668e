"""Stored Crypt4GH files seen as their plaintext, and headers re-encrypted for a reader.

A stored file is a Crypt4GH v1 header followed by the encrypted body: segments of
``SEGMENT_SIZE`` plaintext bytes, each ChaCha20-IETF-Poly1305 encrypted on its own as
12 bytes of nonce, the ciphertext and a 16-byte MAC (``CIPHER_SEGMENT_SIZE`` bytes;
the last segment is shorter). Because segments are independent, any byte range of
the plaintext is read by decrypting only the segments it touches, and a file is
handed to a researcher by re-encrypting its header for their public key and
streaming the body exactly as stored.

The segment arithmetic is done here rather than by ``crypt4gh.lib``: crypt4gh 1.8.6
returns wrong bytes for range offsets of 64 KiB or more, and its CLI's ``--range``
keeps one byte less than asked.

Header packets are encrypted as in the Crypt4GH specification (§3.2): X25519 between
the writer's and reader's keys, the shared key being the first 32 bytes of
BLAKE2b-512 over the X25519 secret, the reader's and the writer's public keys; the
packet itself is ChaCha20-IETF-Poly1305. Segments and packets are decrypted with
``cryptography`` (OpenSSL), about three times faster here than the libsodium build
shipped with ``crypt4gh``.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import io
import os
import pathlib
from collections.abc import Iterator
from typing import Any

from crypt4gh import header as c4gh_header
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from ..config import Secret
from ..errors import InputError, StoreError

# Importing store.crypt also caps the crypt4gh logger, which logs keys at DEBUG.
from ..store import crypt as store_crypt
from ..store.objects import StoredPath, open_binary, stored_size

__all__ = [
    "CIPHER_SEGMENT_SIZE",
    "PUBLIC_KEY_FIELD",
    "SEGMENT_SIZE",
    "Crypt4GHReader",
    "generate_user_keypair",
    "public_key_from_text",
]

SEGMENT_SIZE = 65_536
_NONCE_SIZE = 12
_MAC_SIZE = 16
CIPHER_SEGMENT_SIZE = _NONCE_SIZE + SEGMENT_SIZE + _MAC_SIZE
_KEY_SIZE = 32
_ENCRYPTION_METHOD_X25519_CHACHA20 = (0).to_bytes(4, "little")
# Packet length, encryption method, writer's public key, nonce, MAC.
_PACKET_OVERHEAD = 4 + 4 + _KEY_SIZE + _NONCE_SIZE + _MAC_SIZE
_HEADER_START_SIZE = 16  # magic number, version, packet count

PUBLIC_KEY_FIELD = "Crypt4GH-Public-Key"
_PUBLIC_KEY_BEGIN = "-----BEGIN CRYPT4GH PUBLIC KEY-----"
_PUBLIC_KEY_END = "-----END CRYPT4GH PUBLIC KEY-----"


class Crypt4GHReader:
    """A stored Crypt4GH file seen as its plaintext: random-access reads, streams,
    header re-encryption.

    The header is parsed and decrypted once, here; every read opens the file anew,
    so one reader may serve concurrent requests.

    Parameters
    ----------
    path
        The Crypt4GH file.
    private_key
        The 32-byte X25519 secret key of a recipient of the file (the node's key,
        from :func:`genomenode.store.crypt.read_private_key`).

    Attributes
    ----------
    path : pathlib.Path
        The file.
    header_size : int
        Bytes of the stored header.
    encrypted_body_size : int
        Bytes of the stored body (every encrypted segment).
    plaintext_size : int
        Bytes of the plaintext as the file presents it: the kept bytes when the
        header carries an edit list, else every decrypted byte.

    Raises
    ------
    StoreError
        Naming the file, when it cannot be read, is not Crypt4GH, carries no header
        packet the key decrypts, or has a damaged structure.
    """

    def __init__(self, path: pathlib.Path | StoredPath, private_key: bytes) -> None:
        # A local file, or an object of the node's object store, read by ranges.
        self.path = path if isinstance(path, StoredPath) else pathlib.Path(path)
        if len(private_key) != _KEY_SIZE:
            raise ValueError(f"a private key has {_KEY_SIZE} bytes")
        self._private_key = bytes(private_key)
        self._public_key = _derive_public_key(self._private_key)
        try:
            with io.BufferedReader(open_binary(self.path)) as stream:
                stored_packets = [bytes(packet) for packet in c4gh_header.parse(stream)]
                self.header_size: int = stream.tell()
                file_size = stored_size(self.path)
        except OSError as error:
            raise StoreError(f"{self.path}: cannot be read: {error.strerror}") from None
        except ValueError as error:
            raise StoreError(f"{self.path}: not a Crypt4GH file: {error}") from None

        # Packets addressed to other readers are left out: they are no business of
        # ours and are not handed on.
        self._packets = [
            packet
            for packet in (
                _decrypt_packet(stored, self._private_key, self._public_key)
                for stored in stored_packets
            )
            if packet is not None
        ]
        if not self._packets:
            raise StoreError(
                f"{self.path}: cannot be decrypted with this key (no header packet "
                "is addressed to it)"
            )
        session_keys, edit_list = self._parse_packets()
        self._segment_ciphers = [ChaCha20Poly1305(key) for key in session_keys]
        self._last_cipher_index = 0

        self.encrypted_body_size: int = file_size - self.header_size
        num_full_segments, remainder = divmod(
            self.encrypted_body_size, CIPHER_SEGMENT_SIZE
        )
        if 0 < remainder <= _NONCE_SIZE + _MAC_SIZE:
            raise StoreError(f"{self.path}: truncated (the last segment is empty)")
        stored_plaintext_size = num_full_segments * SEGMENT_SIZE + max(
            0, remainder - _NONCE_SIZE - _MAC_SIZE
        )
        # The kept ranges of the stored plaintext, and where each starts in the view.
        self._kept_ranges = _kept_ranges(edit_list, stored_plaintext_size)
        self._kept_view_starts: list[int] = []
        self.plaintext_size: int = 0
        for start, end in self._kept_ranges:
            self._kept_view_starts.append(self.plaintext_size)
            self.plaintext_size += end - start

    def __repr__(self) -> str:
        return f"Crypt4GHReader({str(self.path)!r})"

    def read(self, offset: int, length: int) -> bytes:
        """The plaintext bytes ``[offset, offset + length)``, clipped at the end.

        Parameters
        ----------
        offset
            First byte, in the plaintext as the edit list (if any) presents it.
        length
            Number of bytes wanted; fewer are returned past the end of the file.

        Returns
        -------
        bytes
            The bytes, decrypted from the segments they lie in only. Memory used is
            about three times ``length``.

        Raises
        ------
        ValueError
            If ``offset`` or ``length`` is negative.
        StoreError
            If a segment does not decrypt (a damaged file) or the file changed.
        """
        if offset < 0 or length < 0:
            raise ValueError(f"offset and length must be >= 0, not {offset}, {length}")
        end = min(offset + length, self.plaintext_size)
        if offset >= end:
            return b""
        # One batch holds every segment the range touches, so the range usually
        # comes back as one piece and the join does not copy it.
        return b"".join(self._iter_view(offset, end, end - offset + 2 * SEGMENT_SIZE))

    def iter_range(
        self, offset: int = 0, length: int | None = None, *, chunk_bytes: int = 1 << 20
    ) -> Iterator[bytes]:
        """Stream plaintext bytes ``[offset, offset + length)``, clipped at the end.

        Parameters
        ----------
        offset
            First byte, in the plaintext as the edit list (if any) presents it.
        length
            Number of bytes wanted; ``None`` for all to the end.
        chunk_bytes
            Size of the chunks yielded (each is at most ``max(chunk_bytes,
            SEGMENT_SIZE)`` bytes); the stream holds about three times that in
            memory.

        Returns
        -------
        Iterator of bytes
            Non-empty chunks whose concatenation is ``read(offset, length)``. Only
            the segments the range touches are read and decrypted.

        Raises
        ------
        ValueError
            At the call, if an argument is negative or ``chunk_bytes`` is not
            positive.
        StoreError
            While streaming, if a segment does not decrypt or the file changed.
        """
        if offset < 0 or (length is not None and length < 0):
            raise ValueError(f"offset and length must be >= 0, not {offset}, {length}")
        if chunk_bytes < 1:
            raise ValueError(f"chunk_bytes must be positive, not {chunk_bytes}")
        end = (
            self.plaintext_size
            if length is None
            else min(offset + length, self.plaintext_size)
        )
        if offset >= end:
            return iter(())
        return self._iter_view(offset, end, chunk_bytes)

    def reencrypted_header(self, recipient_public_key: bytes) -> bytes:
        """A new header for this file that only ``recipient_public_key``'s owner reads.

        It holds the same session keys and edit list, each packet encrypted from
        the node's key to the recipient's, so the recipient can also check where
        the file comes from (``crypt4gh decrypt --sender_pk node.pub``). Its cost
        does not depend on the size of the file.

        Parameters
        ----------
        recipient_public_key
            The recipient's 32-byte X25519 public key (see
            :func:`public_key_from_text`).

        Returns
        -------
        bytes
            The header; followed by the stored body it makes a Crypt4GH file.

        Raises
        ------
        ValueError
            If the key is not 32 bytes or is a low-order point.
        """
        recipient = _checked_public_key(recipient_public_key)
        return bytes(
            c4gh_header.serialize(
                [
                    _encrypt_packet(packet, self._private_key, recipient)
                    for packet in self._packets
                ]
            )
        )

    def reencrypted_size(self, recipient_public_key: bytes) -> int:
        """Bytes :meth:`iter_reencrypted` yields for this recipient (a Content-Length).

        Raises
        ------
        ValueError
            If the key is not 32 bytes or is a low-order point.
        """
        _checked_public_key(recipient_public_key)
        return self._reencrypted_header_size() + self.encrypted_body_size

    def iter_reencrypted(
        self, recipient_public_key: bytes, *, chunk_bytes: int = 1 << 20
    ) -> Iterator[bytes]:
        """The file for a recipient: a re-encrypted header, then the stored body.

        Parameters
        ----------
        recipient_public_key
            The recipient's 32-byte X25519 public key.
        chunk_bytes
            Size of the body chunks read from disk and yielded.

        Returns
        -------
        Iterator of bytes
            First :meth:`reencrypted_header`, then the body bytes exactly as
            stored, :meth:`reencrypted_size` bytes in all. Nothing is decrypted.

        Raises
        ------
        ValueError
            At the call, for a bad key or a ``chunk_bytes`` that is not positive.
        StoreError
            While streaming, if the file changed since it was opened.
        """
        if chunk_bytes < 1:
            raise ValueError(f"chunk_bytes must be positive, not {chunk_bytes}")
        return self._iter_reencrypted(
            self.reencrypted_header(recipient_public_key), chunk_bytes
        )

    def _parse_packets(self) -> tuple[list[bytes], list[int] | None]:
        """The session keys and the edit list (None without one) in the header."""
        try:
            data_packets, edit_packet = c4gh_header.partition_packets(self._packets)
            session_keys = [
                bytes(c4gh_header.parse_enc_packet(packet)) for packet in data_packets
            ]
            edit_list = (
                None
                if edit_packet is None
                else [int(n) for n in c4gh_header.parse_edit_list_packet(edit_packet)]
            )
        except ValueError as error:
            raise StoreError(f"{self.path}: unsupported header: {error}") from None
        if not session_keys:
            raise StoreError(f"{self.path}: no session key is addressed to this key")
        if any(len(key) != _KEY_SIZE for key in session_keys):
            raise StoreError(f"{self.path}: a session key is not {_KEY_SIZE} bytes")
        if edit_list is not None and not edit_list:
            raise StoreError(f"{self.path}: the edit list is empty")
        return session_keys, edit_list

    def _reencrypted_header_size(self) -> int:
        return _HEADER_START_SIZE + sum(
            len(packet) + _PACKET_OVERHEAD for packet in self._packets
        )

    def _open_unchanged(self) -> Any:
        """The file, opened unbuffered (reads are large), checked to be as parsed."""
        try:
            file = open_binary(self.path)
        except OSError as error:
            raise StoreError(f"{self.path}: cannot be read: {error.strerror}") from None
        if file.seek(0, io.SEEK_END) != self.header_size + self.encrypted_body_size:
            file.close()
            raise StoreError(f"{self.path}: changed since it was opened")
        file.seek(0)
        return file

    def _stored_ranges(self, start: int, end: int) -> Iterator[tuple[int, int]]:
        """The ranges of stored plaintext that make up view bytes ``[start, end)``."""
        index = bisect.bisect_right(self._kept_view_starts, start) - 1
        while index < len(self._kept_ranges) and self._kept_view_starts[index] < end:
            stored_start, stored_end = self._kept_ranges[index]
            view_start = self._kept_view_starts[index]
            yield (
                stored_start + max(0, start - view_start),
                min(stored_end, stored_start + end - view_start),
            )
            index += 1

    def _iter_view(self, start: int, end: int, chunk_bytes: int) -> Iterator[bytes]:
        segments_per_batch = max(1, chunk_bytes // SEGMENT_SIZE)
        cipher_buffer = bytearray(segments_per_batch * CIPHER_SEGMENT_SIZE)
        plain_buffer = bytearray(segments_per_batch * SEGMENT_SIZE)
        # The decrypted batch, and the stored plaintext bytes it holds. Kept across
        # ranges: consecutive kept ranges of an edit list often share a segment.
        batch = memoryview(plain_buffer)[:0]
        batch_start = batch_end = 0
        pending: list[bytes] = []
        pending_size = 0
        with self._open_unchanged() as file:
            for stored_start, stored_end in self._stored_ranges(start, end):
                position = stored_start
                while position < stored_end:
                    if not batch_start <= position < batch_end:
                        first_segment = position // SEGMENT_SIZE
                        num_segments = min(
                            segments_per_batch,
                            (stored_end - 1) // SEGMENT_SIZE - first_segment + 1,
                        )
                        batch = self._decrypt_segments(
                            file,
                            first_segment,
                            num_segments,
                            cipher_buffer,
                            plain_buffer,
                        )
                        batch_start = first_segment * SEGMENT_SIZE
                        batch_end = batch_start + len(batch)
                    piece_end = min(stored_end, batch_end)
                    piece = bytes(
                        batch[position - batch_start : piece_end - batch_start]
                    )
                    position = piece_end
                    # Small pieces (short kept ranges) are gathered into chunks; a
                    # whole batch goes out alone, and a join of one does not copy.
                    if pending and pending_size + len(piece) > chunk_bytes:
                        yield b"".join(pending)
                        pending.clear()
                        pending_size = 0
                    pending.append(piece)
                    pending_size += len(piece)
                    if pending_size >= chunk_bytes:
                        yield b"".join(pending)
                        pending.clear()
                        pending_size = 0
        if pending:
            yield b"".join(pending)

    def _decrypt_segments(
        self,
        file: io.FileIO,
        first_segment: int,
        num_segments: int,
        cipher_buffer: bytearray,
        plain_buffer: bytearray,
    ) -> memoryview:
        """Decrypt segments into ``plain_buffer``; a view of the plaintext bytes."""
        cipher_offset = first_segment * CIPHER_SEGMENT_SIZE
        cipher_size = min(
            num_segments * CIPHER_SEGMENT_SIZE, self.encrypted_body_size - cipher_offset
        )
        cipher_view = memoryview(cipher_buffer)[:cipher_size]
        file.seek(self.header_size + cipher_offset)
        self._read_exactly(file, cipher_view)
        plain_view = memoryview(plain_buffer)
        plain_size = 0
        for number, segment_start in enumerate(
            range(0, cipher_size, CIPHER_SEGMENT_SIZE), start=first_segment
        ):
            segment = cipher_view[segment_start : segment_start + CIPHER_SEGMENT_SIZE]
            segment_plain_size = len(segment) - _NONCE_SIZE - _MAC_SIZE
            self._decrypt_segment(
                segment,
                plain_view[plain_size : plain_size + segment_plain_size],
                number,
            )
            plain_size += segment_plain_size
        return plain_view[:plain_size]

    def _decrypt_segment(
        self, segment: memoryview, out: memoryview, number: int
    ) -> None:
        # Files may hold several session keys, any segment under any of them (as
        # crypt4gh tries them); segments mostly share one, so the last key that
        # worked is tried first.
        num_ciphers = len(self._segment_ciphers)
        nonce, ciphertext = segment[:_NONCE_SIZE], segment[_NONCE_SIZE:]
        for attempt in range(num_ciphers):
            index = (self._last_cipher_index + attempt) % num_ciphers
            try:
                self._segment_ciphers[index].decrypt_into(nonce, ciphertext, None, out)
            except InvalidTag:
                continue
            self._last_cipher_index = index
            return
        raise StoreError(
            f"{self.path}: segment {number} does not decrypt with the file's session "
            "keys (the file is damaged)"
        )

    def _read_exactly(self, file: Any, into: memoryview) -> None:
        filled = 0
        while filled < len(into):
            count = file.readinto(into[filled:])
            if not count:
                raise StoreError(f"{self.path}: changed since it was opened")
            filled += count

    def _iter_reencrypted(self, header: bytes, chunk_bytes: int) -> Iterator[bytes]:
        yield header
        buffer = bytearray(min(chunk_bytes, max(1, self.encrypted_body_size)))
        remaining = self.encrypted_body_size
        with self._open_unchanged() as file:
            file.seek(self.header_size)
            while remaining:
                view = memoryview(buffer)[: min(len(buffer), remaining)]
                self._read_exactly(file, view)
                remaining -= len(view)
                yield bytes(view)


def public_key_from_text(text: str | bytes) -> bytes:
    """The 32-byte X25519 public key a researcher sent, in any of its usual forms.

    Parameters
    ----------
    text
        One of: the content of a ``crypt4gh-keygen`` ``.pub`` file (``-----BEGIN
        CRYPT4GH PUBLIC KEY-----``, the base64 key, the END line; line breaks may
        be spaces, as in an HTTP header); that whole file base64-encoded once more
        (``base64 -w0 me.pub``); or the bare base64 of the 32 key bytes. Standard
        or URL-safe base64, padding optional; surrounding white space is ignored.

    Returns
    -------
    bytes
        The key.

    Raises
    ------
    InputError
        With ``field="Crypt4GH-Public-Key"`` if the text is none of these forms or
        the key is a low-order point (one that would make the shared key known).
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise _public_key_error("it is not ASCII text") from None
    text = text.strip()
    if _PUBLIC_KEY_BEGIN not in text:
        decoded = _base64_decode(text)
        if decoded is None:
            raise _public_key_error("it is neither a key file nor base64")
        if len(decoded) == _KEY_SIZE:
            return _usable_public_key(decoded)
        try:
            text = decoded.decode("ascii").strip()
        except UnicodeDecodeError:
            text = ""
        if _PUBLIC_KEY_BEGIN not in text:
            raise _public_key_error(
                f"its base64 decodes to {len(decoded)} bytes, neither a "
                f"{_KEY_SIZE}-byte key nor a key file"
            )
    return _usable_public_key(_public_key_from_pem(text))


def generate_user_keypair(
    secret_path: pathlib.Path,
    public_path: pathlib.Path,
    passphrase: str | Secret | None,
) -> None:
    """Write a new Crypt4GH keypair, as ``crypt4gh-keygen`` does, for a researcher.

    The ``crypt4gh`` command line reads the files (``decrypt --sk``, ``encrypt
    --recipient_pk``) and so does :func:`public_key_from_text`.

    Parameters
    ----------
    secret_path
        Where to write the private key, readable by its owner only; encrypted with
        the passphrase (scrypt and ChaCha20-Poly1305, the ``crypt4gh-keygen``
        format).
    public_path
        Where to write the public key.
    passphrase
        ``None`` or empty to store the private key unencrypted (like
        ``crypt4gh-keygen --nocrypt``).

    Raises
    ------
    InputError
        Naming the path, if either file already exists: keys are never overwritten.
    """
    for path in (secret_path, public_path):
        if path.exists():
            raise InputError("already exists; keys are not overwritten", path=path)
    if isinstance(passphrase, str):
        passphrase = Secret(passphrase)
    store_crypt.generate_keypair(
        secret_path,
        public_path,
        passphrase=passphrase or None,
        comment="genomenode user key",
    )


def _public_key_error(reason: str) -> InputError:
    return InputError(
        f"not a Crypt4GH public key ({reason}); send the crypt4gh-keygen .pub file, "
        "that file base64-encoded, or the base64 of the 32-byte key",
        field=PUBLIC_KEY_FIELD,
    )


def _base64_decode(text: str) -> bytes | None:
    compact = "".join(text.split())
    if not compact:
        return None
    compact += "=" * (-len(compact) % 4)
    alphabet = b"-_" if ("-" in compact or "_" in compact) else None
    try:
        return base64.b64decode(compact, altchars=alphabet, validate=True)
    except (binascii.Error, ValueError):
        return None


def _public_key_from_pem(text: str) -> bytes:
    body = text.split(_PUBLIC_KEY_BEGIN, 1)[1]
    if _PUBLIC_KEY_END not in body:
        raise _public_key_error(f"no {_PUBLIC_KEY_END} line")
    decoded = _base64_decode(body.split(_PUBLIC_KEY_END, 1)[0])
    if decoded is None or len(decoded) != _KEY_SIZE:
        raise _public_key_error(f"the key file does not hold {_KEY_SIZE} base64 bytes")
    return decoded


def _usable_public_key(key: bytes) -> bytes:
    try:
        return _checked_public_key(key)
    except ValueError as error:
        raise _public_key_error(str(error)) from None


def _checked_public_key(key: bytes) -> bytes:
    """``key`` if it is a public key a shared secret can be agreed with."""
    if len(key) != _KEY_SIZE:
        raise ValueError(f"a public key has {_KEY_SIZE} bytes, not {len(key)}")
    try:
        X25519PrivateKey.generate().exchange(X25519PublicKey.from_public_bytes(key))
    except ValueError:
        raise ValueError("a low-order point, not a usable public key") from None
    return bytes(key)


def _derive_public_key(secret_key: bytes) -> bytes:
    return (
        X25519PrivateKey.from_private_bytes(secret_key).public_key().public_bytes_raw()
    )


def _shared_key(
    secret_key: bytes,
    peer_public_key: bytes,
    reader_public_key: bytes,
    writer_public_key: bytes,
) -> bytes:
    """The packet key of the Crypt4GH specification (§3.2.3), on either side."""
    exchanged = X25519PrivateKey.from_private_bytes(secret_key).exchange(
        X25519PublicKey.from_public_bytes(peer_public_key)
    )
    digest = hashlib.blake2b(exchanged + reader_public_key + writer_public_key)
    return digest.digest()[:_KEY_SIZE]


def _decrypt_packet(
    stored: bytes, secret_key: bytes, public_key: bytes
) -> bytes | None:
    """The plaintext of a header packet, or None if it is not addressed to the key."""
    if stored[:4] != _ENCRYPTION_METHOD_X25519_CHACHA20:
        return None
    writer_public_key = stored[4 : 4 + _KEY_SIZE]
    nonce = stored[4 + _KEY_SIZE : 4 + _KEY_SIZE + _NONCE_SIZE]
    ciphertext = stored[4 + _KEY_SIZE + _NONCE_SIZE :]
    if len(writer_public_key) != _KEY_SIZE or len(ciphertext) < _MAC_SIZE:
        return None
    try:
        shared_key = _shared_key(
            secret_key, writer_public_key, public_key, writer_public_key
        )
        return ChaCha20Poly1305(shared_key).decrypt(nonce, ciphertext, None)
    # A low-order writer key (ValueError) cannot have been meant for anyone.
    except (InvalidTag, ValueError):
        return None


def _encrypt_packet(
    packet: bytes, writer_secret_key: bytes, reader_public_key: bytes
) -> bytes:
    writer_public_key = _derive_public_key(writer_secret_key)
    shared_key = _shared_key(
        writer_secret_key, reader_public_key, reader_public_key, writer_public_key
    )
    nonce = os.urandom(_NONCE_SIZE)
    return (
        _ENCRYPTION_METHOD_X25519_CHACHA20
        + writer_public_key
        + nonce
        + ChaCha20Poly1305(shared_key).encrypt(nonce, packet, None)
    )


def _kept_ranges(edit_list: list[int] | None, size: int) -> list[tuple[int, int]]:
    """The non-empty ranges of the stored plaintext an edit list keeps, in order.

    An edit list alternates lengths to skip and to keep, starting with a skip; when
    it ends with a skip, everything after is kept (as ``crypt4gh`` reads it).
    """
    if edit_list is None:
        return [(0, size)] if size else []
    kept = []
    position = 0
    for index, edit_length in enumerate(edit_list):
        if index % 2:
            end = min(position + edit_length, size)
            if end > position:
                kept.append((position, end))
        position += edit_length
    if len(edit_list) % 2 and position < size:
        kept.append((position, size))
    return kept
