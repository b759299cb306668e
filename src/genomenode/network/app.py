"""The network aggregator's ASGI app: the nodes' Beacon v2 API as one.

:func:`create_network_app` keeps what the routes share in ``app.state`` (the
registry, the pooled client, the signer, the circuit breakers, the audit log, the
harvester) and includes the routers: the Beacon API under ``/api``,
``/network/status`` and the network's JWKS (:mod:`genomenode.network.http`), and
the harvested catalogue under ``/catalogue`` (:mod:`genomenode.catalogue.http`),
re-harvested every five minutes (:mod:`genomenode.catalogue.harvest`), and the
federated analysis jobs under ``/analysis`` (:mod:`genomenode.network.analysis_http`).

Errors raised by routes become Beacon error documents in the node's one error
handler (:mod:`genomenode.web`), as documents of the network's Beacon identity.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import os
import pathlib
from collections.abc import AsyncIterator
from typing import Any

import httpx2
from fastapi import FastAPI

from ..access.network_trust import NetworkSigner
from ..beacon import framework
from ..beacon.http import publish_beacon_openapi
from ..catalogue import http as catalogue_http
from ..catalogue.harvest import CatalogueSource, Harvester
from ..catalogue.http import HarvestGate
from ..config import Secret
from ..errors import ConfigError
from ..version import __version__
from ..web.body import HttpLimits
from ..web.responses import install_error_handlers
from . import analysis_http, merge
from . import http as network_http
from . import reference as network_reference
from .audit import open_network_audit
from .breaker import Breakers
from .fanout import PerOriginTransport, probe_nodes
from .fast_path import BeaconGetFastPath
from .http import NetworkAudit
from .jobs import JOBS_DB_URL_ENVIRONMENT_VARIABLE, JobStore, open_job_store
from .node_client import HttpxNodeClient, NodeClient, NodeSender
from .registry import MIN_OPERATOR_TOKEN_LENGTH, Registry, load_registry
from .relay import RelayKeys

__all__ = [
    "AUDIT_DB_URL_ENVIRONMENT_VARIABLE",
    "CATALOGUE_HARVEST_INTERVAL_SECONDS",
    "NETWORK_ENVIRONMENT_VARIABLE",
    "OPERATOR_TOKEN_ENVIRONMENT_VARIABLE",
    "app_from_environment",
    "create_network_app",
    "network_status",
    "new_client",
    "operator_token_from_environment",
]

#: A database URL for the network's audit log (default: SQLite beside NETWORK.yaml).
AUDIT_DB_URL_ENVIRONMENT_VARIABLE = "GENOMENODE_NETWORK_AUDIT_DB_URL"
#: Names the NETWORK.yaml that ``genomenode network serve`` hands its workers.
NETWORK_ENVIRONMENT_VARIABLE = "GENOMENODE_NETWORK"
#: The operator token for on-demand harvests; wins over NETWORK.yaml's.
OPERATOR_TOKEN_ENVIRONMENT_VARIABLE = "GENOMENODE_NETWORK_OPERATOR_TOKEN"
#: How often the network re-harvests the nodes' DCAT catalogues.
CATALOGUE_HARVEST_INTERVAL_SECONDS = 300.0


@dataclasses.dataclass(frozen=True)
class _NetworkBeacon:
    """``app.state.beacon`` of the network: what the error handler and the shared
    Beacon handlers (:func:`~genomenode.beacon.http.beacon_identity`) need of the
    Beacon answering, its identity."""

    identity: framework.BeaconIdentity


def new_client(registry: Registry) -> httpx2.AsyncClient:
    """The pooled client a network app shares across all its requests.

    One pool per node, of at most ``max_connections_per_node`` connections
    (:class:`~genomenode.network.fanout.PerOriginTransport`). The client's own
    timeout is a backstop a little beyond the per-node timeout that
    :func:`fan_out` enforces (and that cancels the request).
    """
    per_node = registry.max_connections_per_node
    limits = httpx2.Limits(max_connections=per_node, max_keepalive_connections=per_node)
    return httpx2.AsyncClient(
        timeout=httpx2.Timeout(registry.timeout_seconds + 1.0),
        limits=limits,
        transport=PerOriginTransport(limits),
        follow_redirects=False,
    )


def create_network_app(
    registry: Registry,
    *,
    client: httpx2.AsyncClient | None = None,
    signer: NetworkSigner | None = None,
    audit: NetworkAudit | None = None,
    operator_token: Secret | None = None,
    breakers: Breakers | None = None,
    jobs: JobStore | None = None,
) -> FastAPI:
    """The ASGI app of a Beacon network over the registry's nodes.

    Parameters
    ----------
    registry
        The network and its nodes (``load_registry("NETWORK.yaml")``).
    client
        The client to ask nodes with (tests pass one over a mock or ASGI
        transport); by default one pooled client is created for the app's
        lifetime and closed when it shuts down. A client passed in stays the
        caller's to close.
    signer
        Signs every request forwarded to a node (``GA4GH-Network-Assertion``);
        its public keys are served at ``/.well-known/jwks.json`` for the nodes'
        ``trusted_networks`` setting. None: requests go unsigned.
    audit
        Records every forwarded query (an ``AuditWriter``; its ``record`` is
        called once per query, see :class:`NetworkAudit`). None: not recorded.
    operator_token
        The credential for ``POST /catalogue/harvest``; default the registry's
        ``operator_token``. With neither, anyone may harvest once a minute.
    breakers
        The nodes' circuit breakers (tests pass ones on a fake clock); by
        default new ones with the registry's ``circuit_breaker`` settings.
    jobs
        The analysis jobs (:mod:`~genomenode.network.jobs`); None: an in-memory
        store (jobs end with the process).

    Returns
    -------
    FastAPI
        ``app.state.registry``, ``app.state.client``, ``app.state.node_client``
        (the fan-out's), ``app.state.signer``, ``app.state.relay_keys`` (the
        nodes' relay keys, with a signer),
        ``app.state.harvester``, ``app.state.harvest_gate``,
        ``app.state.breakers``, ``app.state.audit``, ``app.state.beacon`` (the
        network's Beacon identity) and ``app.state.last_seen`` (node id → ISO
        time of its last answer) are set.
    """
    owned = client is None
    shared = client if client is not None else new_client(registry)
    # The fan-out's own lean client; a client passed in is used for it too.
    node_client: NodeSender = (
        NodeClient(max_connections=registry.max_connections_per_node)
        if owned
        else HttpxNodeClient(shared)
    )

    # Relay keys replace the per-request signature with a MAC, node by node, as
    # the nodes issue them (docs/network-trust.md).
    relay_keys = (
        RelayKeys(signer, node_client, timeout_seconds=registry.timeout_seconds)
        if signer is not None
        else None
    )

    harvester = Harvester(
        [
            CatalogueSource(node_id=node.id, country=node.country, url=node.url)
            for node in registry.nodes
        ],
        timeout_seconds=registry.timeout_seconds,
        client=shared,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        harvesting = asyncio.create_task(
            harvester.run_periodically(CATALOGUE_HARVEST_INTERVAL_SECONDS)
        )
        # Jobs whose runner process is gone wait for their owner's next request
        # (passports are never kept).
        await asyncio.to_thread(app.state.jobs.recover)
        try:
            yield
        finally:
            for running in list(app.state.analysis_runs.values()):
                running.cancel()
            harvesting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await harvesting
            if relay_keys is not None:
                await relay_keys.aclose()
            if owned:
                await shared.aclose()
            await node_client.aclose()
            close = getattr(audit, "close", None)
            if close is not None:
                close()  # what is queued is written before the process ends

    app = FastAPI(
        lifespan=lifespan,
        title=f"genomenode network {registry.network_id}",
        version=__version__,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.registry = registry
    app.state.http_limits = HttpLimits(max_body_bytes=registry.max_body_bytes)
    app.state.client = shared
    app.state.node_client = node_client
    app.state.audit = audit
    app.state.breakers = (
        breakers if breakers is not None else Breakers(registry.circuit_breaker)
    )
    app.state.last_seen = {}
    app.state.beacon = _NetworkBeacon(merge.network_identity(registry))
    app.state.harvester = harvester
    app.state.harvest_gate = HarvestGate(operator_token or registry.operator_token)
    app.state.signer = signer
    app.state.relay_keys = relay_keys
    app.state.jobs = jobs if jobs is not None else open_job_store(None, "memory")
    app.state.analysis_runs = {}
    app.include_router(network_http.router, prefix="/api")
    app.include_router(network_http.status_router, prefix="/network")
    app.include_router(catalogue_http.network_router, prefix="/catalogue")
    app.include_router(network_reference.router, prefix="/reference")
    app.include_router(network_http.well_known_router)
    app.include_router(analysis_http.router, prefix="/analysis")
    # The count queries' route without FastAPI's routing (network/fast_path.py).
    app.add_middleware(BeaconGetFastPath)
    identity = app.state.beacon.identity
    install_error_handlers(
        app,
        {
            "/api": lambda status, message: framework.error_response(
                identity, status, message
            )
        },
    )
    publish_beacon_openapi(app)
    return app


async def network_status(
    registry: Registry, *, client: httpx2.AsyncClient | None = None
) -> list[dict[str, Any]]:
    """Probe every node now; add when the running network last heard from it.

    Parameters
    ----------
    registry
        The network.
    client
        The client to use (default: a fresh one, closed afterwards).

    Returns
    -------
    list of dict
        :func:`~genomenode.network.fanout.probe_nodes` rows plus ``lastSeen``: from
        the network's ``/network/status`` at its ``public_url`` when it answers,
        else the time of this probe for the nodes that answered it (``None`` for
        the others).
    """
    owned = client is None
    client = client if client is not None else new_client(registry)
    try:
        rows = await probe_nodes(
            registry.nodes, timeout_seconds=registry.timeout_seconds, client=client
        )
        network_seen: dict[str, Any] = {}
        try:
            response = await client.get(
                f"{registry.public_url}/network/status",
                timeout=min(registry.timeout_seconds, 2.0),
            )
            listed = response.json().get("nodes", []) if response.is_success else []
            network_seen = {
                item["id"]: item.get("lastSeen")
                for item in listed
                if isinstance(item, dict) and "id" in item
            }
        except (httpx2.HTTPError, ValueError, AttributeError):
            network_seen = {}  # the network is not running: this probe is all we know
    finally:
        if owned:
            await client.aclose()
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    for row in rows:
        probed = now if row["status"] in ("ok", "error") and row["reachable"] else None
        row["lastSeen"] = network_seen.get(row["id"]) or probed
    return rows


def app_from_environment() -> FastAPI:
    """The network app of ``$GENOMENODE_NETWORK`` (uvicorn factory, per worker)."""
    path = os.environ.get(NETWORK_ENVIRONMENT_VARIABLE)
    if not path:
        raise ConfigError(
            f"{NETWORK_ENVIRONMENT_VARIABLE} is not set: which NETWORK.yaml?"
        )
    registry = load_registry(path)
    directory = pathlib.Path(path).resolve().parent
    # The network's signing keys live beside its registry (rotatable, 0600).
    signer = NetworkSigner(directory / "network-keys", issuer=registry.public_url)
    # Every forwarded query is in the network's own audit log, beside NETWORK.yaml
    # (or in $GENOMENODE_NETWORK_AUDIT_DB_URL), as well as in each node's.
    audit = open_network_audit(
        directory,
        os.environ.get(AUDIT_DB_URL_ENVIRONMENT_VARIABLE) or None,
        network_id=registry.network_id,
    )
    # Analysis jobs and their results outlive the process (network-analysis.db).
    jobs = open_job_store(
        directory, os.environ.get(JOBS_DB_URL_ENVIRONMENT_VARIABLE) or None
    )
    return create_network_app(
        registry,
        signer=signer,
        operator_token=operator_token_from_environment(),
        audit=audit,
        jobs=jobs,
    )


def operator_token_from_environment() -> Secret | None:
    """``$GENOMENODE_NETWORK_OPERATOR_TOKEN``, if set (too short: ConfigError)."""
    value = os.environ.get(OPERATOR_TOKEN_ENVIRONMENT_VARIABLE, "").strip()
    if not value:
        return None
    if len(value) < MIN_OPERATOR_TOKEN_LENGTH:
        raise ConfigError(
            f"{OPERATOR_TOKEN_ENVIRONMENT_VARIABLE} must be at least "
            f"{MIN_OPERATOR_TOKEN_LENGTH} characters"
        )
    return Secret(value)
