"""Beacon benchmark: query latency and throughput next to the peer a user would pick.

The cohort: ``genomenode simulate`` with 10,000 samples over 50 Mb (msprime; about
800,000 variants), cached in bench/cache/ between runs together with the node it is
ingested into. For the benchmark the dataset is published PUBLIC with records for
anonymous callers (``beacon: {anonymous: record}``), so that the HTTP path answers
the same queries as the in-process one.

Three queries, each on randomly drawn real variants of the cohort:

- *count*: a single-variant (sequence) query on ``g_variants`` at count granularity;
- *record*: "individuals carrying this variant with this phenotype" on
  ``individuals`` at record granularity (the most common HPO term, descendants
  included);
- *range*: a 10 kb range query on ``g_variants`` at count granularity.

Each is timed in-process (the engine and response building, as the HTTP handler
runs them) and over HTTP (``genomenode serve --workers 2``; sequential requests for
latency; 32 concurrent connections of ``wrk``, when installed, for requests/s), next
to the peer: the same bgzipped, tabix-indexed VCF queried in-process with pysam
(fetch the region, count carriers; for the record query, carriers with the
phenotype, the phenotypes already in memory).

Usage: python bench/beacon.py [--samples 10000] [--length 50000000] [--queries 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import httpx2
import numpy as np
import pysam
import yaml

from genomenode.access import ANONYMOUS
from genomenode.beacon.catalog import Catalog
from genomenode.beacon.engine import PathScope, answer
from genomenode.beacon.ontology import descendants
from genomenode.beacon.requests import parse_post
from genomenode.beacon.responses import result_response
from genomenode.ingest import ingest
from genomenode.node import init_node, open_node
from genomenode.simulate import simulate_cohort

HERE = pathlib.Path(__file__).parent
CACHE = HERE / "cache"
META = {
    "beaconId": "org.genomenode.bench",
    "apiVersion": "v2.1.1",
    "returnedSchemas": [],
}


def _cohort(samples: int, length: int) -> pathlib.Path:
    directory = CACHE / f"beacon-{samples}x{length // 1_000_000}Mb"
    if not (directory / "dataset.yaml").exists():
        print(f"simulating {samples} samples × {length:,} bp (once) ...", flush=True)
        simulate_cohort(
            directory,
            samples=samples,
            seed=11,
            length=length,
            dataset_id="bench-beacon",
        )
    public = directory / "dataset-public.yaml"
    document = yaml.safe_load((directory / "dataset.yaml").read_text())
    document.update(security_level="PUBLIC", beacon={"anonymous": "record"})
    public.write_text(yaml.safe_dump(document, sort_keys=False))
    return public


def _node(dataset_yaml: pathlib.Path) -> pathlib.Path:
    node_dir = dataset_yaml.parent / "node"
    if not (node_dir / "genomenode.yaml").exists():
        shutil.rmtree(node_dir, ignore_errors=True)
        init_node(node_dir, node_id="bench", country="FI").close()
    with open_node(node_dir) as node:
        started = time.monotonic()
        result = ingest(node, dataset_yaml, show_progress=sys.stderr.isatty())
        if result.status != "unchanged":
            print(f"ingested in {time.monotonic() - started:.0f} s", flush=True)
    return node_dir


def _percentiles(seconds: list[float]) -> tuple[float, float]:
    values = np.array(seconds) * 1000
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def _queries(node_dir: pathlib.Path, number: int, seed: int):
    """Random real variants, a 10 kb window at each, and the common phenotype."""
    with open_node(node_dir) as node:
        handle = Catalog(node).get("bench-beacon")
        assert handle is not None, "the bench dataset is not published"
        store = handle.store
        generator = random.Random(seed)
        (contig, (first, last)) = next(iter(store.contigs.items()))
        variants = []
        for row in generator.sample(range(first, last), number):
            alleles = store.alleles(row, row + 1)[0]
            position = int(store.positions(row, row + 1)[0])
            variants.append((contig, position, str(alleles[0]), str(alleles[1])))
        with node.session() as session:
            from sqlalchemy import func, select

            from genomenode.store.models import PhenotypicFeature

            term = session.execute(
                select(PhenotypicFeature.term_id, func.count())
                .where(PhenotypicFeature.dataset_id == "bench-beacon")
                .group_by(PhenotypicFeature.term_id)
                .order_by(func.count().desc())
                .limit(1)
            ).one()[0]
    return variants, term


def _bodies(variants, term):
    count, record, window = [], [], []
    for contig, position, reference, alternate in variants:
        sequence = {
            "referenceName": contig,
            "start": [position - 1],
            "referenceBases": reference,
            "alternateBases": alternate,
        }
        count.append(
            (
                "g_variants",
                {
                    "query": {
                        "requestParameters": sequence,
                        "requestedGranularity": "count",
                    }
                },
            )
        )
        record.append(
            (
                "individuals",
                {
                    "query": {
                        "requestParameters": sequence,
                        "filters": [{"id": term}],
                        "requestedGranularity": "record",
                    }
                },
            )
        )
        window.append(
            (
                "g_variants",
                {
                    "query": {
                        "requestParameters": {
                            "referenceName": contig,
                            "start": [max(0, position - 5_000)],
                            "end": [position + 5_000],
                        },
                        "requestedGranularity": "count",
                    }
                },
            )
        )
    return {"count": count, "record": record, "range": window}


def _in_process(node_dir: pathlib.Path, bodies) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {}
    with open_node(node_dir) as node:
        catalog = Catalog(node)
        for name, queries in bodies.items():
            # One warm-up pass: the first query of a dataset opens its store.
            for entry, body in queries[:5]:
                answer(catalog, parse_post(body), PathScope(entry), ANONYMOUS)
            seconds = []
            for entry, body in queries:
                started = time.perf_counter()
                found = answer(catalog, parse_post(body), PathScope(entry), ANONYMOUS)
                result_response(found, caller=ANONYMOUS, meta=dict(META))
                seconds.append(time.perf_counter() - started)
            timings[name] = seconds
    return timings


def _phenotype_carriers(dataset_yaml: pathlib.Path, term: str) -> set[str]:
    """Individuals with ``term`` or a descendant (the peer's in-memory phenotypes)."""
    wanted = descendants(term)
    found = set()
    for path in (dataset_yaml.parent / "phenopackets").glob("*.json"):
        packet = json.loads(path.read_text())
        features = {
            feature["type"]["id"]
            for feature in packet.get("phenotypicFeatures", [])
            if not feature.get("excluded")
        }
        if features & wanted:
            found.add(packet["subject"]["id"])
    return found


def _peer(
    vcf_path: pathlib.Path, variants, phenotype: set[str]
) -> dict[str, list[float]]:
    """pysam on the tabix-indexed VCF: what a user would script instead."""
    timings: dict[str, list[float]] = {"count": [], "record": [], "range": []}
    with pysam.VariantFile(str(vcf_path)) as vcf:

        def carriers(contig, position, reference, alternate) -> list[str]:
            for record in vcf.fetch(contig, position - 1, position):
                alternates = record.alts or ()
                if (
                    record.pos == position
                    and record.ref == reference
                    and alternate in alternates
                ):
                    allele = alternates.index(alternate) + 1
                    return [
                        name
                        for name, call in record.samples.items()
                        if allele in (call["GT"] or ())
                    ]
            return []

        for contig, position, reference, alternate in variants:
            started = time.perf_counter()
            found = carriers(contig, position, reference, alternate)
            _ = len(found) > 0
            timings["count"].append(time.perf_counter() - started)

            started = time.perf_counter()
            _ = [
                name
                for name in carriers(contig, position, reference, alternate)
                if name in phenotype
            ]
            timings["record"].append(time.perf_counter() - started)

            started = time.perf_counter()
            _ = sum(
                len(record.alts or ())
                for record in vcf.fetch(
                    contig, max(0, position - 5_001), position + 5_000
                )
            )
            timings["range"].append(time.perf_counter() - started)
    return timings


def _serve(node_dir: pathlib.Path, port: int) -> subprocess.Popen:
    command = [
        str(pathlib.Path(sys.executable).parent / "genomenode"),
        "serve",
        "--node",
        str(node_dir),
        "--port",
        str(port),
        "--workers",
        "2",
    ]
    server = subprocess.Popen(command, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx2.get(f"http://127.0.0.1:{port}/api/info").status_code == 200:
                return server
        except httpx2.TransportError:
            time.sleep(0.2)
    os.killpg(server.pid, signal.SIGTERM)
    raise RuntimeError("genomenode serve did not come up")


def _http(port: int, bodies, concurrency: int) -> tuple[dict, dict]:
    base = f"http://127.0.0.1:{port}/api"
    latency: dict[str, list[float]] = {}
    with httpx2.Client() as client:
        for name, queries in bodies.items():
            seconds = []
            for entry, body in queries:
                started = time.perf_counter()
                response = client.post(f"{base}/{entry}", json=body)
                seconds.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text
            latency[name] = seconds

    async def hammer(queries) -> float:
        async with httpx2.AsyncClient(
            limits=httpx2.Limits(max_connections=concurrency)
        ) as client:
            semaphore = asyncio.Semaphore(concurrency)

            async def one(entry, body):
                async with semaphore:
                    response = await client.post(f"{base}/{entry}", json=body)
                    assert response.status_code == 200

            started = time.perf_counter()
            await asyncio.gather(*(one(entry, body) for entry, body in queries))
            return len(queries) / (time.perf_counter() - started)

    throughput = {}
    for name, queries in bodies.items():
        if shutil.which("wrk"):
            throughput[name] = _wrk(base, queries, concurrency)
        else:
            throughput[name] = asyncio.run(hammer(queries * 4))
    return latency, throughput


def _wrk(base: str, queries, concurrency: int, seconds: int = 10) -> float:
    """Requests/s by wrk (one thread, cycling through the queries' POST bodies).

    A Python client on the same two cores saturates before the server does
    (about 600 requests/s even for /service-info), so throughput is measured with
    wrk when it is installed (Debian package ``wrk``).
    """
    lines = ["bodies = {}", "paths = {}"]
    for number, (entry, body) in enumerate(queries, start=1):
        lines.append(f"paths[{number}] = '/api/{entry}'")
        lines.append(f"bodies[{number}] = [=[{json.dumps(body)}]=]")
    lines += [
        "counter = 0",
        "request = function()",
        "  counter = counter % #bodies + 1",
        "  return wrk.format('POST', paths[counter],",
        "    {['Content-Type'] = 'application/json'}, bodies[counter])",
        "end",
    ]
    with tempfile.TemporaryDirectory() as directory:
        script = pathlib.Path(directory) / "queries.lua"
        script.write_text("\n".join(lines) + "\n")
        output = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{concurrency}",
                f"-d{seconds}s",
                "-s",
                str(script),
                base.removesuffix("/api"),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    if "Non-2xx" in output:
        raise RuntimeError(f"wrk saw errors:\n{output}")
    return float(output.split("Requests/sec:")[1].split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--length", type=int, default=50_000_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--port", type=int, default=8711)
    parser.add_argument("--concurrency", type=int, default=32)
    arguments = parser.parse_args()

    dataset_yaml = _cohort(arguments.samples, arguments.length)
    node_dir = _node(dataset_yaml)
    variants, term = _queries(node_dir, arguments.queries, seed=5)
    bodies = _bodies(variants, term)
    print(
        f"{arguments.samples:,} samples, {arguments.length:,} bp; "
        f"{arguments.queries} queries of each kind; phenotype {term}",
        flush=True,
    )
    ours = _in_process(node_dir, bodies)
    document = yaml.safe_load(dataset_yaml.read_text())
    vcf_path = dataset_yaml.parent / document["genotypes"][0]["path"]
    peer = _peer(vcf_path, variants, _phenotype_carriers(dataset_yaml, term))
    server = _serve(node_dir, arguments.port)
    try:
        latency, throughput = _http(arguments.port, bodies, arguments.concurrency)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    print(
        f"\n{'query':<8} {'in-process p50/p99 ms':>22} {'pysam p50/p99 ms':>18} "
        f"{'pysam/ours':>10} {'HTTP p50/p99 ms':>17} {'HTTP req/s':>10}"
    )
    for name in bodies:
        ours_50, ours_99 = _percentiles(ours[name])
        peer_50, peer_99 = _percentiles(peer[name])
        http_50, http_99 = _percentiles(latency[name])
        print(
            f"{name:<8} {ours_50:>10.2f} / {ours_99:<9.2f} "
            f"{peer_50:>8.2f} / {peer_99:<7.2f} {peer_50 / ours_50:>9.1f}× "
            f"{http_50:>7.2f} / {http_99:<7.2f} {throughput[name]:>10.0f}"
        )
    every = [value for values in ours.values() for value in values]
    print(
        f"\nmedian over all in-process queries: {statistics.median(every) * 1e3:.2f} ms"
    )


if __name__ == "__main__":
    main()
