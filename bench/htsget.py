"""htsget benchmark: ticket + slice of a 100 kb region next to ``bcftools view -r``.

A simulated cohort (``genomenode simulate``; default 2,000 samples over 5 Mb) is
ingested into a node as a CONTROLLED dataset and a researcher is granted it. For
random 100 kb regions, genomenode answers the ticket and serves its blocks (the
app in-process through FastAPI's TestClient: authorisation, audit, index lookup,
Crypt4GH range decryption, exact record filtering, BGZF recompression); the peer
is ``bcftools view -r REGION -Oz`` on the same plaintext VCF with its index (the
Debian binary when installed, else pysam's bundled bcftools), which writes the
same records. Both outputs are checked to hold the same records.

Usage: python bench/htsget.py [--samples 2000] [--length 5000000] [--regions 50]
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import os
import pathlib
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import pysam
from fastapi.testclient import TestClient

from genomenode.access import duo as access_duo
from genomenode.access import workflow
from genomenode.app import create_app
from genomenode.ingest import ingest
from genomenode.simulate import simulate_cohort
from genomenode.store.node import init_node

BASE = "http://bench"


def _records(data: bytes, directory: pathlib.Path) -> int:
    path = directory / "check.vcf.gz"
    path.write_bytes(data)
    with pysam.VariantFile(str(path)) as vcf:
        return sum(1 for _ in vcf)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--length", type=int, default=5_000_000)
    parser.add_argument("--regions", type=int, default=50)
    parser.add_argument("--width", type=int, default=100_000)
    arguments = parser.parse_args()
    os.environ.setdefault("GENOMENODE_WORKER_PROCESSES", "2")
    bcftools = shutil.which("bcftools")
    with tempfile.TemporaryDirectory(prefix="genomenode-bench-htsget-") as temporary:
        directory = pathlib.Path(temporary)
        cohort = simulate_cohort(
            directory / "cohort",
            samples=arguments.samples,
            seed=3,
            length=arguments.length,
            country="FI",
            dataset_id="bench-htsget",
        )
        node = init_node(directory / "node", node_id="bench", country="FI")
        ingest(node, cohort.dataset_yaml)
        application = workflow.create_application(
            node.engine,
            dataset_id="bench-htsget",
            applicant="bench@demo",
            project_title="bench",
            purpose=access_duo.purpose_from_json(
                {
                    "term": "DUO:0000007",
                    "disease": "ICD10:I25.1",
                    "accepted": ["DUO:0000019"],
                }
            ),
            submit=True,
        )
        workflow.approve(
            node.engine,
            application.id,
            actor="operator:bench",
            ends_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
            as_operator=True,
        )
        vcf = cohort.vcf_path
        if not pathlib.Path(str(vcf) + ".tbi").exists():
            pysam.tabix_index(str(vcf), preset="vcf", force=True, keep_original=True)
        with pysam.VariantFile(str(vcf)) as handle:
            contig = next(iter(handle.header.contigs))
        size_mb = vcf.stat().st_size / 1e6
        random.seed(9)
        starts = [
            random.randrange(0, arguments.length - arguments.width)
            for _ in range(arguments.regions)
        ]
        ours: list[float] = []
        peers: list[float] = []
        app = create_app(node, base_url=BASE, dev_identity_provider=True)
        with TestClient(app, base_url=BASE) as client:
            token = client.post("/dev-idp/token", json={"subject": "bench@demo"}).json()
            headers = {"Authorization": f"Bearer {token['access_token']}"}
            for number, start in enumerate([starts[0], *starts]):
                end = start + arguments.width
                began = time.perf_counter()
                ticket = client.get(
                    "/htsget/variants/bench-htsget",
                    params={"referenceName": contig, "start": start, "end": end},
                    headers=headers,
                ).json()
                parts = []
                for item in ticket["htsget"]["urls"]:
                    url = item["url"]
                    if url.startswith("data:"):
                        parts.append(base64.b64decode(url.partition(",")[2]))
                    else:
                        response = client.get(url[len(BASE) :], headers=item["headers"])
                        parts.append(response.content)
                ours_bytes = b"".join(parts)
                elapsed = time.perf_counter() - began
                out = directory / "peer.vcf.gz"
                region = f"{contig}:{start + 1}-{end}"
                began = time.perf_counter()
                if bcftools:
                    subprocess.run(
                        [
                            bcftools,
                            "view",
                            "-r",
                            region,
                            "-Oz",
                            "-o",
                            str(out),
                            str(vcf),
                        ],
                        check=True,
                    )
                else:
                    pysam.bcftools.view("-r", region, "-Oz", "-o", str(out), str(vcf))
                peer = time.perf_counter() - began
                if number == 0:
                    continue  # warm-up: first touch of caches on both sides
                ours.append(elapsed)
                peers.append(peer)
                if number <= 3:
                    assert _records(ours_bytes, directory) == _records(
                        out.read_bytes(), directory
                    ), region
        node.close()
    ours_p50 = statistics.median(ours) * 1e3
    peer_p50 = statistics.median(peers) * 1e3
    ours_p99 = sorted(ours)[int(len(ours) * 0.99) - 1] * 1e3
    peer_p99 = sorted(peers)[int(len(peers) * 0.99) - 1] * 1e3
    peer_name = "bcftools (Debian)" if bcftools else "pysam.bcftools"
    print(
        f"## htsget ticket + slice, {arguments.width // 1000} kb regions "
        f"({arguments.regions} random), {arguments.samples} samples, "
        f"VCF {size_mb:.0f} MB"
    )
    print(f"| | p50 ms | p99 ms | {peer_name} ÷ ours (p50) |")
    print("|---|---|---|---|")
    print(
        f"| genomenode htsget (in-process app) | {ours_p50:.1f} | {ours_p99:.1f} | "
        f"{peer_p50 / ours_p50:.2f}× |"
    )
    print(f"| {peer_name} view -r -Oz | {peer_p50:.1f} | {peer_p99:.1f} | 1 |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
