"""Manhattan and QQ plots of a GWAS result, as PNG and SVG (matplotlib, Agg).

:func:`render_plot` makes one plot's bytes (the network serves them at
``/analysis/jobs/{id}/plots/{manhattan|qq}.{png|svg}``, the portal shows them);
``genomenode analysis results --plot`` writes all four files
(:func:`plot_gwas`). Figures are made with matplotlib's object API, never
``pyplot``, whose global state is not safe in a server's threads.
"""

from __future__ import annotations

import io
import pathlib
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

__all__ = ["FORMATS", "GENOME_WIDE", "PLOTS", "plot_gwas", "render_plot"]

#: The conventional genome-wide significance line.
GENOME_WIDE = 5e-8
#: The plots of a GWAS result.
PLOTS = ("manhattan", "qq")
#: The formats each plot is made in, with their media types.
FORMATS = {"png": "image/png", "svg": "image/svg+xml"}


def _contig_order(name: str) -> tuple[int, str]:
    bare = name.removeprefix("chr")
    return (int(bare), "") if bare.isdigit() else (10_000, bare)


def _kept(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Rows with a p-value (withheld or separated ones have none)."""
    return [
        row
        for row in rows
        if isinstance(row.get("p"), (int, float)) and 0 < row["p"] <= 1
    ]


def _manhattan(figure: Any, kept: list[Mapping[str, Any]]) -> None:
    axes = figure.subplots()
    names = np.array([str(row["contig"]) for row in kept], dtype=object)
    all_positions = np.array([row["position"] for row in kept], dtype=float)
    all_scores = -np.log10(np.array([row["p"] for row in kept], dtype=float))
    contigs = sorted(set(names.tolist()), key=_contig_order)
    offset, ticks = 0.0, []
    for number, contig in enumerate(contigs):
        chosen = names == contig
        positions = all_positions[chosen]
        axes.scatter(
            offset + positions,
            all_scores[chosen],
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


def _qq(figure: Any, kept: list[Mapping[str, Any]]) -> None:
    axes = figure.subplots()
    observed = np.sort(-np.log10([row["p"] for row in kept]))[::-1]
    expected = -np.log10(
        (np.arange(1, len(observed) + 1) - 0.5) / max(len(observed), 1)
    )
    axes.scatter(expected, observed, s=4, color="#1f4e79", rasterized=True)
    top = max(float(expected.max(initial=1)), float(observed.max(initial=1)))
    axes.plot([0, top], [0, top], color="#b03030", linewidth=0.8)
    axes.set_xlabel("expected −log10 p")
    axes.set_ylabel("observed −log10 p")
    axes.set_title("QQ plot")


def render_plot(rows: Iterable[Mapping[str, Any]], plot: str, fmt: str) -> bytes:
    """One plot of a GWAS result's rows, as the bytes of a PNG or SVG file.

    Parameters
    ----------
    rows
        The result's rows (``contig``, ``position``, ``p``); rows without a
        p-value are left out.
    plot
        ``manhattan`` or ``qq``.
    fmt
        ``png`` or ``svg``.

    Raises
    ------
    ValueError
        Another plot or format.
    """
    from matplotlib.figure import Figure

    if plot not in PLOTS or fmt not in FORMATS:
        raise ValueError(f"no plot {plot}.{fmt}")
    kept = _kept(rows)
    figure = Figure(figsize=(10, 4) if plot == "manhattan" else (4.5, 4.5))
    (_manhattan if plot == "manhattan" else _qq)(figure, kept)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format=fmt, dpi=120, metadata=_metadata(fmt))
    return out.getvalue()


def _metadata(fmt: str) -> dict[str, Any]:
    # No creation date: the same result makes the same bytes.
    return {"Date": None} if fmt == "svg" else {}


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
    rows = list(rows)
    stem = pathlib.Path(out).with_suffix("")
    written: list[pathlib.Path] = []
    for plot, name in (("manhattan", str(stem)), ("qq", f"{stem}.qq")):
        for fmt in FORMATS:
            path = pathlib.Path(f"{name}.{fmt}")
            path.write_bytes(render_plot(rows, plot, fmt))
            written.append(path)
    return written
