"""The ``genomenode`` command: a thin layer over the library."""

from __future__ import annotations

import datetime as dt
import functools
import getpass
import json
import logging
import os
import pathlib
import sys
from collections.abc import Callable
from typing import Any

import click

from . import __version__
from .cli_lifecycle import LIFECYCLE_COMMANDS
from .cli_researcher import RESEARCHER_COMMANDS
from .config import Secret
from .errors import GenomenodeError, InputError, NotFoundError

__all__ = ["main"]


def _node_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--node",
        "node_dir",
        envvar="GENOMENODE_NODE",
        required=True,
        type=click.Path(file_okay=False, path_type=pathlib.Path),
        help="The node directory (default: $GENOMENODE_NODE).",
    )(function)


def _json_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--json", "as_json", is_flag=True, help="Print the result as JSON for scripts."
    )(function)


def _errors_to_exit(function: Callable[..., Any]) -> Callable[..., Any]:
    """Print a GenomenodeError as one clear line and exit 1 (no traceback)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except GenomenodeError as error:
            click.secho(f"error: {error}", fg="red", err=True)
            sys.exit(1)

    return wrapper


def _print(result: dict[str, Any], as_json: bool, text: str) -> None:
    click.echo(json.dumps(result, indent=2, sort_keys=True) if as_json else text)


@click.group()
@click.version_option(__version__, prog_name="genomenode")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """genomenode: a node of a federated European genome network."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # bio2zarr reports every array of every partition at INFO; keep that for -vv.
    logging.getLogger("bio2zarr").setLevel(
        max(level, logging.WARNING if verbose < 2 else level)
    )


@cli.command()
@click.argument("node_dir", type=click.Path(file_okay=False, path_type=pathlib.Path))
@click.option("--node-id", required=True, help="Identifier of the node, e.g. fi-node.")
@click.option("--country", required=True, help="ISO 3166-1 alpha-2 code, e.g. FI.")
@click.option("--db-url", default=None, help="Metadata database URL (default: SQLite).")
@_json_option
@_errors_to_exit
def init(
    node_dir: pathlib.Path,
    node_id: str,
    country: str,
    db_url: str | None,
    as_json: bool,
) -> None:
    """Create a node: config, Crypt4GH keypair, empty store and database."""
    from .node import init_node

    passphrase = Secret(os.environ.get("GENOMENODE_KEY_PASSPHRASE", ""))
    node = init_node(
        node_dir, node_id=node_id, country=country, db_url=db_url, passphrase=passphrase
    )
    result = {
        "node_dir": str(node.config.node_dir),
        "node_id": node_id,
        "country": country,
        "public_key": str(node.config.path("public_key")),
        "database": node.engine.url.render_as_string(hide_password=True),
    }
    _print(result, as_json, f"Initialised node {node_id} ({country}) in {node_dir}")


@cli.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=pathlib.Path))
@click.option("--samples", default=2000, show_default=True, type=click.IntRange(2))
@click.option("--seed", default=7, show_default=True, type=int)
@click.option(
    "--length", default=5_000_000, show_default=True, type=click.IntRange(1000)
)
@click.option("--country", default="FI", show_default=True)
@click.option(
    "--security-level",
    default="CONTROLLED",
    show_default=True,
    type=click.Choice(["PUBLIC", "REGISTERED", "CONTROLLED"]),
)
@click.option("--dataset-id", default=None, help="Default: <country>-sim-<seed>.")
@_json_option
@_errors_to_exit
def simulate(
    out_dir: pathlib.Path,
    samples: int,
    seed: int,
    length: int,
    country: str,
    security_level: str,
    dataset_id: str | None,
    as_json: bool,
) -> None:
    """Simulate a realistic cohort (msprime) with clinical data and dataset.yaml."""
    from .simulate import simulate_cohort

    try:
        result = simulate_cohort(
            out_dir,
            samples=samples,
            seed=seed,
            length=length,
            country=country,
            security_level=security_level,
            dataset_id=dataset_id,
            progress=not as_json and sys.stderr.isatty(),
        )
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    summary = {
        "dataset_id": result.dataset_id,
        "dataset_yaml": str(result.dataset_yaml),
        "vcf": str(result.vcf_path),
        "num_samples": result.num_samples,
        "num_variants": result.num_variants,
    }
    _print(
        summary,
        as_json,
        f"Simulated {result.num_samples} samples × {result.num_variants} variants: "
        f"{result.dataset_yaml}",
    )


