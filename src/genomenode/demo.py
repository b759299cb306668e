"""``make demo``: a node, a simulated cohort, its ingest and what is published.

Run again, it reuses what exists: the node, the (deterministic) cohort, and the
published dataset (a re-ingest of the same inputs is a no-op).
"""

from __future__ import annotations

import argparse
import datetime as dt
import pathlib
import sys
import time

import yaml
from rich.console import Console

from .access import ANONYMOUS, Caller, workflow
from .access.audit import verify
from .access.devidp import DevIdentityProvider
from .access.duo import ResearchPurpose
from .access.http import build_access_service
from .beacon.catalog import Catalog
from .beacon.engine import PathScope, answer
from .beacon.requests import parse_post
from .cli import datasets_table
from .ingest import ingest
from .node import Node, init_node, open_node
from .simulate import simulate_cohort

__all__ = ["run_demo"]

DEMO_RESEARCHER = "researcher@demo.genomenode"


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
    _ask_the_beacon(console, node, result.dataset_id, dataset_yaml)
    console.print(
        f"Try: .venv/bin/genomenode datasets --node {node_dir} --json\n"
        f"     GENOMENODE_DEV_IDENTITY_PROVIDER=true .venv/bin/genomenode serve "
        f"--node {node_dir} --port 8080\n"
        "       # then http://localhost:8080/api/docs, and passports from "
        "http://localhost:8080/dev-idp/ (README: Access)\n"
        f"     .venv/bin/crypt4gh decrypt --sk {node_dir}/keys/node.sec "
        f"< {node.datasets_dir}/{result.dataset_id}/files/0000-dataset.yaml.c4gh"
    )


def _ask_the_beacon(
    console: Console, node: Node, dataset_id: str, dataset_yaml: pathlib.Path
) -> None:
    """Put the planted causal variant to the Beacon, as two kinds of caller."""
    document = yaml.safe_load(dataset_yaml.read_text())
    causal = (document.get("simulation") or {}).get("causal_variants") or []
    if not causal:
        return
    variant = causal[0]
    catalog = Catalog(node)

    def individuals(caller: Caller, filters: list[dict[str, str]]) -> int | None:
        body = {
            "query": {
                "requestParameters": {
                    "referenceName": variant["contig"],
                    "start": [variant["position"] - 1],
                    "referenceBases": variant["ref"],
                    "alternateBases": variant["alt"],
                },
                "filters": filters,
                "requestedGranularity": "count",
            }
        }
        found = answer(catalog, parse_post(body), PathScope("individuals"), caller)
        counts = [
            item.count for item in found.datasets if item.dataset.id == dataset_id
        ]
        return counts[0] if counts else None

    where = (
        f"{variant['contig']}:{variant['position']} {variant['ref']}>{variant['alt']}"
    )
    anonymous = individuals(ANONYMOUS, [])
    console.print(
        f"Beacon, anonymous caller, carriers of {where}: "
        + ("dataset not visible (CONTROLLED)" if anonymous is None else str(anonymous))
    )
    # The access workflow, as a researcher and the node's operator would go through it;
    # the development identity provider stands in for LS-AAI.
    public_url = node.config.public_url
    provider = DevIdentityProvider(
        node.config.node_dir / "keys" / "dev-idp", issuer=f"{public_url}/dev-idp"
    )
    access = build_access_service(node, public_url=public_url, dev_provider=provider)
    try:
        header = f"Bearer {provider.passport(DEMO_RESEARCHER)}"
        _, researcher = access.authenticate(header)
        if dataset_id not in researcher.granted_datasets:
            seen = individuals(researcher, [])
            console.print(
                f"Beacon, registered researcher {DEMO_RESEARCHER} (passport): "
                + ("dataset not visible" if seen is None else f"{seen} carriers")
            )
            application = workflow.create_application(
                node.engine,
                dataset_id=dataset_id,
                applicant=DEMO_RESEARCHER,
                project_title="Rare variants in coronary artery disease",
                purpose=ResearchPurpose(
                    "DUO:0000007",
                    disease="ICD10:I25.1",
                    accepted=frozenset({"DUO:0000019"}),  # will publish
                ),
                purpose_text="Carriers of candidate variants among CAD cases.",
                submit=True,
            )
            recommendation = application.recommendation
            reasons = "; ".join(recommendation.reasons)
            console.print(
                f"Application {application.id} submitted; DUO match: "
                f"[bold]{recommendation.outcome}[/] ({reasons})"
            )
            approved = workflow.approve(
                node.engine,
                application.id,
                actor="operator:demo",
                ends_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=30),
                as_operator=True,
            )
            assert approved.grant is not None
            console.print(
                f"Approved by the DAC until {approved.grant.ends_at:%Y-%m-%d}: "
                f"genomenode access grants --node {node.config.node_dir}"
            )
        _, researcher = access.authenticate(header)
        carriers = individuals(researcher, [])
        cases = individuals(researcher, [{"id": "ICD10:I25.1"}])
        console.print(
            f"Beacon, {DEMO_RESEARCHER} granted {dataset_id}: {carriers} carriers, "
            f"{cases} of them with coronary artery disease (ICD10:I25.1, the planted "
            "association)"
        )
    finally:
        access.audit.close()
    with node.session() as session:
        check = verify(session)
    console.print(
        f"Audit log: {check.num_entries} entries, "
        + ("intact" if check.intact else f"TAMPERED at entry {check.first_bad_id}")
        + f" (genomenode audit verify --node {node.config.node_dir})"
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
