"""``genomenode demo``: a live three-country network on localhost."""

from __future__ import annotations

import pathlib

import click

from .options import command, errors_to_exit, json_option, print_json_line

__all__ = ["demo"]


@command()
@click.option(
    "--dir",
    "directory",
    default="demo",
    show_default=True,
    type=click.Path(file_okay=False, path_type=pathlib.Path),
    help="Where the demo keeps its nodes and cohorts (reused when run again).",
)
@click.option("--scale", default=1.0, show_default=True, help="Cohort size factor.")
@click.option("--no-wait", is_flag=True, help="Stop after the examples.")
@json_option
@errors_to_exit
def demo(directory: pathlib.Path, scale: float, no_wait: bool, as_json: bool) -> None:
    """A live three-country network on localhost, demo identities (Ctrl-C stops).

    With --json, one JSON line on stdout says what is served once it is ready;
    the story goes to stderr.
    """
    from rich.console import Console

    from ..demo import run_demo

    run_demo(
        directory,
        scale=scale,
        wait=not no_wait,
        console=Console(stderr=as_json),
        on_ready=print_json_line if as_json else None,
    )
