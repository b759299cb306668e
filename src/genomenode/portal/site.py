"""The portal of a node or of the network: what its pages share, and its mounting.

:class:`Portal` is kept in ``app.state.portal`` by :func:`mount_portal`. It knows
what it is the portal of (a node or the network), where its pages are published
(``public_url``), the broker visitors sign in at, the nodes it can reach, and two
HTTP clients: ``api``, which asks the app it is mounted on in-process (its
Beacon, access and catalogue APIs, exactly as an outside client would), and
``remote``, for the other nodes and the broker. The pages are Jinja2 templates
in ``templates/``; the CSS and the one small script in ``static/`` are served
from the package (nothing from a CDN).

Adding a page is a template and a handler in :mod:`genomenode.portal.http` (or
a module of its own with a router included by :func:`mount_portal`), and a
link in :data:`NAVIGATION`.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import importlib.resources
import pathlib
from collections.abc import AsyncIterator
from typing import Any, Literal

import httpx2
import jinja2
from fastapi import FastAPI, Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from ..catalogue.harvest import Harvester
from ..version import __version__
from ..vocab.duo import duo_terms
from .session import SessionSealer, load_session_key

__all__ = [
    "NAVIGATION",
    "PORTAL_BROKER_ENVIRONMENT_VARIABLE",
    "NodeLink",
    "Portal",
    "mount_portal",
    "set_visitor",
    "templates",
]

#: The broker the network's portal signs visitors in at (an OIDC issuer URL).
PORTAL_BROKER_ENVIRONMENT_VARIABLE = "GENOMENODE_PORTAL_BROKER"

#: The pages in the navigation bar: (path, label, who sees it: everyone, the
#: signed-in, or the signed-in on the network's portal).
NAVIGATION: tuple[tuple[str, str, str], ...] = (
    ("/", "Search", "everyone"),
    ("/datasets", "Datasets", "everyone"),
    ("/status", "Status", "everyone"),
    ("/applications", "My applications", "signed-in"),
    ("/my-access", "My access", "signed-in"),
    ("/jobs", "Analyses", "network"),
    ("/dac", "DAC inbox", "signed-in"),
)


@dataclasses.dataclass(frozen=True)
class NodeLink:
    """A node the portal reaches: its id, country and base URL."""

    node_id: str
    country: str
    url: str


@dataclasses.dataclass
class Portal:
    """What the portal's pages share (``app.state.portal``).

    Parameters
    ----------
    kind
        ``node`` or ``network``.
    name
        The node's or the network's id.
    public_url
        Where the pages are published (redirect URIs are built from it).
    broker
        The OIDC issuer visitors sign in at; None: no sign-in.
    secure_cookies
        Mark the session cookie ``Secure`` (everywhere but ``dev``).
    sealer
        Seals the session cookie.
    nodes
        The nodes whose access APIs the portal asks (a node: itself).
    timeout_seconds
        How long the portal waits for another node or the broker.
    """

    kind: Literal["node", "network"]
    name: str
    public_url: str
    broker: str | None
    secure_cookies: bool
    sealer: SessionSealer
    nodes: tuple[NodeLink, ...]
    timeout_seconds: float = 5.0
    api: httpx2.AsyncClient = dataclasses.field(init=False)
    remote: httpx2.AsyncClient = dataclasses.field(init=False)
    #: A node's own catalogue, read through its DCAT API (the network's is its
    #: harvester), and when it was last read (monotonic seconds).
    own_catalogue: Harvester | None = dataclasses.field(default=None, init=False)
    own_catalogue_read: float = dataclasses.field(default=-1e9, init=False)

    def node(self, node_id: str) -> NodeLink | None:
        return next((node for node in self.nodes if node.node_id == node_id), None)

    def client_for(self, node_id: str) -> tuple[httpx2.AsyncClient, str] | None:
        """The client and base URL that reach ``node_id``'s APIs (a node's own
        portal asks its own app in-process)."""
        node = self.node(node_id)
        if node is None:
            return None
        if self.kind == "node":
            return self.api, self.public_url
        return self.remote, node.url

    async def aclose(self) -> None:
        await self.api.aclose()
        await self.remote.aclose()


#: The visitor a page is being made for: their address and forwarding header.
_visitor: contextvars.ContextVar[tuple[tuple[str, int], str | None]] = (
    contextvars.ContextVar("portal_visitor", default=(("127.0.0.1", 0), None))
)


def set_visitor(request: Request) -> None:
    """Router dependency: the in-process API calls made for this page come from
    the visitor's address (and carry their ``X-Forwarded-For``), so the node's
    disclosure budgets and audit see the visitor, not one shared portal."""
    client = request.client
    address = (client.host, client.port) if client else ("127.0.0.1", 0)
    _visitor.set((address, request.headers.get("x-forwarded-for")))


class _VisitorTransport(httpx2.ASGITransport):
    """The app in-process, each request from the current page's visitor."""

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        address, forwarded = _visitor.get()
        # ASGITransport reads self.client while building the scope, before its
        # first await: no other task can change it in between.
        self.client = address
        if forwarded is not None:
            request.headers["X-Forwarded-For"] = forwarded
        return await super().handle_async_request(request)


