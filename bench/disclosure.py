"""Disclosure control's cost on the Beacon hot path: a single-variant count query
with the layer on and off, in one run.

A simulated cohort (``genomenode simulate``, 1,000 samples over 2 Mb) is published
REGISTERED; a registered caller asks, for randomly drawn common variants,

- *g_variants count*: is the variant in the dataset (a presence answer: the
  rare-allele policy and one budget charge);
- *individuals count*: how many people carry it (one budget charge, keyed noise,
  rounding).

Each query is answered in-process as the HTTP handler answers it (engine, the
layer, the response document), alternating layer on and layer off so that both see
the same machine load; the budget is unlimited so that every answer is computed.
It prints p50/p99 of each and the p50 added by the layer (target: at most 0.5 ms).

Usage: python bench/disclosure.py [--queries 2000] [--samples 1000]
"""

from __future__ import annotations

import argparse
import pathlib
import random
import statistics
import tempfile
import time

from genomenode.access import Caller
from genomenode.app import disclosure_of
from genomenode.beacon.engine import PathScope, answer
from genomenode.beacon.guard import Guard
from genomenode.beacon.requests import parse_post
from genomenode.beacon.responses import result_response
from genomenode.config import NodeConfig
from genomenode.ingest import ingest
from genomenode.simulate import simulate_cohort
from genomenode.store.node import Node, init_node
from genomenode.store.published import PublishedDatasets

META = {
    "beaconId": "org.example.bench",
    "apiVersion": "v2.0.0",
    "returnedSchemas": [],
}
CALLER = Caller(subject="bench", registered=True)


def _node(root: pathlib.Path, samples: int) -> Node:
    result = simulate_cohort(
        root / "cohort",
        samples=samples,
        seed=5,
        length=2_000_000,
        security_level="REGISTERED",
        dataset_id="bench-registered",
    )
    node = init_node(root / "node", node_id="bench", country="FI")
    ingest(node, result.dataset_yaml)
    return node


def _variants(node: Node, count: int) -> list[dict]:
    published = PublishedDatasets(node)
    handle = published.datasets()[0]
    store = handle.store
    total = store.read("variant_allele_total", 0, handle.facts.num_variants)
    counts = store.read("variant_allele_count", 0, handle.facts.num_variants)
    common = [
        row
        for row in range(handle.facts.num_variants)
        if total[row] and counts[row][1] / total[row] >= 0.05
    ]
    rows = random.Random(1).choices(common, k=count)
    chosen = []
    for row in rows:
        alleles = store.alleles(row, row + 1)[0]
        position = int(store.positions(row, row + 1)[0])
        chosen.append(
            {
                "referenceName": "1",
                "start": [position - 1],
                "referenceBases": str(alleles[0]),
                "alternateBases": str(alleles[1]),
            }
        )
    return chosen


def _timed(published, control, entry, variant) -> float:
    body = {"query": {"requestParameters": variant, "requestedGranularity": "count"}}
    started = time.perf_counter()
    request = parse_post(body)
    scope = PathScope(entry)
    guard = Guard(
        control,
        identity="sub:bench|bench",
        caller=CALLER,
        question=(request, scope),
    )
    found = answer(published, request, scope, CALLER, guard=guard)
    result_response(found, caller=CALLER, meta=dict(META))
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=1000)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        node = _node(pathlib.Path(directory), arguments.samples)
        unlimited = Node(
            NodeConfig(
                node.config.node_dir,
                {
                    **node.config.values,
                    "disclosure_epsilon_budget": 1e12,
                    "disclosure_anonymous_epsilon_budget": 1e12,
                },
            )
        )
        on = disclosure_of(unlimited, 5, True)
        off = disclosure_of(unlimited, 5, False)
        published = PublishedDatasets(unlimited)
        variants = _variants(unlimited, arguments.queries)
        for entry in ("g_variants", "individuals"):
            for variant in variants[:50]:  # warm caches (chunks, HPO, pools)
                _timed(published, on, entry, variant)
                _timed(published, off, entry, variant)
            times: dict[str, list[float]] = {"on": [], "off": []}
            for variant in variants:
                times["off"].append(_timed(published, off, entry, variant))
                times["on"].append(_timed(published, on, entry, variant))
            p50 = {k: statistics.median(v) for k, v in times.items()}
            p99 = {k: statistics.quantiles(v, n=100)[98] for k, v in times.items()}
            print(
                f"{entry:12} count, {arguments.queries} queries: "
                f"layer off p50 {p50['off']:.3f} ms p99 {p99['off']:.3f} ms | "
                f"layer on p50 {p50['on']:.3f} ms p99 {p99['on']:.3f} ms | "
                f"added p50 {p50['on'] - p50['off']:+.3f} ms "
                f"(target <= 0.5 ms)"
            )
        unlimited.close()
        node.close()


if __name__ == "__main__":
    main()
