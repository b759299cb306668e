"""Scaling curve: how ingest, storage and queries grow with the number of samples.

For each cohort size (msprime via ``genomenode simulate``, cached in bench/cache/)
this measures, in the same run:

- the genotype input: below ``--vcz-from`` samples the VCF, from there VCF Zarr
  simulated straight from the tree sequence (``genomenode simulate --vcz``,
  bio2zarr's tskit converter: the same sites, samples and calls without VCF
  text), ingested as a ``.vcz`` input; ``--source vcf`` or ``vcz`` forces one;

- ``genomenode ingest`` wall time and peak memory (process tree RSS), plain and
  with ``encrypt_at_rest`` (the cost of sealing every VCF Zarr object), next to
  ``bcftools view -Ob`` (VCF → BCF) on the same file;
- the VCF Zarr's size against the VCF.gz;
- a single-variant count (the Beacon hot path: position lookup + stored counts)
  and the carriers of one allele, p50/p99 over random rows, plain and sealed,
  with a fresh store every 20 rows (its first count, chunk reads and decryption
  included, reported as ``cold``); counts timed alone (a loop of counts), each
  after a carriers query, and each after writing 10 MB of unrelated memory;
- allele frequencies of all variants from ``call_genotype`` chunk by chunk, next
  to ``bcftools +fill-tags -t AF``.

It fits log-log slopes against the number of samples, prints the table and the
ratios, writes bench/cache/scale-results.json and plots docs/scale.png.

Usage: python bench/scale.py [--quick] [--samples 1000 3000 ...] [--length N]
                             [--max-samples N] [--vcz-from N] [--source vcf|vcz]
                             [--vcf-text-up-to N] [--no-sealed] [--keep-nodes]
                             [--fresh]
       (results merge into bench/cache/scale-results.json by size and input,
       so VCF and VCF Zarr runs can be made separately and plotted together)
       python bench/scale.py --memory   (peak RSS of ingest at 2,000 vs 8,000)
       python bench/scale.py --dask 3000  (ingest on 1 vs 2 Dask workers)
       python bench/scale.py --dask-af 100000  (AF on 1 vs 2 Dask workers, on
                                                a node kept by --keep-nodes)
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import pathlib
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

HERE = pathlib.Path(__file__).parent
CACHE = HERE / "cache"
DOCS = HERE.parent / "docs"
sys.path.insert(0, str(HERE))

from ingest import measure  # noqa: E402 -- a sibling script, not a package

QUICK_SAMPLES = [1000, 3000]
FULL_SAMPLES = [1000, 3000, 10_000, 30_000, 100_000]
QUERIES = 400


def _genomenode(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "genomenode", *arguments]


def simulate(
    samples: int, length: int, seed: int = 5, *, vcz: bool = False
) -> pathlib.Path:
    """dataset.yaml of a cached simulated cohort (its genotypes a VCF, or with
    ``vcz`` a VCF Zarr of the same tree sequence)."""
    suffix = "-vcz" if vcz else ""
    directory = CACHE / f"scale-{samples}-{length}-{seed}{suffix}"
    if not (directory / "dataset.yaml").exists():
        partial = directory.with_name(directory.name + ".part")
        shutil.rmtree(partial, ignore_errors=True)
        started = time.perf_counter()
        subprocess.run(
            _genomenode(
                "simulate",
                str(partial),
                "--samples",
                str(samples),
                "--length",
                str(length),
                "--seed",
                str(seed),
                "--dataset-id",
                f"scale-{samples}",
                *(["--vcz"] if vcz else []),
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        (partial / "simulate-seconds.txt").write_text(
            f"{time.perf_counter() - started:.1f}\n"
        )
        partial.rename(directory)
    return directory / "dataset.yaml"


@dataclasses.dataclass
class Ingested:
    node_dir: pathlib.Path
    seconds: float
    peak_mb: float
    cpu_seconds: float
    #: Measured by an earlier run whose node was kept (``--keep-nodes``).
    reused: bool = False


_KEPT = "bench-ingest.json"


def ingest(
    dataset_yaml: pathlib.Path,
    scratch: pathlib.Path,
    *,
    sealed: bool,
    reuse: bool = False,
) -> Ingested:
    """Ingest into a new node under ``scratch``; with ``reuse``, a node an
    earlier run ingested there is taken as it is, with that run's numbers."""
    node_dir = scratch / ("sealed" if sealed else "plain")
    kept = node_dir / _KEPT
    if reuse and kept.exists():
        numbers = json.loads(kept.read_text())
        return Ingested(node_dir, **numbers, reused=True)
    shutil.rmtree(node_dir, ignore_errors=True)
    subprocess.run(
        _genomenode("init", str(node_dir), "--node-id", "bench", "--country", "FI"),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    environment = dict(
        os.environ,
        GENOMENODE_WORKER_PROCESSES="2",
        GENOMENODE_ENCRYPT_AT_REST="true" if sealed else "false",
    )
    run = measure(
        "ingest",
        _genomenode("ingest", "--node", str(node_dir), str(dataset_yaml)),
        environment,
    )
    kept.write_text(
        json.dumps(
            {
                "seconds": run.seconds,
                "peak_mb": run.peak_mb,
                "cpu_seconds": run.cpu_seconds,
            }
        )
    )
    return Ingested(node_dir, run.seconds, run.peak_mb, run.cpu_seconds)


def _size(path: pathlib.Path) -> int:
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def _percentiles(times: list[float]) -> tuple[float, float]:
    values = np.array(times) * 1000
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def _count(store: Any, contig: str, position: int) -> float:
    """Seconds of one single-variant count: position lookup + stored counts."""
    started = time.perf_counter()
    for found in store.rows_at(contig, position):
        store.counts(found)
    return time.perf_counter() - started


# Bytes of unrelated memory written before each count of the "after touching
# memory" series: about one by-variant chunk of 100,000 samples (50 × 10⁵ × 2).
_TOUCH_BYTES = 10 * 2**20


def queries(node_dirs: dict[str, pathlib.Path], dataset_id: str) -> dict[str, Any]:
    """Count and carriers p50/p99 (ms) on each node, the same random rows asked
    of each in turn (so the machine's load falls on both alike); a fresh store
    every 20 rows, whose first query (``cold``: chunk read, decrypted, decoded)
    is also reported on its own.

    Counts are timed three ways on the same warm stores: ``count``, each
    followed by a carriers query (which decodes a by-variant chunk: 10 MB at
    100,000 samples); ``count_alone``, a loop of counts only; and
    ``count_touched``, each after writing ``_TOUCH_BYTES`` of unrelated memory
    (what a carriers query does to the CPU caches, at any cohort size).
    """
    from genomenode.store.node import open_node
    from genomenode.store.published import PublishedDatasets

    generator = random.Random(3)
    series = ("count", "carriers", "cold", "count_alone", "count_touched")
    times: dict[str, dict[str, list[float]]] = {
        name: {key: [] for key in series} for name in node_dirs
    }
    unrelated = np.zeros(_TOUCH_BYTES, np.uint8)
    nodes = {name: open_node(path) for name, path in node_dirs.items()}
    try:
        for _batch in range(QUERIES // 20):
            handles = {
                name: PublishedDatasets(node).get(dataset_id)
                for name, node in nodes.items()
            }
            for handle in handles.values():
                assert handle is not None
                handle.store.positions(0, 1)  # loaded once per store
            some = next(iter(handles.values()))
            total = some.facts.num_variants
            (contig,) = list(some.store.contigs)
            positions = some.store.positions(0, total)
            for number in range(20):
                row = generator.randrange(total)
                position = int(positions[row])
                for name, handle in handles.items():
                    store = handle.store
                    elapsed = _count(store, contig, position)
                    times[name]["cold" if number == 0 else "count"].append(elapsed)
                    started = time.perf_counter()
                    store.carriers(row, 1)
                    times[name]["carriers"].append(time.perf_counter() - started)
            for _number in range(20):
                position = int(positions[generator.randrange(total)])
                for name, handle in handles.items():
                    times[name]["count_alone"].append(
                        _count(handle.store, contig, position)
                    )
            for _number in range(20):
                position = int(positions[generator.randrange(total)])
                for name, handle in handles.items():
                    unrelated += 1  # reads and writes every byte
                    times[name]["count_touched"].append(
                        _count(handle.store, contig, position)
                    )
    finally:
        for node in nodes.values():
            node.close()
    result: dict[str, Any] = {}
    for name, measured in times.items():
        result[name] = {"cold_count_p50_ms": _percentiles(measured["cold"])[0]}
        for key in ("count", "carriers", "count_alone", "count_touched"):
            p50, p99 = _percentiles(measured[key])
            result[name][f"{key}_p50_ms"] = p50
            result[name][f"{key}_p99_ms"] = p99
    return result


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _own_cpu() -> float:
    # getrusage, not os.times: microseconds rather than 10 ms clock ticks.
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def allele_frequencies(
    node_dir: pathlib.Path, dataset_id: str, repeats: int = 5
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Wall and CPU seconds (user + system, every thread) of
    ``genomenode.store.compute.allele_frequencies``: the ALT allele frequency of
    every variant from the calls, checked against the stored counts.

    The node is opened once, as in a server: the first pass opens the store
    (and pays page-cache misses), the next ``repeats`` find it opened. Returns
    the first and the best of the next (by wall time).
    """
    import zarr

    from genomenode.store.compute import allele_frequencies as compute
    from genomenode.store.node import open_node

    runs = []
    with open_node(node_dir) as node:
        for _ in range(1 + repeats):
            cpu, started = _own_cpu(), time.perf_counter()
            frequency = compute(node, dataset_id)
            runs.append((time.perf_counter() - started, _own_cpu() - cpu))
        manifest = node.dataset_manifest(dataset_id)
        location, _ = node.dataset_zarr(
            dataset_id, manifest["fingerprint"], manifest["genotypes"]["path"]
        )
        root: Any = zarr.open_group(location, mode="r")
        stored = root["variant_allele_count"][:]
        expected = stored[:, 1:].sum(axis=1) / np.maximum(
            root["variant_allele_total"][:], 1
        )
        np.testing.assert_allclose(frequency, expected)
    return runs[0], min(runs[1:])


def bcftools(vcf: pathlib.Path, scratch: pathlib.Path) -> dict[str, float]:
    if not shutil.which("bcftools"):
        return {}
    bcf = measure(
        "bcftools view -Ob",
        ["bcftools", "view", "-Ob", "-o", str(scratch / "out.bcf"), str(vcf)],
    )
    cpu = _children_cpu()
    fill = measure(
        "bcftools +fill-tags",
        [
            "bcftools",
            "+fill-tags",
            str(vcf),
            "-Ou",
            "-o",
            str(scratch / "af.bcf"),
            "--",
            "-t",
            "AF",
        ],
    )
    return {
        "bcftools_bcf_s": bcf.seconds,
        "bcftools_fill_tags_s": fill.seconds,
        "bcftools_fill_tags_cpu_s": _children_cpu() - cpu,
    }


def one_size(
    samples: int,
    length: int,
    *,
    source: str,
    vcf_text: bool,
    sealed: bool = True,
    keep: bool = False,
) -> dict[str, Any]:
    """Every measurement at one size; ``source`` is the ingested input ("vcf"
    or "vcz"); with ``vcf_text`` the VCF of the same cohort is written (if the
    input is not already one) for its size and bcftools' times; without
    ``sealed``, no ``encrypt_at_rest`` node is ingested and asked. With
    ``keep``, the nodes stay in bench/cache/nodes-* and a later run with
    ``keep`` measures queries and AF on them without ingesting again (its
    result says ``ingest_reused``)."""
    dataset_yaml = simulate(samples, length, vcz=source == "vcz")
    vcf = None
    if source == "vcf" or vcf_text:
        vcf = simulate(samples, length).parent / f"scale-{samples}.vcf.gz"
    dataset_id = f"scale-{samples}"
    with contextlib.ExitStack() as stack:
        if keep:
            scratch = CACHE / f"nodes-{samples}-{length}-{source}"
            scratch.mkdir(exist_ok=True)
        else:
            scratch = pathlib.Path(
                stack.enter_context(tempfile.TemporaryDirectory(dir=CACHE))
            )
        plain = ingest(dataset_yaml, scratch, sealed=False, reuse=keep)
        nodes = {"plain": plain.node_dir}
        if sealed:
            sealed_run = ingest(dataset_yaml, scratch, sealed=True, reuse=keep)
            nodes["sealed"] = sealed_run.node_dir
        vcz = plain.node_dir / "store" / "datasets" / dataset_id / "genotypes.vcz"
        from genomenode.store.node import open_node

        with open_node(plain.node_dir) as node:
            num_variants = node.dataset_manifest(dataset_id)["genotypes"][
                "num_variants"
            ]
        result: dict[str, Any] = {
            "samples": samples,
            "source": source,
            "variants": num_variants,
            "simulate_s": float(
                (dataset_yaml.parent / "simulate-seconds.txt").read_text()
            )
            if (dataset_yaml.parent / "simulate-seconds.txt").exists()
            else None,
            "ingest_s": plain.seconds,
            "ingest_cpu_s": plain.cpu_seconds,
            "ingest_peak_mb": plain.peak_mb,
            "ingest_reused": plain.reused,
            "vcz_mb": _size(vcz) / 2**20,
            "vcz_without_copy_mb": (
                _size(vcz) - _size(vcz / "call_genotype_by_variant")
            )
            / 2**20,
            **queries(nodes, dataset_id),
        }
        if sealed:
            result["ingest_sealed_s"] = sealed_run.seconds
            result["ingest_sealed_peak_mb"] = sealed_run.peak_mb
        if source == "vcz":
            result["input_vcz_mb"] = (
                _size(dataset_yaml.parent / f"scale-{samples}.vcz") / 2**20
            )
        for name, node_dir in nodes.items():
            key = "af_all" if name == "plain" else "af_all_sealed"
            first, best = allele_frequencies(node_dir, dataset_id)
            result[f"{key}_first_s"], result[f"{key}_first_cpu_s"] = first
            result[f"{key}_s"], result[f"{key}_cpu_s"] = best
        if vcf is not None:
            result["vcf_gz_mb"] = vcf.stat().st_size / 2**20
            result |= bcftools(vcf, scratch)
    return result


def _slope(xs: list[float], ys: list[float]) -> float | None:
    if len(xs) < 2 or min(ys) <= 0:
        return None
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


SERIES = {
    "ingest_s": "ingest (s)",
    "ingest_cpu_s": "ingest (CPU s)",
    "ingest_peak_mb": "ingest peak RSS (MB)",
    "vcz_mb": "VCF Zarr (MB)",
    "vcf_gz_mb": "VCF.gz (MB)",
    "af_all_s": "AF of all variants (s)",
    "af_all_cpu_s": "AF of all variants (CPU s)",
    "bcftools_fill_tags_s": "bcftools +fill-tags (s)",
    "bcftools_fill_tags_cpu_s": "bcftools +fill-tags (CPU s)",
}


def _value(result: dict[str, Any], key: str) -> float | None:
    if "." in key:
        outer, inner = key.split(".")
        return result.get(outer, {}).get(inner)
    value = result.get(key)
    return None if value is None else float(value)


def _series(results: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(samples, values) of the results that have ``key``."""
    pairs = [(float(r["samples"]), _value(r, key)) for r in results]
    kept = [(x, y) for x, y in pairs if y is not None]
    return [x for x, _ in kept], [y for _, y in kept]


def _number(value: Any, digits: int, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def _ratio(numerator: Any, denominator: Any) -> str:
    if numerator is None or not denominator:
        return "-"
    return f"{numerator / denominator:.2f}"


def _fill_tags_times(result: dict[str, Any], ours: str) -> str:
    """How many times faster than ``bcftools +fill-tags`` the AF pass ``ours``
    (``af_all`` or ``af_all_first``) was, in wall and in CPU time."""
    wall = result["bcftools_fill_tags_s"] / result[f"{ours}_s"]
    cpu = result["bcftools_fill_tags_cpu_s"] / max(result[f"{ours}_cpu_s"], 1e-9)
    return f"{wall:.1f}× wall, {cpu:.1f}× CPU"


def report(results: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Print the table, the ratios and the slopes; return the slopes.

    Count columns: ``alone`` is a loop of counts only; ``w/ carr`` each count
    followed by a carriers query (how the earlier runs measured it); ``touched``
    each count after writing 10 MB of unrelated memory.
    """
    header = (
        f"{'samples':>8} {'input':>5} {'variants':>8} {'ingest s':>9} "
        f"{'sealed s':>9} {'peak MB':>8} {'vcz MB':>7} {'vcf.gz MB':>9} "
        f"{'alone p50':>9} {'p99':>7} {'w/carr':>7} {'p99':>7} {'touched':>7} "
        f"{'sealed':>7} {'carr p50':>8} {'p99':>7} "
        f"{'sealed':>7} {'AF s':>6} {'AF cpu':>6} {'bcf s':>6} {'fill s':>6}"
    )
    print(header)
    for result in results:
        plain, sealed = result["plain"], result.get("sealed", {})
        print(
            f"{result['samples']:>8} {result['source']:>5} {result['variants']:>8} "
            f"{result['ingest_s']:>9.1f} "
            f"{_number(result.get('ingest_sealed_s'), 1, 9)} "
            f"{result['ingest_peak_mb']:>8.0f} {result['vcz_mb']:>7.1f} "
            f"{_number(result.get('vcf_gz_mb'), 1, 9)} "
            f"{_number(plain.get('count_alone_p50_ms'), 3, 9)} "
            f"{_number(plain.get('count_alone_p99_ms'), 3, 7)} "
            f"{plain['count_p50_ms']:>7.3f} {plain['count_p99_ms']:>7.3f} "
            f"{_number(plain.get('count_touched_p50_ms'), 3, 7)} "
            f"{_number(sealed.get('count_p50_ms'), 3, 7)} "
            f"{plain['carriers_p50_ms']:>8.3f} {plain['carriers_p99_ms']:>7.3f} "
            f"{_number(sealed.get('carriers_p50_ms'), 3, 7)} "
            f"{result['af_all_s']:>6.3f} {result['af_all_cpu_s']:>6.3f} "
            f"{_number(result.get('bcftools_bcf_s'), 1, 6)} "
            f"{_number(result.get('bcftools_fill_tags_s'), 1, 6)}"
        )
    print("\nratios (same run):")
    for result in results:
        plain, sealed = result["plain"], result.get("sealed", {})
        line = f"  {result['samples']:>7} samples ({result['source']}):"
        if sealed:
            line += (
                " sealed/plain count p50 "
                f"{_ratio(sealed['count_p50_ms'], plain['count_p50_ms'])}, "
                "carriers p50 "
                f"{_ratio(sealed['carriers_p50_ms'], plain['carriers_p50_ms'])}, "
                "cold count "
                f"{_ratio(sealed['cold_count_p50_ms'], plain['cold_count_p50_ms'])}"
                f", AF {_ratio(result.get('af_all_sealed_s'), result['af_all_s'])}"
                f", ingest "
                f"{_ratio(result.get('ingest_sealed_s'), result['ingest_s'])};"
            )
        if "vcf_gz_mb" in result:
            line += f" vcz/vcf.gz {result['vcz_mb'] / result['vcf_gz_mb']:.2f}"
        if "bcftools_bcf_s" in result:
            versus_bcf = result["ingest_s"] / result["bcftools_bcf_s"]
            line += (
                f"; ingest/bcftools-BCF {versus_bcf:.2f}"
                f"; fill-tags/AF {_fill_tags_times(result, 'af_all')}"
            )
            if "af_all_first_s" in result:
                first = _fill_tags_times(result, "af_all_first")
                line += f" (first pass, opening the store: {first})"
        print(line)
    slopes: dict[str, dict[str, float | None]] = {}
    for source in sorted({result["source"] for result in results}):
        chosen = [result for result in results if result["source"] == source]
        slopes[source] = {
            key: _slope(*_series(chosen, key))
            for key in [
                *SERIES,
                "plain.count_alone_p50_ms",
                "plain.count_p50_ms",
                "plain.carriers_p50_ms",
                "sealed.count_p50_ms",
            ]
        }
        print(f"\nlog-log slopes against samples, {source} input (1 = linear):")
        for key, value in slopes[source].items():
            print(f"  {key:<24} {'n/a' if value is None else f'{value:.2f}'}")
        first, last = chosen[0]["plain"], chosen[-1]["plain"]
        sizes = f"at {chosen[-1]['samples']} / at {chosen[0]['samples']} samples"

        def growth(key: str) -> str:
            return _ratio(last.get(key), first.get(key))  # noqa: B023 -- used at once

        print(
            f"count p50 {sizes} (target ≤ 1.5): alone "
            f"{growth('count_alone_p50_ms')}, each after a carriers query "
            f"{growth('count_p50_ms')}, each after touching 10 MB "
            f"{growth('count_touched_p50_ms')}"
            f"; carriers p50 at {chosen[-1]['samples']}: "
            f"{last['carriers_p50_ms']:.2f} ms (target ≤ 20)"
        )
    return slopes


def plot(results: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(14, 4.5))
    panels = [
        ("Ingest", ["ingest_s", "ingest_sealed_s", "bcftools_bcf_s"], "seconds"),
        ("Size and memory", ["vcz_mb", "vcf_gz_mb", "ingest_peak_mb"], "MB"),
        (
            "Queries and AF",
            [
                "plain.count_alone_p50_ms",
                "plain.count_p50_ms",
                "sealed.count_p50_ms",
                "plain.carriers_p50_ms",
                # CPU, not wall: on a shared machine wall time is the load's.
                "af_all_cpu_s",
                "bcftools_fill_tags_cpu_s",
            ],
            "ms (queries) / CPU s (AF)",
        ),
    ]
    sources = sorted({result["source"] for result in results})
    for axis, (title, keys, unit) in zip(axes, panels, strict=True):
        for key in keys:
            for source in sources:
                chosen = [r for r in results if r["source"] == source]
                # The VCF-side tools do not depend on the ingested input.
                if key in ("vcf_gz_mb", "bcftools_bcf_s", "bcftools_fill_tags_cpu_s"):
                    if source != sources[-1]:
                        continue
                    chosen = _one_per_size(results, key)
                    label = key
                else:
                    label = f"{key} [{source}]"
                samples, values = _series(chosen, key)
                if not values:
                    continue
                slope = _slope(samples, values)
                label += f" (slope {slope:.2f})" if slope is not None else ""
                axis.loglog(samples, values, marker="o", label=label)
        axis.set_title(title)
        axis.set_xlabel("samples")
        axis.set_ylabel(unit)
        axis.legend(fontsize=6)
        axis.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(DOCS / "scale.png", dpi=110)
    print(f"plotted {DOCS / 'scale.png'}")


def _one_per_size(results: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """One result per size that has ``key`` (the latest)."""
    by_size = {r["samples"]: r for r in results if r.get(key) is not None}
    return [by_size[size] for size in sorted(by_size)]


def memory(length: int) -> None:
    """Peak RSS of ingest at 2,000 and 8,000 samples (part 4: bounded memory)."""
    peaks = []
    for samples in (2000, 8000):
        dataset_yaml = simulate(samples, length)
        with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
            run = ingest(dataset_yaml, pathlib.Path(scratch), sealed=False)
        peaks.append(run.peak_mb)
        print(
            f"{samples:>6} samples: ingest {run.seconds:.1f} s, "
            f"peak {run.peak_mb:.0f} MB"
        )
    print(f"peak RSS 8,000 / 2,000 samples: {peaks[1] / peaks[0]:.2f} (target < 1.5)")


def _cluster_cpu_seconds() -> float:
    """User + system CPU so far of this process's live descendants (a local
    Dask cluster's nanny and worker processes) and of the scheduler's threads
    in this process."""
    import psutil

    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.NoSuchProcess:
            continue
    return total


_IDLE_SECONDS = 5.0


def _worker_cluster(workers: int) -> Any:
    """A local Dask cluster of ``workers`` single-threaded worker processes, no
    dashboard: what the 1 → 2 worker speed-ups run on."""
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
    )


def dask_speedup(samples: int, length: int) -> None:
    """Ingest on a local Dask cluster of 1 and then 2 worker processes, back to
    back in the same run: wall time, and CPU time of the ingest and the cluster
    (on a machine other work shares, the CPU time shows what wall time hides).
    Each cluster is fresh: its workers import genomenode and bio2zarr during the
    ingest (which has them start while it validates the inputs)."""
    dataset_yaml = simulate(samples, length)
    timings: dict[int, tuple[float, float, float]] = {}
    for workers in (1, 2):
        with (
            _worker_cluster(workers) as cluster,
            tempfile.TemporaryDirectory(dir=CACHE) as scratch,
        ):
            node_dir = pathlib.Path(scratch) / "node"
            subprocess.run(
                _genomenode("init", str(node_dir), "--node-id", "b", "--country", "FI"),
                check=True,
                stdout=subprocess.DEVNULL,
            )
            # What the cluster burns doing nothing (heartbeats, Dask's profiler,
            # memory monitors): it grows with wall time, which the machine's
            # other load stretches, so it is subtracted from the cluster's CPU.
            idle_started, idle_before = time.monotonic(), _cluster_cpu_seconds()
            time.sleep(_IDLE_SECONDS)
            idle_rate = (_cluster_cpu_seconds() - idle_before) / (
                time.monotonic() - idle_started
            )
            cluster_before = _cluster_cpu_seconds()
            run = measure(
                f"ingest on {workers} Dask worker(s)",
                _genomenode(
                    "ingest",
                    "--node",
                    str(node_dir),
                    str(dataset_yaml),
                    "--dask-scheduler",
                    cluster.scheduler_address,
                ),
            )
            cluster_cpu = _cluster_cpu_seconds() - cluster_before
        idle = idle_rate * run.seconds
        cpu = run.cpu_seconds + cluster_cpu
        timings[workers] = (run.seconds, cpu, cpu - idle)
        print(
            f"{samples} samples, {workers} Dask worker(s): wall {run.seconds:.1f} s, "
            f"CPU {cpu:.1f} s (ingest process {run.cpu_seconds:.1f} s, "
            f"cluster {cluster_cpu:.1f} s, of which idle overhead "
            f"{idle_rate:.3f} CPU s/s × wall = {idle:.1f} s)",
            flush=True,
        )
    (wall_1, cpu_1, work_1), (wall_2, cpu_2, work_2) = timings[1], timings[2]
    print(
        f"speed-up 1 → 2 workers: wall {wall_1 / wall_2:.2f} (ideal 2.0 on two free "
        f"cores); CPU 2 / 1 workers {cpu_2 / cpu_1:.2f}, without the cluster's "
        f"idle overhead {work_2 / work_1:.2f} (ideal 1.0)"
    )


def dask_af_speedup(samples: int, length: int, repeats: int = 5) -> None:
    """Allele frequencies of all variants of a kept node (``--keep-nodes``, VCF
    Zarr input) on a local Dask cluster of 1 and then 2 single-threaded worker
    processes: wall time and CPU time (this process and the cluster's) of the
    best of ``repeats`` runs after a first that has each worker open the store,
    and the speed-up. One task per stored chunk of variants (``call_genotype``'s
    variants chunk: 200 rows at 100,000 samples)."""
    from distributed import Client

    from genomenode.store.compute import allele_frequencies as compute
    from genomenode.store.node import open_node

    node_dir = CACHE / f"nodes-{samples}-{length}-vcz" / "plain"
    if not (node_dir / _KEPT).exists():
        raise SystemExit(
            f"no kept node at {node_dir}: run --samples {samples} --source vcz "
            "--keep-nodes first"
        )
    dataset_id = f"scale-{samples}"
    timings: dict[int, tuple[float, float]] = {}
    with open_node(node_dir) as node:
        expected = compute(node, dataset_id)
        for workers in (1, 2):
            with (
                _worker_cluster(workers) as cluster,
                Client(cluster) as client,
            ):
                np.testing.assert_array_equal(
                    compute(node, dataset_id, client=client), expected
                )
                runs = []
                for _ in range(repeats):
                    cpu, started = _cluster_cpu_seconds(), time.perf_counter()
                    compute(node, dataset_id, client=client)
                    runs.append(
                        (
                            time.perf_counter() - started,
                            _cluster_cpu_seconds() - cpu,
                        )
                    )
            timings[workers] = min(runs)
            wall, cpu = timings[workers]
            print(
                f"AF of {samples} samples on {workers} Dask worker(s): best of "
                f"{repeats} wall {wall:.2f} s, CPU {cpu:.2f} s (all runs: "
                + ", ".join(f"{run[0]:.2f}/{run[1]:.2f}" for run in runs)
                + ")",
                flush=True,
            )
    (wall_1, cpu_1), (wall_2, cpu_2) = timings[1], timings[2]
    print(
        f"AF speed-up 1 → 2 workers: wall {wall_1 / wall_2:.2f} (ideal 2.0 on two "
        f"free cores); CPU 2 / 1 workers {cpu_2 / cpu_1:.2f} (ideal 1.0)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1,000 and 3,000 only")
    parser.add_argument("--samples", type=int, nargs="*")
    parser.add_argument(
        "--max-samples",
        type=int,
        metavar="N",
        help="leave out the sizes above N",
    )
    parser.add_argument(
        "--vcz-from",
        type=int,
        default=30_000,
        metavar="N",
        help="ingest sizes of N samples and more from VCF Zarr (no VCF text)",
    )
    parser.add_argument(
        "--source",
        choices=("vcf", "vcz"),
        help="ingest every size from this input (overrides --vcz-from)",
    )
    parser.add_argument(
        "--vcf-text-up-to",
        type=int,
        default=100_000,
        metavar="N",
        help="up to N samples also write the VCF of a VCF Zarr cohort, for its "
        "size and bcftools' times",
    )
    parser.add_argument(
        "--no-sealed",
        action="store_true",
        help="leave out the encrypt_at_rest node (its ingest doubles a run's time "
        "at 100,000 samples)",
    )
    parser.add_argument(
        "--keep-nodes",
        action="store_true",
        help="keep the ingested nodes in bench/cache/nodes-*, and measure "
        "queries and AF on nodes kept by an earlier run instead of ingesting",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="start bench/cache/scale-results.json afresh instead of merging",
    )
    parser.add_argument(
        "--plot-only", action="store_true", help="report and plot the saved results"
    )
    parser.add_argument("--length", type=int, default=300_000)
    parser.add_argument("--memory", action="store_true")
    parser.add_argument(
        "--dask", type=int, metavar="SAMPLES", help="1 vs 2 Dask workers at SAMPLES"
    )
    parser.add_argument(
        "--dask-af",
        type=int,
        metavar="SAMPLES",
        help="AF of all variants on 1 vs 2 Dask workers, on the node kept "
        "(--keep-nodes) at SAMPLES from VCF Zarr",
    )
    arguments = parser.parse_args()
    CACHE.mkdir(exist_ok=True)
    if arguments.memory:
        memory(arguments.length)
        return
    if arguments.dask:
        dask_speedup(arguments.dask, arguments.length)
        return
    if arguments.dask_af:
        dask_af_speedup(arguments.dask_af, arguments.length)
        return
    saved_path = CACHE / "scale-results.json"
    saved: dict[tuple[int, str], dict[str, Any]] = {}
    if saved_path.exists() and not arguments.fresh:
        for result in json.loads(saved_path.read_text())["results"]:
            saved[(result["samples"], result.get("source", "vcf"))] = {
                "source": "vcf",
                **result,
            }
    sizes = arguments.samples or (QUICK_SAMPLES if arguments.quick else FULL_SAMPLES)
    if arguments.max_samples:
        sizes = [size for size in sizes if size <= arguments.max_samples]
    for samples in [] if arguments.plot_only else sizes:
        source = arguments.source or ("vcz" if samples >= arguments.vcz_from else "vcf")
        print(
            f"--- {samples} samples × {arguments.length:,} bp from {source}",
            flush=True,
        )
        saved[(samples, source)] = one_size(
            samples,
            arguments.length,
            source=source,
            vcf_text=samples <= arguments.vcf_text_up_to,
            sealed=not arguments.no_sealed,
            keep=arguments.keep_nodes,
        )
        # Written after each size: a long run killed midway keeps what it did.
        saved_path.write_text(
            json.dumps({"results": [saved[key] for key in sorted(saved)]}, indent=2)
        )
    results = [saved[key] for key in sorted(saved)]
    slopes = report(results)
    saved_path.write_text(json.dumps({"results": results, "slopes": slopes}, indent=2))
    plot(results)


if __name__ == "__main__":
    main()