@cli.command()
@_node_option
@click.argument("dataset_yaml", type=click.Path(dir_okay=False, path_type=pathlib.Path))
@_json_option
@_errors_to_exit
def ingest(node_dir: pathlib.Path, dataset_yaml: pathlib.Path, as_json: bool) -> None:
    """Validate, convert, encrypt, index and publish a dataset (resumable)."""
    from .ingest import ingest as run_ingest
    from .node import open_node

    node = open_node(node_dir)
    try:
        result = run_ingest(
            node, dataset_yaml, show_progress=not as_json and sys.stderr.isatty()
        )
    except InputError as error:
        error.message += (
            " — nothing was published. Fix the input and run the same command "
            "again (unchanged work is reused), or remove the partial work with "
            f"`genomenode discard --node {node_dir} DATASET_ID`."
        )
        raise
    if result.status == "unchanged":
        text = f"{result.dataset_id}: already published with the same content"
    else:
        text = (
            f"Published {result.dataset_id}: {result.num_individuals} individuals, "
            f"{result.num_samples} genotyped samples, {result.num_variants} variants "
            f"in {result.seconds:.1f} s"
        )
    _print(result.asdict(), as_json, text)


@cli.group(invoke_without_command=True)
@click.option(
    "--node",
    "node_dir",
    envvar="GENOMENODE_NODE",
    type=click.Path(file_okay=False, path_type=pathlib.Path),
    help="The node directory (default: $GENOMENODE_NODE).",
)
@_json_option
@click.pass_context
@_errors_to_exit
def datasets(
    context: click.Context, node_dir: pathlib.Path | None, as_json: bool
) -> None:
    """List the published datasets, or change one."""
    if context.invoked_subcommand is not None:
        return
    if node_dir is None:
        raise click.UsageError("Missing option '--node' (or set $GENOMENODE_NODE).")
    from .node import open_node

    node = open_node(node_dir)
    rows = node.dataset_summaries()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No published datasets.")
        return
    from rich.console import Console

    Console().print(datasets_table(rows, f"Datasets on {node.config.node_id}"))


for _command in LIFECYCLE_COMMANDS:
    datasets.add_command(_command)


@cli.command()
@_node_option
@click.argument("dataset_id")
@_json_option
@_errors_to_exit
def discard(node_dir: pathlib.Path, dataset_id: str, as_json: bool) -> None:
    """Remove the partial work of an unpublished ingest."""
    from .ingest import discard as run_discard
    from .node import open_node

    found = run_discard(open_node(node_dir), dataset_id)
    _print(
        {"dataset_id": dataset_id, "discarded": found},
        as_json,
        f"Discarded the unpublished ingest of {dataset_id}."
        if found
        else f"No unpublished ingest of {dataset_id} to discard.",
    )


@cli.command()
@_node_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to bind.")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Server processes (each answers requests on its own).",
)
@_errors_to_exit
def serve(node_dir: pathlib.Path, host: str, port: int, workers: int) -> None:
    """Serve the node's APIs (Beacon v2 under /api) with uvicorn."""
    from .config import check_production_trust, public_url_for
    from .node import open_node
    from .web import HttpLimits, serve

    # Fail here, clearly, on a bad node directory or an unsafe prod setting.
    with open_node(node_dir) as node:
        check_production_trust(node.config)
        limits = HttpLimits.from_settings(node.config.values)
    if "public_url" not in node.config.configured:
        # Self-links (DRS, the dev provider's token URL...) must name the port
        # actually served; every worker reads this from its environment.
        public_url = public_url_for(host, port)
        os.environ["GENOMENODE_PUBLIC_URL"] = public_url
        click.echo(
            f"public_url is not set: publishing URLs under {public_url} "
            "(set public_url to the address clients reach this node at)",
            err=True,
        )
    os.environ["GENOMENODE_NODE"] = str(node_dir.resolve())
    serve(
        "genomenode.app:app_from_environment",
        host=host,
        port=port,
        workers=workers,
        limits=limits,
    )


@cli.command()
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
@_errors_to_exit
def demo(directory: pathlib.Path, scale: float, no_wait: bool) -> None:
    """A live three-country network on localhost (demo identities; Ctrl-C stops)."""
    from .demo import run_demo

    run_demo(directory, scale=scale, wait=not no_wait)


@cli.group()
def audit() -> None:
    """The node's keyed, chained audit log and its signed checkpoints."""


_checkpoint_files = click.option(
    "--checkpoint",
    "checkpoint_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path),
    help="Checkpoints kept outside the node (one JWS per line); repeatable.",
)


