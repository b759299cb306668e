"""``genomenode network``: run or inspect a Beacon network of nodes."""

from __future__ import annotations

import os
import pathlib

import click

from .audit import checkpoint_files, checkpoint_out, print_check, write_checkpoint
from .options import errors_to_exit, group, json_option, listen_options, print_result

__all__ = ["network"]

_network_yaml = click.argument(
    "network_yaml", type=click.Path(dir_okay=False, path_type=pathlib.Path)
)
_db_url = click.option(
    "--db-url", default=None, help="The audit database (default: SQLite)."
)


@group()
def network() -> None:
    """Run or inspect a Beacon network over the nodes of a NETWORK.yaml."""


@network.command("serve")
@_network_yaml
@listen_options(8090, "fans out and merges")
@json_option
@errors_to_exit
def network_serve(
    network_yaml: pathlib.Path, host: str, port: int, workers: int, as_json: bool
) -> None:
    """Serve the network: fan-out Beacon v2, harvested catalogue, node status.

    Prints the URLs, the nodes and warnings (with --json: one JSON line), then
    serves until Ctrl-C.
    """
    from ..index import describe_network
    from ..network.app import (
        NETWORK_ENVIRONMENT_VARIABLE,
        operator_token_from_environment,
    )
    from ..network.registry import load_registry
    from ..web.server import serve as run_server
    from .serve import print_served

    registry = load_registry(network_yaml)  # fail here, clearly, on a bad file
    token = operator_token_from_environment() or registry.operator_token
    served = describe_network(
        registry, listen=f"{host}:{port}", operator_token=token is not None
    )
    os.environ[NETWORK_ENVIRONMENT_VARIABLE] = str(network_yaml.resolve())
    print_served(served, as_json, f"network {registry.network_id}")
    run_server(
        "genomenode.app:network_app_from_environment",
        host=host,
        port=port,
        workers=workers,
    )


@network.command("status")
@_network_yaml
@json_option
@errors_to_exit
def network_status(network_yaml: pathlib.Path, as_json: bool) -> None:
    """Ask every node of NETWORK.yaml how it is: reachable, latency, datasets."""
    import asyncio

    from ..network.app import network_status as ask_nodes
    from ..network.registry import load_registry

    registry = load_registry(network_yaml)
    rows = asyncio.run(ask_nodes(registry))
    lines = [f"Network {registry.network_id} ({len(rows)} nodes)"]
    for row in rows:
        state = "up" if row["reachable"] else "DOWN"
        lines.append(
            f"  {row['id']:<16} {row['country']}  {state:<4} {row['status']:<7} "
            f"{row['latencyMs']:>8.1f} ms  version {row['version'] or '-'}  "
            f"last seen {row['lastSeen'] or 'never'}  "
            f"datasets: {', '.join(row['datasets']) or '-'}"
            + (f"  ({row['reason']})" if row.get("reason") else "")
        )
    print_result(
        {"network_id": registry.network_id, "nodes": rows}, as_json, "\n".join(lines)
    )


@network.command("audit-verify")
@_network_yaml
@checkpoint_files
@_db_url
@json_option
@errors_to_exit
def network_audit_verify(
    network_yaml: pathlib.Path,
    checkpoint_files: tuple[pathlib.Path, ...],
    db_url: str | None,
    as_json: bool,
) -> None:
    """Check the network's audit log of forwarded queries, and its checkpoints."""
    from ..access.audit_check import read_checkpoint_files
    from ..network.audit import verify_network_audit
    from ..network.registry import load_registry

    registry = load_registry(network_yaml)
    check = verify_network_audit(
        network_yaml.resolve().parent,
        db_url,
        network_id=registry.network_id,
        checkpoints=read_checkpoint_files(checkpoint_files),
    )
    print_check(check, as_json)


@network.command("audit-checkpoint")
@_network_yaml
@checkpoint_out
@_db_url
@json_option
@errors_to_exit
def network_audit_checkpoint(
    network_yaml: pathlib.Path,
    out: pathlib.Path | None,
    db_url: str | None,
    as_json: bool,
) -> None:
    """Verify the network's audit log, then sign a checkpoint of its head."""
    from ..network.audit import checkpoint_network_audit
    from ..network.registry import load_registry

    registry = load_registry(network_yaml)
    signed = checkpoint_network_audit(
        network_yaml.resolve().parent, db_url, network_id=registry.network_id
    )
    write_checkpoint(signed, out, as_json)
