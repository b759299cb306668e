"""``genomenode fetch``: a slice of a granted dataset over htsget."""

from __future__ import annotations

import pathlib

import click

from .options import command, errors_to_exit, json_option, print_result
from .researcher import broker_option

__all__ = ["fetch"]


@command()
@click.option(
    "--server", required=True, help="The node's URL, e.g. http://localhost:8080"
)
@click.option("--dataset", "dataset_id", required=True, help="Dataset or file id.")
@click.option("--region", default=None, help="NAME[:START-END], 1-based inclusive.")
@click.option(
    "--format",
    "output_format",
    default="VCF",
    show_default=True,
    type=click.Choice(["VCF", "BCF", "BAM"], case_sensitive=False),
)
@click.option(
    "--token",
    envvar="GENOMENODE_TOKEN",
    show_envvar=True,
    default=None,
    help="Your passport; better set in the environment. Never printed. "
    "Default: the token of your `genomenode login`, if any.",
)
@broker_option
@click.option(
    "--encrypt-to",
    "public_key",
    type=click.Path(dir_okay=False, exists=True, path_type=pathlib.Path),
    default=None,
    help="Keep the slice Crypt4GH-encrypted to this public key.",
)
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False, path_type=pathlib.Path)
)
@json_option
@errors_to_exit
def fetch(
    server: str,
    dataset_id: str,
    region: str | None,
    output_format: str,
    token: str | None,
    broker: str | None,
    public_key: pathlib.Path | None,
    out: pathlib.Path,
    as_json: bool,
) -> None:
    """Fetch a slice of a dataset over htsget, checked, to --out."""
    from ..transfer.client import fetch as fetch_slice
    from ..transfer.crypt4gh import public_key_from_text

    if token is None:
        from ..client.oidc import access_token

        # Signed in: the stored token (refreshed if it expired); else anonymous.
        stored = access_token(broker, required=broker is not None)
        token = stored.reveal() if stored is not None else None
    kind = "reads" if output_format.upper() == "BAM" else "variants"
    result = fetch_slice(
        server,
        dataset_id,
        out,
        region=region,
        output_format=output_format.upper(),
        token=token,
        recipient_public_key=(
            public_key_from_text(public_key.read_bytes()) if public_key else None
        ),
        kind=kind,
    )
    print_result(
        {
            "path": str(result.path),
            "bytes": result.num_bytes,
            "urls": result.num_urls,
            "encrypted": result.encrypted,
        },
        as_json,
        f"Wrote {result.path} ({result.num_bytes:,} bytes from {result.num_urls} URLs"
        + (", Crypt4GH-encrypted" if result.encrypted else "")
        + ").",
    )
