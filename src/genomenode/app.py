"""The node's one ASGI application: every service of the node under one app.

The Beacon v2 API under ``/api``, the DAC workflow under ``/access``, the node's
visa keys at ``/.well-known/jwks.json``, GA4GH htsget under ``/htsget`` and DRS
under ``/ga4gh/drs/v1``, the node's DCAT catalogue under ``/catalogue``, the
whitelisted analyses under ``/analysis`` (:mod:`genomenode.analysis.http`). The
web portal (:mod:`genomenode.portal`) answers browsers at ``/``. With the
``dev_identity_provider`` setting (never in ``prod``) the development identity
provider answers under ``/dev-idp``. OpenAPI
is published at ``/api/openapi.json`` (browsable at ``/api/docs``).

Each package's routes are module-level handlers on its routers (``beacon/http.py``,
``access/http.py``, ``transfer/htsget_http.py``...); :func:`create_app` keeps
what they share in ``app.state`` and includes the routers:

- ``app.state.node``: the node (its store, database and settings);
- ``app.state.beacon``: the :class:`~genomenode.beacon.http.BeaconService`;
- ``app.state.access``: the :class:`~genomenode.access.service.AccessService`;
- ``app.state.transfer``: the :class:`~genomenode.transfer.service.TransferService`;
- ``app.state.htsget_files``: the :class:`~genomenode.transfer.htsget.HtsgetFiles`;
- ``app.state.htsget_max_regions``: the ``htsget_max_regions`` setting;
- ``app.state.http_limits``: the settings'
  :class:`~genomenode.web.body.HttpLimits`;
- ``app.state.reference``: the :class:`~genomenode.reference.http.ReferenceService`;
- ``app.state.dev_identity_provider``: the development identity provider, if served.

CORS for browser clients of htsget and DRS is one middleware
(:class:`~genomenode.transfer.cors.CorsMiddleware`, the ``cors_*`` settings).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from .access import devidp_http, relay_http
from .access import http as access_http
from .access.devidp import DevIdentityProvider
from .access.service import build_access_service
from .analysis import http as analysis_http
from .beacon import http as beacon_http
from .beacon.framework import error_response
from .beacon.http import BeaconService
from .catalogue import http as catalogue_http
from .config import check_production_trust
from .disclosure.control import DisclosureControl
from .errors import ConfigError
from .index import node_index
from .index import router as index_router
from .network.app import NETWORK_ENVIRONMENT_VARIABLE
from .network.app import app_from_environment as network_app_from_registry
from .portal import mount_portal, network_portal, node_portal
from .qc import http as qc_http
from .reference import http as reference_http
from .store.node import Node, open_node
from .store.scans import start_scans
from .transfer import drs_http, htsget_http
from .transfer.cors import CorsMiddleware, CorsPolicy
from .transfer.htsget import HtsgetFiles
from .transfer.service import TransferService
from .version import __version__
from .web.body import HttpLimits
from .web.responses import install_error_handlers

__all__ = [
    "app_from_environment",
    "create_app",
    "disclosure_of",
    "network_app_from_environment",
]


def create_app(
    node: Node,
    *,
    base_url: str = "http://localhost:8080",
    count_threshold: int = 5,
    environment: str = "dev",
    dev_identity_provider: bool = False,
    disclosure_enabled: bool | None = None,
) -> FastAPI:
    """The ASGI app serving ``node``.

    Parameters
    ----------
    node
        An opened node (stays open for the app's lifetime).
    base_url
        The external URL the node is reached at (no trailing ``/api``); used in
        the Beacon map and identity.
    count_threshold
        Counts of people below this are never disclosed below record granularity.
    environment
        ``dev``, ``test`` or ``prod``, as the Beacon configuration reports it.
    dev_identity_provider
        Serve and trust the development identity provider (demo and tests only;
        refused in ``prod``).
    disclosure_enabled
        Overrides the node's ``disclosure_enabled`` setting (tests that check
        exact answers).

    Raises
    ------
    ConfigError
        In ``prod``, when the node would trust a development identity provider
        (:func:`~genomenode.config.check_production_trust`).
    """
    base_url = base_url.rstrip("/")
    check_production_trust(
        node.config,
        environment=environment,
        dev_identity_provider=dev_identity_provider,
    )
    provider = None
    if dev_identity_provider:
        provider = DevIdentityProvider(
            node.config.node_dir / "keys" / "dev-idp", issuer=f"{base_url}/dev-idp"
        )
    access = build_access_service(node, public_url=base_url, dev_provider=provider)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # The per-person scan processes start with the server, not with the
        # first such query (they import NumPy and zarr).
        start_scans(node.config.scan_processes)
        try:
            yield
        finally:
            access.audit.close()

    app = FastAPI(
        lifespan=lifespan,
        title=f"genomenode {node.config.node_id}",
        version=__version__,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.node = node
    app.state.beacon = BeaconService(
        node,
        base_url=base_url.rstrip("/") + "/api",
        count_threshold=count_threshold,
        environment=environment,
        max_filters=node.config.beacon_max_filters,
        filter_cpu_seconds=node.config.beacon_filter_cpu_seconds,
        disclosure=disclosure_of(node, count_threshold, disclosure_enabled),
    )
    app.state.access = access
    app.state.published = app.state.beacon.published
    app.state.transfer = TransferService(node, app.state.published, access)
    app.state.htsget_files = HtsgetFiles(app.state.transfer)
    app.state.htsget_max_regions = node.config.htsget_max_regions
    app.state.http_limits = HttpLimits.from_settings(node.config.values)
    app.include_router(beacon_http.router, prefix="/api")
    app.include_router(access_http.router, prefix="/access")
    app.include_router(relay_http.router, prefix="/access")
    app.include_router(htsget_http.router, prefix="/htsget")
    app.include_router(drs_http.router, prefix="/ga4gh/drs/v1")
    app.include_router(catalogue_http.router, prefix="/catalogue")
    app.state.analysis = analysis_http.AnalysisSettings.from_values(
        {**node.config.values, **_disclosure_override(disclosure_enabled)}
    )
    app.include_router(analysis_http.router, prefix="/analysis")
    app.state.reference = reference_http.ReferenceService(
        published=app.state.published,
        disclosure=app.state.beacon.disclosure,
        release_controlled=bool(node.config.values.get("reference_release_controlled")),
        node_id=node.config.node_id,
        country=str(node.config.values.get("country") or ""),
    )
    app.include_router(reference_http.router, prefix="/reference")
    app.include_router(qc_http.router, prefix="/qc")
    app.include_router(access_http.well_known_router)
    app.state.node_index = node_index(
        node.config.node_id, base_url, dev_identity_provider=provider is not None
    )
    # The portal's GET / (HTML for browsers, this index as JSON for the rest)
    # comes before the index's own route.
    mount_portal(
        app,
        node_portal(
            node,
            base_url=base_url,
            environment=environment,
            dev_identity_provider=provider is not None,
        ),
    )
    app.include_router(index_router)
    if provider is not None:
        app.state.dev_identity_provider = provider
        app.include_router(devidp_http.router, prefix="/dev-idp")
    identity = app.state.beacon.identity
    install_error_handlers(
        app,
        {"/api": lambda status, message: error_response(identity, status, message)},
    )
    # htsget and DRS for browser clients (cors_allowed_origins; none by default).
    app.add_middleware(
        CorsMiddleware, policy=CorsPolicy.from_settings(node.config.values)
    )
    beacon_http.publish_beacon_openapi(app)
    return app


def disclosure_of(
    node: Node, count_threshold: int, enabled: bool | None = None
) -> DisclosureControl:
    """The node's disclosure layer, from its settings (``enabled`` overrides)."""
    values = {**node.config.values, "beacon_count_threshold": count_threshold}
    if enabled is not None:
        values["disclosure_enabled"] = enabled
    return DisclosureControl.for_node(
        values, node.engine, node.config.node_dir / "keys"
    )


def _disclosure_override(enabled: bool | None) -> dict[str, bool]:
    return {} if enabled is None else {"disclosure_enabled": enabled}


def app_from_environment() -> FastAPI:
    """The app of the node in ``$GENOMENODE_NODE`` (uvicorn factory, per worker)."""
    node_dir = os.environ.get("GENOMENODE_NODE")
    if not node_dir:
        raise ConfigError("GENOMENODE_NODE is not set: which node should be served?")
    node = open_node(node_dir)
    return create_app(
        node,
        base_url=node.config.public_url,
        count_threshold=node.config.beacon_count_threshold,
        environment=node.config.beacon_environment,
        dev_identity_provider=node.config.dev_identity_provider,
    )


def network_app_from_environment() -> FastAPI:
    """The network app of ``$GENOMENODE_NETWORK`` with its portal at ``/``
    (uvicorn factory of ``genomenode network serve``, per worker)."""
    app = network_app_from_registry()
    path = pathlib.Path(os.environ[NETWORK_ENVIRONMENT_VARIABLE]).resolve()
    mount_portal(app, network_portal(app.state.registry, path.parent))
    return app
