"""The QC report: JSON, and one self-contained HTML page with its plots.

The page has no external resource at all (no CDN, no font, no script): plots are
PNG images drawn by matplotlib and embedded as ``data:`` URIs, styles are inline.
It is written for a data access committee or a national programme: the
declaration and the pass/fail summary first, then the distributions, the sex
check, the principal components, kinship, variant QC and the thresholds used.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..store.node import Node
from .flags import load_report

__all__ = ["render_html", "report_document"]

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;
color:#1b1b1b;line-height:1.45}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #bbb;
padding:.25rem .6rem;text-align:left}th{background:#f0f0f0}
.ready{background:#e6f4ea;border:2px solid #1e7e34;padding:1rem}
.not-ready{background:#fdecea;border:2px solid #b3261e;padding:1rem}
figure{display:inline-block;margin:.5rem}img{max-width:100%}
figcaption{font-size:.9rem;color:#444}
"""


def report_document(node: Node, dataset_id: str) -> dict[str, Any]:
    """``qc.json`` of a published dataset.

    Raises
    ------
    NotFoundError
        The dataset is not published, or QC never ran on it.
    """
    from ..errors import NotFoundError

    report = load_report(node, dataset_id)
    if report is None:
        raise NotFoundError(
            f"no QC results for dataset {dataset_id!r}; run: genomenode qc run "
            f"--node {node.config.node_dir} {dataset_id}"
        )
    return report


