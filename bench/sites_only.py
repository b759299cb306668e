"""Sites-only benchmark: an allele-frequency release ingested and queried.

A simulated sites-only VCF (no sample columns) in the shape of a national release:
AC/AN/AF/nhomalt for the whole and ``AC_<pop>``/``AN_<pop>``/``nhomalt_<pop>`` for
10 populations, on one contig.

1. **Ingest**: ``genomenode ingest`` of it (every step: validate, index, convert,
   site counts, encrypt, metadata, publish) next to what an operator would
   otherwise run to make it queryable, ``bcftools view -Ob`` + ``bcftools index``,
   in the same run.
2. **Frequency query**: one variant's ``frequencyInPopulations`` (Beacon g_variants,
   record granularity, over the app in-process), p50 over random variants, next to
   ``tabix`` (the command, a process per query, as a shell user would) and pysam's
   in-process ``TabixFile.fetch`` of the same record (with its INFO text unparsed).

Usage: python bench/sites_only.py [--records 1000000] [--queries 300]
(1,000,000 records takes a few minutes on two cores; pass fewer to try it.)
"""

from __future__ import annotations

import argparse
import logging
import os
import pathlib
import random
import shutil
import statistics
import subprocess
import tempfile
import time

import numpy as np
import pysam
import yaml
from fastapi.testclient import TestClient

from genomenode.app import create_app
from genomenode.ingest import ingest
from genomenode.store.node import init_node

POPULATIONS = ("afr", "amr", "asj", "eas", "fin", "nfe", "sas", "mid", "ami", "oth")


