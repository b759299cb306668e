"""Ingest benchmark: genomenode ingest next to the peers a node operator would run.

For each simulated cohort (msprime; cached in bench/cache/ between runs) this times,
in the same run and on the same file:

- ``genomenode ingest`` (validate, VCF Zarr, counts, encryption, metadata, publish);
- ``bcftools view -Ob + index`` (VCF → indexed BCF), Debian's bcftools;
- ``plink2 --make-pgen`` (VCF → PGEN), Debian's plink2;
- ``vcf2zarr convert`` (bio2zarr alone, what genomenode builds on).

It prints wall time, peak memory (the sum of the resident memory of the whole process
tree, sampled every 20 ms) and the ratio to bcftools. A second table ingests cohorts of
the same sample count and growing length, to show peak memory does not follow the
number of variants.

Usage: python bench/ingest.py [--samples 2000 20000] [--length 5000000] [--workers 2]
                              [--peers bcftools plink2 vcf2zarr] [--compare-with SRC]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import pathlib
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = pathlib.Path(__file__).parent
CACHE = HERE / "cache"
BIN = pathlib.Path(sys.executable).parent


@dataclasses.dataclass
class Measurement:
    tool: str
    seconds: float
    peak_mb: float
    # User + system CPU of the whole process tree: on a machine other work
    # shares, wall time alone says little.
    cpu_seconds: float = 0.0
    # genomenode ingest: wall seconds of each step (its -v log).
    steps: dict[str, float] = dataclasses.field(default_factory=dict)


def _tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and all its descendants, in KiB."""
    total = 0
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            status = pathlib.Path(f"/proc/{current}/status").read_text()
            total += next(
                int(line.split()[1])
                for line in status.splitlines()
                if line.startswith("VmRSS:")
            )
        except (OSError, StopIteration):
            continue
        for task in pathlib.Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                children = (task / "children").read_text().split()
                stack.extend(int(child) for child in children)
    return total


