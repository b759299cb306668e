"""``genomenode reference``: the node's AF reference (docs/reference.md)."""

from __future__ import annotations

import pathlib
import sys

import click

from .options import errors_to_exit, group, json_option, node_option, print_result

__all__ = ["reference", "reference_build", "reference_export"]


@group()
def reference() -> None:
    """The Genome of Europe allele-frequency reference of the node's datasets."""


@reference.command("build")
@node_option
@click.option(
    "--dataset", "dataset_ids", multiple=True, help="Only these datasets (repeatable)."
)
@json_option
@errors_to_exit
def reference_build(
    node_dir: pathlib.Path, dataset_ids: tuple[str, ...], as_json: bool
) -> None:
    """Count every published dataset's alleles per GoE population (QC-passing)."""
    from ..reference.build import build_reference
    from ..store.node import open_node

    with open_node(node_dir) as node:
        results = build_reference(node, dataset_ids=list(dataset_ids) or None)
    summary = {
        "datasets": [
            {
                "dataset_id": item.dataset_id,
                "path": str(item.path),
                "populations": dict(
                    zip(item.populations, item.population_samples, strict=True)
                ),
                "num_variants": item.num_variants,
                "num_variants_pass": item.num_variants_pass,
                "qc_applied": item.qc,
                "seconds": round(item.seconds, 3),
            }
            for item in results
        ]
    }
    lines = [
        f"{item.dataset_id}: {item.num_variants_pass} of {item.num_variants} variants "
        f"× {len(item.populations)} populations in {item.seconds:.1f} s "
        f"({'QC flags applied' if item.qc else 'no QC flags yet'})"
        for item in results
    ]
    print_result(summary, as_json, "\n".join(lines) or "No dataset with genotypes.")


@reference.command("export")
@node_option
@click.option("--format", "fmt", type=click.Choice(["vcf", "parquet"]), required=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=pathlib.Path),
    required=True,
    help="goe-fi.vcf.gz (bgzipped, with .tbi) or goe-fi.parquet.",
)
@json_option
@errors_to_exit
def reference_export(
    node_dir: pathlib.Path, fmt: str, out: pathlib.Path, as_json: bool
) -> None:
    """Write the published reference as a sites-only VCF or GDI Parquet."""
    from ..disclosure.control import DisclosureControl
    from ..reference.export import export_reference
    from ..store.node import open_node

    with open_node(node_dir) as node:
        control = DisclosureControl.for_node(
            node.config.values, node.engine, node.config.node_dir / "keys"
        )
        result = export_reference(node, fmt=fmt, out=out, control=control)
    summary = {
        "paths": [str(path) for path in result.paths],
        "num_records": result.num_records,
        "datasets": result.datasets,
        "withheld": result.withheld,
    }
    text = f"{result.num_records} records from {', '.join(result.datasets) or 'none'}: "
    text += ", ".join(str(path) for path in result.paths)
    for dataset_id, why in result.withheld.items():
        print(f"withheld {dataset_id}: {why}", file=sys.stderr)
    print_result(summary, as_json, text)
