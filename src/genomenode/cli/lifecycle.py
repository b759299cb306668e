"""``genomenode datasets unpublish|publish|set-access|remove``: an operator's changes
to a published dataset, each a few lines over :mod:`genomenode.access.lifecycle`."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable
from typing import Any

import click

from .options import command, errors_to_exit, json_option, node_option, operator

__all__ = ["LIFECYCLE_COMMANDS"]


def _force_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--force",
        is_flag=True,
        help="Go ahead although grants or applications are affected (listed).",
    )(function)


def _report(change: Any, as_json: bool, done: str) -> None:
    """Print what a change did and, on stderr, the grants and applications it
    touches."""
    if as_json:
        click.echo(json.dumps(change.to_json(), indent=2, sort_keys=True))
        return
    click.echo(done if change.changed else f"{change.dataset_id}: nothing to change.")
    for grant in change.affected_grants:
        click.secho(
            f"  grant {grant.id} (application {grant.application_id}, "
            f"{grant.subject}, until {grant.ends_at.date().isoformat()}): {grant.why}",
            fg="yellow",
            err=True,
        )
    for application in change.affected_applications:
        click.secho(
            f"  application {application.id} ({application.applicant}, "
            f"{application.state}): {application.why}",
            fg="yellow",
            err=True,
        )


@command("unpublish")
@node_option
@click.argument("dataset_id")
@json_option
@errors_to_exit
def unpublish(node_dir: pathlib.Path, dataset_id: str, as_json: bool) -> None:
    """Hide a dataset from every service; its data and grants stay."""
    from ..access.lifecycle import unpublish as run_unpublish
    from ..store.node import open_node

    with open_node(node_dir) as node:
        change = run_unpublish(node, dataset_id, actor=operator())
    _report(
        change,
        as_json,
        f"Unpublished {dataset_id}: Beacon, htsget, DRS and the catalogues no longer "
        f"show it; its data are kept (`genomenode datasets publish {dataset_id}` "
        "undoes this).",
    )


@command("publish")
@node_option
@click.argument("dataset_id")
@json_option
@errors_to_exit
def publish(node_dir: pathlib.Path, dataset_id: str, as_json: bool) -> None:
    """Publish an unpublished dataset again."""
    from ..access.lifecycle import publish as run_publish
    from ..store.node import open_node

    with open_node(node_dir) as node:
        change = run_publish(node, dataset_id, actor=operator())
    _report(change, as_json, f"Published {dataset_id} again.")


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    """``LEVEL=GRANULARITY`` options as a mapping."""
    found: dict[str, str] = {}
    for value in values:
        key, separator, granularity = value.partition("=")
        if not separator or not key.strip() or not granularity.strip():
            raise click.BadParameter(
                f"{value!r} is not LEVEL=GRANULARITY (e.g. anonymous=count)",
                param_hint=option,
            )
        found[key.strip()] = granularity.strip()
    return found


def _data_use(values: tuple[str, ...]) -> list[dict[str, str]]:
    """``--duo TERM[=DISEASE]`` options as dataset.yaml's ``data_use`` list."""
    terms = []
    for value in values:
        term, _, disease = value.partition("=")
        terms.append(
            {"id": term.strip(), **({"disease": disease.strip()} if disease else {})}
        )
    return terms


@command("set-access")
@node_option
@click.argument("dataset_id")
@click.option(
    "--security-level",
    type=click.Choice(["PUBLIC", "REGISTERED", "CONTROLLED"]),
    default=None,
    help="Who is admitted at all.",
)
@click.option(
    "--beacon",
    "beacon_levels",
    multiple=True,
    metavar="LEVEL=GRANULARITY",
    help="Beacon granularity of anonymous, registered or granted callers "
    "(boolean, count, record), e.g. anonymous=count; repeatable.",
)
@click.option(
    "--duo",
    "duo_terms",
    multiple=True,
    metavar="TERM[=DISEASE]",
    help="The dataset's DUO terms, replacing the current ones, e.g. DUO:0000042 or "
    "DUO:0000007=ICD10:I25.1; repeatable.",
)
@_force_option
@json_option
@errors_to_exit
def set_access(
    node_dir: pathlib.Path,
    dataset_id: str,
    security_level: str | None,
    beacon_levels: tuple[str, ...],
    duo_terms: tuple[str, ...],
    force: bool,
    as_json: bool,
) -> None:
    """Change security level, Beacon granularities or DUO terms."""
    from ..access.access_change import set_access as run_set_access
    from ..store.node import open_node

    if security_level is None and not beacon_levels and not duo_terms:
        raise click.UsageError("give --security-level, --beacon or --duo")
    with open_node(node_dir) as node:
        change = run_set_access(
            node,
            dataset_id,
            actor=operator(),
            security_level=security_level,
            beacon=_pairs(beacon_levels, "--beacon") if beacon_levels else None,
            data_use=_data_use(duo_terms) if duo_terms else None,
            force=force,
        )
    changed = ", ".join(
        f"{field} {_show(before)} -> {_show(after)}"
        for field, (before, after) in change.changes.items()
    )
    _report(change, as_json, f"Changed the access to {dataset_id}: {changed}.")


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return ",".join(f"{key}={item}" for key, item in value.items())
    if isinstance(value, list):
        return ",".join(
            item["id"] + (f"={item['disease']}" if "disease" in item else "")
            for item in value
        )
    return str(value)


@command("remove")
@node_option
@click.argument("dataset_id")
@_force_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@errors_to_exit
def remove(
    node_dir: pathlib.Path, dataset_id: str, force: bool, yes: bool, as_json: bool
) -> None:
    """Delete a dataset: files, metadata, applications, grants."""
    from ..access.removal import remove as run_remove
    from ..store.node import open_node

    if not yes:
        click.confirm(
            f"Delete dataset {dataset_id}, its files, metadata, applications and "
            "grants? This cannot be undone",
            abort=True,
        )
    with open_node(node_dir) as node:
        change = run_remove(node, dataset_id, actor=operator(), force=force)
    _report(
        change,
        as_json,
        f"Removed {dataset_id}: its files, metadata, applications and grants are "
        "deleted (the audit log keeps their history).",
    )


#: The commands of the ``genomenode datasets`` group besides the listing.
LIFECYCLE_COMMANDS: tuple[click.Command, ...] = (
    unpublish,
    publish,
    set_access,
    remove,
)
