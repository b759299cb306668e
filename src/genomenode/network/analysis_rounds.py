"""The rounds of each federated analysis, as the coordinator
(:mod:`genomenode.network.coordinator`) runs them: what each round asks the
nodes, and how their answers are summed into a result. Tables, frequencies,
summaries and the PCA are here; the regressions in
:mod:`genomenode.network.regression_rounds`.

A round reaches the nodes through :class:`Rounds` (the coordinator: one
round trip to every node, audited there, counted and cancellable here).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from ..analysis import federated
from ..analysis.codec import decode, encode
from .registry import RegisteredNode

__all__ = [
    "NodeFailure",
    "Rounds",
    "Task",
    "common_variants",
    "frequency_window",
    "gather",
    "json_number",
    "pca",
    "result_site",
    "summary",
    "table_window",
    "windows",
]


class NodeFailure(Exception):
    """A node's part failed: ``state`` SYSTEM_ERROR or EXECUTOR_ERROR."""

    def __init__(self, dataset: str, state: str, reason: str) -> None:
        super().__init__(reason)
        self.dataset, self.state, self.reason = dataset, state, reason


@dataclasses.dataclass
class Task:
    """One dataset's part of a job: the node that holds it, and its layout."""

    dataset: str
    node: RegisteredNode
    layout: dict[str, Any]


class Rounds(Protocol):
    """What the analyses need of the coordinator."""

    async def round_trip(
        self, tasks: Sequence[Task], action: str, body: dict[str, Any]
    ) -> dict[str, dict[str, Any]]:
        """One round trip to every task's node, in parallel (the same body)."""
        ...

    async def progress(self, tasks: Sequence[Task], done: int, total: int) -> None:
        """Record each task's progress (``done`` of ``total``)."""
        ...


def windows(request: dict[str, Any], tasks: Sequence[Task]) -> list[dict[str, Any]]:
    """Position windows of about ``chunk_variants`` variants each."""
    spans: dict[str, list[int]] = {}
    for task in tasks:
        for contig in task.layout["contigs"]:
            span = spans.setdefault(contig["contig"], [2**62, 0, 0])
            span[0] = min(span[0], contig["first_position"])
            span[1] = max(span[1], contig["last_position"] + 1)
            span[2] = max(span[2], contig["num_variants"])
    region = request.get("region")
    windows = []
    for contig, (first, last, count) in spans.items():
        if region is not None:
            if contig != region["contig"]:
                continue
            first, last = max(first, region["start"]), min(last, region["end"])
            if first >= last:
                continue
        pieces = max(1, math.ceil(count / request["chunk_variants"]))
        edges = np.linspace(first, last, pieces + 1).round().astype(int)
        for start, end in itertools.pairwise(edges):
            if end > start:
                windows.append({"contig": contig, "start": int(start), "end": int(end)})
    return windows


def common_variants(answers: Mapping[str, dict[str, Any]]) -> tuple[list[str], int]:
    """Variants every node released, in position order; how many others."""
    released = [set(a["variants"]) for a in answers.values()]
    every = set().union(*released, *(set(a["withheld"]) for a in answers.values()))
    common = set.intersection(*released) if released else set()
    ordered = sorted(common, key=lambda key: (int(key.split(":")[0]), key))
    return ordered, len(every) - len(common)


def gather(
    answers: Mapping[str, dict[str, Any]], keys: list[str], name: str
) -> np.ndarray:
    """The nodes' ``name`` arrays summed, rows in the order of ``keys``."""
    total = None
    for answer in answers.values():
        index = {key: row for row, key in enumerate(answer["variants"])}
        values = decode(answer[name], field=name)[[index[key] for key in keys]]
        total = values if total is None else total + values
    assert total is not None
    return total


async def table_window(
    rounds: Rounds, request: dict[str, Any], tasks: list[Task], window: dict[str, Any]
) -> tuple[list[dict[str, Any]], int]:
    """Genotype tables of one window, summed, and their tests."""
    answers = await rounds.round_trip(
        tasks, "tables", {"outcome": request["phenotype"], "window": window}
    )
    keys, hidden = common_variants(answers)
    if not keys:
        return [], hidden
    counts = gather(answers, keys, "counts").astype(np.int64)
    tests = federated.table_tests(counts)
    rows = []
    for j, key in enumerate(keys):
        rows.append(
            {
                **result_site(window, key),
                "cases": counts[j, 0].tolist(),
                "controls": counts[j, 1].tolist(),
                **{name: json_number(values[j]) for name, values in tests.items()},
            }
        )
    return rows, hidden


