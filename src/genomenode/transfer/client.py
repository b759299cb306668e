"""``genomenode fetch``: a small htsget client.

Asks a node for a ticket, follows its URLs in order (inline ``data:`` URIs and the
node's block URLs with the headers the ticket gives), and writes their concatenation:
a bgzipped VCF (or BCF) holding the records of the region. The file is written to
``<out>.part`` and renamed only once complete and verified (a valid BGZF stream that
ends with the end-of-file block), so an interrupted fetch never leaves a truncated
file under the final name.

With ``recipient_public_key`` the slice is Crypt4GH-encrypted to that key as it
arrives: the plaintext never touches the disk.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import pathlib
import re
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterator
from typing import Any

from crypt4gh import header as c4gh_header
from crypt4gh import sodium as c4gh_sodium

from ..errors import GenomenodeError, InputError

__all__ = ["FetchResult", "fetch", "parse_region"]

_SEGMENT = 65_536
_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
_REGION = re.compile(r"^(?P<name>[^:]+)(?::(?P<start>[\d,_]+)?-(?P<end>[\d,_]+)?)?$")


@dataclasses.dataclass(frozen=True)
class FetchResult:
    """What :func:`fetch` wrote."""

    path: pathlib.Path
    num_bytes: int
    num_urls: int
    encrypted: bool


def parse_region(text: str) -> dict[str, Any]:
    """``chr:start-end`` (1-based, inclusive, as bcftools and samtools take it) →
    htsget parameters (0-based start, exclusive end)."""
    match = _REGION.match(text.strip())
    if match is None:
        raise InputError(f"region {text!r} is not NAME[:START-END]", field="region")
    parameters: dict[str, Any] = {"referenceName": match["name"]}
    if match["start"]:
        start = int(match["start"].replace(",", "").replace("_", ""))
        if start < 1:
            raise InputError("region starts at 1 (1-based)", field="region")
        parameters["start"] = start - 1
    if match["end"]:
        parameters["end"] = int(match["end"].replace(",", "").replace("_", ""))
    return parameters


def _get(url: str, headers: dict[str, str]) -> Iterator[bytes]:
    if url.startswith("data:"):
        _, _, payload = url.partition(",")
        yield base64.b64decode(payload)
        return
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            while chunk := response.read(1 << 20):
                yield chunk
    except urllib.error.HTTPError as error:
        raise GenomenodeError(f"{url}: {error.code} {_message(error)}") from None
    except (urllib.error.URLError, OSError) as error:
        raise GenomenodeError(f"{url}: {error}") from None


def _message(error: urllib.error.HTTPError) -> str:
    try:
        document = json.loads(error.read())
    except (ValueError, OSError):
        return str(error.reason)
    inner = document.get("htsget", document) if isinstance(document, dict) else {}
    return str(inner.get("message") or inner.get("detail") or error.reason)


class _Encryptor:
    """Crypt4GH encryption of a byte stream, one 64 KiB segment at a time."""

    def __init__(self, recipient_public_key: bytes) -> None:
        self._key = os.urandom(32)
        sender = os.urandom(32)
        packet = c4gh_header.make_packet_data_enc(0, self._key)
        self.header = c4gh_header.serialize(
            c4gh_header.encrypt(packet, [(0, sender, recipient_public_key)])
        )
        self._pending = bytearray()
        self._out = bytearray(_SEGMENT + 28)

    def _seal(self, segment: bytes | bytearray) -> bytes:
        length = c4gh_sodium.chacha20poly1305_encrypt(self._out, segment, self._key)
        return bytes(self._out[:length])

    def update(self, chunk: bytes) -> bytes:
        self._pending += chunk
        sealed = bytearray()
        while len(self._pending) >= _SEGMENT:
            sealed += self._seal(self._pending[:_SEGMENT])
            del self._pending[:_SEGMENT]
        return bytes(sealed)

    def finish(self) -> bytes:
        return self._seal(self._pending) if self._pending else b""


class _BgzfCheck:
    """Checks, as bytes stream past, that they form whole gzip members ending in EOF."""

    def __init__(self) -> None:
        self._decompressor = zlib.decompressobj(31)
        self._inside = False
        self.tail = b""

    def update(self, chunk: bytes) -> None:
        data = chunk
        while data:
            try:
                self._decompressor.decompress(data)
            except zlib.error as error:
                raise GenomenodeError(f"the slice is not BGZF: {error}") from None
            if self._decompressor.eof:
                data = self._decompressor.unused_data
                self._decompressor = zlib.decompressobj(31)
                self._inside = False
            else:
                data = b""
                self._inside = True
        self.tail = (self.tail + chunk)[-len(_EOF) :]

    def finish(self, path: pathlib.Path) -> None:
        if self._inside:
            raise GenomenodeError(f"{path}: the slice ends inside a BGZF block")
        if self.tail != _EOF:
            raise GenomenodeError(f"{path}: the slice lacks the BGZF end-of-file block")


def fetch(
    server: str,
    dataset_id: str,
    out: pathlib.Path,
    *,
    region: str | None = None,
    output_format: str = "VCF",
    token: str | None = None,
    recipient_public_key: bytes | None = None,
    kind: str = "variants",
) -> FetchResult:
    """Fetch a slice of ``dataset_id`` (or a stored file id) from ``server`` to ``out``.

    Raises
    ------
    GenomenodeError
        The server refused (its htsget error message is given) or the slice does
        not verify; nothing is left under ``out``.
    """
    parameters: dict[str, Any] = {"format": output_format}
    if region:
        parameters |= parse_region(region)
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    ticket_url = (
        f"{server.rstrip('/')}/htsget/{kind}/{urllib.parse.quote(dataset_id, safe='')}"
        f"?{urllib.parse.urlencode(parameters)}"
    )
    try:
        ticket = json.loads(b"".join(_get(ticket_url, headers)))["htsget"]
        urls = ticket["urls"]
    except (KeyError, TypeError, ValueError):
        raise GenomenodeError(f"{ticket_url}: not an htsget ticket") from None
    partial = out.with_name(out.name + ".part")
    check = _BgzfCheck()
    encryptor = _Encryptor(recipient_public_key) if recipient_public_key else None
    written = 0
    try:
        with open(partial, "wb") as handle:
            if encryptor is not None:
                handle.write(encryptor.header)
            for item in urls:
                for chunk in _get(str(item["url"]), dict(item.get("headers") or {})):
                    check.update(chunk)
                    written += len(chunk)
                    handle.write(encryptor.update(chunk) if encryptor else chunk)
            if encryptor is not None:
                handle.write(encryptor.finish())
            handle.flush()
            os.fsync(handle.fileno())
        check.finish(out)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return FetchResult(out, written, len(urls), encryptor is not None)
