"""QC benchmark: ``genomenode qc run`` next to the peer tools a QC pipeline runs.

On one synthetic cohort (unlinked sites in Hardy-Weinberg equilibrium, frequencies
from the neutral spectrum, ``GT:DP:GQ``, 22 autosomes and an X on which males are
haploid; cached in bench/cache/), in the same run:

- ``genomenode qc run`` on the ingested dataset: sample QC (bcftools-stats counts,
  depth and GQ, heterozygosity, Ti/Tv, singletons, X F, KING kinship, PCA) and
  variant QC (call rate, HWE per population, AC0, InbreedingCoeff);
- ``bcftools stats -s -`` on the VCF (Debian's bcftools);
- ``plink2 --het --hardy`` on the PGEN (Debian's plink2; the VCF → PGEN import is
  timed on its own line, not added);
- ``plink --check-sex`` (plink 1.9: Debian's plink2 2.00a3.5 has none) on the BED;
- ``plink2 --make-king-table`` on the PGEN (the kinship genomenode also computes).

It prints wall and CPU times (user + system, children's rusage: the machine
may be busy, CPU time is the steadier measure) and the ratios of genomenode to
the sum of the peers'.

Usage: python bench/qc.py [--quick | --full] [--samples N] [--variants M]
(quick: 1,000 samples × 10,000 variants; full: 20,000 × 80,000).

``--memory`` instead measures the peak memory (RSS) of ``qc run`` on the same
number of variants at two numbers of samples (``--memory-samples``, default
1,000 and 4,000): in one process, and with a Dask cluster of two worker
processes (``distributed.LocalCluster``; the client's peak and each worker's),
and prints each peak above the process's RSS after its imports, and their
ratios (docs/qc.md "Memory and time").
"""

from __future__ import annotations

import argparse
import os
import pathlib
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from typing import NamedTuple

import numpy as np
import pysam

HERE = pathlib.Path(__file__).parent
CACHE = HERE / "cache"
CHROMOSOMES = [*(str(number) for number in range(1, 23)), "X"]


def write_cohort(directory: pathlib.Path, num_samples: int, num_variants: int) -> None:
    """VCF (bgzipped, indexed), clinical CSV and dataset.yaml in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20)
    male = rng.random(num_samples) < 0.5
    ids = [f"B{index:06d}" for index in range(num_samples)]
    per_contig = num_variants // len(CHROMOSOMES)
    table = []
    for text in ("0/0", "0/1", "1/1", "0", "1"):
        for dp in range(64):
            table.append(f"{text}:{dp}:{min(99, 3 * dp)}")
    lookup = np.array(table, dtype=object)
    plain = directory / "cohort.vcf"
    with open(plain, "w") as out:
        out.write("##fileformat=VCFv4.3\n")
        for name in CHROMOSOMES:
            out.write(f"##contig=<ID={name},length=200000000>\n")
        out.write('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n')
        out.write('##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">\n')
        out.write('##FORMAT=<ID=GQ,Number=1,Type=Integer,Description="Quality">\n')
        out.write(
            "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t"
            + "\t".join(ids)
            + "\n"
        )
        lowest = 1 / (2 * num_samples)
        for name in CHROMOSOMES:
            positions = np.sort(rng.choice(150_000_000, per_contig, replace=False))
            positions += 3_000_000  # past the pseudo-autosomal region of X
            frequency = lowest ** rng.random(per_contig)
            haploid = male if name == "X" else np.zeros(num_samples, bool)
            for row in range(per_contig):
                copies = rng.binomial(2, frequency[row], num_samples)
                copies = np.where(haploid, np.minimum(copies, 1) + 3, copies)
                depth = rng.poisson(30, num_samples).clip(0, 63)
                calls = lookup[copies * 64 + depth]
                reference, alternate = rng.choice(list("ACGT"), 2, replace=False)
                out.write(
                    f"{name}\t{positions[row]}\t.\t{reference}\t{alternate}\t.\t"
                    "PASS\t.\tGT:DP:GQ\t" + "\t".join(calls) + "\n"
                )
    vcf = directory / "cohort.vcf.gz"
    pysam.tabix_compress(str(plain), str(vcf), force=True)
    plain.unlink()
    pysam.tabix_index(str(vcf), preset="vcf", force=True, csi=True)
    (directory / "clinical.csv").write_text(
        "sample_id,sex\n"
        + "".join(
            f"{sample},{'male' if is_male else 'female'}\n"
            for sample, is_male in zip(ids, male, strict=True)
        )
    )
    (directory / "sex.txt").write_text(
        "".join(
            f"{sample} {sample} {1 if is_male else 2}\n"
            for sample, is_male in zip(ids, male, strict=True)
        )
    )
    (directory / "dataset.yaml").write_text(
        "format_version: 1\nid: qc-bench\nname: QC benchmark cohort\n"
        "description: synthetic\ncountry: FI\n"
        "contact: {name: bench, email: bench@example.org}\n"
        "security_level: CONTROLLED\nassembly: GRCh38\n"
        'data_use: [{id: "DUO:0000042"}]\ngenotypes: [{path: cohort.vcf.gz}]\n'
        "clinical: {format: csv, path: clinical.csv, "
        "columns: {id: sample_id, sex: sex}}\n"
    )


class Timing(NamedTuple):
    """Wall seconds, and CPU seconds (user + system of the child and its own)."""

    wall: float
    cpu: float

    def __add__(self, other: object) -> Timing:  # type: ignore[override]
        assert isinstance(other, Timing)
        return Timing(self.wall + other.wall, self.cpu + other.cpu)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], **keywords) -> Timing:
    cpu, started = _children_cpu(), time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, **keywords)
    return Timing(time.perf_counter() - started, _children_cpu() - cpu)


# Runs qc in a fresh process and prints its peak RSS (ru_maxrss, kB) after the
# imports and after the run; with a scheduler, the workers' peaks too.
_MEASURE = """
import json, resource, sys
from genomenode.qc.run import run_qc
from genomenode.store.node import open_node
node_dir, dataset, scheduler = sys.argv[1], sys.argv[2], sys.argv[3] or None
if scheduler:
    import distributed
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with open_node(node_dir) as node:
    run_qc(node, dataset, dask_scheduler=scheduler)
    from genomenode.qc.flags import load_report
    report = load_report(node, dataset)
    manifest = node.dataset_manifest(dataset)
    location, _ = node.dataset_zarr(
        dataset, manifest["fingerprint"], manifest["genotypes"]["path"]
    )
    import zarr
    chunks = list(zarr.open_group(location, mode="r")["call_genotype"].chunks[:2])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
