"""What a node or a network serves, said once: ``GET /`` and what ``serve`` prints.

:func:`describe_node` and :func:`describe_network` are what ``genomenode serve``
and ``genomenode network serve`` print when they start (as text, or as one JSON
line with ``--json``): the URLs, the node's id and datasets, and loud warnings
for settings that belong to development only. ``GET /`` on a node answers the
public part of it (:func:`node_index`): its id and its endpoints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .config import NodeConfig, is_development_identity_provider
from .version import __version__

if TYPE_CHECKING:
    from .network.registry import Registry
    from .store.node import Node

__all__ = [
    "describe_network",
    "describe_node",
    "development_warnings",
    "node_endpoints",
    "node_index",
    "router",
]

router = APIRouter()


def node_endpoints(base_url: str, *, dev_identity_provider: bool) -> dict[str, str]:
    """The absolute URL of each of a node's services under ``base_url``."""
    base = base_url.rstrip("/")
    endpoints = {
        "beacon": f"{base}/api",
        "service_info": f"{base}/api/service-info",
        "access": f"{base}/access",
        "htsget": f"{base}/htsget",
        "drs": f"{base}/ga4gh/drs/v1",
        "catalogue": f"{base}/catalogue",
        "jwks": f"{base}/.well-known/jwks.json",
        "openapi": f"{base}/api/openapi.json",
        "docs": f"{base}/api/docs",
    }
    if dev_identity_provider:
        endpoints["dev_identity_provider"] = f"{base}/dev-idp"
    return endpoints


def node_index(
    node_id: str, base_url: str, *, dev_identity_provider: bool
) -> dict[str, Any]:
    """The document ``GET /`` answers: the node and where its services are."""
    return {
        "id": node_id,
        "software": "genomenode",
        "version": __version__,
        "endpoints": node_endpoints(
            base_url, dev_identity_provider=dev_identity_provider
        ),
    }


@router.get("/", summary="The node and its endpoints")
def index(request: Request) -> JSONResponse:
    """The node's id and the URL of each service it runs."""
    return JSONResponse(request.app.state.node_index)


def development_warnings(config: NodeConfig, public_url: str) -> list[str]:
    """What in ``config`` is for development only, each in one sentence
    (``public_url``: the URL links are published under)."""
    warnings = []
    if config.values.get("dev_identity_provider"):
        warnings.append(
            "the development identity provider is ON: it issues passports to "
            "anyone, for any subject, DAC members included (demo and tests only; "
            "never expose this node)"
        )
    for name in ("trusted_brokers", "trusted_visa_issuers"):
        for entry in config.values.get(name, ()):
            if any(
                is_development_identity_provider(url)
                for key, url in entry.items()
                if key in ("issuer", "jku", "userinfo")
            ):
                warnings.append(
                    f"{name} trusts a development identity provider "
                    f"({entry['issuer']}): anyone can get a passport it accepts"
                )
    if "public_url" not in config.configured:
        warnings.append(
            f"public_url is not set: URLs are published under {public_url}; set "
            "public_url to the address clients reach this node at"
        )
    return warnings


def describe_node(node: Node, public_url: str, *, listen: str) -> dict[str, Any]:
    """What ``genomenode serve`` serves: node, URLs, datasets, warnings.

    Parameters
    ----------
    node
        The opened node.
    public_url
        The URL its links are published under (configured, or derived from the
        bound address).
    listen
        The address it binds, ``host:port``.
    """
    config = node.config
    return {
        "node_id": config.node_id,
        "country": config.country,
        "listen": listen,
        "public_url": public_url,
        "environment": config.values.get("beacon_environment", "dev"),
        "endpoints": node_endpoints(
            public_url,
            dev_identity_provider=bool(config.values.get("dev_identity_provider")),
        ),
        "datasets": [
            {"id": row["id"], "security_level": row["security_level"]}
            for row in node.dataset_summaries()
        ],
        "warnings": development_warnings(config, public_url),
    }


def describe_network(
    registry: Registry, *, listen: str, operator_token: bool
) -> dict[str, Any]:
    """What ``genomenode network serve`` serves: network, URLs, nodes, warnings.

    ``operator_token`` says whether harvests need a credential (from the
    registry or the environment).
    """
    base = registry.public_url.rstrip("/")
    warnings = []
    if not operator_token:
        warnings.append(
            "no operator_token: anyone may start a catalogue harvest (once a "
            "minute); set GENOMENODE_NETWORK_OPERATOR_TOKEN"
        )
    if registry.environment != "prod":
        warnings.append(f"environment is {registry.environment}, not prod")
    return {
        "network_id": registry.network_id,
        "listen": listen,
        "public_url": base,
        "environment": registry.environment,
        "endpoints": {
            "beacon": f"{base}/api",
            "service_info": f"{base}/api/service-info",
            "catalogue": f"{base}/catalogue/datasets",
            "status": f"{base}/network/status",
            "jwks": f"{base}/.well-known/jwks.json",
            "openapi": f"{base}/api/openapi.json",
            "docs": f"{base}/api/docs",
        },
        "nodes": [
            {"id": node.id, "country": node.country, "url": node.url}
            for node in registry.nodes
        ],
        "warnings": warnings,
    }
