"""``make demo``: a node, a simulated cohort, its ingest and what is published.

Run again, it reuses what exists: the node, the (deterministic) cohort, and the
published dataset (a re-ingest of the same inputs is a no-op).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

from rich.console import Console

from .cli import datasets_table
from .ingest import ingest
from .node import init_node, open_node
from .simulate import simulate_cohort

__all__ = ["run_demo"]


def run_demo(
    directory: pathlib.Path, *, samples: int = 1000, length: int = 2_000_000
) -> None:
    """Set up (or reuse) a demo node in ``directory`` and print its datasets."""
    console = Console()
    node_dir = directory / "fi-node"
    cohort_dir = directory / "fi-cohort"
    if (node_dir / "genomenode.yaml").exists():
        node = open_node(node_dir)
        console.print(f"Node [bold]{node_dir}[/] exists; reusing it.")
    else:
        node = init_node(node_dir, node_id="fi-node", country="FI")
        console.print(f"Initialised node [bold]fi-node[/] in {node_dir}")
    dataset_yaml = cohort_dir / "dataset.yaml"
    if not dataset_yaml.exists():
        started = time.monotonic()
        simulation = simulate_cohort(
            cohort_dir, samples=samples, seed=7, length=length, country="FI"
        )
        console.print(
            f"Simulated {simulation.num_samples} samples × {simulation.num_variants} "
            f"variants (msprime) in {time.monotonic() - started:.1f} s: {dataset_yaml}"
        )
    result = ingest(node, dataset_yaml, show_progress=sys.stderr.isatty())
    if result.status == "unchanged":
        console.print(f"{result.dataset_id}: already published, nothing to do.")
    else:
        console.print(f"Ingested {result.dataset_id} in {result.seconds:.1f} s")
    console.print(
        datasets_table(
            node.dataset_summaries(), f"Datasets published on {node.config.node_id}"
        )
    )
    console.print(
        f"Try: .venv/bin/genomenode datasets --node {node_dir} --json\n"
        f"     .venv/bin/crypt4gh decrypt --sk {node_dir}/keys/node.sec "
        f"< {node.datasets_dir}/{result.dataset_id}/files/0000-dataset.yaml.c4gh"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=pathlib.Path, default=pathlib.Path("demo"))
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--length", type=int, default=2_000_000)
    arguments = parser.parse_args()
    run_demo(arguments.dir, samples=arguments.samples, length=arguments.length)


if __name__ == "__main__":
    main()
