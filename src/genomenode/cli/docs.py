"""``genomenode docs``: the documentation, from the installed package."""

from __future__ import annotations

import click

from .options import command, errors_to_exit, json_option, print_result

__all__ = ["docs"]


@command()
@click.argument("topic", required=False)
@click.option("--path", "path_only", is_flag=True, help="Print the file's path only.")
@json_option
@errors_to_exit
def docs(topic: str | None, path_only: bool, as_json: bool) -> None:
    """Print one document (genomenode docs TOPIC), or list them all."""
    from ..docs import find_topic, topics

    if topic is None:
        found = topics()
        print_result(
            [
                {"name": item.name, "title": item.title, "path": str(item.path)}
                for item in found
            ],
            as_json,
            "\n".join(f"  {item.name:<16} {item.title}" for item in found)
            + "\n\ngenomenode docs TOPIC prints one (--path: where it is).",
        )
        return
    found_topic = find_topic(topic)
    if as_json:
        print_result(
            {"name": found_topic.name, "path": str(found_topic.path)}, True, ""
        )
    elif path_only:
        click.echo(found_topic.path)
    else:
        click.echo(found_topic.path.read_text(encoding="utf-8"), nl=False)
