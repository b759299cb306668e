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
ratios, writes bench/cache/scale-results.json and plots bench/cache/scale.png
(docs/scale.png with ``--docs-plot``: a run of a few sizes does not replace the
documented curve).

Usage: python bench/scale.py [--quick] [--samples 1000 3000 ...] [--length N]
                             [--max-samples N] [--vcz-from N] [--source vcf|vcz]
                             [--vcf-text-up-to N] [--no-sealed] [--keep-nodes]
                             [--fresh] [--plot-only] [--docs-plot]
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
sys.path.insert(0, str(HERE))

from ingest import measure  # noqa: E402 -- a sibling script, not a package
from scale_report import plot, report  # noqa: E402

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
    parser.add_argument(
        "--docs-plot",
        action="store_true",
        help="plot to docs/scale.png (the documented curve) instead of "
        "bench/cache/scale.png",
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
        from scale_dask import dask_speedup

        samples = arguments.dask
        dask_speedup(samples, simulate(samples, arguments.length), CACHE)
        return
    if arguments.dask_af:
        from scale_dask import dask_af_speedup

        samples = arguments.dask_af
        node_dir = CACHE / f"nodes-{samples}-{arguments.length}-vcz" / "plain"
        if not (node_dir / _KEPT).exists():
            raise SystemExit(
                f"no kept node at {node_dir}: run --samples {samples} --source vcz "
                "--keep-nodes first"
            )
        dask_af_speedup(node_dir, f"scale-{samples}")
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
    docs = HERE.parent / "docs"
    plot(results, (docs if arguments.docs_plot else CACHE) / "scale.png")


if __name__ == "__main__":
    main()