workers = {}
if scheduler:
    def worker_peak():
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with distributed.Client(scheduler) as client:
        workers = client.run(worker_peak)
common = report["summary"]["num_common_variants"]
print(json.dumps({"baseline": baseline, "peak": peak, "workers": workers,
                  "common": common, "chunks": chunks}))
"""


def _ingested(samples: int, variants: int, work: pathlib.Path) -> pathlib.Path:
    cohort = CACHE / f"qc-{samples}x{variants}"
    if not (cohort / "dataset.yaml").exists():
        print(f"writing the cohort ({samples} samples × {variants} variants) ...")
        write_cohort(cohort, samples, variants)
    environment = {**os.environ, "GENOMENODE_WORKER_PROCESSES": "2"}
    genomenode = [sys.executable, "-m", "genomenode"]
    node = work / f"node-{samples}"
    subprocess.run(
        [*genomenode, "init", str(node), "--node-id", "bench", "--country", "FI"],
        check=True,
        capture_output=True,
        env=environment,
    )
    subprocess.run(
        [*genomenode, "ingest", "--node", str(node), str(cohort / "dataset.yaml")],
        check=True,
        capture_output=True,
        env=environment,
    )
    return node


def _peaks(node: pathlib.Path, scheduler: str) -> dict:
    import json

    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(node), "qc-bench", scheduler],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "GENOMENODE_WORKER_PROCESSES": "0"},
    ).stdout
    return json.loads(out.splitlines()[-1])


def memory(sample_counts: list[int], variants: int) -> None:
    """Peak RSS of ``qc run`` at each number of samples, in-process and on a
    two-worker LocalCluster (client and workers)."""
    from distributed import LocalCluster

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for samples in sample_counts:
            node = _ingested(samples, variants, pathlib.Path(scratch))
            here = _peaks(node, "")
            # A new cluster per size: a worker's peak is over its lifetime.
            with LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            ) as cluster:
                there = _peaks(node, cluster.scheduler_address)
            rows.append((samples, here, there))
    print(f"qc run peak RSS (MB above the process after its imports), {variants:,}")
    print("variants; the imports' RSS in brackets")
    print(
        f"  {'samples':>8} {'in-process':>16} {'cluster client':>16} {'worker max':>12}"
    )
    results = []
    for samples, here, there in rows:
        own = (here["peak"] - here["baseline"]) / 1024
        client = (there["peak"] - there["baseline"]) / 1024
        worker = max(there["workers"].values()) / 1024
        results.append((own, client, worker))
        print(
            f"  {samples:8,} {own:8.0f} ({here['baseline'] / 1024:4.0f}) "
            f"{client:8.0f} ({there['baseline'] / 1024:4.0f}) {worker:12.0f}"
            f"   stored chunk {here['chunks'][0]:,} x {here['chunks'][1]:,}, "
            f"{here['common']:,} common variants"
        )
    (small, *_), (large, *_) = rows[0], rows[-1]
    ratio = [results[-1][index] / results[0][index] for index in range(3)]
    print(
        f"ratio {large:,} / {small:,} samples ({large / small:.1f}x): in-process "
        f"{ratio[0]:.2f}, cluster client {ratio[1]:.2f}, worker (whole RSS) "
        f"{ratio[2]:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="1,000 × 10,000 (default)")
    mode.add_argument("--full", action="store_true", help="20,000 × 80,000")
    parser.add_argument("--samples", type=int)
    parser.add_argument("--variants", type=int)
    parser.add_argument(
        "--memory", action="store_true", help="peak RSS at two numbers of samples"
    )
    parser.add_argument("--memory-samples", default="1000,4000")
    arguments = parser.parse_args()
    if arguments.memory:
        counts = [int(value) for value in arguments.memory_samples.split(",")]
        memory(counts, arguments.variants or 10_000)
        return
    samples = arguments.samples or (20_000 if arguments.full else 1_000)
    variants = arguments.variants or (80_000 if arguments.full else 10_000)
    for tool in ("bcftools", "plink2", "plink1.9"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed (Debian packages bcftools, plink2, plink1.9)")
    cohort = CACHE / f"qc-{samples}x{variants}"
    if not (cohort / "dataset.yaml").exists():
        print(f"writing the cohort ({samples} samples × {variants} variants) ...")
        write_cohort(cohort, samples, variants)
    environment = {**os.environ, "GENOMENODE_WORKER_PROCESSES": "2"}
    genomenode = [sys.executable, "-m", "genomenode"]
    with tempfile.TemporaryDirectory() as scratch:
        work = pathlib.Path(scratch)
        node = work / "node"
        subprocess.run(
            [*genomenode, "init", str(node), "--node-id", "bench", "--country", "FI"],
            check=True,
            capture_output=True,
            env=environment,
        )
        ingest = timed(
            [*genomenode, "ingest", "--node", str(node), str(cohort / "dataset.yaml")],
            env=environment,
        )
        ours = timed(
            [*genomenode, "qc", "run", "--node", str(node), "qc-bench"],
            env=environment,
        )
        vcf = str(cohort / "cohort.vcf.gz")
        plink_out = str(work / "plink")
        # --memory: by default plink reserves half the machine's RAM (12 GB here).
        common = ["--threads", "2", "--memory", "4000", "--out", plink_out]
        stats = timed(["bcftools", "stats", "-s", "-", vcf])
        to_pgen = timed(
            ["plink2", "--vcf", vcf, "--update-sex", str(cohort / "sex.txt"),
             "--split-par", "hg38", "--make-pgen", *common]
        )  # fmt: skip
        to_pgen += timed(["plink2", "--pfile", plink_out, "--make-bed", *common])
        het_hardy = timed(["plink2", "--pfile", plink_out, "--het", "--hardy", *common])
        check_sex = timed(
            ["plink1.9", "--bfile", plink_out, "--check-sex", "--threads", "2",
             "--memory", "4000", "--out", plink_out + "-sex"]
        )  # fmt: skip
        king = timed(["plink2", "--pfile", plink_out, "--make-king-table", *common])
    peers = stats + het_hardy + check_sex
    print(f"cohort: {samples} samples × {variants} variants (GT:DP:GQ)")
    rows = [
        ("genomenode ingest (not QC; for scale)", ingest),
        ("genomenode qc run (sample + variant QC, KING, PCA)", ours),
        ("bcftools stats -s -", stats),
        ("plink2 VCF → PGEN/BED import (not added)", to_pgen),
        ("plink2 --het --hardy", het_hardy),
        ("plink 1.9 --check-sex", check_sex),
        ("plink2 --make-king-table", king),
    ]
    print(f"  {'':55} {'wall s':>8} {'CPU s':>8}")
    for name, timing in rows:
        print(f"  {name:55} {timing.wall:8.2f} {timing.cpu:8.2f}")
    label = "peers: bcftools stats + --het --hardy + --check-sex"
    print(f"  {label:55} {peers.wall:8.2f} {peers.cpu:8.2f}")
    with_king = peers + king
    print(
        f"ratio genomenode qc / peers:          {ours.wall / peers.wall:6.2f} wall, "
        f"{ours.cpu / peers.cpu:6.2f} CPU"
    )
    print(
        f"ratio genomenode qc / (peers + KING): {ours.wall / with_king.wall:6.2f} "
        f"wall, {ours.cpu / with_king.cpu:6.2f} CPU"
    )


if __name__ == "__main__":
    main()
