"""``genomenode ingest``, ``datasets`` and ``discard``: a node's datasets."""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Any

import click

from .options import (
    command,
    errors_to_exit,
    group,
    json_option,
    node_option,
    print_result,
    require_node,
)

__all__ = ["datasets", "discard", "ingest"]

_DATASET_YAML = click.argument(
    "dataset_yaml", type=click.Path(dir_okay=False, path_type=pathlib.Path)
)


@command()
@node_option
@_DATASET_YAML
@click.option(
    "--dry-run",
    is_flag=True,
    help="Check the description and its inputs and say what would happen; "
    "write nothing.",
)
@click.option(
    "--dask-scheduler",
    default=None,
    metavar="ADDRESS",
    help="Run the conversion's partitions on this Dask scheduler "
    "(tcp://host:8786); default: the dask_scheduler setting, else in-process.",
)
@json_option
@errors_to_exit
def ingest(
    node_dir: pathlib.Path,
    dataset_yaml: pathlib.Path,
    dry_run: bool,
    dask_scheduler: str | None,
    as_json: bool,
) -> None:
    """Validate, convert, encrypt, index and publish a dataset (resumable).

    Interrupted (Ctrl-C, a crash), the same command resumes where it stopped;
    nothing is published before the last step.
    """
    from ..store.node import open_node

    with open_node(node_dir) as node:
        if dry_run:
            _print_plan(node, dataset_yaml, as_json)
            return
        from ..ingest.pipeline import ingest as run_ingest

        try:
            result = run_ingest(
                node,
                dataset_yaml,
                show_progress=not as_json and sys.stderr.isatty(),
                dask_scheduler=dask_scheduler,
            )
        except KeyboardInterrupt:
            click.secho(
                "\nInterrupted: nothing was published. Run the same command again "
                "to resume where it stopped (finished steps are kept).",
                fg="yellow",
                err=True,
            )
            sys.exit(130)
    if result.status == "unchanged":
        text = f"{result.dataset_id}: already published with the same content"
    else:
        resumed = (
            f" (resumed after {', '.join(result.resumed_steps)})"
            if result.resumed_steps
            else ""
        )
        text = (
            f"Published {result.dataset_id}: {result.num_individuals} individuals, "
            f"{result.num_samples} genotyped samples, {result.num_variants} variants "
            f"in {result.seconds:.1f} s{resumed}"
        )
    print_result(result.asdict(), as_json, text)


def _print_plan(node: Any, dataset_yaml: pathlib.Path, as_json: bool) -> None:
    from ..ingest.plan import plan_ingest

    plan = plan_ingest(node, dataset_yaml)
    lines = {
        "publish": f"{dataset_yaml} checks out: the ingest would publish "
        f"{plan.dataset_id} ({plan.security_level}).",
        "resume": f"{dataset_yaml} checks out: the ingest would resume "
        f"{plan.dataset_id} after {', '.join(plan.done_steps)}.",
        "unchanged": f"{plan.dataset_id} is already published with the same "
        "content: the ingest would change nothing.",
    }
    if plan.action == "refuse":
        if as_json:
            print_result(plan.to_json(), as_json, "")
        else:
            click.secho(f"error: the ingest would be refused: {plan.reason}", err=True)
        sys.exit(1)
    text = lines[plan.action]
    if plan.num_samples is not None and plan.action in ("publish", "resume"):
        text += (
            f"\n  {plan.num_samples} genotyped samples on "
            f"{len(plan.contigs)} contig(s), {plan.num_clinical_records} clinical "
            f"records ({plan.samples_without_clinical} samples without one)"
            + (
                f", {plan.num_alignments} alignment files"
                if plan.num_alignments
                else ""
            )
            + "\n  The variant records are checked during the ingest itself."
        )
    print_result(plan.to_json(), as_json, text)


@group(invoke_without_command=True)
@node_option(required=False)
@json_option
@click.pass_context
@errors_to_exit
def datasets(
    context: click.Context, node_dir: pathlib.Path | None, as_json: bool
) -> None:
    """List the published datasets with their counts; subcommands act on them.

    Without a subcommand it lists the datasets of --node.
    """
    if context.invoked_subcommand is not None:
        return
    from ..store.node import open_node

    with open_node(require_node(context, node_dir)) as node:
        rows = node.dataset_summaries()
        title = f"Datasets on {node.config.node_id}"
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif not rows:
        click.echo("No published datasets.")
    else:
        from rich.console import Console

        Console().print(_datasets_table(rows, title))


def _datasets_table(rows: list[dict[str, Any]], title: str) -> Any:
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


@datasets.command("scaffold")
@click.argument("vcf", type=click.Path(dir_okay=False, path_type=pathlib.Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=pathlib.Path),
    default=None,
    help="Where to write it (default: dataset.yaml beside the VCF).",
)
@click.option("--id", "dataset_id", default=None, help="Default: the VCF's name.")
@click.option("--country", default=None, help="ISO 3166-1 alpha-2 code of the holder.")
@click.option(
    "--security-level",
    default="CONTROLLED",
    show_default=True,
    type=click.Choice(["PUBLIC", "REGISTERED", "CONTROLLED"]),
)
@click.option(
    "--clinical",
    type=click.Path(exists=True, path_type=pathlib.Path),
    default=None,
    help="Phenopackets (directory or .json/.jsonl), Beacon individuals or a .csv; "
    "default: write a clinical.csv listing the VCF's samples.",
)
@click.option("--contact-name", default=None, help="Who answers for the dataset.")
@click.option("--contact-email", default=None, help="Their e-mail address.")
@json_option
@errors_to_exit
def datasets_scaffold(
    vcf: pathlib.Path,
    out: pathlib.Path | None,
    dataset_id: str | None,
    country: str | None,
    security_level: str,
    clinical: pathlib.Path | None,
    contact_name: str | None,
    contact_email: str | None,
    as_json: bool,
) -> None:
    """Write a commented dataset.yaml for an existing VCF, to review and fill in."""
    from ..ingest.scaffold import scaffold_dataset

    scaffold = scaffold_dataset(
        vcf,
        out,
        dataset_id=dataset_id,
        country=country,
        security_level=security_level,
        clinical=clinical,
        contact_name=contact_name,
        contact_email=contact_email,
    )
    lines = [
        f"Wrote {scaffold.dataset_yaml} for {scaffold.dataset_id}: "
        f"{scaffold.num_samples} samples, {len(scaffold.contigs)} contigs, "
        f"{scaffold.assembly}."
    ]
    if scaffold.clinical_template is not None:
        lines.append(
            f"Wrote {scaffold.clinical_template}: one row per sample; fill in sex, "
            "age, phenotypes and diseases."
        )
    if scaffold.to_fill:
        lines.append(f"Fill in: {', '.join(scaffold.to_fill)} (written as TODO).")
    lines.append(
        f"Then check it: genomenode ingest --dry-run --node NODE_DIR "
        f"{scaffold.dataset_yaml}"
    )
    print_result(scaffold.to_json(), as_json, "\n".join(lines))


@command()
@node_option
@click.argument("dataset_id")
@json_option
@errors_to_exit
def discard(node_dir: pathlib.Path, dataset_id: str, as_json: bool) -> None:
    """Remove the staged work of an ingest that was not published."""
    from ..ingest.pipeline import discard as run_discard
    from ..store.node import open_node

    with open_node(node_dir) as node:
        found = run_discard(node, dataset_id)
    print_result(
        {"dataset_id": dataset_id, "discarded": found},
        as_json,
        f"Discarded the unpublished ingest of {dataset_id}."
        if found
        else f"No unpublished ingest of {dataset_id} to discard.",
    )
