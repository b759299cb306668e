"""``genomenode serve``: run a node's APIs."""

from __future__ import annotations

import os
import pathlib
from typing import Any

import click

from .options import (
    command,
    errors_to_exit,
    json_option,
    listen_options,
    node_option,
    print_json_line,
)

__all__ = ["print_served", "serve"]

_LABELS = {
    "beacon": "Beacon v2",
    "access": "access (DAC)",
    "htsget": "htsget",
    "drs": "DRS",
    "catalogue": "catalogue",
    "docs": "API docs",
    "dev_identity_provider": "dev identity provider",
    "status": "node status",
}


@command()
@node_option
@listen_options(8080, "answers requests")
@json_option
@errors_to_exit
def serve(
    node_dir: pathlib.Path, host: str, port: int, workers: int, as_json: bool
) -> None:
    """Serve the node: Beacon v2, access, htsget, DRS and catalogue APIs.

    Prints the URLs, the node's datasets and warnings for development settings
    (with --json: one JSON line), then serves until Ctrl-C.
    """
    from ..config import check_production_trust, public_url_for
    from ..index import describe_node
    from ..store.node import open_node
    from ..web.body import HttpLimits
    from ..web.server import serve as run_server

    # Fail here, clearly, on a bad node directory or an unsafe prod setting.
    with open_node(node_dir) as node:
        config = node.config
        check_production_trust(config)
        limits = HttpLimits.from_settings(config.values)
        configured = "public_url" in config.configured
        public_url = config.public_url if configured else public_url_for(host, port)
        served = describe_node(node, public_url, listen=f"{host}:{port}")
    if not configured:
        # Self-links (DRS, the dev provider's token URL...) must name the port
        # actually served; every worker reads this from its environment.
        os.environ["GENOMENODE_PUBLIC_URL"] = public_url
    os.environ["GENOMENODE_NODE"] = str(node_dir.resolve())
    print_served(served, as_json, f"node {served['node_id']} ({served['country']})")
    run_server(
        "genomenode.app:app_from_environment",
        host=host,
        port=port,
        workers=workers,
        limits=limits,
    )


def print_served(served: dict[str, Any], as_json: bool, what: str) -> None:
    """What a server serves: one JSON line, or lines of text; warnings on stderr."""
    for warning in served["warnings"]:
        click.secho(f"WARNING: {warning}", fg="red", bold=True, err=True)
    if as_json:
        print_json_line(served)
        return
    lines = [f"Serving {what} on {served['listen']}:"]
    for name, url in served["endpoints"].items():
        if name in _LABELS:
            lines.append(f"  {_LABELS[name]:<22} {url}")
    if "datasets" in served:
        shown = ", ".join(
            f"{item['id']} ({item['security_level']})" for item in served["datasets"]
        )
        lines.append(f"Datasets: {shown or 'none published yet (genomenode ingest)'}")
    if "nodes" in served:
        shown = ", ".join(f"{item['id']} {item['url']}" for item in served["nodes"])
        lines.append(f"Nodes: {shown}")
    lines.append("Ctrl-C stops.")
    click.echo("\n".join(lines))