def _read_checkpoints(paths: tuple[pathlib.Path, ...]) -> list[str]:
    # Whatever the files hold is checked: a garbled line is a checkpoint that fails.
    return [
        token for path in paths for token in path.read_text(errors="replace").split()
    ]


def _print_audit_check(check: Any, as_json: bool) -> None:
    """Print what verify found; exit 1 unless the log is intact."""
    result = {
        "num_entries": check.num_entries,
        "intact": check.intact,
        "first_bad_id": check.first_bad_id,
        "problem": check.problem,
        "num_checkpoints": check.num_checkpoints,
    }
    if check.intact:
        text = (
            f"Audit log intact: {check.num_entries} entries verified, "
            f"{check.num_checkpoints} checkpoints match."
        )
    else:
        where = (
            f" at entry {check.first_bad_id}" if check.first_bad_id is not None else ""
        )
        text = (
            f"Audit log TAMPERED{where}: {check.problem} "
            f"({check.num_entries} entries before it verified)."
        )
    _print(result, as_json, text)
    if not check.intact:
        sys.exit(1)


@audit.command("verify")
@_node_option
@_checkpoint_files
@_json_option
@_errors_to_exit
def audit_verify(
    node_dir: pathlib.Path, checkpoint_files: tuple[pathlib.Path, ...], as_json: bool
) -> None:
    """Check every entry and checkpoint of the audit log; name the first bad one."""
    from .access.audit import verify
    from .node import open_node

    tokens = _read_checkpoints(checkpoint_files)
    with open_node(node_dir) as node, node.session() as session:
        check = verify(session, checkpoints=tokens)
    _print_audit_check(check, as_json)


_checkpoint_out = click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=pathlib.Path),
    default=None,
    help="Append the checkpoint (one JWS line) to this file, kept off the node.",
)


@audit.command("checkpoint")
@_node_option
@_checkpoint_out
@_json_option
@_errors_to_exit
def audit_checkpoint(
    node_dir: pathlib.Path, out: pathlib.Path | None, as_json: bool
) -> None:
    """Verify the log, then sign a checkpoint of its head (printed as a JWS)."""
    from .access.audit import checkpoint
    from .node import open_node

    with open_node(node_dir) as node:
        signed = checkpoint(node.engine)
    _print_checkpoint(signed, out, as_json)


def _print_checkpoint(signed: Any, out: pathlib.Path | None, as_json: bool) -> None:
    """Append a checkpoint to ``out`` (one line) and print it, or its JWS alone."""
    if out is not None:
        try:
            with open(out, "a") as handle:
                handle.write(signed.token + "\n")
        except OSError as error:
            raise click.FileError(str(out), hint=error.strerror) from None
    text = (
        f"Checkpoint of entry {signed.entry_id} appended to {out}."
        if out is not None
        else signed.token
    )
    _print(signed.to_json(), as_json, text)


@cli.group()
def access() -> None:
    """The data access committee workflow: applications, decisions, grants."""


_comment_option = click.option(
    "--comment", default=None, help="Shown in the application's history."
)


def _operator() -> str:
    """The actor of an operator's decision: ``operator:`` and the login name."""
    return f"operator:{getpass.getuser()}"


def _application_line(application: Any) -> str:
    return (
        f"{application.id:>5}  {application.state:<9}  {application.dataset_id}  "
        f"{application.applicant}  DUO says {application.recommendation.outcome}  "
        f"{application.project_title!r}"
    )


def _application_text(application: Any) -> str:
    purpose = application.purpose
    recommendation = application.recommendation
    lines = [
        f"Application {application.id}: {application.project_title}",
        f"  dataset:    {application.dataset_id}",
        f"  applicant:  {application.applicant}",
        f"  members:    {', '.join(application.members) or '-'}",
        f"  state:      {application.state} (version {application.version})",
        f"  purpose:    {purpose.term} {purpose.disease or ''}".rstrip(),
    ]
    if application.purpose_text:
        lines.append(f"              {application.purpose_text}")
    lines.append(f"  DUO recommendation: {recommendation.outcome}")
    lines += [f"    - {reason}" for reason in recommendation.reasons]
    if application.grant is not None:
        lines.append(f"  grant:      {_grant_text(application.grant)}")
    lines.append("  events:")
    for event in application.events:
        lines.append(
            f"    {event.at.isoformat(timespec='seconds')}  {event.actor}  "
            f"{event.action}: {event.from_state or '-'} -> {event.to_state}"
            + (f"  ({event.comment})" if event.comment else "")
        )
    return "\n".join(lines)


