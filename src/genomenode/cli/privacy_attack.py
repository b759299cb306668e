"""``genomenode privacy attack``: run a membership attack on the node's own answers.

A command of the ``privacy`` group (:mod:`.privacy`), added to it in the CLI's
``__init__``.
"""

from __future__ import annotations

import pathlib

import click

from .options import command, errors_to_exit, json_option, node_option, print_result

__all__ = ["attack"]


@command("attack")
@node_option
@click.argument("dataset")
@click.option(
    "--attack",
    "attack_name",
    type=click.Choice(["sb", "homer"]),
    default="sb",
    show_default=True,
    help="sb: Shringarpure & Bustamante on yes/no answers; homer: allele "
    "frequencies from counts.",
)
@click.option(
    "--queries",
    default=5000,
    show_default=True,
    type=click.IntRange(min=2),
    help="Queries in all (SB shares them among its targets).",
)
@click.option(
    "--non-members",
    "non_members_vcf",
    type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path),
    default=None,
    help="VCF of people of the same population not in the dataset (half "
    "controls, half reference panel). Default: synthesised from the "
    "dataset's frequencies, which understates the power.",
)
@click.option("--seed", default=0, show_default=True, type=int)
@json_option
@errors_to_exit
def attack(
    node_dir: pathlib.Path,
    dataset: str,
    attack_name: str,
    queries: int,
    non_members_vcf: pathlib.Path | None,
    seed: int,
    as_json: bool,
) -> None:
    """Attack DATASET as an anonymous caller would, in-process (operator only)."""
    from ..privacy.operator import attack_node

    run = attack_node(
        node_dir,
        dataset,
        attack=attack_name,
        queries=queries,
        non_members_vcf=non_members_vcf,
        seed=seed,
    )
    summary = run.as_dict()
    rows = [
        ("attack", summary["attack"]),
        ("dataset", summary["dataset"]),
        ("power at 5% FPR", f"{summary['power']:.1%}"),
        ("observed FPR", f"{summary['observed_fpr']:.1%}"),
        (
            "members / non-members",
            f"{summary['num_members']} / {summary['num_non_members']}",
        ),
        ("queries sent", str(summary["num_queries"])),
        (
            "refused by budget",
            f"{summary['num_refused']} (and {summary['num_unsent']} not sent)",
        ),
        ("non-members", summary["non_members"]),
    ]
    width = max(len(name) for name, _ in rows)
    text = "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
    print_result(summary, as_json, text)
