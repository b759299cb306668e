"""The node's one place where errors become HTTP responses.

Every route raises :class:`~genomenode.errors.GenomenodeError` subclasses carrying
their status; this module turns them into the error document of the API the path
belongs to:

=================  =====================================================
``/api``           Beacon v2 ``beaconErrorResponse``
``/htsget``        htsget ``{"htsget": {"error": <kind>, "message": ...}}``
``/ga4gh/drs``     DRS ``{"msg": ..., "status_code": ...}``
anything else      ``{"detail": ...}``
=================  =====================================================

A 500 says only "internal error" (the cause goes to the log); a 401 carries
``WWW-Authenticate: Bearer``.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .beacon import framework
from .errors import (
    GenomenodeError,
    InvalidRangeError,
    UnsupportedFormatError,
)

__all__ = ["htsget_error_kind", "install_error_handlers"]

_log = logging.getLogger(__name__)

_HTSGET_KINDS = {
    400: "InvalidInput",
    401: "InvalidAuthentication",
    403: "PermissionDenied",
    404: "NotFound",
    413: "PayloadTooLarge",
}


def htsget_error_kind(status: int, error: BaseException | None = None) -> str:
    """The htsget error name for a status (and the error, for the 400 kinds)."""
    if isinstance(error, UnsupportedFormatError):
        return "UnsupportedFormat"
    if isinstance(error, InvalidRangeError):
        return "InvalidRange"
    return _HTSGET_KINDS.get(status, "InvalidInput" if status < 500 else "Internal")


def _document(
    request: Request, status: int, message: str, error: BaseException | None
) -> dict[str, Any]:
    path = request.url.path
    if path.startswith("/api"):
        service = getattr(request.app.state, "beacon", None)
        if service is not None:
            return framework.error_response(service.identity, status, message)
    if path.startswith("/htsget"):
        return {
            "htsget": {"error": htsget_error_kind(status, error), "message": message}
        }
    if path.startswith("/ga4gh/drs"):
        return {"msg": message, "status_code": status}
    return {"detail": message}


def _response(
    request: Request, status: int, message: str, error: BaseException | None = None
) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        _document(request, status, message, error), status_code=status, headers=headers
    )


def install_error_handlers(app: FastAPI) -> None:
    """Turn every error raised by a route into its API's error document."""

    @app.exception_handler(GenomenodeError)
    async def genomenode_error(request: Request, exc: GenomenodeError) -> JSONResponse:
        if exc.status >= 500:
            _log.exception("error answering %s", request.url.path)
            return _response(request, exc.status, "internal error")
        return _response(request, exc.status, str(exc), exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _response(request, exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        _log.exception("unexpected error answering %s", request.url.path)
        return _response(request, 500, "internal error")