def _grant_text(grant: Any) -> str:
    if grant.revoked_at is not None:
        status = f"revoked {grant.revoked_at.isoformat()} by {grant.revoked_by}"
    elif grant.active(dt.datetime.now(dt.UTC)):
        status = "active"
    else:
        status = "ended"
    return (
        f"{grant.subject} on {grant.dataset_id} "
        f"from {grant.starts_at.isoformat(timespec='seconds')} "
        f"until {grant.ends_at.isoformat(timespec='seconds')} ({status})"
    )


@access.command("applications")
@_node_option
@click.option("--dataset", "dataset_id", default=None, help="Only this dataset's.")
@click.option(
    "--state",
    default=None,
    type=click.Choice(
        ["draft", "submitted", "returned", "approved", "rejected", "revoked", "expired"]
    ),
    help="Only applications in this state.",
)
@_json_option
@_errors_to_exit
def access_applications(
    node_dir: pathlib.Path, dataset_id: str | None, state: str | None, as_json: bool
) -> None:
    """List applications (all of them: the operator's view); records expiries first."""
    from .access import workflow
    from .node import open_node

    with open_node(node_dir) as node:
        workflow.expire_due(node.engine)
        found = workflow.list_applications(
            node.engine, as_operator=True, dataset_id=dataset_id, state=state
        )
    if as_json:
        click.echo(json.dumps([item.to_json() for item in found], indent=2))
    elif not found:
        click.echo("No applications.")
    else:
        click.echo("\n".join(_application_line(item) for item in found))


@access.command("show")
@_node_option
@click.argument("application_id", type=int)
@_json_option
@_errors_to_exit
def access_show(node_dir: pathlib.Path, application_id: int, as_json: bool) -> None:
    """Show one application: purpose, DUO recommendation, grant and history."""
    from .access import workflow
    from .node import open_node

    with open_node(node_dir) as node:
        application = workflow.get_application(
            node.engine, application_id, as_operator=True
        )
    _print(application.to_json(), as_json, _application_text(application))


@access.command("approve")
@_node_option
@click.argument("application_id", type=int)
@click.option(
    "--until",
    required=True,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Last day of access (YYYY-MM-DD); access ends at 00:00 UTC the day after.",
)
@_comment_option
@_json_option
@_errors_to_exit
def access_approve(
    node_dir: pathlib.Path,
    application_id: int,
    until: dt.datetime,
    comment: str | None,
    as_json: bool,
) -> None:
    """Approve a submitted application: grant its applicant the dataset."""
    from .access import workflow
    from .node import open_node

    ends_at = (until + dt.timedelta(days=1)).replace(tzinfo=dt.UTC)
    with open_node(node_dir) as node:
        application = workflow.approve(
            node.engine,
            application_id,
            actor=_operator(),
            ends_at=ends_at,
            comment=comment,
            as_operator=True,
        )
    _print(
        application.to_json(),
        as_json,
        f"Approved application {application.id}: {application.applicant} may access "
        f"{application.dataset_id} until {ends_at.isoformat()}.",
    )


def _decided(application: Any, verb: str, as_json: bool) -> None:
    _print(
        application.to_json(),
        as_json,
        f"{verb} application {application.id} ({application.dataset_id}, "
        f"{application.applicant}): now {application.state}.",
    )


def _committee_decision(
    name: str, function_name: str, verb: str, help_text: str
) -> None:
    """Register ``genomenode access NAME ID [--comment C]``: one DAC decision."""

    @access.command(name, help=help_text)
    @_node_option
    @click.argument("application_id", type=int)
    @_comment_option
    @_json_option
    @_errors_to_exit
    def command(
        node_dir: pathlib.Path, application_id: int, comment: str | None, as_json: bool
    ) -> None:
        from .access import workflow
        from .node import open_node

        decide = getattr(workflow, function_name)
        with open_node(node_dir) as node:
            application = decide(
                node.engine,
                application_id,
                actor=_operator(),
                comment=comment,
                as_operator=True,
            )
        _decided(application, verb, as_json)


for _name, _function, _verb, _help in (
    ("reject", "reject", "Rejected", "Reject a submitted application."),
    (
        "return",
        "return_for_changes",
        "Returned",
        "Return a submitted application to its applicant for changes.",
    ),
    (
        "revoke",
        "revoke",
        "Revoked",
        "Revoke an approved application: its grant ends at once.",
    ),
):
    _committee_decision(_name, _function, _verb, _help)


