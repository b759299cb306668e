"""The node's reference answers: one variant across its published datasets.

A variant is named as gnomAD names it, ``<contig>-<POS>-<REF>-<ALT>``. Each
published dataset whose reference may be released (:func:`.release.release_allowed`)
and that has the variant, QC-passing, contributes its populations' published
numbers (:func:`.release.released_frequencies`); the node's own rows are their
sums by population. A dataset whose reference was not built yet is counted on the
fly for that one variant, by the same kernel and QC flags.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

import numpy as np

from ..disclosure.control import DisclosureControl
from ..errors import InputError, StoreError
from ..store.genotype_counts import cell_genotype_table, statistics_from_table
from ..store.published import PublishedDataset, PublishedDatasets
from ..vocab.contigs import find_contig
from .build import qc_masks
from .populations import TOTAL, populations_of_cells
from .release import (
    PopulationFrequency,
    grpmax,
    release_allowed,
    released_frequencies,
)
from .store import ReferenceCounts, ReferenceStore, reference_location

__all__ = [
    "MAX_VARIANT_ID_LENGTH",
    "dataset_counts",
    "parse_variant",
    "reference_store",
    "sum_frequencies",
    "variant_reference",
]

#: The longest variant id a caller may send.
MAX_VARIANT_ID_LENGTH = 1_000

# Per (node, dataset): the build's token, its opened store, when last checked.
_stores: dict[tuple[str, str], tuple[str, ReferenceStore, float]] = {}
# How long a reference kept from an object store is used before its switch is
# read again (one GET); a rebuild keeps the version before it (store/derived.py).
_RECHECK_SECONDS = 2.0
_stores_lock = threading.Lock()


def parse_variant(text: str) -> tuple[str, int, str, str]:
    """``(contig, POS, REF, ALT)`` of ``<contig>-<POS>-<REF>-<ALT>``; a 400 naming
    the path field when it is not one."""
    parts = text.rsplit("-", 3)
    if (
        len(text) > MAX_VARIANT_ID_LENGTH
        or len(parts) != 4
        or not parts[1].isdigit()
        or len(parts[1]) > 10
        or not parts[0]
        or not all(base in "ACGTNacgtn" for base in parts[2] + parts[3])
        or not parts[2]
        or not parts[3]
    ):
        raise InputError(
            f"variant id {text[:80]!r} is not <contig>-<POS>-<REF>-<ALT> "
            "(e.g. 1-1000123-A-G)",
            field="variant_id",
        )
    return parts[0], int(parts[1]), parts[2].upper(), parts[3].upper()


def reference_store(handle: PublishedDataset) -> ReferenceStore | None:
    """The dataset's built reference (opened once per build), or None."""
    node = handle.node
    key = (str(node.config.node_dir), handle.id)
    now = time.monotonic()
    with _stores_lock:
        kept = _stores.get(key)
    if kept is not None and node.remote and now - kept[2] < _RECHECK_SECONDS:
        return kept[1]
    found = reference_location(node, handle.id, handle.manifest["fingerprint"])
    if found is None:
        return None
    token, opener = found
    if kept is not None and kept[0] == token:
        store = kept[1]
    else:
        try:
            store = opener()
        except StoreError:
            return None
    with _stores_lock:
        _stores[key] = (token, store, now)
    return store


def _counts_on_the_fly(
    handle: PublishedDataset, row: int, allele: int
) -> ReferenceCounts | None:
    sample_pass, variant_pass = qc_masks(handle.node, handle.id)
    if variant_pass is not None and not variant_pass[row]:
        return None
    groups, names = handle.population_groups
    populations = populations_of_cells(groups, names, sample_pass)
    genotypes = np.asarray(handle.store.genotypes(row))
    num_alleles = int(handle.store.root["variant_allele"].shape[1])
    width = num_alleles + 2
    table = cell_genotype_table(
        genotypes[None], populations.sample_cells, len(names), num_alleles
    ).reshape(len(names), width, width)
    statistics = statistics_from_table(table)

    def per_population(name: str) -> np.ndarray:
        cells = statistics[name][:, allele].astype(np.int64)
        return cells @ populations.membership

    return ReferenceCounts(
        populations=populations.names,
        population_samples=[int(n) for n in populations.num_samples],
        cell_samples=populations.cell_samples(),
        allele_count=per_population("variant_allele_count"),
        allele_count_hom=per_population("variant_allele_count_hom"),
        allele_count_het=per_population("variant_allele_count_het"),
        allele_count_hemi=per_population("variant_allele_count_hemi"),
        allele_number=statistics["variant_allele_total"].astype(np.int64)
        @ populations.membership,
    )


def dataset_counts(
    handle: PublishedDataset, row: int, allele: int
) -> ReferenceCounts | None:
    """True counts of ALT ``allele`` of variant ``row`` in one dataset's reference
    (built, else on the fly); None when the variant failed QC."""
    store = reference_store(handle)
    if store is not None and store.num_variants == handle.facts.num_variants:
        return store.counts(row, allele)
    return _counts_on_the_fly(handle, row, allele)


