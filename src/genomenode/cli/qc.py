"""``genomenode qc``: quality control of a published dataset (docs/qc.md).

``qc run`` measures sample and variant QC and stores it with the dataset;
``qc report`` writes the self-contained HTML report or prints the JSON.
"""

from __future__ import annotations

import pathlib

import click

from .options import errors_to_exit, group, json_option, node_option, print_result

__all__ = ["qc", "qc_report", "qc_run"]


@group()
def qc() -> None:
    """1+MG-ready quality control: sample and variant QC, and its report."""


@qc.command("run")
@node_option
@json_option
@click.option(
    "--dask-scheduler",
    default=None,
    metavar="ADDRESS",
    help="Run the passes over the calls and the kinship blocks on this Dask "
    "scheduler (tcp://host:8786); default: the dask_scheduler setting, else "
    "in-process.",
)
@click.argument("dataset")
@errors_to_exit
def qc_run(
    node_dir: pathlib.Path, as_json: bool, dask_scheduler: str | None, dataset: str
) -> None:
    """Run sample and variant QC on DATASET and store the results with it."""
    from ..qc.run import run_qc
    from ..store.node import open_node

    with open_node(node_dir) as node:
        result = run_qc(node, dataset, dask_scheduler=dask_scheduler)
    summary = result["summary"]
    ready = "yes" if result["declaration"]["one_plus_mg_ready"] else "no"
    text = (
        f"{dataset}: {summary['num_samples_passed']} of {summary['num_samples']} "
        f"samples and {summary['num_variants_passed']} of {summary['num_variants']} "
        f"variants pass QC ({result['seconds']:.1f} s); 1+MG-ready: {ready}"
    )
    print_result(result, as_json, text)


@qc.command("report")
@node_option
@json_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=pathlib.Path),
    help="Write the HTML report here (self-contained: plots embedded).",
)
@click.argument("dataset")
@errors_to_exit
def qc_report(
    node_dir: pathlib.Path, as_json: bool, out: pathlib.Path | None, dataset: str
) -> None:
    """Write DATASET's QC report as HTML (--out) or print it as JSON (--json)."""
    from ..qc.flags import load_variant_arrays
    from ..qc.report import render_html, report_document
    from ..store.node import open_node

    if out is None and not as_json:
        raise click.UsageError("give --out FILE.html, --json, or both")
    with open_node(node_dir) as node:
        report = report_document(node, dataset)
        if out is not None:
            page = render_html(report, load_variant_arrays(node, dataset))
            out.write_text(page, encoding="utf-8")
    if as_json:
        print_result(report, True, "")
    else:
        click.echo(f"wrote {out}")