@access.command("grants")
@_node_option
@click.option("--user", "subject", default=None, help="Only this subject's grants.")
@click.option("--dataset", "dataset_id", default=None, help="Only this dataset's.")
@click.option(
    "--all", "include_inactive", is_flag=True, help="Revoked and ended grants too."
)
@_json_option
@_errors_to_exit
def access_grants(
    node_dir: pathlib.Path,
    subject: str | None,
    dataset_id: str | None,
    include_inactive: bool,
    as_json: bool,
) -> None:
    """List the grants (entitlements) in force, or all of them with --all."""
    from .access import workflow
    from .node import open_node

    with open_node(node_dir) as node, node.session() as session:
        found = workflow.grants(
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
                f"{item.id:>5}  application {item.application_id}: {_grant_text(item)}"
                for item in found
            )
        )


@access.command("members")
@_node_option
@click.argument("dataset_id")
@click.option("--add", "added", multiple=True, help="Put this subject on the DAC.")
@click.option("--remove", "removed", multiple=True, help="Take this subject off.")
@_json_option
@_errors_to_exit
def access_members(
    node_dir: pathlib.Path,
    dataset_id: str,
    added: tuple[str, ...],
    removed: tuple[str, ...],
    as_json: bool,
) -> None:
    """Show a dataset's data access committee; add or remove members."""
    from .access import workflow
    from .node import open_node

    with open_node(node_dir) as node:
        with node.session() as session:
            published = {item.dataset_id for item in workflow.catalogue_items(session)}
        if dataset_id not in published:
            raise NotFoundError(f"dataset {dataset_id!r} is not published on this node")
        for subject in added:
            workflow.add_dac_member(
                node.engine, dataset_id=dataset_id, subject=subject, actor=_operator()
            )
        for subject in removed:
            workflow.remove_dac_member(
                node.engine, dataset_id=dataset_id, subject=subject, actor=_operator()
            )
        with node.session() as session:
            members = sorted(workflow.dac_members(session, dataset_id))
    _print(
        {"dataset_id": dataset_id, "members": members},
        as_json,
        f"Data access committee of {dataset_id}: {', '.join(members) or 'nobody'}",
    )


@access.command("rotate-key")
@_node_option
@_json_option
@_errors_to_exit
def access_rotate_key(node_dir: pathlib.Path, as_json: bool) -> None:
    """Start signing visas with a new key; visas signed before keep verifying."""
    from .access.visas import SigningKeys
    from .node import open_node

    with open_node(node_dir) as node:
        keys = SigningKeys(node.config.node_dir / "keys" / "visas")
        kid = keys.rotate()
        published = [key["kid"] for key in keys.jwks()["keys"]]
    _print(
        {"kid": kid, "published": published},
        as_json,
        f"New visa signing key {kid}; {len(published)} keys published in the JWKS "
        "(delete a key file in keys/visas/ to retire it and its visas).",
    )


@cli.group()
def keys() -> None:
    """Crypt4GH keys of a researcher (to receive data encrypted to them)."""


@keys.command("generate")
@click.argument("prefix", type=click.Path(dir_okay=False, path_type=pathlib.Path))
@click.option(
    "--passphrase",
    envvar="GENOMENODE_KEY_PASSPHRASE",
    default="",
    help="Protect the secret key (or set GENOMENODE_KEY_PASSPHRASE); empty: none.",
)
@_json_option
@_errors_to_exit
def keys_generate(prefix: pathlib.Path, passphrase: str, as_json: bool) -> None:
    """Write PREFIX.sec and PREFIX.pub, readable by the crypt4gh tools."""
    from .transfer.crypt4gh import generate_user_keypair

    secret, public = prefix.with_suffix(".sec"), prefix.with_suffix(".pub")
    prefix.parent.mkdir(parents=True, exist_ok=True)
    generate_user_keypair(secret, public, passphrase or None)
    _print(
        {"secret_key": str(secret), "public_key": str(public)},
        as_json,
        f"Wrote {secret} (keep it) and {public} (send it: Crypt4GH-Public-Key).",
    )


