"""Request bodies read with limits: size, time, JSON depth and digits, UTF-8.

The limits are settings (:class:`HttpLimits`, ``http_*`` in
:mod:`genomenode.config`); over a limit a caller gets 413 (body), 408 (too
slow to send) or 400 (depth, digits, not UTF-8, not JSON), never a 500.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
from fastapi import Request
from starlette.requests import ClientDisconnect

from ..errors import (
    ClientDisconnected,
    InputError,
    PayloadTooLargeError,
    RequestTimeoutError,
)

__all__ = [
    "DEFAULT_LIMITS",
    "HttpLimits",
    "limits_of",
    "parse_json",
    "read_body",
    "read_json",
    "read_json_object",
]


# ---------------------------------------------------------------------- limits


@dataclasses.dataclass(frozen=True)
class HttpLimits:
    """What one request may ask of a server (the ``http_*`` settings).

    Attributes
    ----------
    max_body_bytes
        Largest request body read; more is a 413.
    max_json_depth
        Deepest nesting of arrays and objects in a JSON body; more is a 400.
    max_integer_digits
        Most digits of an integer in a JSON body or a numeric parameter.
    body_timeout_seconds
        Longest a client may take to send its body; more is a 408.
    header_timeout_seconds
        Longest a client may take to send its request line and headers (the
        server closes the connection with a 408).
    max_header_bytes
        Largest request line plus headers (431 and the connection closed).
    """

    max_body_bytes: int = 1_048_576
    max_json_depth: int = 64
    max_integer_digits: int = 100
    body_timeout_seconds: float = 30.0
    header_timeout_seconds: float = 10.0
    max_header_bytes: int = 65_536

    @classmethod
    def from_settings(cls, values: Mapping[str, Any]) -> HttpLimits:
        """The limits from resolved settings (a node's ``config.values``)."""
        return cls(
            **{
                field.name: values[f"http_{field.name}"]
                for field in dataclasses.fields(cls)
                if f"http_{field.name}" in values
            }
        )


DEFAULT_LIMITS = HttpLimits()


def limits_of(request: Request) -> HttpLimits:
    """The limits of the app answering ``request`` (the defaults if it set none)."""
    app = request.scope.get("app")
    limits: HttpLimits | None = getattr(
        getattr(app, "state", None), "http_limits", None
    )
    return limits if limits is not None else DEFAULT_LIMITS


# ---------------------------------------------------------------------- bodies


async def read_body(request: Request) -> bytes:
    """The request body, read at most once, within the size and time limits.

    Raises
    ------
    PayloadTooLargeError
        ``Content-Length`` or the bytes sent exceed ``max_body_bytes`` (the rest
        is never read).
    RequestTimeoutError
        The client took longer than ``body_timeout_seconds`` to send it.
    """
    cached: bytes | None = getattr(request.state, "body_bytes", None)
    if cached is not None:
        return cached
    limits = limits_of(request)
    declared = request.headers.get("content-length")
    if (
        declared is None
        and request.method in ("GET", "HEAD")
        and "transfer-encoding" not in request.headers
    ):
        # A GET with neither header has no body (RFC 9112 §6.3): nothing to wait
        # for (a Beacon query relayed by a network). Other methods are read: an
        # ASGI server may hand over a body it framed itself.
        request.state.body_bytes = b""
        return b""
    if declared is not None:
        text = declared.strip()
        if not text.isdigit() or len(text) > 18:
            raise InputError("Content-Length must be a number", field="Content-Length")
        if int(text) > limits.max_body_bytes:
            raise PayloadTooLargeError(_too_large(limits))
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(limits.body_timeout_seconds):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limits.max_body_bytes:
                    raise PayloadTooLargeError(_too_large(limits))
                chunks.append(chunk)
    except ClientDisconnect:
        raise ClientDisconnected(
            "the client went away while sending its body"
        ) from None
    except TimeoutError:
        raise RequestTimeoutError(
            f"the request body took longer than {limits.body_timeout_seconds:g} s "
            "to arrive (http_body_timeout_seconds)"
        ) from None
    body = b"".join(chunks)
    request.state.body_bytes = body
    return body


def _too_large(limits: HttpLimits) -> str:
    return (
        f"the request body is larger than {limits.max_body_bytes} bytes "
        "(http_max_body_bytes)"
    )


# A \u escape of a UTF-16 surrogate, paired or not.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
# A JSON string (escapes included), removed before counting brackets.
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def _nesting_depth(raw: bytes) -> int:
    """The deepest nesting of ``[``/``{`` outside strings (vectorised count)."""
    if b"[" not in raw and b"{" not in raw:
        return 0
    stripped = np.frombuffer(_JSON_STRING.sub(b"", raw), dtype=np.uint8)
    steps = (
        (stripped == ord("[")).astype(np.int32)
        + (stripped == ord("{"))
        - (stripped == ord("]"))
        - (stripped == ord("}"))
    )
    return int(np.cumsum(steps).max(initial=0))


def parse_json(
    raw: bytes, limits: HttpLimits = DEFAULT_LIMITS, *, field: str = "body"
) -> Any:
    """JSON from bytes, refusing what would be costly or ambiguous to parse.

    Raises
    ------
    InputError
        The bytes are not UTF-8, not JSON, nest deeper than ``max_json_depth``,
        hold an integer with more than ``max_integer_digits`` digits, or hold
        ``NaN``/``Infinity`` (HTTP 400, naming ``field``).
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(
            f"the request body is not UTF-8 (byte {error.start})", field=field
        ) from None
    depth = _nesting_depth(raw)
    if depth > limits.max_json_depth:
        raise InputError(
            f"JSON nested {depth} levels deep; at most {limits.max_json_depth} "
            "(http_max_json_depth)",
            field=field,
        )

    def integer(digits: str) -> int:
        if len(digits.lstrip("-")) > limits.max_integer_digits:
            raise InputError(
                f"an integer of {len(digits.lstrip('-'))} digits; at most "
                f"{limits.max_integer_digits} (http_max_integer_digits)",
                field=field,
            )
        return int(digits)

    def constant(name: str) -> Any:
        raise InputError(f"{name} is not JSON", field=field)

    try:
        document = json.loads(text, parse_int=integer, parse_constant=constant)
    except json.JSONDecodeError as error:
        raise InputError(
            f"request body is not JSON: {error.msg} at line {error.lineno}",
            field=field,
        ) from None
    except RecursionError:  # a depth the bracket count did not see; never a 500
        raise InputError("JSON nested too deeply", field=field) from None
    if _SURROGATE_ESCAPE.search(raw):
        # "\ud800" alone is valid JSON but no text: echoed in an answer it would
        # fail to encode. Pairs (astral characters) pass.
        try:
            json.dumps(document, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(
                "a string holds a lone UTF-16 surrogate (\\ud800-\\udfff), which "
                "is not a character",
                field=field,
            ) from None
    return document


async def read_json(request: Request, *, empty: Any = None, field: str = "body") -> Any:
    """The request body as JSON, within the limits (``empty`` for no body).

    Raises
    ------
    InputError, PayloadTooLargeError, RequestTimeoutError
        As :func:`read_body` and :func:`parse_json`.
    """
    raw = await read_body(request)
    if not raw.strip():
        return empty
    return parse_json(raw, limits_of(request), field=field)


async def read_json_object(request: Request, *, field: str = "body") -> dict[str, Any]:
    """The request body as a JSON object (``{}`` for no body), within the limits.

    Raises
    ------
    InputError
        As :func:`read_json`, or the body is JSON but not an object.
    """
    document = await read_json(request, empty={}, field=field)
    if not isinstance(document, dict):
        raise InputError("request body must be a JSON object", field=field)
    return document
