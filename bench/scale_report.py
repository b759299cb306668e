"""The scaling curve's report: the table, the ratios and the fitted slopes printed,
and the curves plotted (bench/scale.py measures; this reads its results, also from
bench/cache/scale-results.json with ``--plot-only``)."""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np


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


def plot(results: list[dict[str, Any]], path: pathlib.Path) -> None:
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
    figure.savefig(path, dpi=110)
    print(f"plotted {path}")


def _one_per_size(results: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """One result per size that has ``key`` (the latest)."""
    by_size = {r["samples"]: r for r in results if r.get(key) is not None}
    return [by_size[size] for size in sorted(by_size)]