@cli.command()
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
    default=None,
    help="Your passport (or set GENOMENODE_TOKEN); never printed. "
    "Default: the token of your `genomenode login`, if any.",
)
@click.option(
    "--broker",
    envvar="GENOMENODE_BROKER",
    default=None,
    help="Which sign-in's token to use (default: the last `genomenode login`).",
)
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
@_json_option
@_errors_to_exit
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
    """Fetch a slice of a dataset over htsget, verified, to --out."""
    from .transfer.client import fetch as fetch_slice
    from .transfer.crypt4gh import public_key_from_text

    if token is None:
        from .client.oidc import access_token

        # Signed in: the stored token (refreshed if it expired); else anonymous.
        stored = access_token(broker, required=broker is not None)
        token = stored.reveal() if stored is not None else None

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
        kind="reads" if output_format.upper() == "BAM" else "variants",
    )
    _print(
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


for _command in RESEARCHER_COMMANDS:
    cli.add_command(_command)


@cli.group()
def network() -> None:
    """Run or inspect a Beacon network over the nodes of a NETWORK.yaml."""


_network_file = click.argument(
    "network_yaml", type=click.Path(dir_okay=False, path_type=pathlib.Path)
)


@network.command("serve")
@_network_file
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8090, show_default=True, type=int, help="Port to bind.")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Server processes (each fans out and merges on its own).",
)
@_errors_to_exit
def network_serve(
    network_yaml: pathlib.Path, host: str, port: int, workers: int
) -> None:
    """Serve the network's Beacon v2 API (under /api) with uvicorn."""
    from .network.app import NETWORK_ENVIRONMENT_VARIABLE
    from .network.registry import load_registry
    from .web import serve

    load_registry(network_yaml)  # fail here, clearly, on a bad NETWORK.yaml
    os.environ[NETWORK_ENVIRONMENT_VARIABLE] = str(network_yaml.resolve())
    serve(
        "genomenode.network.app:app_from_environment",
        host=host,
        port=port,
        workers=workers,
    )


@network.command("status")
@_network_file
@_json_option
@_errors_to_exit
def network_status(network_yaml: pathlib.Path, as_json: bool) -> None:
    """Ask every node of NETWORK.yaml how it is: reachable, latency, datasets."""
    import asyncio

    from .network.app import network_status
    from .network.registry import load_registry

    registry = load_registry(network_yaml)
    rows = asyncio.run(network_status(registry))
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
    _print(
        {"network_id": registry.network_id, "nodes": rows}, as_json, "\n".join(lines)
    )


@network.command("audit-verify")
@_network_file
@_checkpoint_files
@click.option("--db-url", default=None, help="The audit database (default: SQLite).")
@_json_option
@_errors_to_exit
def network_audit_verify(
    network_yaml: pathlib.Path,
    checkpoint_files: tuple[pathlib.Path, ...],
    db_url: str | None,
    as_json: bool,
) -> None:
    """Check the network's audit log of forwarded queries, and its checkpoints."""
    from .network.audit import verify_network_audit
    from .network.registry import load_registry

    registry = load_registry(network_yaml)
    check = verify_network_audit(
        network_yaml.resolve().parent,
        db_url,
        network_id=registry.network_id,
        checkpoints=_read_checkpoints(checkpoint_files),
    )
    _print_audit_check(check, as_json)


@network.command("audit-checkpoint")
@_network_file
@_checkpoint_out
@click.option("--db-url", default=None, help="The audit database (default: SQLite).")
@_json_option
@_errors_to_exit
def network_audit_checkpoint(
    network_yaml: pathlib.Path,
    out: pathlib.Path | None,
    db_url: str | None,
    as_json: bool,
) -> None:
    """Verify the network's audit log, then sign a checkpoint of its head."""
    from .network.audit import checkpoint_network_audit
    from .network.registry import load_registry

    registry = load_registry(network_yaml)
    signed = checkpoint_network_audit(
        network_yaml.resolve().parent, db_url, network_id=registry.network_id
    )
    _print_checkpoint(signed, out, as_json)


def datasets_table(rows: list[dict[str, Any]], title: str) -> Any:
    """A rich table of dataset summaries (``Node.dataset_summaries``)."""
    from rich.table import Table

    table = Table(title=title)
    for column in ("id", "country", "security", "individuals", "samples", "variants"):
        table.add_column(column, justify="right" if column[-1] == "s" else "left")
    for row in rows:
        table.add_row(
            str(row["id"]),
            str(row["country"]),
            str(row["security_level"]),
            f"{row['num_individuals']:,}",
            f"{row['num_samples']:,}",
            f"{row['num_variants']:,}",
        )
    return table


def main() -> None:
    """Entry point of the ``genomenode`` command."""
    cli()
