"""JSON answers and the one error handler: every error a route raises becomes the
error document of the API its path belongs to, in exactly one place.

Error documents by path:

=================  =====================================================
``/api``           Beacon v2 ``beaconErrorResponse``
``/htsget``        htsget ``{"htsget": {"error": <kind>, "message": ...}}``
``/ga4gh/drs``     DRS ``{"msg": ..., "status_code": ...}``
anything else      ``{"detail": ...}``
=================  =====================================================

A 500 says only "internal error" (the cause goes to the log, without the
request's parameters); a 401 carries ``WWW-Authenticate: Bearer``. The headers an
error carries are kept: Starlette's ``HTTPException.headers``, and the
``headers`` mapping of a :class:`~genomenode.errors.GenomenodeError` that has one
(a 429's ``Retry-After``). A 405's ``Allow`` (RFC 9110) names every method
the path answers: each route is declared once per method (one OpenAPI
operation each), so the one route that refused the method knows only its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import get_route_path

from ..errors import (
    ClientDisconnected,
    GenomenodeError,
    InvalidRangeError,
    TokenError,
    UnsupportedFormatError,
)

__all__ = [
    "ErrorDocument",
    "error_response",
    "htsget_error_kind",
    "install_error_handlers",
    "json_response",
]

_log = logging.getLogger(__name__)

# ------------------------------------------------------------------- responses


def json_response(
    document: Any,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    *,
    media_type: str = "application/json",
) -> JSONResponse:
    """A JSON answer (``application/json``, or an API's own JSON media type)."""
    return JSONResponse(
        document,
        status_code=status,
        headers=dict(headers) if headers else None,
        media_type=media_type,
    )


# ----------------------------------------------------------------------- errors

#: Makes the error document of one API from a status and a message.
ErrorDocument = Callable[[int, str], dict[str, Any]]

_HTSGET_KINDS = {
    400: "InvalidInput",
    401: "InvalidAuthentication",
    403: "PermissionDenied",
    404: "NotFound",
    408: "InvalidInput",
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
    documents: Mapping[str, ErrorDocument] = getattr(
        request.app.state, "error_documents", {}
    )
    for prefix, document in documents.items():
        if path.startswith(prefix):
            return document(status, message)
    if path.startswith("/htsget"):
        return {
            "htsget": {"error": htsget_error_kind(status, error), "message": message}
        }
    if path.startswith("/ga4gh/drs"):
        return {"msg": message, "status_code": status}
    return {"detail": message}


# Paths whose refusals and failures are access decisions (audited here); Beacon
# requests under /api are audited per dataset by their own dependency.
_ACCESS_PATHS = ("/access", "/htsget", "/ga4gh/drs", "/.well-known", "/catalogue")


def _audit_failure(
    request: Request, status: int, message: str, error: BaseException | None
) -> None:
    """One audit entry for a refused or failed request on an access path."""
    path = request.url.path
    if not path.startswith(_ACCESS_PATHS) or isinstance(error, TokenError):
        return  # bad tokens are audited where they are verified
    if getattr(request.state, "audited", False):
        return
    service = getattr(request.app.state, "access", None)
    audit = getattr(service, "audit", None)
    if audit is None or not (status in (401, 403) or status >= 500):
        return
    caller = getattr(request.state, "caller", None)
    try:
        audit.record(
            actor=getattr(caller, "subject", None) or "anonymous",
            action=f"{request.method} {path}"[:64],
            outcome="error" if status >= 500 else "deny",
            reason=message if status < 500 else "internal error",
            details={"status": status},
        )
        request.state.audited = True
    except Exception:  # the answer goes out; the writer logs its own trouble
        _log.exception("could not audit a refused request to %s", path)


def error_response(
    request: Request,
    status: int,
    message: str,
    error: BaseException | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The error document of the API ``request`` belongs to (audited if access)."""
    _audit_failure(request, status, message, error)
    merged = dict(headers or {})
    if status == 401:
        merged.setdefault("WWW-Authenticate", "Bearer")
    if status in (408, 413):
        # The rest of the body is never read: the connection cannot be reused.
        merged["Connection"] = "close"
    return json_response(_document(request, status, message, error), status, merged)


def _allowed_methods(request: Request) -> str | None:
    """``Allow`` of a 405: the methods of every route whose path matches."""
    path = get_route_path(request.scope)
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.router.routes):
        route_methods = getattr(route, "methods", None)
        pattern = getattr(route, "path_regex", None)
        if route_methods and pattern is not None and pattern.match(path):
            methods.update(route_methods)
    return ", ".join(sorted(methods)) or None


def _error_headers(error: BaseException) -> dict[str, str]:
    """The headers an error asks its answer to carry."""
    headers = getattr(error, "headers", None)
    return dict(headers) if isinstance(headers, Mapping) else {}


def _validation_message(error: RequestValidationError) -> str:
    problems = []
    for item in error.errors()[:3]:
        where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
        problems.append(f"{where or 'request'}: {item.get('msg', 'invalid')}")
    return "; ".join(problems) or "invalid request"


def install_error_handlers(
    app: FastAPI, documents: Mapping[str, ErrorDocument] | None = None
) -> None:
    """Turn every error raised by a route into its API's error document.

    ``documents`` maps a path prefix to the error document of the API under it
    (the Beacon's ``beaconErrorResponse`` under ``/api``); htsget and DRS
    documents are built in, ``{"detail": ...}`` is the rest.
    """
    app.state.error_documents = dict(documents or {})

    @app.exception_handler(GenomenodeError)
    async def genomenode_error(request: Request, exc: GenomenodeError) -> Response:
        if isinstance(exc, ClientDisconnected):
            # Nobody reads this answer; 499 is what proxies log for it.
            return Response(status_code=499)
        if exc.status >= 500:
            _log.error(
                "error answering %s %s: %s",
                request.method,
                request.url.path,
                type(exc).__name__,
                exc_info=exc,
            )
            return error_response(request, exc.status, "internal error", exc)
        return error_response(
            request, exc.status, str(exc), exc, headers=_error_headers(exc)
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = _error_headers(exc)
        if exc.status_code == 405:
            allowed = _allowed_methods(request)
            if allowed is not None:
                headers["Allow"] = allowed
        return error_response(
            request, exc.status_code, str(exc.detail), headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(
        request: Request, exc: RequestValidationError
    ) -> Response:
        return error_response(request, 400, _validation_message(exc), exc)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # The type and the traceback, never the request's values (they may be
        # personal data or tokens).
        _log.error(
            "unexpected %s answering %s %s",
            type(exc).__name__,
            request.method,
            request.url.path,
            exc_info=exc,
        )
        return error_response(request, 500, "internal error")