class _VersionedStaticFiles(StaticFiles):
    """The portal's assets, cached by browsers for a year: their URLs carry the
    software version (``?v=``), so a new release is a new URL. Without it the
    stylesheet is revalidated on every page, a round trip before first paint."""

    async def get_response(self, path: str, scope: Any) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


def _static_directory() -> pathlib.Path:
    return pathlib.Path(str(importlib.resources.files(__package__) / "static"))


def _duo_label(term: str) -> str:
    known = duo_terms().get(term)
    return f"{known['label']} ({known['shorthand']})" if known else term


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f} %"


@jinja2.pass_context
def _static(context: Any, name: str) -> str:
    return f"/static/portal/{name}?v={__version__}"


def templates() -> jinja2.Environment:
    """The portal's template environment (autoescaping everything)."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader(__package__, "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["duo_label"] = _duo_label
    environment.filters["percent"] = _percent
    environment.globals["static"] = _static
    environment.globals["navigation"] = NAVIGATION
    environment.globals["version"] = __version__
    return environment


def mount_portal(app: FastAPI, portal: Portal) -> None:
    """Serve ``portal`` on ``app``: its pages at ``/``, its assets under
    ``/static/portal``; its clients closed when the app stops.

    The pages' routes must win over the app's ``GET /`` JSON index: include
    them before it (the home page answers JSON to API clients itself).
    """
    from . import http as portal_http  # the routes read app.state.portal
    from . import jobs as portal_jobs
    from . import results as portal_results

    portal.api = httpx2.AsyncClient(
        transport=_VisitorTransport(app=app),
        base_url=portal.public_url,
        timeout=httpx2.Timeout(portal.timeout_seconds + 30.0),
    )
    portal.remote = httpx2.AsyncClient(
        timeout=httpx2.Timeout(portal.timeout_seconds), follow_redirects=False
    )
    app.state.portal = portal
    app.state.portal_templates = templates()
    app.include_router(portal_http.router)
    app.include_router(portal_results.router)
    app.include_router(portal_jobs.router)
    app.mount(
        "/static/portal",
        _VersionedStaticFiles(directory=_static_directory()),
        name="portal-static",
    )
    previous = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(running: Any) -> AsyncIterator[Any]:
        async with previous(running) as state:
            try:
                yield state
            finally:
                await portal.aclose()

    app.router.lifespan_context = lifespan


def session_key_path(directory: pathlib.Path) -> pathlib.Path:
    """Where a node's or network's portal session key lives."""
    return directory / "portal-session.key"


def sealer_for(directory: pathlib.Path) -> SessionSealer:
    """The session sealer of the key in ``directory`` (created on first use)."""
    return SessionSealer(load_session_key(session_key_path(directory)))