async def frequency_window(
    rounds: Rounds, request: dict[str, Any], tasks: list[Task], window: dict[str, Any]
) -> tuple[list[dict[str, Any]], int, dict[str, Any]]:
    """Allele counts of one window per stratum, summed; the strata."""
    answers = await rounds.round_trip(
        tasks, "frequencies", {"strata": request["strata"], "window": window}
    )
    keys, hidden = common_variants(answers)
    strata = sorted({s for a in answers.values() for s in a["strata"]})
    counts = np.zeros((len(keys), len(strata)))
    numbers = np.zeros((len(keys), len(strata)))
    people = dict.fromkeys(strata, 0)
    for answer in answers.values():
        index = {key: row for row, key in enumerate(answer["variants"])}
        rows = [index[key] for key in keys]
        columns = [strata.index(s) for s in answer["strata"]]
        ac = np.asarray(answer["allele_count"], dtype=float).reshape(-1, len(columns))
        an = np.asarray(answer["allele_number"], dtype=float).reshape(-1, len(columns))
        counts[:, columns] += ac[rows]
        numbers[:, columns] += an[rows]
        for name, size in zip(answer["strata"], answer["num_individuals"], strict=True):
            people[name] += size
    out = []
    for j, key in enumerate(keys):
        out.append(
            {
                **result_site(window, key),
                "allele_count": counts[j].astype(int).tolist(),
                "allele_number": numbers[j].astype(int).tolist(),
                "frequency": [
                    json_number(c / n) if n else None
                    for c, n in zip(counts[j], numbers[j], strict=True)
                ],
            }
        )
    return out, hidden, {"strata": strata, "num_individuals": people}


async def summary(
    rounds: Rounds, request: dict[str, Any], tasks: list[Task]
) -> dict[str, Any]:
    """Pooled counts, means and variances of clinical variables."""
    answers = await rounds.round_trip(
        tasks,
        "summary",
        {
            "variables": request["variables"],
            "quantiles": request.get("quantiles", False),
        },
    )
    out: dict[str, Any] = {}
    for name in request["variables"]:
        parts = [a[name] for a in answers.values()]
        if all(part["kind"] == "binary" for part in parts):
            cells = np.sum([part["counts"] for part in parts], axis=0)
            out[name] = {"kind": "binary", "counts": cells.tolist()}
            continue
        num = sum(part.get("num", sum(part.get("counts", []))) for part in parts)
        total = sum(part.get("sum", part.get("counts", [0, 0])[-1]) for part in parts)
        squares = sum(
            part.get("sum_of_squares", part.get("counts", [0, 0])[-1]) for part in parts
        )
        mean = total / num if num else None
        variance = (
            (squares - num * total / num * total / num) / (num - 1) if num > 1 else None
        )
        out[name] = {
            "kind": "numeric",
            "num": num,
            "mean": mean,
            "variance": variance,
        }
        found = {
            dataset: answer[name]["quantiles"]
            for dataset, answer in answers.items()
            if "quantiles" in answer[name]
        }
        if found:
            # Each node's coarsened quantiles, and their mean weighted by
            # each node's number of values (DataSHIELD's ``combine``: an
            # estimate of the pooled quantiles, not the exact ones).
            weights = {d: answers[d][name]["num"] for d in found}
            values = np.array([found[d]["values"] for d in found], float)
            combined = np.average(values, axis=0, weights=list(weights.values()))
            out[name]["quantiles"] = {
                "probabilities": next(iter(found.values()))["probabilities"],
                "combined": combined.tolist(),
                "per_dataset": {d: q["values"] for d, q in found.items()},
            }
    await rounds.progress(tasks, 1, 1)
    return {"analysis": "summary", "variables": out}