def simulate(path: pathlib.Path, num_records: int, seed: int = 7) -> pathlib.Path:
    """A bgzipped sites-only VCF with ``num_records`` biallelic SNVs on contig 1."""
    rng = np.random.default_rng(seed)
    header = [
        "##fileformat=VCFv4.2",
        "##contig=<ID=1,length=249250621>",
        '##INFO=<ID=AC,Number=A,Type=Integer,Description="Allele count">',
        '##INFO=<ID=AN,Number=1,Type=Integer,Description="Allele number">',
        '##INFO=<ID=AF,Number=A,Type=Float,Description="Allele frequency">',
        '##INFO=<ID=nhomalt,Number=A,Type=Integer,Description="Homozygous">',
    ]
    for population in POPULATIONS:
        header += [
            f'##INFO=<ID=AC_{population},Number=A,Type=Integer,Description="AC">',
            f'##INFO=<ID=AN_{population},Number=1,Type=Integer,Description="AN">',
            f'##INFO=<ID=nhomalt_{population},Number=A,Type=Integer,Description="h">',
        ]
    header.append("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO")
    positions = np.sort(rng.choice(200_000_000, num_records, replace=False)) + 1
    bases = np.array(list("ACGT"))
    reference = rng.integers(0, 4, num_records)
    alternate = (reference + rng.integers(1, 4, num_records)) % 4
    frequency = rng.beta(0.1, 3, num_records)
    numbers = rng.integers(800, 2000, (num_records, len(POPULATIONS))) * 2
    counts = rng.binomial(numbers, frequency[:, None])
    hom = rng.binomial(counts // 2, frequency[:, None])
    plain = path.with_suffix("")
    with open(plain, "w") as out:
        out.write("\n".join(header) + "\n")
        for start in range(0, num_records, 50_000):
            stop = min(start + 50_000, num_records)
            lines = []
            for row in range(start, stop):
                an, ac, nh = numbers[row], counts[row], hom[row]
                total, count = int(an.sum()), int(ac.sum())
                fields = [
                    f"AC={count}",
                    f"AN={total}",
                    f"AF={count / total:.4g}",
                    f"nhomalt={int(nh.sum())}",
                ]
                for index, population in enumerate(POPULATIONS):
                    fields.append(
                        f"AC_{population}={ac[index]};AN_{population}={an[index]};"
                        f"nhomalt_{population}={nh[index]}"
                    )
                lines.append(
                    f"1\t{positions[row]}\t.\t{bases[reference[row]]}\t"
                    f"{bases[alternate[row]]}\t.\tPASS\t{';'.join(fields)}\n"
                )
            out.writelines(lines)
    subprocess.run(["bgzip", "-f", "-@", "2", str(plain)], check=True)
    return path


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    arguments = parser.parse_args()
    # The ingest's own per-step times, as it logs them.
    logging.basicConfig(format="    %(message)s")
    logging.getLogger("genomenode.ingest.pipeline").setLevel(logging.INFO)
    with tempfile.TemporaryDirectory(prefix="bench-sites-") as temporary:
        directory = pathlib.Path(temporary)
        started = time.perf_counter()
        vcf = simulate(directory / "sites.vcf.gz", arguments.records)
        print(
            f"sites-only benchmark: {arguments.records:,} records × "
            f"{len(POPULATIONS)} populations ({vcf.stat().st_size / 1e6:.0f} MB "
            f"VCF.gz, simulated in {time.perf_counter() - started:.0f} s), "
            f"{os.cpu_count()} cores"
        )

        bcf = directory / "peer.bcf"
        view = timed(["bcftools", "view", "-Ob", "-o", str(bcf), str(vcf)])
        index = timed(["bcftools", "index", str(bcf)])
        peer = view + index

        dataset_yaml = directory / "dataset.yaml"
        dataset_yaml.write_text(
            yaml.safe_dump(
                {
                    "id": "sites",
                    "name": "Simulated allele-frequency release",
                    "description": "Sites only, 10 populations",
                    "country": "FI",
                    "contact": {"name": "Bench", "email": "bench@example.org"},
                    "security_level": "PUBLIC",
                    "assembly": "GRCh37",
                    "data_use": [{"id": "DUO:0000042"}],
                    "genotypes": [{"path": vcf.name}],
                    "beacon": {"anonymous": "record"},
                }
            )
        )
        os.environ["GENOMENODE_WORKER_PROCESSES"] = str(arguments.workers)
        node = init_node(directory / "node", node_id="bench", country="FI")
        started = time.perf_counter()
        ingest(node, dataset_yaml)
        ours = time.perf_counter() - started
        print(
            f"  ingest       genomenode {ours:7.1f} s   bcftools view -Ob "
            f"{view:.1f} s + index {index:.1f} s = {peer:.1f} s   "
            f"ratio {ours / peer:.1f}×"
        )

        pysam.tabix_index(str(vcf), preset="vcf", force=True, keep_original=True)
        rng = random.Random(3)
        with pysam.VariantFile(str(vcf)) as variants:
            every = [(record.pos, record.ref, record.alts[0]) for record in variants]
        picks = [rng.choice(every) for _ in range(arguments.queries)]
        beacon, command, fetch = [], [], []
        tabix = pysam.TabixFile(str(vcf))
        with TestClient(create_app(node)) as client:
            for position, reference, alternate in picks:
                body = {
                    "query": {
                        "requestedGranularity": "record",
                        "requestParameters": {
                            "referenceName": "1",
                            "start": [position - 1],
                            "referenceBases": reference,
                            "alternateBases": alternate,
                        },
                    }
                }
                started = time.perf_counter()
                response = client.post("/api/g_variants", json=body)
                beacon.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text
                results = response.json()["response"]["resultSets"][0]["results"]
                assert len(results[0]["frequencyInPopulations"][0]["frequencies"]) == 11
                region = f"1:{position}-{position}"
                command.append(timed(["tabix", str(vcf), region]))
                started = time.perf_counter()
                list(tabix.fetch("1", position - 1, position))
                fetch.append(time.perf_counter() - started)
        tabix.close()
        ours_p50 = statistics.median(beacon) * 1e3
        command_p50 = statistics.median(command) * 1e3
        fetch_p50 = statistics.median(fetch) * 1e3
        print(
            f"  frequency query p50 over {arguments.queries}: Beacon g_variants "
            f"{ours_p50:.2f} ms   tabix command {command_p50:.2f} ms "
            f"(ratio {ours_p50 / command_p50:.2f}×)   pysam fetch "
            f"{fetch_p50:.3f} ms (ratio {ours_p50 / fetch_p50:.0f}×)"
        )
        node.close()
        shutil.rmtree(directory / "node", ignore_errors=True)


if __name__ == "__main__":
    main()
