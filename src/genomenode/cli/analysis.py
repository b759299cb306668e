"""``genomenode analysis``: federated analyses through a network."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import click

from ..errors import InputError
from .options import errors_to_exit, group, json_option, print_result

__all__ = ["analysis"]

_network = click.option(
    "--network",
    "network_url",
    envvar="GENOMENODE_NETWORK_URL",
    show_envvar=True,
    required=True,
    help="The network's URL (http://localhost:9000).",
)
_token = click.option(
    "--token",
    envvar="GENOMENODE_TOKEN",
    show_envvar=True,
    default=None,
    help="Your passport; better set in the environment. Never printed. "
    "Default: the token of your `genomenode login`, if any.",
)
_job = click.argument("job_id")


def _names(text: str | None) -> list[str]:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def _region(text: str | None) -> dict[str, Any] | None:
    """``CONTIG[:START-END]`` (1-based, END inclusive) → the job's region."""
    if not text:
        return None
    contig, _, span = text.partition(":")
    if not span:
        return {"contig": contig, "start": 1, "end": 2**31 - 1}
    start, _, end = span.replace(",", "").partition("-")
    if not start.isdigit() or not end.isdigit():
        raise click.BadParameter("CONTIG:START-END", param_hint="--region")
    return {"contig": contig, "start": int(start), "end": int(end) + 1}


def _token_of(token: str | None) -> str | None:
    """``--token``, else the token of ``genomenode login``, if any."""
    if token is not None:
        return token
    from ..client.oidc import access_token

    stored = access_token(None, required=False)
    return stored.reveal() if stored is not None else None


@group()
def analysis() -> None:
    """Federated analyses: only aggregates leave the nodes (docs/analysis.md)."""


def _job_options(function: Any) -> Any:
    """What every kind of job takes (after its name: ``submit gwas --datasets``)."""
    for option in reversed(
        (
            click.option(
                "--datasets", required=True, help="Comma-separated dataset ids."
            ),
            click.option(
                "--on-node-failure",
                type=click.Choice(["fail", "continue"]),
                default="fail",
                show_default=True,
                help="When a node is down or refuses: fail, or go on without it.",
            ),
            click.option("--region", default=None, help="CONTIG[:START-END], 1-based."),
            click.option(
                "--purpose",
                default=None,
                help='Declared research purpose as JSON, e.g. \'{"term": '
                '"DUO:0000006"}\': datasets that permit analyses without a '
                "grant weigh it against their DUO terms.",
            ),
            json_option,
        )
    ):
        function = option(function)
    return function


@group()
@_network
@_token
@click.pass_context
def submit(context: click.Context, network_url: str, token: str | None) -> None:
    """Submit a job: gwas, table, frequencies, summary or pca."""
    context.obj = {"network": network_url, "token": token}


def _purpose(text: str) -> dict[str, Any]:
    from ..access.duo import purpose_from_json, purpose_to_json

    try:
        document = json.loads(text)
    except ValueError as error:
        raise click.BadParameter(f"not JSON: {error}", param_hint="--purpose") from None
    try:
        return purpose_to_json(purpose_from_json(document))
    except InputError as error:
        raise click.BadParameter(str(error), param_hint="--purpose") from None


def _send(context: click.Context, request: dict[str, Any], options: dict) -> None:
    from ..analysis.client import submit as submit_job

    as_json = options.pop("as_json")
    request = {
        **request,
        "datasets": _names(options["datasets"]),
        "on_node_failure": options["on_node_failure"],
    }
    if options.get("region"):
        request["region"] = _region(options["region"])
    if options.get("purpose"):
        request["purpose"] = _purpose(options["purpose"])
    job = submit_job(context.obj["network"], request, _token_of(context.obj["token"]))
    print_result(job, as_json, f"{job['id']}\t{job['state']}")


@submit.command("gwas")
@click.option("--phenotype", required=True, help="ICD10:I25.1, HP:..., age...")
@click.option("--model", type=click.Choice(["logistic", "linear"]), default="logistic")
@click.option("--covariates", default="", help="sex,age,pc1,pc2...")
@click.option("--chunk-variants", type=int, default=3000, show_default=True)
@click.option(
    "--firth",
    type=click.Choice(["no", "fallback", "all"]),
    default="no",
    show_default=True,
    help="Firth's penalised regression: for separated variants, or all.",
)
@_job_options
@errors_to_exit
@click.pass_context
def gwas(
    context: click.Context,
    phenotype: str,
    model: str,
    covariates: str,
    chunk_variants: int,
    firth: str,
    **options: Any,
) -> None:
    """Per-variant regression with covariates (exact federated IRLS)."""
    request = {
        "analysis": "gwas",
        "phenotype": phenotype,
        "model": model,
        "covariates": _names(covariates),
        "chunk_variants": chunk_variants,
        "firth": firth,
    }
    _send(context, request, options)