def measure(
    tool: str, command: list[str], environment: dict | None = None
) -> Measurement:
    """Run ``command``; wall time and peak resident memory of its process tree."""
    started = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=environment or os.environ.copy(),
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss_kb(process.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, errors = process.communicate()
    done.set()
    sampler.join()
    seconds = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if process.returncode != 0:
        raise SystemExit(
            f"{tool} failed ({process.returncode}):\n{errors.decode()[-2000:]}"
        )
    steps = {
        match.group(1): float(match.group(2))
        for match in _STEP_DONE.finditer(errors.decode(errors="replace"))
    }
    return Measurement(tool, seconds, peak / 1024, cpu, steps)


# The ingest's -v log line for a finished step.
_STEP_DONE = re.compile(r": (\w+) done in ([0-9.]+) s")
# The steps that turn the VCF into VCF Zarr and its counts: what bcftools'
# conversion compares with, without the clinical records (validate, metadata)
# and the Crypt4GH copies of the inputs (encrypt).
_GENOTYPE_STEPS = ("explode", "encode", "statistics")


def cohort(samples: int, length: int, seed: int = 7) -> pathlib.Path:
    """dataset.yaml of a cached simulated cohort, simulating it the first time."""
    directory = CACHE / f"cohort-{samples}-{length}-{seed}"
    dataset_yaml = directory / "dataset.yaml"
    if not dataset_yaml.exists():
        partial = directory.with_name(directory.name + ".part")
        shutil.rmtree(partial, ignore_errors=True)
        print(
            f"simulating {samples} samples × {length:,} bp (cached for next runs) ..."
        )
        started = time.monotonic()
        subprocess.run(
            [
                str(BIN / "genomenode"),
                "simulate",
                str(partial),
                "--samples",
                str(samples),
                "--length",
                str(length),
                "--seed",
                str(seed),
                "--dataset-id",
                f"bench-{samples}-{length}",
            ],
            check=True,
        )
        partial.rename(directory)
        print(f"  simulated in {time.monotonic() - started:.0f} s")
    return dataset_yaml


def ingest_once(
    dataset_yaml: pathlib.Path, workers: int, source: str | None = None
) -> Measurement:
    """Time ``genomenode ingest``; with ``source``, of the package under that
    ``src`` directory (put first on ``PYTHONPATH``)."""
    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        node = pathlib.Path(scratch) / "node"
        subprocess.run(
            [
                str(BIN / "genomenode"),
                "init",
                str(node),
                "--node-id",
                "bench",
                "--country",
                "FI",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        environment = dict(os.environ, GENOMENODE_WORKER_PROCESSES=str(workers))
        if source is not None:
            environment["PYTHONPATH"] = source
        return measure(
            f"genomenode ingest ({source})" if source else "genomenode ingest",
            [
                str(BIN / "genomenode"),
                "-v",
                "ingest",
                "--node",
                str(node),
                str(dataset_yaml),
            ],
            environment,
        )


PEERS = ("bcftools", "plink2", "vcf2zarr")


def peers(
    vcf: pathlib.Path, workers: int, wanted: tuple[str, ...] = PEERS
) -> list[Measurement]:
    results = []
    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        out = pathlib.Path(scratch)
        missing = [t for t in wanted if t != "vcf2zarr" and not shutil.which(t)]
        for tool in missing:
            print(f"{tool} not found: apt-get install {tool}")
        if "bcftools" in wanted and "bcftools" not in missing:
            results.append(
                measure(
                    "bcftools view -Ob + index",
                    [
                        "sh",
                        "-c",
                        f"bcftools view -Ob -o {out / 'x.bcf'} {vcf} "
                        f"&& bcftools index {out / 'x.bcf'}",
                    ],
                )
            )
        if "plink2" in wanted and "plink2" not in missing:
            results.append(
                measure(
                    "plink2 --make-pgen",
                    [
                        "plink2",
                        "--vcf",
                        str(vcf),
                        "--make-pgen",
                        "--out",
                        str(out / "x"),
                        "--threads",
                        str(workers),
                    ],
                )
            )
        if "vcf2zarr" in wanted:
            results.append(
                measure(
                    f"vcf2zarr convert -p {workers}",
                    [
                        str(BIN / "vcf2zarr"),
                        "convert",
                        "-p",
                        str(workers),
                        str(vcf),
                        str(out / "x.vcz"),
                    ],
                )
            )
    return results


def print_table(
    title: str, rows: list[Measurement], baseline: Measurement | None
) -> None:
    print(f"\n{title}")
    print(
        f"  {'tool':<34} {'wall s':>8} {'CPU s':>8} {'peak MB':>9} "
        f"{'wall × bcftools':>16} {'CPU × bcftools':>15}"
    )
    for row in rows:
        wall = f"{row.seconds / baseline.seconds:.2f}" if baseline else "-"
        cpu = (
            f"{row.cpu_seconds / baseline.cpu_seconds:.2f}"
            if baseline and baseline.cpu_seconds
            else "-"
        )
        print(
            f"  {row.tool:<34} {row.seconds:>8.1f} {row.cpu_seconds:>8.1f} "
            f"{row.peak_mb:>9.0f} {wall:>16} {cpu:>15}"
        )
    for row in rows:
        if not row.steps:
            continue
        steps = ", ".join(f"{step} {took:.1f}" for step, took in row.steps.items())
        print(f"    {row.tool} by step (wall s): {steps}")
        genotypes = sum(row.steps.get(step, 0.0) for step in _GENOTYPE_STEPS)
        ratio = f" = {genotypes / baseline.seconds:.2f} × bcftools" if baseline else ""
        print(
            f"    of which VCF → VCF Zarr and counts ({' + '.join(_GENOTYPE_STEPS)}): "
            f"{genotypes:.1f} s wall{ratio}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, nargs="*", default=[2000, 20000])
    parser.add_argument("--length", type=int, default=5_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--peers",
        nargs="*",
        choices=PEERS,
        default=list(PEERS),
        help="peers to run beside genomenode (vcf2zarr alone takes ~5x bcftools)",
    )
    parser.add_argument(
        "--compare-with",
        nargs="*",
        default=[],
        metavar="SRC",
        help="also time the ingest of another version's src directory, e.g. "
        "one made by `git archive main src | tar -x -C /tmp/main`",
    )
    parser.add_argument(
        "--memory-lengths",
        type=int,
        nargs="*",
        default=[1_000_000, 5_000_000, 20_000_000],
        help="lengths for the memory-scaling table (2,000 samples); none to skip",
    )
    arguments = parser.parse_args()
    CACHE.mkdir(exist_ok=True)
    print(
        f"genomenode ingest benchmark: {os.cpu_count()} cores, "
        f"{arguments.workers} workers"
    )
    for samples in arguments.samples:
        dataset_yaml = cohort(samples, arguments.length)
        vcf = next(dataset_yaml.parent.glob("*.vcf.gz"))
        size_mb = vcf.stat().st_size / 1e6
        rows = [
            *peers(vcf, arguments.workers, tuple(arguments.peers)),
            *(
                ingest_once(dataset_yaml, arguments.workers, source)
                for source in arguments.compare_with
            ),
            ingest_once(dataset_yaml, arguments.workers),
        ]
        baseline = next((row for row in rows if row.tool.startswith("bcftools")), None)
        print_table(
            f"{samples:,} samples × {arguments.length:,} bp ({size_mb:.0f} MB VCF.gz)",
            rows,
            baseline,
        )
        ingest_row, plink = (
            rows[-1],
            next((r for r in rows if r.tool.startswith("plink2")), None),
        )
        if plink:
            print(
                "  genomenode ingest / plink2: "
                f"{ingest_row.seconds / plink.seconds:.2f}×"
            )
    if arguments.memory_lengths:
        rows = []
        for length in arguments.memory_lengths:
            measurement = ingest_once(cohort(2000, length), arguments.workers)
            measurement.tool = f"ingest 2,000 × {length / 1e6:g} Mb"
            rows.append(measurement)
        print_table("peak memory against the number of variants", rows, None)


if __name__ == "__main__":
    main()
