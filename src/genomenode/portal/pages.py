"""What every portal page handler shares: the session, forms, rendering.

A handler reads the visitor's session (:func:`session_of`); a form POST calls
:func:`form_or_refusal` first, which checks the form's CSRF token (403 without
it) and sends an anonymous visitor to sign in, so that neither reaches the
handler's work. A page is a template rendered by :func:`render`, which also
writes the session cookie back when it changed and sets the headers that keep
the pages in their own origin (a strict Content-Security-Policy: no inline
script, no other origin).
"""

from __future__ import annotations

import urllib.parse
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ..errors import GenomenodeError
from ..web.body import read_body
from .session import COOKIE_NAME, CSRF_FIELD, SESSION_SECONDS, Session
from .site import Portal

__all__ = [
    "MAX_FIELD_CHARACTERS",
    "MAX_FORM_FIELDS",
    "CsrfRefused",
    "error_page",
    "form_or_refusal",
    "portal_of",
    "posted_form",
    "redirect",
    "refused_page",
    "render",
    "session_of",
    "sign_in_redirect",
    "wants_html",
]

#: Fields a portal form may post, and the longest value of one.
MAX_FORM_FIELDS = 40
MAX_FIELD_CHARACTERS = 5000

_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' "
        "data:; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


class CsrfRefused(Exception):
    """A form arrived without this session's CSRF token."""


def portal_of(request: Request) -> Portal:
    """The portal of the app answering ``request`` (``app.state.portal``)."""
    portal: Portal = request.app.state.portal
    return portal


def session_of(request: Request) -> Session:
    """The visitor's session (a new anonymous one if none opens); kept on the
    request so that one request reads the cookie once."""
    session = getattr(request.state, "portal_session", None)
    if session is None:
        session = portal_of(request).sealer.open(request.cookies.get(COOKIE_NAME))
        request.state.portal_session = session
    return session


def wants_html(request: Request) -> bool:
    """Whether the caller is a browser (asks for HTML before JSON)."""
    accept = request.headers.get("accept", "")
    if not accept or "text/html" not in accept:
        return False
    html_at = accept.find("text/html")
    json_at = accept.find("application/json")
    return json_at < 0 or html_at < json_at


async def posted_form(request: Request) -> dict[str, str]:
    """The posted form's fields (last value wins), once its CSRF token checks.

    Raises
    ------
    CsrfRefused
        No token, or not this session's (a 403 page, :func:`refused_page`).
    ValueError
        The body is not a form or over the limits (a 400 page).
    """
    body = await read_body(request)
    try:
        pairs = urllib.parse.parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=MAX_FORM_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise ValueError("the form could not be read") from None
    form = {name: value[:MAX_FIELD_CHARACTERS] for name, value in pairs}
    if not session_of(request).check_csrf(form.get(CSRF_FIELD)):
        raise CsrfRefused()
    return form


def _with_session(request: Request, response: Response) -> Response:
    session = session_of(request)
    if session.changed:
        portal = portal_of(request)
        response.set_cookie(
            COOKIE_NAME,
            portal.sealer.seal(session),
            max_age=SESSION_SECONDS,
            path="/",
            httponly=True,
            secure=portal.secure_cookies,
            samesite="lax",
        )
    for name, value in _SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if session.subject is not None:
        response.headers["Cache-Control"] = "no-store"
    return response


async def render(
    request: Request, template: str, *, status: int = 200, **values: Any
) -> Response:
    """``template`` rendered for this visitor (and their session cookie), in the
    thread pool: a page of many records is CPU work the event loop must not do."""
    portal = portal_of(request)
    session = session_of(request)
    environment: jinja2.Environment = request.app.state.portal_templates
    page = await run_in_threadpool(
        environment.get_template(template).render,
        portal=portal,
        subject=session.subject,
        csrf_field=CSRF_FIELD,
        csrf_token=session.csrf_token,
        path=request.url.path,
        sign_in_available=portal.broker is not None,
        **values,
    )
    return _with_session(request, HTMLResponse(page, status_code=status))


def redirect(request: Request, location: str) -> Response:
    """A 303 to a local ``location`` (with the session cookie)."""
    return _with_session(request, RedirectResponse(location, status_code=303))


async def error_page(request: Request, status: int, message: str) -> Response:
    """The error page: what went wrong, in the status it deserves."""
    return await render(request, "error.html", status=status, message=message)


def sign_in_redirect(request: Request) -> Response:
    """A 303 to sign in, coming back to this page afterwards."""
    target = urllib.parse.quote(request.url.path, safe="/")
    return redirect(request, f"/sign-in?next={target}")


async def refused_page(request: Request, error: Exception) -> Response:
    """The page for a form :func:`posted_form` refused: 403 without its CSRF
    token, the error's status for a :class:`GenomenodeError`, else 400."""
    if isinstance(error, CsrfRefused):
        return await error_page(
            request,
            403,
            "This form was sent without its security token (or with an old "
            "one), so nothing was done. Go back, reload the page and try again.",
        )
    if isinstance(error, GenomenodeError):
        return await error_page(request, error.status, str(error))
    return await error_page(request, 400, str(error))


async def form_or_refusal(
    request: Request, *, signed_in: bool = True
) -> dict[str, str] | Response:
    """What every form POST does first: the posted form, or the response to
    send instead of doing anything.

    The form's CSRF token is checked before anything else
    (:func:`refused_page` for a form that fails); then, with ``signed_in``,
    an anonymous visitor is sent to sign in (:func:`sign_in_redirect`).
    """
    try:
        form = await posted_form(request)
    except (CsrfRefused, ValueError, GenomenodeError) as error:
        return await refused_page(request, error)
    if signed_in and session_of(request).subject is None:
        return sign_in_redirect(request)
    return form