@submit.command("table")
@click.option("--phenotype", required=True, help="A 0/1 variable: ICD10:I25.1...")
@_job_options
@errors_to_exit
@click.pass_context
def table(context: click.Context, phenotype: str, **options: Any) -> None:
    """Case/control genotype tables with chi-square and Fisher tests."""
    _send(context, {"analysis": "table", "phenotype": phenotype}, options)


@submit.command("frequencies")
@click.option("--strata", default="", help="sex and/or 0/1 terms: sex,ICD10:I25.1")
@_job_options
@errors_to_exit
@click.pass_context
def frequencies(context: click.Context, strata: str, **options: Any) -> None:
    """Allele frequencies per stratum."""
    _send(context, {"analysis": "frequencies", "strata": _names(strata)}, options)


@submit.command("summary")
@click.option("--variables", required=True, help="age,sex,ICD10:I25.1...")
@click.option(
    "--quantiles",
    is_flag=True,
    help="Also coarsened quantiles (refused by a node with too few values).",
)
@_job_options
@errors_to_exit
@click.pass_context
def summary(
    context: click.Context, variables: str, quantiles: bool, **options: Any
) -> None:
    """Counts, means and variances of clinical variables."""
    request: dict[str, Any] = {"analysis": "summary", "variables": _names(variables)}
    if quantiles:
        request["quantiles"] = True
    _send(context, request, options)


@submit.command("pca")
@click.option("--components", type=int, default=4, show_default=True)
@click.option("--max-variants", type=int, default=500, show_default=True)
@_job_options
@errors_to_exit
@click.pass_context
def pca(
    context: click.Context, components: int, max_variants: int, **options: Any
) -> None:
    """Federated PCA over --region; the scores stay on the nodes (pcN)."""
    request = {
        "analysis": "pca",
        "components": components,
        "max_variants": max_variants,
    }
    _send(context, request, options)


analysis.add_command(submit)


@analysis.command("status")
@_network
@_token
@_job
@json_option
@errors_to_exit
def status(network_url: str, token: str | None, job_id: str, as_json: bool) -> None:
    """A job's state and each node's task (TES states, progress)."""
    from ..analysis.client import status as job_status

    found = job_status(network_url, job_id, _token_of(token))
    lines = [f"{found['id']}  {found['analysis']}  {found['state']}"]
    if found.get("reason"):
        lines.append(f"  reason: {found['reason']}")
    for dataset, task in found["tasks"].items():
        line = (
            f"  {dataset:<24} {task.get('node') or '-':<16} {task['state']:<15} "
            f"{100 * task.get('progress', 0):5.1f}%"
        )
        if task.get("reason"):
            line += f"  {task['reason']}"
        lines.append(line)
    lines.append(f"  round trips: {found['round_trips']}")
    print_result(found, as_json, "\n".join(lines))


@analysis.command("results")
@_network
@_token
@_job
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=pathlib.Path), default=None
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=pathlib.Path),
    default=None,
    help="Manhattan plot (PNG and SVG) and QQ plot beside it (GWAS).",
)
@json_option
@errors_to_exit
def results(
    network_url: str,
    token: str | None,
    job_id: str,
    out: pathlib.Path | None,
    plot: pathlib.Path | None,
    as_json: bool,
) -> None:
    """A finished job's result: TSV to --out, plots to --plot."""
    from ..analysis.client import results as job_results
    from ..analysis.client import write_tsv

    result = job_results(network_url, job_id, _token_of(token))
    lines = []
    if out is not None:
        lines.append(f"{write_tsv(result, out)} rows written to {out}")
    if plot is not None:
        from ..analysis.plots import plot_gwas

        written = plot_gwas(result.get("rows", []), plot)
        lines.append("plots: " + ", ".join(str(path) for path in written))
    if not lines:
        import json

        lines.append(json.dumps(result, indent=2)[:4000])
    print_result(result, as_json, "\n".join(lines))


@analysis.command("cancel")
@_network
@_token
@_job
@json_option
@errors_to_exit
def cancel(network_url: str, token: str | None, job_id: str, as_json: bool) -> None:
    """Cancel a job; the nodes stop after the round in flight."""
    from ..analysis.client import cancel as cancel_job

    found = cancel_job(network_url, job_id, _token_of(token))
    print_result(found, as_json, f"{found['id']}\t{found['state']}")
