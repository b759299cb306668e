"""``genomenode audit``: the node's keyed, chained audit log."""

from __future__ import annotations

import pathlib
import sys
from typing import Any

import click

from .options import errors_to_exit, group, json_option, node_option, print_result

__all__ = [
    "audit",
    "checkpoint_files",
    "checkpoint_out",
    "print_check",
    "write_checkpoint",
]

checkpoint_files = click.option(
    "--checkpoint",
    "checkpoint_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path),
    help="Checkpoints kept outside the node (one JWS per line); repeatable.",
)
checkpoint_out = click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=pathlib.Path),
    default=None,
    help="Append the checkpoint (one JWS line) to this file, kept off the node.",
)


@group()
def audit() -> None:
    """The node's keyed, chained audit log and its signed checkpoints."""


@audit.command("verify")
@node_option
@checkpoint_files
@json_option
@errors_to_exit
def audit_verify(
    node_dir: pathlib.Path, checkpoint_files: tuple[pathlib.Path, ...], as_json: bool
) -> None:
    """Check every entry and checkpoint of the audit log; name the first bad one."""
    from ..access.audit_check import read_checkpoint_files, verify
    from ..store.node import open_node

    tokens = read_checkpoint_files(checkpoint_files)
    with open_node(node_dir) as node, node.session() as session:
        check = verify(session, checkpoints=tokens)
    print_check(check, as_json)


@audit.command("checkpoint")
@node_option
@checkpoint_out
@json_option
@errors_to_exit
def audit_checkpoint(
    node_dir: pathlib.Path, out: pathlib.Path | None, as_json: bool
) -> None:
    """Verify the log, then sign a checkpoint of its head (printed as a JWS)."""
    from ..access.audit_check import checkpoint
    from ..store.node import open_node

    with open_node(node_dir) as node:
        signed = checkpoint(node.engine)
    write_checkpoint(signed, out, as_json)


def print_check(check: Any, as_json: bool) -> None:
    """Print what verify found; exit 1 unless the log is intact."""
    print_result(check.to_json(), as_json, check.describe())
    if not check.intact:
        sys.exit(1)


def write_checkpoint(signed: Any, out: pathlib.Path | None, as_json: bool) -> None:
    """Append a checkpoint to ``out`` (one line) and say so, or print its JWS."""
    if out is not None:
        with open(out, "a") as handle:
            handle.write(signed.token + "\n")
    text = (
        f"Checkpoint of entry {signed.entry_id} appended to {out}."
        if out is not None
        else signed.token
    )
    print_result(signed.to_json(), as_json, text)
