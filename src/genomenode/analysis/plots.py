"""Manhattan and QQ plots of a GWAS result, as PNG and SVG (matplotlib, Agg).

The portal shows the files; ``genomenode analysis results --plot`` writes them.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

__all__ = ["GENOME_WIDE", "plot_gwas"]

#: The conventional genome-wide significance line.
GENOME_WIDE = 5e-8


def _contig_order(name: str) -> tuple[int, str]:
    bare = name.removeprefix("chr")
    return (int(bare), "") if bare.isdigit() else (10_000, bare)


def plot_gwas(
    rows: Iterable[Mapping[str, Any]], out: str | pathlib.Path
) -> list[pathlib.Path]:
    """Write the Manhattan plot to ``out`` (its suffix ignored: ``.png`` and
    ``.svg``) and the QQ plot beside it (``<stem>.qq.png``, ``.svg``).

    Rows without a p-value (withheld, separation) are left out.

    Returns
    -------
    list of Path
        The four files written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kept = [row for row in rows if row.get("p") is not None and row["p"] > 0]
    base = pathlib.Path(out)
    stem = base.with_suffix("")
    written: list[pathlib.Path] = []
    contigs = sorted({str(row["contig"]) for row in kept}, key=_contig_order)
    figure, axes = plt.subplots(figsize=(10, 4))
    offset, ticks = 0.0, []
    for number, contig in enumerate(contigs):
        chosen = [row for row in kept if str(row["contig"]) == contig]
        positions = np.array([row["position"] for row in chosen], dtype=float)
        scores = -np.log10([row["p"] for row in chosen])
        axes.scatter(
            offset + positions,
            scores,
            s=4,
            color=("#1f4e79", "#7fa7d1")[number % 2],
            rasterized=True,
        )
        ticks.append((offset + (positions.min() + positions.max()) / 2, contig))
        offset += positions.max() + 1
    axes.axhline(-np.log10(GENOME_WIDE), color="#b03030", linewidth=0.8)
    axes.set_xticks([t for t, _ in ticks], [name for _, name in ticks])
    axes.set_xlabel("chromosome")
    axes.set_ylabel("−log10 p")
    axes.set_title("Manhattan plot")
    figure.tight_layout()
    for suffix in (".png", ".svg"):
        path = stem.with_suffix(suffix)
        figure.savefig(path, dpi=120)
        written.append(path)
    plt.close(figure)

    observed = np.sort(-np.log10([row["p"] for row in kept]))[::-1]
    expected = -np.log10(
        (np.arange(1, len(observed) + 1) - 0.5) / max(len(observed), 1)
    )
    figure, axes = plt.subplots(figsize=(4.5, 4.5))
    axes.scatter(expected, observed, s=4, color="#1f4e79", rasterized=True)
    top = max(float(expected.max(initial=1)), float(observed.max(initial=1)))
    axes.plot([0, top], [0, top], color="#b03030", linewidth=0.8)
    axes.set_xlabel("expected −log10 p")
    axes.set_ylabel("observed −log10 p")
    axes.set_title("QQ plot")
    figure.tight_layout()
    for suffix in (".png", ".svg"):
        path = pathlib.Path(f"{stem}.qq{suffix}")
        figure.savefig(path, dpi=120)
        written.append(path)
    plt.close(figure)
    return written
