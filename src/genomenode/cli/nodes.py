"""``genomenode init``: create a node."""

from __future__ import annotations

import os
import pathlib

import click

from .options import command, errors_to_exit, json_option, print_result

__all__ = ["init"]


@command()
@click.argument("node_dir", type=click.Path(file_okay=False, path_type=pathlib.Path))
@click.option("--node-id", required=True, help="Identifier of the node, e.g. fi-node.")
@click.option("--country", required=True, help="ISO 3166-1 alpha-2 code, e.g. FI.")
@click.option("--db-url", default=None, help="Metadata database URL (default: SQLite).")
@click.option(
    "--storage",
    default=None,
    help="Where published datasets live: a directory (default NODE_DIR/store) or "
    "s3://bucket/prefix (credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY).",
)
@click.option(
    "--storage-endpoint",
    default=None,
    help="Endpoint URL of the S3-compatible service (default: AWS_ENDPOINT_URL).",
)
@json_option
@errors_to_exit
def init(
    node_dir: pathlib.Path,
    node_id: str,
    country: str,
    db_url: str | None,
    storage: str | None,
    storage_endpoint: str | None,
    as_json: bool,
) -> None:
    """Create a node: settings, Crypt4GH keypair, empty store and database.

    The node's secret key is encrypted with $GENOMENODE_KEY_PASSPHRASE if it is
    set (and the node then needs it in its environment to serve).
    """
    from ..config import Secret
    from ..store.node import init_node

    passphrase = Secret(os.environ.get("GENOMENODE_KEY_PASSPHRASE", ""))
    with init_node(
        node_dir,
        node_id=node_id,
        country=country,
        db_url=db_url,
        passphrase=passphrase,
        storage=storage,
        storage_endpoint=storage_endpoint,
    ) as node:
        result = {
            "node_dir": str(node.config.node_dir),
            "node_id": node_id,
            "country": country,
            "public_key": str(node.config.path("public_key")),
            "storage": node.objects.url,
            "database": node.engine.url.render_as_string(hide_password=True),
        }
    print_result(
        result, as_json, f"Initialised node {node_id} ({country}) in {node_dir}"
    )