def _rows_of(
    handle: PublishedDataset, contig: str, position: int, reference: str, alternate: str
) -> list[tuple[int, int]]:
    store = handle.store
    name = find_contig(store.contigs, contig, handle.facts.assembly)
    if name is None:
        return []
    found = []
    rows = store.rows_at(name, position)
    if not len(rows):
        return []
    alleles = store.alleles(rows.start, rows.stop)
    for offset, row in enumerate(rows):
        if str(alleles[offset][0]) != reference:
            continue
        for index, value in enumerate(alleles[offset][1:], start=1):
            if str(value) == alternate:
                found.append((row, index))
    return found


def sum_frequencies(
    rows: list[list[PopulationFrequency]],
) -> list[PopulationFrequency]:
    """Population rows summed by name (order of first appearance); a sum is
    ``adjusted`` when any part was. ``total`` is the sum of the countries' rows
    when there are several (and absent with one: it is that country's row)."""
    sums: dict[str, list[int]] = {}
    adjusted: dict[str, bool] = {}
    for items in rows:
        for item in items:
            values = sums.setdefault(item.population, [0, 0, 0, 0, 0])
            for position, value in enumerate(
                (
                    item.allele_count,
                    item.allele_number,
                    item.allele_count_hom,
                    item.allele_count_het,
                    item.allele_count_hemi,
                )
            ):
                values[position] += value
            adjusted[item.population] = adjusted.get(item.population, False) or (
                item.adjusted
            )
    summed = [
        PopulationFrequency.of(name, values, adjusted=adjusted[name])
        for name, values in sums.items()
        if name != TOTAL
    ]
    countries = [item for item in summed if len(item.population) == 2]
    if len(countries) > 1:
        # Everyone is the sum of the countries (each sample is in one), whichever
        # datasets held them.
        total = [
            sum(getattr(item, field) for item in countries)
            for field in (
                "allele_count",
                "allele_number",
                "allele_count_hom",
                "allele_count_het",
                "allele_count_hemi",
            )
        ]
        summed.append(
            PopulationFrequency.of(
                TOTAL, total, adjusted=any(item.adjusted for item in countries)
            )
        )
    return summed


@dataclasses.dataclass(frozen=True)
class _Found:
    handle: PublishedDataset
    frequencies: list[PopulationFrequency]
    qc: bool


def _grpmax_document(frequencies: list[PopulationFrequency]) -> dict[str, Any] | None:
    best = grpmax(frequencies)
    if best is None:
        return None
    countries = [item for item in frequencies if len(item.population) == 2]
    fafmax = max(countries, key=lambda item: item.faf95)
    return {
        "grpmax": best.population,
        "alleleFrequency": best.allele_frequency,
        "alleleCount": best.allele_count,
        "alleleNumber": best.allele_number,
        "nhomalt": best.nhomalt,
        "fafmax_faf95_max": fafmax.faf95,
        "fafmax_faf95_max_gen_anc": fafmax.population,
    }


def variant_reference(
    published: PublishedDatasets,
    control: DisclosureControl,
    variant_id: str,
    *,
    release_controlled: bool,
) -> dict[str, Any]:
    """The node's published reference numbers of one variant (a JSON document)."""
    contig, position, reference, alternate = parse_variant(variant_id)
    found: list[_Found] = []
    withheld: dict[str, str] = {}
    for handle in published.datasets():
        if handle.site_counts is not None:
            continue
        data_use = [term["id"] for term in handle.data_use]
        allowed, why = release_allowed(
            handle.facts.security_level, data_use, release_controlled
        )
        if not allowed:
            withheld[handle.id] = why
            continue
        for row, allele in _rows_of(handle, contig, position, reference, alternate):
            counts = dataset_counts(handle, row, allele)
            if counts is None:
                continue  # the variant failed QC: not in the reference
            store = reference_store(handle)
            found.append(
                _Found(
                    handle,
                    released_frequencies(counts, control),
                    bool(store.qc) if store is not None else False,
                )
            )
    datasets = [
        {
            "datasetId": item.handle.id,
            "country": item.handle.facts.country,
            "qcApplied": item.qc,
            "populations": [row.document() for row in item.frequencies],
            "grpmax": _grpmax_document(item.frequencies),
        }
        for item in found
    ]
    node_rows = sum_frequencies([item.frequencies for item in found])
    document: dict[str, Any] = {
        "variantId": f"{contig}-{position}-{reference}-{alternate}",
        "exists": bool(found),
        "populations": [row.document() for row in node_rows],
        "grpmax": _grpmax_document(node_rows),
        "datasets": datasets,
    }
    if withheld:
        document["datasetsWithheld"] = withheld
    return document
