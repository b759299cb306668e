"""Arrays in the analyses' JSON: exact float64 bytes, base64, with dtype and shape.

Sufficient statistics must reach the coordinator bit for bit (the pooled answer
is exact only if the sums are); decimal text would also be three times larger.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["MAX_ARRAY_BYTES", "decode", "encode", "encode_all"]

#: Largest array one message may carry.
MAX_ARRAY_BYTES = 64 * 1024 * 1024
_DTYPES = {"<f8": np.float64, "<i8": np.int64}


def encode(array: Any) -> dict[str, Any]:
    """``{"dtype", "shape", "data"}`` of an array (float64 or int64)."""
    value = np.asarray(array)
    kind = "<i8" if np.issubdtype(value.dtype, np.integer) else "<f8"
    data = np.ascontiguousarray(value, dtype=_DTYPES[kind]).tobytes()
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
