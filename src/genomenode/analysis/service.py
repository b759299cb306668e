"""The node's whitelisted analyses: sufficient statistics and aggregates only.

Each function takes a published dataset and a validated request and returns a
JSON-ready aggregate, after the disclosure filters of
:mod:`genomenode.disclosure.filters` (DataSHIELD's, under their names) have
passed; a request that breaks one raises :class:`AggregateRefused` with the
filter's reason, and per-variant statistics of variants below the node's
``disclosure_min_minor_allele_count`` are withheld (listed, never computed on).
Nothing per person leaves: the PCA scores are written beside the node's store
and only their count is returned.

Authorisation and audit are the HTTP layer's (:mod:`.http`).
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ..disclosure.filters import (
    QUANTILE_PROBABILITIES,
    check_glm,
    check_levels,
    check_subset,
    check_table,
    coarse_quantiles,
)
from ..disclosure.settings import DisclosureSettings
from ..errors import InputError, PermissionDenied
from ..store.published import PublishedDataset
from . import statistics
from .cohort import (
    WindowGenotypes,
    _scores_path,
    read_variants,
    read_window,
    variables_of,
)

__all__ = [
    "MAX_PARTS",
    "AggregateRefused",
    "Window",
    "frequencies",
    "glm",
    "glm_parts",
    "layout",
    "pca_gram",
    "pca_linkage",
    "pca_scores",
    "summary",
    "tables",
]


#: The most windows one round of a regression may serve (:func:`glm_parts`).
MAX_PARTS = 8


class AggregateRefused(PermissionDenied):
    """The aggregate asked for would break a disclosure filter (403, the reason)."""


@dataclasses.dataclass(frozen=True)
class Window:
    contig: str
    start: int
    end: int


def _refuse(reason: str | None) -> None:
    if reason is not None:
        raise AggregateRefused(f"disclosure control refused the aggregate: {reason}")


def _key(position: int, reference: str, alternate: str) -> str:
    return f"{position}:{reference}:{alternate}"


def _select(
    window: WindowGenotypes, keys: Sequence[str] | None
) -> tuple[list[str], np.ndarray]:
    """The window's keys and dosages, restricted to ``keys`` in their order."""
    own = [_key(*key) for key in window.variant_keys()]
    if keys is None:
        return own, window.dosages
    index = {key: row for row, key in enumerate(own)}
    missing = [key for key in keys if key not in index]
    if missing:
        raise InputError(
            f"{len(missing)} variant(s) not in this window, e.g. {missing[0]}",
            field="variants",
        )
    return list(keys), window.dosages[[index[key] for key in keys]]


def _read(
    dataset: PublishedDataset,
    window: Window,
    scheduler: str | None,
    max_window_variants: int,
) -> WindowGenotypes:
    """The genotypes of ``window`` in ``dataset`` (at most ``max_window_variants``)."""
    return read_window(
        dataset,
        window.contig,
        window.start,
        window.end,
        scheduler=scheduler,
        max_variants=max_window_variants,
    )


def _rare(
    settings: DisclosureSettings, minimum: int, dosages: np.ndarray
) -> np.ndarray:
    """Variants whose minor-allele count here is below ``minimum`` (per node)."""
    alt = np.nansum(dosages, axis=1)
    number = 2 * (~np.isnan(dosages)).sum(axis=1)
    minor = np.minimum(alt, number - alt)
    if not settings.enabled:
        return np.zeros(len(alt), dtype=bool)
    return minor < minimum


def layout(dataset: PublishedDataset) -> dict[str, Any]:
    """Contigs, their first and last positions and numbers of variants: what a
    coordinator needs to cut the genome into windows."""
    store = dataset.store
    contigs = []
    for contig, (first, last) in store.contigs.items():
        if last <= first:
            continue
        positions = store.positions(first, last)
        contigs.append(
            {
                "contig": contig,
                "first_position": int(positions[0]),
                "last_position": int(positions[-1]),
                "num_variants": int(last - first),
            }
        )
    return {"dataset": dataset.id, "contigs": contigs}