async def _pruned(
    rounds: Rounds,
    request: dict[str, Any],
    tasks: list[Task],
    window: dict[str, Any],
    keys: list[str],
    frequency: np.ndarray,
) -> np.ndarray:
    """Which of a window's common ``keys`` LD pruning keeps (indices)."""
    band = min(request["ld_window"], len(keys) - 1)
    body = {
        "window": window,
        "variants": keys,
        "frequencies": frequency,
        "band": band,
    }
    answers = await rounds.round_trip(tasks, "pca/linkage", body)
    products = sum(decode(a["products"], field="products") for a in answers.values())
    return federated.prune_linkage(np.asarray(products), request["ld_r2"])


async def pca(
    rounds: Rounds, request: dict[str, Any], tasks: list[Task]
) -> dict[str, Any]:
    """Federated PCA on pooled-frequency, LD-pruned common variants
    (the scores stay on the nodes)."""
    region = request["region"]
    window = {
        "contig": region["contig"],
        "start": region["start"],
        "end": region["end"],
    }
    keys: list[str] = []
    frequencies: list[float] = []
    # Pooled frequencies window by window (each node reads one at a time),
    # then the window's common variants pruned for LD (pooled r²).
    for piece in windows(request, tasks):
        answers = await rounds.round_trip(
            tasks, "frequencies", {"strata": [], "window": piece}
        )
        found, _ = common_variants(answers)
        count, number = np.zeros(len(found)), np.zeros(len(found))
        for answer in answers.values():
            index = {key: row for row, key in enumerate(answer["variants"])}
            rows = [index[key] for key in found]
            count += np.asarray(answer["allele_count"], float).reshape(-1)[rows]
            number += np.asarray(answer["allele_number"], float).reshape(-1)[rows]
        frequency = count / np.maximum(number, 1)
        minor = np.minimum(frequency, 1 - frequency)
        picked = np.flatnonzero(minor >= request["min_frequency"])
        if request.get("ld_r2") is not None and len(picked) > 1:
            candidates = [found[j] for j in picked]
            kept = await _pruned(
                rounds, request, tasks, piece, candidates, frequency[picked]
            )
            picked = picked[kept]
        keys += [found[j] for j in picked]
        frequencies += frequency[picked].tolist()
    frequency = np.asarray(frequencies)
    common = list(range(len(keys)))
    # Then thinned to evenly spaced ones, keeping the Gram matrix small.
    if len(common) > request["max_variants"]:
        picks = np.linspace(0, len(common) - 1, request["max_variants"]).round()
        common = [common[int(i)] for i in picks]
    chosen = [keys[j] for j in common]
    if len(chosen) < request["components"]:
        raise NodeFailure(
            request["datasets"][0], "EXECUTOR_ERROR", "too few common variants"
        )
    base = {
        "window": window,
        "variants": chosen,
        "frequencies": encode(frequency[common]),
    }
    answers = await rounds.round_trip(tasks, "pca/gram", base)
    gram = np.sum([decode(a["gram"], field="gram") for a in answers.values()], axis=0)
    values, loadings = federated.pca_from_gram(gram, request["components"])
    await rounds.round_trip(tasks, "pca/scores", {**base, "loadings": encode(loadings)})
    await rounds.progress(tasks, 1, 1)
    total = sum(a["num_individuals"] for a in answers.values())
    return {
        "analysis": "pca",
        "variants": chosen,
        "frequencies": frequency[common].tolist(),
        "eigenvalues": values.tolist(),
        "variance_explained": (values / np.trace(gram)).tolist(),
        "ld_r2": request.get("ld_r2"),
        "ld_window": request.get("ld_window"),
        "loadings": loadings.tolist(),
        "num_individuals": total,
    }


def json_number(value: Any) -> float | None:
    """A finite float, or None (JSON has no NaN)."""
    number = float(value)
    return number if math.isfinite(number) else None


def result_site(window: dict[str, Any], key: str) -> dict[str, Any]:
    """A result row's variant: the window's contig and the key's ``POS:REF:ALT``."""
    position, reference, alternate = key.split(":", 2)
    return {
        "contig": window["contig"],
        "position": int(position),
        "reference": reference,
        "alternate": alternate,
    }
