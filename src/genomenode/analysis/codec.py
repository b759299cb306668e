"""Arrays in the analyses' messages: exact float64 (or int64) bytes with dtype
and shape, in JSON (base64) or in one binary message (:data:`MEDIA_TYPE`).

Sufficient statistics must reach the coordinator bit for bit (the pooled answer
is exact only if the sums are); decimal text would also be three times larger.
A client that sends ``Accept: application/vnd.genomenode.arrays`` gets the
binary form (:func:`pack`): a JSON header then the raw arrays, no base64 and no
JSON parse of megabytes of text — what the network's coordinator asks for on
every round; anyone else gets JSON.

Binary message: ``GNA1``, the header's length (4 bytes, big-endian), the header
(UTF-8 JSON: the document, each array replaced by ``{"$array": [dtype, shape,
offset]}``, ``offset`` into the data that follows), then the arrays' bytes.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = [
    "MAX_ARRAY_BYTES",
    "MEDIA_TYPE",
    "decode",
    "encode",
    "encode_all",
    "pack",
    "unpack",
]

#: Largest array one message may carry.
MAX_ARRAY_BYTES = 64 * 1024 * 1024
_DTYPES = {"<f8": np.float64, "<i8": np.int64}
#: The binary form's media type (:func:`pack`).
MEDIA_TYPE = "application/vnd.genomenode.arrays"
_MAGIC = b"GNA1"
_MARK = "$array"


def _exact(value: np.ndarray) -> tuple[str, np.ndarray]:
    kind = "<i8" if np.issubdtype(value.dtype, np.integer) else "<f8"
    return kind, np.ascontiguousarray(value, dtype=_DTYPES[kind])


def encode(array: Any) -> dict[str, Any]:
    """``{"dtype", "shape", "data"}`` of an array (float64 or int64)."""
    value = np.asarray(array)
    kind, exact = _exact(value)
    data = exact.tobytes()
    return {
        "dtype": kind,
        "shape": list(value.shape),
        "data": base64.b64encode(data).decode(),
    }


def encode_all(document: Mapping[str, Any]) -> dict[str, Any]:
    """``document`` with its numpy arrays encoded (one level deep)."""
    return {
        key: encode(value) if isinstance(value, np.ndarray) else value
        for key, value in document.items()
    }


def decode(value: Any, *, field: str) -> np.ndarray:
    """The array an :func:`encode` document holds; a plain list is accepted too.

    Raises
    ------
    InputError
        Malformed (names ``field``).
    """
    if isinstance(value, np.ndarray):  # from :func:`unpack`
        return value
    if isinstance(value, list):
        try:
            return np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise InputError(f"not a numeric array: {error}", field=field) from None
    if not isinstance(value, Mapping) or set(value) != {"dtype", "shape", "data"}:
        raise InputError("an array is {dtype, shape, data}", field=field)
    kind, shape, data = value["dtype"], value["shape"], value["data"]
    if kind not in _DTYPES or not isinstance(shape, list) or len(shape) > 4:
        raise InputError("dtype <f8 or <i8 and at most 4 dimensions", field=field)
    if not all(isinstance(n, int) and n >= 0 for n in shape):
        raise InputError("shape must be non-negative integers", field=field)
    if not isinstance(data, str) or len(data) > MAX_ARRAY_BYTES * 4 // 3 + 4:
        raise InputError("data must be base64 within the size limit", field=field)
    try:
        raw = base64.b64decode(data, validate=True)
    except ValueError:
        raise InputError("data is not base64", field=field) from None
    expected = int(np.prod(shape, dtype=np.int64)) * 8
    if len(raw) != expected:
        raise InputError(f"{len(raw)} bytes for shape {shape}", field=field)
    return np.frombuffer(raw, dtype=_DTYPES[kind]).reshape(shape)


def pack(document: Mapping[str, Any]) -> bytes:
    """``document`` (its numpy arrays one level deep) as one binary message."""
    header: dict[str, Any] = {}
    parts: list[bytes] = []
    offset = 0
    for key, value in document.items():
        if isinstance(value, np.ndarray):
            kind, exact = _exact(value)
            header[key] = {_MARK: [kind, list(exact.shape), offset]}
            parts.append(exact.tobytes())
            offset += exact.nbytes
        else:
            header[key] = value
    text = json.dumps(header, separators=(",", ":")).encode()
    return b"".join([_MAGIC, len(text).to_bytes(4, "big"), text, *parts])


def unpack(
    message: bytes, *, parse_header: Callable[[bytes], Any] = json.loads
) -> dict[str, Any]:
    """The document of a :func:`pack` message, its arrays as read-only numpy
    arrays; ``parse_header`` parses the JSON header (a server passes its limits).

    Raises
    ------
    InputError
        Not such a message, or an array outside it.
    """
    if message[:4] != _MAGIC or len(message) < 8:
        raise InputError("not a genomenode arrays message", field="body")
    length = int.from_bytes(message[4:8], "big")
    if 8 + length > len(message):
        raise InputError("the message's header runs beyond its end", field="body")
    try:
        header = parse_header(bytes(message[8 : 8 + length]))
    except (ValueError, RecursionError):
        raise InputError("the message's header is not JSON", field="body") from None
    if not isinstance(header, dict):
        raise InputError("the message's header is not an object", field="body")
    data = memoryview(message)[8 + length :]
    out: dict[str, Any] = {}
    for key, value in header.items():
        if isinstance(value, dict) and set(value) == {_MARK}:
            described = value[_MARK]
            if (
                not isinstance(described, list)
                or len(described) != 3
                or described[0] not in _DTYPES
                or not isinstance(described[1], list)
                or len(described[1]) > 4
                or not all(
                    isinstance(n, int) and not isinstance(n, bool) and n >= 0
                    for n in [*described[1], described[2]]
                )
            ):
                raise InputError("a malformed array", field=key)
            kind, shape, offset = described
            count = int(np.prod(shape, dtype=np.int64))
            if offset + 8 * count > len(data):
                raise InputError("an array beyond the message's end", field=key)
            out[key] = np.frombuffer(
                data, dtype=_DTYPES[kind], count=count, offset=offset
            ).reshape(shape)
        else:
            out[key] = value
    return out