def _figure(
    draw: Callable[[Any], None], *, size: tuple[float, float] = (6, 3.4)
) -> str:
    """A matplotlib figure as a PNG ``data:`` URI."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=100, layout="constrained")
    draw(figure.subplots())
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _legend(axes: Any) -> None:
    """The legend beside the plot, never over the data.

    matplotlib's default place ("best") is searched over every plotted point:
    slow for a cohort's scatter (it warns past a second) and it can still hide
    points. Outside the axes it costs nothing and hides nothing; the figure's
    constrained layout makes room for it.
    """
    axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))


def _image(uri: str, caption: str) -> str:
    alt = html.escape(caption)
    return (
        f'<figure><img src="{uri}" alt="{alt}"><figcaption>{alt}</figcaption></figure>'
    )


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in header)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(_text(cell))}</td>" for cell in row)
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None:
        return "—"
    return str(value)


def _metric(samples: list[dict[str, Any]], name: str) -> np.ndarray:
    return np.array(
        [
            np.nan if sample["metrics"].get(name) is None else sample["metrics"][name]
            for sample in samples
        ],
        dtype=float,
    )


def _distributions(samples: list[dict[str, Any]], passed: np.ndarray) -> list[str]:
    figures = []
    for name, label in (
        ("call_rate", "Call rate"),
        ("mean_depth", "Mean depth (FORMAT/DP)"),
        ("mean_gq", "Mean genotype quality (FORMAT/GQ)"),
        ("heterozygosity", "Heterozygosity (het / called diploid)"),
        ("het_hom_alt_ratio", "Het / hom-alt ratio"),
        ("ti_tv", "Ti/Tv"),
        ("num_singletons", "Singletons"),
        ("het_f", "Inbreeding F (autosomes, plink2 --het)"),
    ):
        values = _metric(samples, name)
        if not np.isfinite(values).any():
            continue

        def draw(axes: Any, values: np.ndarray = values, label: str = label) -> None:
            finite = np.isfinite(values)
            bins = np.histogram_bin_edges(values[finite], bins=40)
            axes.hist(values[finite & passed], bins=bins, color="#3b7dd8", label="pass")
            axes.hist(
                values[finite & ~passed], bins=bins, color="#d8573b", label="fail"
            )
            axes.set_xlabel(label)
            axes.set_ylabel("samples")
            _legend(axes)

        figures.append(_image(_figure(draw), f"{label} per sample"))
    return figures


def _sex_check(samples: list[dict[str, Any]], thresholds: dict[str, Any]) -> str | None:
    x_f = _metric(samples, "x_f")
    if not np.isfinite(x_f).any():
        return None
    y_called = _metric(samples, "y_num_called")
    declared = np.array([sample["declared_sex"] for sample in samples])
    mismatch = np.array(["sex_mismatch" in sample["reasons"] for sample in samples])

    def draw(axes: Any) -> None:
        horizontal = y_called if np.nansum(y_called) > 0 else np.arange(len(x_f))
        for sex, colour in (("F", "#c2185b"), ("M", "#1565c0"), ("U", "#777777")):
            chosen = declared == sex
            axes.scatter(
                horizontal[chosen], x_f[chosen], s=8, c=colour, label=f"declared {sex}"
            )
        axes.scatter(
            horizontal[mismatch],
            x_f[mismatch],
            s=60,
            facecolors="none",
            edgecolors="black",
            label="mismatch",
        )
        for line in (thresholds["sex_female_max_f"], thresholds["sex_male_min_f"]):
            axes.axhline(line, color="#555", linestyle="--", linewidth=0.8)
        axes.set_ylabel("X chromosome F")
        axes.set_xlabel("Y calls" if np.nansum(y_called) > 0 else "sample")
        _legend(axes)

    return _image(_figure(draw), "Sex check: X inbreeding F against declared sex")


def _pca(samples: list[dict[str, Any]]) -> str | None:
    components = [sample["principal_components"] for sample in samples]
    if not components or len(components[0]) < 2:
        return None
    scores = np.array(
        [[np.nan if v is None else v for v in row[:2]] for row in components]
    )
    populations = np.array([sample["population"] for sample in samples])
    outlier = np.array(["ancestry_outlier" in sample["reasons"] for sample in samples])

    def draw(axes: Any) -> None:
        for population in sorted(set(populations.tolist())):
            chosen = populations == population
            axes.scatter(scores[chosen, 0], scores[chosen, 1], s=8, label=population)
        axes.scatter(
            scores[outlier, 0],
            scores[outlier, 1],
            s=60,
            facecolors="none",
            edgecolors="black",
            label="outlier",
        )
        axes.set_xlabel("PC1")
        axes.set_ylabel("PC2")
        _legend(axes)

    return _image(_figure(draw), "Principal components 1 and 2 (common variants)")


def _kinship(report: dict[str, Any]) -> str | None:
    histogram = report["kinship_histogram"]
    counts = np.array(histogram["counts"], dtype=float)
    if not counts.sum():
        return None
    edges = np.linspace(histogram["low"], histogram["high"], len(counts) + 1)
    thresholds = report["thresholds"]

    def draw(axes: Any) -> None:
        axes.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="#555")
        axes.set_yscale("log")
        for line, name in (
            (thresholds["kinship_related"], "second degree"),
            (thresholds["kinship_duplicate"], "duplicate"),
        ):
            axes.axvline(line, color="#d8573b", linestyle="--", label=name)
        axes.set_xlabel("KING kinship")
        axes.set_ylabel("pairs")
        _legend(axes)

    return _image(_figure(draw), "KING kinship of every pair of samples")


def _variant_plots(variants: dict[str, np.ndarray]) -> list[str]:
    figures = []
    hwe = variants.get("hwe_p")
    if hwe is not None and hwe.size and np.isfinite(hwe).any():
        lowest = np.nanmin(np.where(np.isfinite(hwe), hwe, np.inf), axis=1)
        scores = -np.log10(np.clip(lowest[np.isfinite(lowest)], 1e-300, 1))

        def draw(axes: Any) -> None:
            axes.hist(scores, bins=50, color="#3b7dd8")
            axes.set_yscale("log")
            axes.set_xlabel("-log10 HWE p (lowest population)")
            axes.set_ylabel("variants")

        figures.append(_image(_figure(draw), "Hardy-Weinberg p-values"))
    rate = variants.get("call_rate")
    if rate is not None and np.isfinite(rate).any():

        def draw_rate(axes: Any) -> None:
            axes.hist(rate[np.isfinite(rate)], bins=40, color="#3b7dd8")
            axes.set_yscale("log")
            axes.set_xlabel("variant call rate (passing samples)")
            axes.set_ylabel("variants")

        figures.append(_image(_figure(draw_rate), "Variant call rate"))
    return figures


def render_html(
    report: dict[str, Any],
    variants: dict[str, np.ndarray] | None = None,
    *,
    include_samples: bool = True,
) -> str:
    """The report as one self-contained HTML page.

    ``include_samples`` False leaves out everything about individual samples
    (their plots and the table of failing samples): what may be shown to a
    caller who may not see records.
    """
    summary = report["summary"]
    declaration = report["declaration"]
    ready = declaration["one_plus_mg_ready"]
    title = f"QC report: {report['dataset']}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<section class="{"ready" if ready else "not-ready"}">',
        f"<h2>1+MG-ready: {'yes' if ready else 'no'}</h2>",
        f"<p>{html.escape(declaration['statement'])}</p>",
        "<p>Measured: "
        + html.escape(", ".join(declaration["checks_measured"]) or "none")
        + ". Not measurable on these data: "
        + html.escape(", ".join(declaration["checks_not_measured"]) or "none")
        + ".</p>",
        f"<p>Run {html.escape(report['created'])} by genomenode "
        f"{html.escape(report['genomenode_version'])}.</p></section>",
        "<h2>Pass / fail summary</h2>",
        _table(
            ["", "total", "passed", "failed"],
            [
                [
                    "samples",
                    summary["num_samples"],
                    summary["num_samples_passed"],
                    summary["num_samples"] - summary["num_samples_passed"],
                ],
                [
                    "variants",
                    summary["num_variants"],
                    summary["num_variants_passed"],
                    summary["num_variants"] - summary["num_variants_passed"],
                ],
            ],
        ),
        "<h3>Samples failing, by reason</h3>",
        _table(["reason", "samples"], list(summary["sample_reasons"].items())),
        "<h3>Variants failing, by reason</h3>",
        _table(["reason", "variants"], list(summary["variant_reasons"].items())),
        _table(
            ["median over samples", "value"],
            [
                ["call rate", summary["median_call_rate"]],
                ["mean depth", summary["median_mean_depth"]],
                ["Ti/Tv", summary["median_ti_tv"]],
                ["heterozygosity", summary["median_heterozygosity"]],
            ],
        ),
    ]
    if include_samples:
        samples = report["samples"]
        passed = np.array([not sample["reasons"] for sample in samples], dtype=bool)
        parts.append("<h2>Sample metrics</h2>")
        parts += _distributions(samples, passed)
        parts.append("<h2>Sex check</h2>")
        parts.append(
            _sex_check(samples, report["thresholds"])
            or "<p>No X chromosome calls: sex was not checked.</p>"
        )
        parts.append("<h2>Ancestry (PCA)</h2>")
        parts.append(_pca(samples) or "<p>Too few common variants for PCA.</p>")
        parts.append("<h2>Relatedness</h2>")
        parts.append(_kinship(report) or "<p>Too few common variants for kinship.</p>")
        failing = [
            [sample["id"], sample["population"], ", ".join(sample["reasons"])]
            for sample in samples
            if sample["reasons"]
        ]
        parts.append("<h3>Failing samples</h3>")
        parts.append(_table(["sample", "population", "reasons"], failing[:1000]))
        if len(failing) > 1000:
            parts.append(f"<p>… and {len(failing) - 1000} more (see the JSON).</p>")
    if variants is not None:
        parts.append("<h2>Variant QC</h2>")
        parts += _variant_plots(variants)
    parts.append("<h2>Thresholds</h2>")
    parts.append(
        _table(
            ["setting", "value"],
            [[f"qc_{name}", value] for name, value in report["thresholds"].items()],
        )
    )
    parts.append("</body></html>")
    return "\n".join(parts)
