"""What a portal is the portal of: a node, or the network.

:func:`node_portal` and :func:`network_portal` read what the portal needs from
the node's settings or the network's registry: its name, the nodes it asks, the
broker visitors sign in at, where its session key lives, and whether cookies
must be ``Secure`` (everywhere but ``dev``).
"""

from __future__ import annotations

import os
import pathlib
from typing import TYPE_CHECKING

from .site import PORTAL_BROKER_ENVIRONMENT_VARIABLE, NodeLink, Portal, sealer_for

if TYPE_CHECKING:
    from ..network.registry import Registry
    from ..store.node import Node

__all__ = ["network_portal", "node_portal"]


def node_portal(
    node: Node, *, base_url: str, environment: str, dev_identity_provider: bool
) -> Portal:
    """The portal of ``node`` published at ``base_url``.

    Visitors sign in at the node's development identity provider when it
    serves one (demo and tests), else at its first trusted broker.
    """
    base_url = base_url.rstrip("/")
    broker: str | None = None
    if dev_identity_provider:
        broker = f"{base_url}/dev-idp"
    else:
        brokers = node.config.values.get("trusted_brokers") or []
        if brokers and isinstance(brokers[0], dict):
            broker = str(brokers[0].get("issuer") or "") or None
    config = node.config
    return Portal(
        kind="node",
        name=config.node_id,
        public_url=base_url,
        broker=broker,
        secure_cookies=environment != "dev",
        sealer=sealer_for(config.node_dir / "keys"),
        nodes=(NodeLink(config.node_id, config.country, base_url),),
    )


def network_portal(
    registry: Registry, directory: pathlib.Path, *, broker: str | None = None
) -> Portal:
    """The portal of the network in ``registry`` (NETWORK.yaml in ``directory``).

    Visitors sign in at ``broker``: by default the first of NETWORK.yaml's
    ``trusted_brokers`` (the network verifies its passports to know whose an
    analysis job is), unless ``$GENOMENODE_PORTAL_BROKER`` overrides it. The
    nodes must trust it too, as they do for any passport the network forwards.
    """
    if broker is None:
        broker = os.environ.get(PORTAL_BROKER_ENVIRONMENT_VARIABLE, "").strip() or None
    if broker is None and registry.trusted_brokers:
        broker = registry.trusted_brokers[0].issuer
    return Portal(
        kind="network",
        name=registry.network_id,
        public_url=registry.public_url.rstrip("/"),
        broker=broker.rstrip("/") if broker else None,
        secure_cookies=registry.environment != "dev",
        sealer=sealer_for(directory / "portal-keys"),
        nodes=tuple(
            NodeLink(node.id, node.country, node.url.rstrip("/"))
            for node in registry.nodes
        ),
        timeout_seconds=float(registry.timeout_seconds) + 1.0,
    )
