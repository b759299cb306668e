"""Variant QC: one pass over the calls of the samples that passed sample QC.

Per variant row: call rate, the Hardy-Weinberg exact p-value in each population
(autosomes; ALT alleles pooled against REF), InbreedingCoeff, raw and
high-quality allele counts (gnomAD's AC0: no ALT in a genotype with GQ, DP and,
for heterozygotes, allele balance at their thresholds, where the VCF has those
fields), and the flags that follow. One :func:`variant_block` per block of rows,
on a Dask cluster or in this process. Memory is one stored chunk of calls (and
of DP, GQ, AD) with its temporaries in a task, plus a few numbers per variant.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from ..store.compute import each_result
from ..store.genotype_counts import block_cell_table, statistics_from_table
from ..store.genotype_rows import GenotypeSource
from .kernels import hwe_exact_p
from .samples import AUTOSOME
from .settings import QcSettings

__all__ = ["VARIANT_REASONS", "VariantQc", "measure_variants", "variant_block"]

#: Why a variant fails, as bits of ``VariantQc.reasons`` (bit i: reason i).
VARIANT_REASONS = (
    "low_call_rate",
    "hwe",
    "ac0",
    "inbreeding_coeff",
    "monomorphic",
)


@dataclasses.dataclass
class VariantQc:
    """Per variant row: what variant QC measured and its reasons to fail."""

    populations: list[str]
    call_rate: np.ndarray
    hwe_p: np.ndarray  # variants × populations; NaN where not tested
    inbreeding_coeff: np.ndarray
    allele_count: np.ndarray  # ALT copies among passing samples (all ALTs)
    allele_count_high_quality: np.ndarray
    reasons: np.ndarray  # uint8 bit set over VARIANT_REASONS

    @property
    def passed(self) -> np.ndarray:
        return self.reasons == 0

    def reason_counts(self) -> dict[str, int]:
        return {
            reason: int(((self.reasons >> bit) & 1).sum())
            for bit, reason in enumerate(VARIANT_REASONS)
        }


def _high_quality(
    root: Any,
    start: int,
    stop: int,
    columns: slice,
    keep: np.ndarray,
    genotypes: np.ndarray,
    settings: QcSettings,
) -> np.ndarray:
    """Whether each call passes gnomAD's genotype filter (fields the VCF lacks
    are not applied; a missing value where the field exists fails)."""
    good = np.ones(genotypes.shape[:2], dtype=bool)
    if "call_GQ" in root:
        quality = np.asarray(root["call_GQ"][start:stop, columns])[:, keep]
        good &= quality >= settings.genotype_min_gq
    if "call_DP" in root:
        depth = np.asarray(root["call_DP"][start:stop, columns])[:, keep]
        good &= depth >= settings.genotype_min_depth
    if "call_AD" in root:
        depths = np.asarray(root["call_AD"][start:stop, columns])[:, keep]
        reads = np.where(depths >= 0, depths, 0).sum(axis=2)
        first, second = genotypes[:, :, 0], genotypes[:, :, 1]
        het = (first >= 0) & (second >= 0) & (first != second)
        allele = np.clip(np.maximum(first, second), 0, depths.shape[2] - 1)
        alternate = np.take_along_axis(depths, allele[:, :, None].astype(np.intp), 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            balance = np.where(reads > 0, alternate[:, :, 0] / reads, 0.0)
        good &= ~het | (balance >= settings.genotype_min_allele_balance)
    return good


def variant_block(
    store: GenotypeSource | Any,
    start: int,
    stop: int,
    kinds: np.ndarray,
    sample_pass: np.ndarray,
    cells: np.ndarray,
    num_populations: int,
    settings: QcSettings,
) -> dict[str, np.ndarray]:
    """The variant pass over rows ``start:stop``: call rate, HWE p per
    population, InbreedingCoeff, AC and high-quality AC of the passing samples.

    ``store`` is the VCF Zarr group, or a
    :class:`~genomenode.store.genotype_rows.GenotypeSource` opened where the
    task runs; ``cells`` is each sample's population index (-1: left out).
    Reads one stored chunk of samples at a time.
    """
    root = store.open().root if isinstance(store, GenotypeSource) else store
    call_genotype = root["call_genotype"]
    num_samples, ploidy = call_genotype.shape[1:]
    sample_step = call_genotype.chunks[1]
    num_alleles = root["variant_allele"].shape[1]
    num_kept = int(sample_pass.sum())
    rows = stop - start
    width = num_alleles + 2
    # Genotype tables per population (cell) of the passing samples: the
    # cohort's table is their sum, and the HWE counts are entries of them.
    cell_table = np.zeros((rows, num_populations, width, width), dtype=np.int64)
    hq_count = np.zeros(rows, dtype=np.int64)
    for sample_start in range(0, num_samples, sample_step):
        columns = slice(sample_start, min(sample_start + sample_step, num_samples))
        keep = sample_pass[columns]
        if not keep.any():
            continue
        block = np.asarray(call_genotype[start:stop, columns])
        if ploidy == 1:
            block = np.concatenate([block, np.full_like(block, -2)], axis=2)
        cell_table += block_cell_table(
            block, cells[columns], num_populations, num_alleles
        )
        genotypes = block[:, keep]
        first, second = genotypes[:, :, 0], genotypes[:, :, 1]
        good = _high_quality(root, start, stop, columns, keep, genotypes, settings)
        copies = (first > 0).astype(np.int64) + (second > 0)
        hq_count += np.where(good, copies, 0).sum(axis=1)
    table = cell_table.sum(axis=1)
    alternates = slice(1, num_alleles)
    hom_ref = cell_table[:, :, 0, 0]
    het = cell_table[:, :, 0, alternates].sum(axis=2) + cell_table[
        :, :, alternates, 0
    ].sum(axis=2)
    hom_alt = cell_table[:, :, alternates, alternates].sum(axis=(2, 3))
    statistics = statistics_from_table(table)
    counts = statistics["variant_allele_count"].astype(np.int64)
    call_rate = np.full(rows, np.nan)
    if num_kept:
        call_rate = statistics["variant_num_called"] / num_kept
    diploid_called = (
        statistics["variant_num_hom_ref"]
        + statistics["variant_num_het"]
        + statistics["variant_num_hom_alt"]
    ).astype(np.float64)
    # Frequencies among the diploid calls: on X those are the females', whose
    # heterozygotes the coefficient is about.
    diploid_copies = (
        statistics["variant_allele_count_hom"] + statistics["variant_allele_count_het"]
    ).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        frequency = diploid_copies / (2 * diploid_called[:, None])
        expected_het = diploid_called * (1 - (frequency**2).sum(axis=1))
        inbreeding = np.where(
            expected_het > 0,
            1 - statistics["variant_num_het"] / expected_het,
            np.nan,
        )
    autosome = kinds == AUTOSOME
    hwe_p = np.full((rows, num_populations), np.nan)
    for code in range(num_populations):
        p_values = hwe_exact_p(het[:, code], hom_ref[:, code], hom_alt[:, code])
        hwe_p[:, code] = np.where(autosome, p_values, np.nan)
    return {
        "call_rate": call_rate,
        "hwe_p": hwe_p,
        "inbreeding_coeff": inbreeding,
        "allele_count": counts[:, 1:].sum(axis=1),
        "allele_count_high_quality": hq_count,
    }


def measure_variants(
    root: Any,
    *,
    kinds: np.ndarray,
    sample_pass: np.ndarray,
    population: np.ndarray,
    settings: QcSettings,
    check_cancelled: Callable[[], None] = lambda: None,
    source: GenotypeSource | None = None,
    client: Any = None,
) -> VariantQc:
    """Variant metrics and flags over the samples with ``sample_pass``.

    Parameters
    ----------
    root
        The dataset's ``genotypes.vcz`` group.
    kinds
        :func:`genomenode.qc.samples.row_kinds` of every row.
    sample_pass, population
        Per sample: whether it passed sample QC, and its population.
    source, client
        A Dask client and the same store as a
        :class:`~genomenode.store.genotype_rows.GenotypeSource`: the blocks of
        variants (:func:`variant_block`) then run as tasks on its cluster.
    """
    call_genotype = root["call_genotype"]
    num_variants = call_genotype.shape[0]
    variant_step = call_genotype.chunks[0]
    names = sorted({str(name) for name in population[sample_pass]})
    codes = np.array(
        [names.index(str(name)) if name in names else -1 for name in population]
    )
    cells = np.where(sample_pass, codes, -1)
    call_rate = np.full(num_variants, np.nan)
    hwe_p = np.full((num_variants, len(names)), np.nan)
    inbreeding = np.full(num_variants, np.nan)
    allele_count = np.zeros(num_variants, dtype=np.int64)
    high_quality = np.zeros(num_variants, dtype=np.int64)
    if client is not None and source is None:
        raise ValueError("a Dask client needs the store as a GenotypeSource")
    store: Any = root
    per_sample: tuple[Any, ...] = (sample_pass, cells)
    if client is not None:
        store = source
        per_sample = tuple(
            client.scatter(value, broadcast=True) for value in per_sample
        )
    arguments = [
        (
            store,
            start,
            min(start + variant_step, num_variants),
            kinds[start : start + variant_step],
            *per_sample,
            len(names),
            settings,
        )
        for start in range(0, num_variants, variant_step)
    ]

    def add(index: int, part: dict[str, np.ndarray]) -> None:
        check_cancelled()
        rows = slice(arguments[index][1], arguments[index][2])
        call_rate[rows] = part["call_rate"]
        hwe_p[rows] = part["hwe_p"]
        inbreeding[rows] = part["inbreeding_coeff"]
        allele_count[rows] = part["allele_count"]
        high_quality[rows] = part["allele_count_high_quality"]

    each_result(client, variant_block, arguments, on_result=add)
    reasons = np.zeros(num_variants, dtype=np.uint8)

    def flag(mask: np.ndarray, reason: str) -> None:
        reasons[mask] |= np.uint8(1 << VARIANT_REASONS.index(reason))

    flag(~(call_rate >= settings.variant_min_call_rate), "low_call_rate")
    with np.errstate(invalid="ignore"):
        lowest = np.where(
            np.isnan(hwe_p).all(axis=1) if len(names) else True,
            np.nan,
            np.nanmin(np.where(np.isnan(hwe_p), np.inf, hwe_p), axis=1)
            if len(names)
            else np.nan,
        )
    flag(lowest < settings.hwe_min_p, "hwe")
    flag(high_quality == 0, "ac0")
    flag(inbreeding < settings.min_inbreeding_coeff, "inbreeding_coeff")
    flag(allele_count == 0, "monomorphic")
    return VariantQc(
        populations=names,
        call_rate=call_rate,
        hwe_p=hwe_p,
        inbreeding_coeff=inbreeding,
        allele_count=allele_count,
        allele_count_high_quality=high_quality,
        reasons=reasons,
    )