def _model_rows(
    dataset: PublishedDataset,
    settings: DisclosureSettings,
    outcome: str,
    covariates: Sequence[str],
    model: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """The complete cases of a model (mask), covariates with intercept, outcome,
    and the counts released with it — after the model-level filters."""
    variables = variables_of(dataset, [outcome, *covariates])
    design = variables.matrix(covariates)
    response = variables.columns[outcome]
    keep = ~np.isnan(response) & ~np.isnan(design).any(axis=1)
    num = int(keep.sum())
    _refuse(check_subset(settings, num))
    _refuse(check_glm(settings, design.shape[1] + 1, num))
    counts = {"num_individuals": num}
    if model == "logistic":
        if not set(np.unique(response[keep]).tolist()) <= {0.0, 1.0}:
            raise InputError(f"{outcome} is not 0/1", field="outcome")
        cases = int(response[keep].sum())
        _refuse(check_table(settings, [cases, num - cases]))
        counts |= {"num_cases": cases, "num_controls": num - cases}
    for name in covariates:
        column = variables.columns[name][keep]
        levels = np.unique(column)
        if len(levels) <= 2:
            # A binary covariate is a factor: both levels need nfilter.tab people.
            _refuse(check_table(settings, [int((column == v).sum()) for v in levels]))
    return keep, design[keep], response[keep], counts


@dataclasses.dataclass(frozen=True)
class _Screened:
    """A window's variants for one model's people: which are released (their
    rows in the window) and which withheld by the minor-allele-count rule.
    Computed on a window's first round and kept for its later rounds."""

    keys: list[str]
    rows: np.ndarray
    withheld: list[str]
    index: dict[str, int]
    hidden: frozenset[str]

    def locate(self, keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Rows of ``keys`` in the window and whether each is withheld here.

        Raises
        ------
        InputError
            A key not in the window (field ``variants``).
        """
        rows = np.empty(len(keys), dtype=np.int64)
        rare = np.zeros(len(keys), dtype=bool)
        for number, key in enumerate(keys):
            row = self.index.get(key)
            if row is None:
                raise InputError(f"{key} is not in this window", field="variants")
            rows[number] = row
            rare[number] = key in self.hidden
        return rows, rare


_screens: collections.OrderedDict[tuple[Any, ...], _Screened] = (
    collections.OrderedDict()
)
_screens_lock = threading.Lock()


def _screened(
    dataset: PublishedDataset,
    window: Window,
    genotypes: WindowGenotypes,
    keep: np.ndarray,
    settings: DisclosureSettings,
    minimum: int,
) -> _Screened:
    key = (
        dataset.store,
        window,
        keep.tobytes(),
        minimum,
        settings.enabled,
        len(genotypes.positions),
    )
    with _screens_lock:
        found = _screens.get(key)
    if found is not None:
        return found
    own = [_key(*item) for item in genotypes.variant_keys()]
    dosages = genotypes.dosages if keep.all() else genotypes.dosages[:, keep]
    rare = _rare(settings, minimum, dosages) if len(own) else np.zeros(0, dtype=bool)
    screened = _Screened(
        keys=[k for k, r in zip(own, rare, strict=True) if not r],
        rows=np.flatnonzero(~rare),
        withheld=[k for k, r in zip(own, rare, strict=True) if r],
        index={k: row for row, k in enumerate(own)},
        hidden=frozenset(k for k, r in zip(own, rare, strict=True) if r),
    )
    with _screens_lock:
        _screens[key] = screened
        while len(_screens) > 16:
            _screens.popitem(last=False)
    return screened


def glm(
    dataset: PublishedDataset,
    settings: DisclosureSettings,
    *,
    min_minor_allele_count: int,
    model: str,
    outcome: str,
    covariates: Sequence[str],
    window: Window | None,
    variants: Sequence[str] | None,
    beta: npt.ArrayLike | None,
    start: npt.ArrayLike | None,
    scheduler: str | None = None,
    max_window_variants: int = 20_000,
    log_likelihood: bool = True,
    inverse: npt.ArrayLike | None = None,
) -> dict[str, Any]:
    """One round of per-variant regressions over a window (or the covariates-only
    null model when ``window`` is None: logistic only, for a starting point).

    ``beta`` (one row per variant of ``variants``) is the current β; without it
    each variant starts at ``start`` (the null model's β) and 0 for the dosage.
    """
    keep, design, response, counts = _model_rows(
        dataset, settings, outcome, covariates, model
    )
    k = design.shape[1]
    if window is None:
        if model != "logistic":
            raise InputError("the null model is for logistic models", field="window")
        here = np.asarray(start if start is not None else np.zeros(k), float)
        if here.shape != (k,):
            raise InputError(f"start needs {k} values", field="start")
        eta = design @ here
        mu = 1.0 / (1.0 + np.exp(-eta))
        weights = mu * (1 - mu)
        return {
            **counts,
            "information": (design.T * weights) @ design,
            "score": design.T @ (response - mu),
            "log_likelihood": float(np.sum(response * eta - np.logaddexp(0, eta))),
        }
    genotypes = _read(dataset, window, scheduler, max_window_variants)
    screened = _screened(
        dataset, window, genotypes, keep, settings, min_minor_allele_count
    )
    if variants is None:
        keys, rows = screened.keys, screened.rows
        rare = np.zeros(len(rows), dtype=bool)
    else:
        keys = list(variants)
        rows, rare = screened.locate(keys)
    withheld = [key for key, hidden in zip(keys, rare, strict=True) if hidden]
    released = [key for key, hidden in zip(keys, rare, strict=True) if not hidden]
    if variants is None:
        withheld = screened.withheld
    # float32 (0, 1, 2, NaN are exact); the kernels compute in float64.
    dosages = genotypes.dosages[rows[~rare]] if len(rows) else genotypes.dosages[:0]
    if not keep.all():
        dosages = dosages[:, keep]
    answer: dict[str, Any] = {**counts, "variants": released, "withheld": withheld}
    if model == "linear":
        return answer | statistics.linear_statistics(
            dosages.astype(np.float64), design, response
        )
    if beta is None:
        base = np.asarray(start if start is not None else np.zeros(k), float)
        if base.shape != (k,):
            raise InputError(f"start needs {k} values", field="start")
        current = np.tile(np.append(base, 0.0), (len(released), 1))
    else:
        # β follows ``variants`` when they are named, else this node's released
        # variants of the window (what its previous answer listed).
        current = np.asarray(beta, float)
        expected = len(keys) if variants is not None else len(released)
        if current.shape != (expected, k + 1):
            raise InputError(
                f"beta needs one row of {k + 1} values per variant", field="beta"
            )
        if variants is not None:
            current = current[~rare]
    firth = None
    if inverse is not None:
        # Firth's term at β needs the pooled information's inverse at β.
        if beta is None:
            raise InputError(
                "inverse needs the beta it was computed at", field="inverse"
            )
        firth = np.asarray(inverse, float)
        expected = len(keys) if variants is not None else len(released)
        if firth.shape != (expected, k + 1, k + 1):
            raise InputError(
                f"inverse needs one {k + 1} × {k + 1} matrix per variant",
                field="inverse",
            )
        if variants is not None:
            firth = firth[~rare]
    return answer | statistics.logistic_statistics(
        dosages,
        design,
        response,
        current,
        log_likelihood=log_likelihood,
        inverse=firth,
    )


def glm_parts(
    dataset: PublishedDataset,
    settings: DisclosureSettings,
    *,
    parts: Sequence[tuple[Window, Sequence[str] | None]],
    beta: npt.ArrayLike | None,
    **options: Any,
) -> dict[str, Any]:
    """One round of :func:`glm` over several windows (at most
    :data:`MAX_PARTS`): each part a window and its ``variants`` (None: the
    window's first round). ``beta`` holds the rows of the parts that name
    variants, in order (None: every part starts at ``start``).

    The answer is :func:`glm`'s with ``variants`` and ``withheld`` one list per
    part and each array the parts' rows one after the other.
    """
    if not 1 <= len(parts) <= MAX_PARTS:
        raise InputError(f"1 to {MAX_PARTS} parts", field="parts")
    rows = None if beta is None else np.asarray(beta, float)
    used = 0
    answers = []
    for window, variants in parts:
        current = None
        if rows is not None and variants is not None:
            current = rows[used : used + len(variants)]
            used += len(variants)
        answers.append(
            glm(
                dataset,
                settings,
                window=window,
                variants=variants,
                beta=current,
                **options,
            )
        )
    if rows is not None and (rows.ndim != 2 or used != len(rows)):
        raise InputError("beta needs one row per variant the parts name", field="beta")
    out: dict[str, Any] = {}
    for key, value in answers[0].items():
        if isinstance(value, np.ndarray):
            out[key] = np.concatenate([answer[key] for answer in answers])
        elif key in ("variants", "withheld"):
            out[key] = [answer[key] for answer in answers]
        else:
            out[key] = value  # the model's counts, the same for every part
    return out


def frequencies(
    dataset: PublishedDataset,
    settings: DisclosureSettings,
    *,
    min_minor_allele_count: int,
    window: Window,
    strata: Sequence[str],
    scheduler: str | None = None,
    max_window_variants: int = 20_000,
) -> dict[str, Any]:
    """Allele counts and numbers per stratum (``sex`` and/or a 0/1 term such as
    ``ICD10:I25.1``) for the window's biallelic variants."""
    variables = variables_of(dataset, strata)
    num = variables.num_samples
    groups = np.zeros(num, dtype=np.int64)
    names = [""]
    for name in strata:
        column = variables.columns[name]
        values = sorted(v for v in np.unique(column) if not np.isnan(v))
        _refuse(check_levels(settings, len(values), num))
        index = {v: i for i, v in enumerate(values)}
        codes = np.array([index.get(v, -1) if not np.isnan(v) else -1 for v in column])
        groups = np.where(
            (groups >= 0) & (codes >= 0), groups * len(values) + codes, -1
        )
        names = [f"{n}{'&' if n else ''}{name}={v:g}" for n in names for v in values]
    sizes = [int((groups == g).sum()) for g in range(len(names))]
    _refuse(check_table(settings, sizes))
    keys, dosages = _select(
        _read(dataset, window, scheduler, max_window_variants), None
    )
    rare = _rare(settings, min_minor_allele_count, dosages)
    counts = statistics.genotype_counts(dosages[~rare], groups, len(names))
    return {
        "strata": names,
        "num_individuals": sizes,
        "variants": [k for k, r in zip(keys, rare, strict=True) if not r],
        "withheld": [k for k, r in zip(keys, rare, strict=True) if r],
        "allele_count": (counts[:, :, 1] + 2 * counts[:, :, 2]).tolist(),
        "allele_number": (2 * counts.sum(axis=2)).tolist(),
    }


def tables(
    dataset: PublishedDataset,
    settings: DisclosureSettings,
    *,
    min_minor_allele_count: int,
    window: Window,
    outcome: str,
    scheduler: str | None = None,
    max_window_variants: int = 20_000,
) -> dict[str, Any]:
    """Genotype counts (case/control × 0/1/2) per variant; a variant's table
    with a non-empty cell below ``nfilter.tab`` is withheld."""
    variables = variables_of(dataset, [outcome])
    response = variables.columns[outcome]
    groups = np.where(np.isnan(response), -1, np.where(response == 1, 0, 1))
    sizes = [int((groups == 0).sum()), int((groups == 1).sum())]
    _refuse(check_table(settings, sizes))
    keys, dosages = _select(
        _read(dataset, window, scheduler, max_window_variants), None
    )
    rare = _rare(settings, min_minor_allele_count, dosages)
    counts = statistics.genotype_counts(dosages, groups, 2)
    released, withheld, cells = [], [], []
    for key, hidden, table in zip(keys, rare, counts, strict=True):
        reason = "minor-allele count" if hidden else None
        reason = reason or check_table(settings, table.ravel().tolist())
        if reason:
            withheld.append(key)
        else:
            released.append(key)
            cells.append(table.tolist())
    return {
        "num_cases": sizes[0],
        "num_controls": sizes[1],
        "variants": released,
        "withheld": withheld,
        "counts": cells,
    }


def summary(
    dataset: PublishedDataset,
    settings: DisclosureSettings,
    *,
    names: Sequence[str],
    quantiles: bool = False,
) -> dict[str, Any]:
    """Per variable: n, sum and sum of squares (means and variances pool
    exactly), or level counts for a variable of at most two values; with
    ``quantiles``, a numeric variable's coarsened quantiles too
    (:func:`~genomenode.disclosure.filters.coarse_quantiles`: refused, the
    whole answer, when this node has fewer than ``nfilter.tab`` values)."""
    variables = variables_of(dataset, names)
    out: dict[str, Any] = {}
    for name in names:
        column = variables.columns[name]
        present = column[~np.isnan(column)]
        _refuse(check_subset(settings, len(present)))
        levels = np.unique(present)
        if len(levels) <= 2 and set(levels.tolist()) <= {0.0, 1.0}:
            cells = [int((present == v).sum()) for v in (0.0, 1.0)]
            _refuse(check_table(settings, cells))
            out[name] = {"kind": "binary", "counts": cells}
        else:
            out[name] = {
                "kind": "numeric",
                "num": len(present),
                "sum": float(present.sum()),
                "sum_of_squares": float((present * present).sum()),
            }
            if quantiles:
                values, reason = coarse_quantiles(settings, present)
                _refuse(reason)
                out[name]["quantiles"] = {
                    "probabilities": list(QUANTILE_PROBABILITIES),
                    "values": values,
                }
    return out


def _standardised(
    dataset: PublishedDataset,
    window: Window,
    variants: Sequence[str],
    frequencies_: npt.ArrayLike,
) -> np.ndarray:
    return _standardise(
        read_variants(dataset, window.contig, variants), variants, frequencies_
    )


def _standardise(
    dosages: np.ndarray, variants: Sequence[str], frequencies_: npt.ArrayLike
) -> np.ndarray:
    p = np.asarray(frequencies_, float)
    if p.shape != (len(variants),) or not ((p > 0) & (p < 1)).all():
        raise InputError("one frequency in (0, 1) per variant", field="frequencies")
    mean, scale = 2 * p, np.sqrt(2 * p * (1 - p))
    # Missing calls are set to the mean (0 after standardising), as in EIGENSOFT.
    z = (dosages - mean[:, None]) / scale[:, None]
    return np.where(np.isnan(z), 0.0, z)


def pca_gram(
    dataset: PublishedDataset,
    settings: DisclosureSettings,
    *,
    window: Window,
    variants: Sequence[str],
    frequencies_: npt.ArrayLike,
    scheduler: str | None = None,
) -> dict[str, Any]:
    """ZᵀZ over this node's people for the standardised ``variants`` (pooled
    frequencies): a variants × variants matrix, refused when it would hold more
    than ``nfilter.glm`` numbers per person."""
    z = _standardised(dataset, window, variants, frequencies_)
    _refuse(check_subset(settings, z.shape[1]))
    _refuse(check_glm(settings, len(variants), z.shape[1]))
    return {"num_individuals": int(z.shape[1]), "gram": z @ z.T}


def pca_scores(
    dataset: PublishedDataset,
    *,
    window: Window,
    variants: Sequence[str],
    frequencies_: npt.ArrayLike,
    loadings: npt.ArrayLike,
    scheduler: str | None = None,
) -> dict[str, Any]:
    """Project this node's people on the federated loadings and keep the scores
    here (``pc1``... covariates of later models); returns only how many."""
    z = _standardised(dataset, window, variants, frequencies_)
    vectors = np.asarray(loadings, float)
    if vectors.ndim != 2 or vectors.shape[0] != len(variants):
        raise InputError("one row of loadings per variant", field="loadings")
    scores = z.T @ vectors
    path = _scores_path(dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp.npy")
    np.save(partial, scores)
    partial.replace(path)
    return {"num_individuals": int(scores.shape[0]), "num_components": vectors.shape[1]}


def pca_linkage(
    dataset: PublishedDataset,
    settings: DisclosureSettings,
    *,
    window: Window,
    variants: Sequence[str],
    frequencies_: npt.ArrayLike,
    band: int,
    scheduler: str | None = None,
    max_window_variants: int = 20_000,
) -> dict[str, Any]:
    """For LD pruning: ``products[i, d] = Σ z_i z_{i+d}`` over this node's
    people (d = 0..band, 0 past the end) of the standardised ``variants`` (in
    their order, pooled frequencies). The pooled r² of variants i and i + d is
    ``products[i, d]² / (products[i, 0] · products[i + d, 0])`` of the sums.

    Each band of ``band + 1`` consecutive variants is a block of a Gram matrix:
    refused (``nfilter.glm``) when it would hold more numbers per person than a
    PCA Gram matrix may.
    """
    if not 1 <= band <= 200:
        raise InputError("an integer from 1 to 200", field="band")
    _, dosages = _select(
        _read(dataset, window, scheduler, max_window_variants), variants
    )
    z = _standardise(dosages.astype(np.float64), variants, frequencies_)
    _refuse(check_subset(settings, z.shape[1]))
    _refuse(check_glm(settings, band + 1, z.shape[1]))
    products = np.zeros((len(variants), band + 1))
    products[:, 0] = np.einsum("ij,ij->i", z, z)
    for distance in range(1, min(band, len(variants) - 1) + 1):
        products[:-distance, distance] = np.einsum(
            "ij,ij->i", z[:-distance], z[distance:]
        )
    return {"num_individuals": int(z.shape[1]), "products": products}
