"""``genomenode access``: the DAC workflow, from the operator's side."""

from __future__ import annotations

import datetime as dt
import json
import pathlib
from typing import Any

import click

from .options import (
    access_end,
    errors_to_exit,
    group,
    json_option,
    node_option,
    operator,
    print_result,
)

__all__ = ["access"]

# The workflow's states (genomenode.access.applications.STATES, pinned by a test):
# spelled out here so that `--help` need not import the database layer.
STATES = (
    "draft",
    "submitted",
    "returned",
    "approved",
    "rejected",
    "revoked",
    "expired",
)

_comment = click.option("--comment", default=None, help="Shown in the history.")
_application_id = click.argument("application_id", type=int)


def _print_list(items: list[Any], as_json: bool, empty: str) -> None:
    if as_json:
        click.echo(json.dumps([item.to_json() for item in items], indent=2))
    else:
        click.echo("\n".join(item.summary() for item in items) if items else empty)


@group()
def access() -> None:
    """The data access committee workflow: applications, decisions, grants."""


@access.command("applications")
@node_option
@click.option("--dataset", "dataset_id", default=None, help="Only this dataset's.")
@click.option(
    "--state",
    default=None,
    type=click.Choice(STATES),
    help="Only applications in this state.",
)
@json_option
@errors_to_exit
def access_applications(
    node_dir: pathlib.Path, dataset_id: str | None, state: str | None, as_json: bool
) -> None:
    """List every application (the operator's view), recording expiries first."""
    from ..access import applications, workflow
    from ..store.node import open_node

    with open_node(node_dir) as node:
        workflow.expire_due(node.engine)
        found = applications.list_applications(
            node.engine, as_operator=True, dataset_id=dataset_id, state=state
        )
    _print_list(found, as_json, "No applications.")


@access.command("show")
@node_option
@_application_id
@json_option
@errors_to_exit
def access_show(node_dir: pathlib.Path, application_id: int, as_json: bool) -> None:
    """Show one application: purpose, DUO recommendation, grant and history."""
    from ..access import applications
    from ..store.node import open_node

    with open_node(node_dir) as node:
        application = applications.get_application(
            node.engine, application_id, as_operator=True
        )
    print_result(application.to_json(), as_json, application.describe())


@access.command("approve")
@node_option
@_application_id
@click.option(
    "--until",
    required=True,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Last day of access (YYYY-MM-DD); access ends at 00:00 UTC the day after.",
)
@click.option(
    "--override",
    is_flag=True,
    help="Approve against a 'deny' DUO recommendation (needs --reason).",
)
@click.option(
    "--reason",
    default=None,
    help="Why the committee overrides the recommendation (kept in the audit log).",
)
@_comment
@json_option
@errors_to_exit
def access_approve(
    node_dir: pathlib.Path,
    application_id: int,
    until: dt.datetime,
    override: bool,
    reason: str | None,
    comment: str | None,
    as_json: bool,
) -> None:
    """Approve a submitted application: grant its applicant the dataset.

    Against a 'deny' DUO recommendation it needs --override --reason TEXT.
    """
    if override != (reason is not None):
        raise click.UsageError("--override and --reason go together")
    from ..access import workflow
    from ..store.node import open_node

    ends_at = (until + dt.timedelta(days=1)).replace(tzinfo=dt.UTC)
    with open_node(node_dir) as node:
        application = workflow.approve(
            node.engine,
            application_id,
            actor=operator(),
            ends_at=ends_at,
            comment=comment,
            override_reason=reason,
            as_operator=True,
        )
    print_result(
        application.to_json(),
        as_json,
        f"Approved application {application.id}: {application.applicant} may access "
        f"{application.dataset_id} until {access_end(ends_at)}"
        + (" (DUO recommendation overridden)." if override else "."),
    )


def _decision(name: str, function_name: str, verb: str, help_text: str) -> None:
    """Register ``genomenode access NAME ID [--comment C]``: one DAC decision."""

    @access.command(name, help=help_text)
    @node_option
    @_application_id
    @_comment
    @json_option
    @errors_to_exit
    def decide(
        node_dir: pathlib.Path, application_id: int, comment: str | None, as_json: bool
    ) -> None:
        from ..access import workflow
        from ..store.node import open_node

        with open_node(node_dir) as node:
            application = getattr(workflow, function_name)(
                node.engine,
                application_id,
                actor=operator(),
                comment=comment,
                as_operator=True,
            )
        print_result(
            application.to_json(),
            as_json,
            f"{verb} application {application.id} ({application.dataset_id}, "
            f"{application.applicant}): now {application.state}.",
        )


_decision("reject", "reject", "Rejected", "Reject a submitted application.")
_decision(
    "return",
    "return_for_changes",
    "Returned",
    "Return a submitted application to its applicant for changes.",
)
_decision(
    "revoke",
    "revoke",
    "Revoked",
    "Revoke an approved application: its grant ends at once.",
)


@access.command("grants")
@node_option
@click.option("--user", "subject", default=None, help="Only this subject's grants.")
@click.option("--dataset", "dataset_id", default=None, help="Only this dataset's.")
@click.option(
    "--all", "include_inactive", is_flag=True, help="Revoked and ended grants too."
)
@json_option
@errors_to_exit
def access_grants(
    node_dir: pathlib.Path,
    subject: str | None,
    dataset_id: str | None,
    include_inactive: bool,
    as_json: bool,
) -> None:
    """List the grants in force, or all of them with --all."""
    from ..access import applications
    from ..store.node import open_node

    with open_node(node_dir) as node, node.session() as session:
        found = applications.grants(
            session,
            subject=subject,
            dataset_id=dataset_id,
            include_inactive=include_inactive,
        )
    if as_json:
        click.echo(json.dumps([item.to_json() for item in found], indent=2))
    elif not found:
        click.echo("No grants.")
    else:
        click.echo(
            "\n".join(
                f"{item.id:>5}  application {item.application_id}: {item.describe()}"
                for item in found
            )
        )


@access.command("members")
@node_option
@click.argument("dataset_id")
@click.option("--add", "added", multiple=True, help="Put this subject on the DAC.")
@click.option("--remove", "removed", multiple=True, help="Take this subject off.")
@json_option
@errors_to_exit
def access_members(
    node_dir: pathlib.Path,
    dataset_id: str,
    added: tuple[str, ...],
    removed: tuple[str, ...],
    as_json: bool,
) -> None:
    """Show a dataset's data access committee; add or remove members."""
    from ..access import committee
    from ..store.node import open_node

    with open_node(node_dir) as node:
        members = committee.change_dac_members(
            node.engine, dataset_id, added=added, removed=removed, actor=operator()
        )
    print_result(
        {"dataset_id": dataset_id, "members": list(members)},
        as_json,
        f"Data access committee of {dataset_id}: {', '.join(members) or 'nobody'}",
    )


@access.command("rotate-key")
@node_option
@json_option
@errors_to_exit
def access_rotate_key(node_dir: pathlib.Path, as_json: bool) -> None:
    """Sign visas with a new key from now on; visas signed before keep verifying."""
    from ..access.visas import rotate_node_visa_key
    from ..store.node import open_node

    with open_node(node_dir) as node:
        rotation = rotate_node_visa_key(node.config.node_dir)
    print_result(
        rotation.to_json(),
        as_json,
        f"New visa signing key {rotation.kid}; {len(rotation.published)} keys "
        f"published in the JWKS (delete a key file in {rotation.directory} to "
        "retire it and its visas).",
    )
