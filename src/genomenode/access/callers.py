"""Who is asking: the passport and the relaying network of a request, verified once
per request, and the audit of what was decided for it.

:func:`caller_of` is how every service of the node learns who is asking; it
verifies the passport once per request. The routers' async dependency
(:func:`prepared`) or, in the Beacon handlers, the :func:`audited` context fetch
what that verification needs first, so the verification itself never waits on the
network. Each request that reached an access decision is audited once
(:meth:`~genomenode.access.service.AccessService.record_request`), through the
batched :class:`~genomenode.access.audit.AuditWriter`. A Beacon request relayed by
a trusted network carries a ``GA4GH-Network-Assertion``, verified by
:func:`network_of` before the route runs and named in the request's audit entry;
it never adds rights (see ``docs/network-trust.md``).

The node's :class:`~genomenode.access.service.AccessService` is
``app.state.access``, read through :func:`access_service`.
"""

from __future__ import annotations

import contextlib
import urllib.parse
from collections.abc import AsyncIterator

from fastapi import Request

from ..errors import AuthenticationRequired, PermissionDenied
from ..web.body import read_body
from .decision import ANONYMOUS, Caller, start_collecting, stop_collecting
from .network_trust import ASSERTION_HEADER, NetworkCaller
from .service import AccessService
from .tokens import Identity

__all__ = [
    "access_service",
    "audited",
    "caller_of",
    "identity_of",
    "network_of",
    "prepared",
    "received_path_and_query",
    "required_access_service",
]


def access_service(request: Request) -> AccessService | None:
    """The access service of the app answering ``request`` (``app.state.access``);
    None on an app without access control (every caller is then anonymous)."""
    service: AccessService | None = getattr(request.app.state, "access", None)
    return service


def required_access_service(request: Request) -> AccessService:
    """The app's access service, for a route that cannot answer without one.

    Raises
    ------
    PermissionDenied
        The app has no access control.
    """
    service = access_service(request)
    if service is None:
        raise PermissionDenied("access control is not configured on this node")
    return service


def caller_of(request: Request) -> Caller:
    """Who is asking, verified once per request (anonymous without a passport).

    It reads no network: the keys and userinfo a passport needs were fetched by
    the route's async dependency (:func:`prepared`, or :func:`audited`); a key
    missing then makes the passport fail with "keys unavailable".

    Raises
    ------
    TokenError
        A token was sent that does not verify (HTTP 401).
    """
    cached: Caller | None = getattr(request.state, "caller", None)
    if cached is not None:
        return cached
    service = access_service(request)
    if service is None:
        identity, caller = None, ANONYMOUS
    else:
        identity, caller = service.authenticate(request.headers.get("authorization"))
    request.state.identity = identity
    request.state.caller = caller
    return caller


def identity_of(request: Request) -> Identity:
    """The verified identity of a request that needs one.

    Raises
    ------
    AuthenticationRequired
        No passport was sent.
    """
    caller_of(request)
    identity: Identity | None = request.state.identity
    if identity is None:
        raise AuthenticationRequired("this needs a passport: Authorization: Bearer ...")
    return identity


async def network_of(request: Request) -> NetworkCaller | None:
    """The trusted network that relayed a request, verified once per request.

    None without an assertion, without trusted networks, or for an assertion no
    trusted network signed: the request is then a direct one.

    Raises
    ------
    TokenError
        The assertion names a trusted network but does not verify (HTTP 401).
    """
    if hasattr(request.state, "network"):
        cached: NetworkCaller | None = request.state.network
        return cached
    service = access_service(request)
    assertion = request.headers.get(ASSERTION_HEADER)
    network = None
    if service is not None and assertion is not None:
        if service.network_verifier is not None:
            await service.network_verifier.prepare(assertion)
        # The body is read (and kept by Starlette) only when an assertion binds it.
        network = service.verify_network(
            assertion,
            method=request.method,
            path_and_query=received_path_and_query(request, service.issuer),
            body=await read_body(request),
        )
    request.state.network = network
    return network


def received_path_and_query(request: Request, public_url: str) -> str:
    """The path and query of a request as addressed to the node's public URL.

    A proxy that strips the public URL's path prefix hands the app the rest; the
    network signed the whole path it sent to.
    """
    prefix = urllib.parse.urlsplit(public_url).path.rstrip("/")
    # Read from the ASGI scope as Starlette's ``request.url`` reads it, without
    # building the whole URL (a tenth of a relayed request's work).
    scope = request.scope
    path = scope["path"].replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")
    if prefix and not path.startswith(prefix + "/"):
        path = prefix + path
    # Bytes that are not UTF-8 cannot be what the network signed: they fail the
    # comparison (401) rather than the decoding.
    query = scope.get("query_string", b"").decode("utf-8", "replace")
    return f"{path}?{query}" if query else path


async def prepared(request: Request) -> None:
    """Router dependency: fetch what the request's passport needs before the
    handler runs (keys, userinfo; asynchronously, see
    :meth:`~genomenode.access.authorize.Authoriser.prepare`), so that
    :func:`caller_of` never waits on the network. Never raises.
    """
    service = access_service(request)
    if service is not None:
        await service.authoriser.prepare(request.headers.get("authorization"))


@contextlib.asynccontextmanager
async def audited(request: Request) -> AsyncIterator[None]:
    """Around a Beacon handler's work (``async with audited(request):``): verify a
    relaying network's assertion, fetch what the passport needs (:func:`prepared`),
    then audit the request's access decisions once it is answered.

    A context in the handler rather than a router dependency with ``yield``:
    FastAPI's machinery for those cost about a third of a relayed count query.

    Raises
    ------
    TokenError
        A network assertion does not verify (HTTP 401).
    AuthenticationRequired
        The node requires a trusted network's assertion and the request has none.
    """
    network = await network_of(request)
    service = access_service(request)
    if service is not None and service.require_network_assertion and network is None:
        service.audit.record(
            actor="unknown",
            action=f"{request.method} {request.url.path}",
            outcome="deny",
            reason="direct query: this node answers only through a trusted network",
        )
        raise AuthenticationRequired(
            "this node answers Beacon queries only when a trusted network relays "
            f"them ({ASSERTION_HEADER})"
        )
    await prepared(request)
    decisions = start_collecting()
    failed = False
    try:
        yield
    except Exception:
        failed = True
        raise
    finally:
        stop_collecting()
        service = access_service(request)
        caller: Caller | None = getattr(request.state, "caller", None)
        if service is not None and caller is not None:
            service.record_request(
                path=request.url.path,
                method=request.method,
                identity=getattr(request.state, "identity", None),
                caller=caller,
                decisions=decisions,
                failed=failed,
                network=network,
            )
