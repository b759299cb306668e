"""A Beacon v2 network: one API over every node of a registry.

``registry`` reads NETWORK.yaml, ``fanout`` asks every node concurrently (per-node
timeout, cancelled when late), ``merge`` turns the answers into one Beacon
response, ``app`` serves it (``genomenode network serve NETWORK.yaml``). See
``docs/network.md``.
"""

from __future__ import annotations

from .app import create_network_app
from .fanout import NodeAnswer, NodeStatus, expected_schema, fan_out, probe_nodes
from .merge import (
    merge_configuration,
    merge_filtering_terms,
    merge_info,
    merge_results,
    network_identity,
    node_statuses,
)
from .registry import RegisteredNode, Registry, load_registry, parse_registry

__all__ = [
    "NodeAnswer",
    "NodeStatus",
    "RegisteredNode",
    "Registry",
    "create_network_app",
    "expected_schema",
    "fan_out",
    "load_registry",
    "merge_configuration",
    "merge_filtering_terms",
    "merge_info",
    "merge_results",
    "network_identity",
    "node_statuses",
    "parse_registry",
    "probe_nodes",
]
