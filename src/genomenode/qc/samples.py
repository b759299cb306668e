"""Sample QC: one pass over ``call_genotype``, then the flags.

The pass reads the store one stored chunk at a time (variants × samples, as
bio2zarr wrote it) and adds up, per sample, the bcftools stats per-sample counts,
depth and genotype quality, the observed and expected homozygosity of plink2
--het (autosomes) and --check-sex (X outside the pseudo-autosomal regions), Y
calls, and copies the dosages of a thinned set of common SNPs. From those come
kinship (KING) and principal components, and then each sample's flags.

The pass is one :func:`sample_block` per block of variant rows and kinship one
:func:`kinship_block` per pair of blocks of samples: tasks on the Dask cluster
of a client (:mod:`genomenode.store.compute`), or calls in this process, whose
partial results are added up here in the order of the blocks. A task holds one
stored chunk and its temporaries (or two blocks of dosages); this process the
common dosages (``qc_common_max_variants`` × samples bytes) and a few numbers
per sample.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..store.compute import each_result
from ..store.genotype_rows import GenotypeSource
from ..vocab.contigs import chromosome_name, normalise_assembly
from .kernels import (
    SAMPLE_COUNTS,
    allele_classes,
    expected_homozygosity,
    king_block,
    king_block_pairs,
    pca_scores,
    sample_block_counts,
)
from .settings import QcSettings

__all__ = [
    "KINSHIP_BINS",
    "PSEUDOAUTOSOMAL",
    "SampleQc",
    "flag_samples",
    "kinship_block",
    "measure_samples",
    "row_kinds",
    "sample_block",
]

#: Pseudo-autosomal regions of X (1-based, inclusive), by assembly family.
PSEUDOAUTOSOMAL: dict[str, tuple[tuple[int, int], ...]] = {
    "GRCh37": ((60_001, 2_699_520), (154_931_044, 155_260_560)),
    "GRCh38": ((10_001, 2_781_479), (155_701_383, 156_030_895)),
}
#: Edges of the kinship histogram kept for the report (every pair counts once).
KINSHIP_BINS = np.linspace(-0.5, 0.5, 101)

AUTOSOME, X_CHROMOSOME, Y_CHROMOSOME, OTHER = 0, 1, 2, 3


def row_kinds(
    contig_ids: Sequence[str],
    variant_contig: np.ndarray,
    positions: np.ndarray,
    assembly: str,
) -> np.ndarray:
    """Autosome / X outside the PARs / Y / other, per variant row (int8)."""
    kinds = np.full(len(contig_ids), OTHER, dtype=np.int8)
    for index, name in enumerate(contig_ids):
        chromosome = chromosome_name(str(name), assembly)
        if chromosome is None:
            continue
        if chromosome.isdigit():
            kinds[index] = AUTOSOME
        elif chromosome in ("X", "Y"):
            kinds[index] = X_CHROMOSOME if chromosome == "X" else Y_CHROMOSOME
    per_row = kinds[variant_contig]
    regions = PSEUDOAUTOSOMAL.get(normalise_assembly(assembly), ())
    for start, stop in regions:
        inside = (per_row == X_CHROMOSOME) & (positions >= start) & (positions <= stop)
        per_row[inside] = OTHER
    return per_row


@dataclasses.dataclass
class SampleQc:
    """What sample QC measured and decided, in the store's sample order."""

    sample_ids: list[str]
    population: np.ndarray
    declared_sex: np.ndarray
    metrics: dict[str, np.ndarray]
    inferred_sex: np.ndarray = dataclasses.field(default_factory=lambda: np.empty(0))
    reasons: list[list[str]] = dataclasses.field(default_factory=list)
    kinship_first: np.ndarray = dataclasses.field(default_factory=lambda: np.empty(0))
    kinship_second: np.ndarray = dataclasses.field(default_factory=lambda: np.empty(0))
    kinship: np.ndarray = dataclasses.field(default_factory=lambda: np.empty(0))
    kinship_histogram: np.ndarray = dataclasses.field(
        default_factory=lambda: np.zeros(len(KINSHIP_BINS) - 1, dtype=np.int64)
    )
    principal_components: np.ndarray = dataclasses.field(
        default_factory=lambda: np.empty((0, 0))
    )
    eigenvalues: np.ndarray = dataclasses.field(default_factory=lambda: np.empty(0))
    num_common_variants: int = 0
    #: Over the dataset, as bcftools stats' TSTV and SiS lines count them: SNP
    #: ALT alleles that are transitions / transversions, and SNP ALT alleles
    #: seen once.
    site_counts: dict[str, int] = dataclasses.field(default_factory=dict)
    #: Common-variant dosages (variants × samples), kept from the pass for PCA.
    dosages: np.ndarray = dataclasses.field(
        default_factory=lambda: np.empty((0, 0), dtype=np.int8), repr=False
    )
    has_depth: bool = False
    has_quality: bool = False

    @property
    def passed(self) -> np.ndarray:
        return np.array([not reasons for reasons in self.reasons], dtype=bool)


def _common_rows(
    root: Any, kinds: np.ndarray, settings: QcSettings, num_samples: int
) -> np.ndarray:
    """Rows of the biallelic autosomal SNPs kinship and PCA use, thinned evenly."""
    alleles = root["variant_allele"]
    counts = root["variant_allele_count"]
    totals = root["variant_allele_total"][:].astype(np.float64)
    called = root["variant_num_called"][:]
    num_variants = len(totals)
    candidate = np.zeros(num_variants, dtype=bool)
    step = alleles.chunks[0]
    for start in range(0, num_variants, step):
        stop = min(start + step, num_variants)
        block = alleles[start:stop]
        second = block[:, 1] if block.shape[1] > 1 else np.full(len(block), "")
        third = block[:, 2] if block.shape[1] > 2 else np.full(len(block), "")
        classes = allele_classes(block[:, :2])
        alternate = counts[start:stop, 1].astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            frequency = alternate / totals[start:stop]
        minor = np.minimum(frequency, 1 - frequency)
        candidate[start:stop] = (
            (kinds[start:stop] == AUTOSOME)
            & (second != "")
            & (third == "")
            & classes.snp[:, 1]
            & (minor >= max(settings.common_min_maf, 1e-12))
            & (called[start:stop] >= settings.variant_min_call_rate * num_samples)
        )
    rows = np.flatnonzero(candidate)
    if len(rows) > settings.common_max_variants:
        picks = np.linspace(0, len(rows) - 1, settings.common_max_variants)
        rows = rows[np.unique(np.round(picks).astype(np.int64))]
    return rows


def measure_samples(
    root: Any,
    *,
    assembly: str,
    settings: QcSettings,
    population: np.ndarray,
    declared_sex: np.ndarray,
    check_cancelled: Callable[[], None] = lambda: None,
    source: GenotypeSource | None = None,
    client: Any = None,
) -> SampleQc:
    """The per-sample metrics of a VCF Zarr group (one pass), kinship and PCA.

    Parameters
    ----------
    root
        The dataset's ``genotypes.vcz`` group, opened read-only, with the
        store's per-variant statistics (``variant_allele_count`` ...).
    assembly
        The dataset's assembly (where X's pseudo-autosomal regions are).
    population, declared_sex
        Per sample: population name, and ``M`` / ``F`` / ``U`` from the
        clinical data.
    source, client
        A Dask client (:func:`genomenode.store.compute.dask_client`) and the
        same store as a :class:`~genomenode.store.genotype_rows.GenotypeSource`:
        the blocks of variants (:func:`sample_block`) and of kinship
        (:func:`kinship_block`) then run as tasks on its cluster, their partial
        results added up here in the same order as in this process.
    """
    call_genotype = root["call_genotype"]
    num_variants, num_samples, _ploidy = call_genotype.shape
    variant_step = call_genotype.chunks[0]
    contig_ids = [str(name) for name in root["contig_id"][:]]
    positions = root["variant_position"][:]
    kinds = row_kinds(contig_ids, root["variant_contig"][:], positions, assembly)
    has_depth = "call_DP" in root
    has_quality = "call_GQ" in root
    totals = _zero_totals(num_samples)
    sums = _zero_sums(num_samples)
    common = _common_rows(root, kinds, settings, num_samples)
    dosages = np.full((len(common), num_samples), -1, dtype=np.int8)
    site_counts = dict.fromkeys(SITE_COUNTS, 0)
    store = root if client is None else source
    if client is not None and source is None:
        raise ValueError("a Dask client needs the store as a GenotypeSource")
    arguments = []
    for start in range(0, num_variants, variant_step):
        stop = min(start + variant_step, num_variants)
        first_common, last_common = np.searchsorted(common, [start, stop])
        arguments.append(
            (
                store,
                start,
                stop,
                kinds[start:stop],
                common[first_common:last_common] - start,
            )
        )

    def add(index: int, part: dict[str, Any]) -> None:
        check_cancelled()
        for name, value in part["totals"].items():
            totals[name] += value
        for name, value in part["sums"].items():
            sums[name] += value
        for name, value in part["site_counts"].items():
            site_counts[name] += value
        start = arguments[index][1]
        first_common = int(np.searchsorted(common, start))
        dosages[first_common : first_common + len(part["dosages"])] = part["dosages"]

    each_result(client, sample_block, arguments, on_result=add)
    metrics = _metrics(totals, sums, num_variants, has_depth, has_quality)
    result = SampleQc(
        sample_ids=[str(sample) for sample in root["sample_id"][:]],
        population=population,
        declared_sex=declared_sex,
        metrics=metrics,
        num_common_variants=len(common),
        site_counts=site_counts,
        has_depth=has_depth,
        has_quality=has_quality,
    )
    _relatedness(result, dosages, settings, check_cancelled, client)
    return result


#: Counted over the dataset by :func:`sample_block` (see ``SampleQc.site_counts``).
SITE_COUNTS = ("num_transitions", "num_transversions", "num_singleton_snps")
# Per-sample integer counters of sample_block beyond kernels.SAMPLE_COUNTS.
_EXTRA_COUNTS = (
    "singletons",
    "depth_sum",
    "depth_count",
    "quality_sum",
    "quality_count",
    "autosomal_called",
    "x_called",
    "y_called",
)
# Per-sample float sums of sample_block (plink2 --het / --check-sex O and E).
_SUMS = (
    "autosomal_observed_hom",
    "autosomal_expected_hom",
    "x_observed_hom",
    "x_expected_hom",
)


def _zero_totals(num_samples: int) -> dict[str, np.ndarray]:
    return {
        name: np.zeros(num_samples, dtype=np.int64)
        for name in (*SAMPLE_COUNTS, *_EXTRA_COUNTS)
    }


def _zero_sums(num_samples: int) -> dict[str, np.ndarray]:
    return {name: np.zeros(num_samples) for name in _SUMS}


def sample_block(
    store: GenotypeSource | Any,
    start: int,
    stop: int,
    kinds: np.ndarray,
    common_here: np.ndarray,
) -> dict[str, Any]:
    """The sample pass over variant rows ``start:stop`` (every sample).

    ``store`` is the dataset's VCF Zarr group, or a
    :class:`~genomenode.store.genotype_rows.GenotypeSource` opened where the
    task runs (a Dask worker); ``kinds`` are :func:`row_kinds` of the rows and
    ``common_here`` the rows (from ``start``) whose dosages kinship and PCA use.
    Reads one stored chunk of samples at a time (memory: that chunk and its
    temporaries, and a few numbers per sample).

    Returns
    -------
    dict
        ``totals`` and ``sums`` (per-sample counters of the rows), the
        ``site_counts`` of the rows, and the ``dosages`` of the common rows
        (rows × samples, int8, -1 missing).
    """
    root = store.open().root if isinstance(store, GenotypeSource) else store
    call_genotype = root["call_genotype"]
    num_samples = call_genotype.shape[1]
    sample_step = call_genotype.chunks[1]
    has_depth = "call_DP" in root
    has_quality = "call_GQ" in root
    totals = _zero_totals(num_samples)
    sums = _zero_sums(num_samples)
    dosages = np.full((len(common_here), num_samples), -1, dtype=np.int8)
    classes = allele_classes(root["variant_allele"][start:stop])
    block_counts = np.asarray(root["variant_allele_count"][start:stop])
    site_counts = {
        "num_transitions": int((classes.snp & classes.transition).sum()),
        "num_transversions": int((classes.snp & ~classes.transition).sum()),
        "num_singleton_snps": int((classes.snp & (block_counts == 1)).sum()),
    }
    with np.errstate(divide="ignore", invalid="ignore"):
        frequencies = block_counts / root["variant_allele_total"][start:stop][:, None]
    expected = np.nan_to_num(expected_homozygosity(np.nan_to_num(frequencies)))
    # plink2 --het and --check-sex leave out variants monomorphic in the
    # cohort (they would add 1 to O, E and N alike, F unchanged).
    block_kinds = np.where(expected < 1 - 1e-12, kinds, OTHER)
    num_non_ref = np.zeros(stop - start, dtype=np.int64)
    last_non_ref = np.full(stop - start, -1, dtype=np.int64)
    for sample_start in range(0, num_samples, sample_step):
        columns = slice(sample_start, min(sample_start + sample_step, num_samples))
        genotypes = np.asarray(call_genotype[start:stop, columns])
        counts, non_ref = sample_block_counts(genotypes, classes)
        for name, value in counts.items():
            totals[name][columns] += value
        num_non_ref += non_ref.sum(axis=1)
        width = non_ref.shape[1]
        any_non_ref = non_ref.any(axis=1)
        last = width - 1 - np.argmax(non_ref[:, ::-1], axis=1)
        last_non_ref[any_non_ref] = last[any_non_ref] + sample_start
        _add_homozygosity(
            genotypes, block_kinds, kinds, expected, totals, sums, columns
        )
        if has_depth:
            _add_field(root["call_DP"], start, stop, columns, totals, "depth")
        if has_quality:
            _add_field(root["call_GQ"], start, stop, columns, totals, "quality")
        if len(common_here):
            picked = genotypes[common_here]
            dosage = picked[:, :, 0].astype(np.int16) + picked[:, :, 1]
            called = (picked[:, :, 0] >= 0) & (picked[:, :, 1] >= 0)
            dosages[:, columns] = np.where(called, dosage, -1)
    single = np.flatnonzero(num_non_ref == 1)
    np.add.at(totals["singletons"], last_non_ref[single], 1)
    return {
        "totals": totals,
        "sums": sums,
        "site_counts": site_counts,
        "dosages": dosages,
    }


def _add_homozygosity(
    genotypes: np.ndarray,
    kinds: np.ndarray,
    y_kinds: np.ndarray,
    expected: np.ndarray,
    totals: dict[str, np.ndarray],
    sums: dict[str, np.ndarray],
    columns: slice,
) -> None:
    """plink2 --het (autosomes, diploid calls) and --check-sex (X: a haploid
    call is homozygous) observed and expected homozygous counts."""
    first = genotypes[:, :, 0]
    second = genotypes[:, :, 1]
    diploid = (first >= 0) & (second >= 0)
    haploid = (first >= 0) != (second >= 0)
    homozygous = diploid & (first == second)
    autosome = kinds == AUTOSOME
    if autosome.any():
        called = diploid[autosome]
        totals["autosomal_called"][columns] += called.sum(axis=0)
        sums["autosomal_observed_hom"][columns] += homozygous[autosome].sum(axis=0)
        sums["autosomal_expected_hom"][columns] += expected[autosome] @ called
    x_rows = kinds == X_CHROMOSOME
    if x_rows.any():
        called = diploid[x_rows] | haploid[x_rows]
        totals["x_called"][columns] += called.sum(axis=0)
        observed = homozygous[x_rows] | haploid[x_rows]
        sums["x_observed_hom"][columns] += observed.sum(axis=0)
        sums["x_expected_hom"][columns] += expected[x_rows] @ called
    y_rows = y_kinds == Y_CHROMOSOME
    if y_rows.any():
        called = diploid[y_rows] | haploid[y_rows]
        totals["y_called"][columns] += called.sum(axis=0)


def _add_field(
    array: Any,
    start: int,
    stop: int,
    columns: slice,
    totals: dict[str, np.ndarray],
    name: str,
) -> None:
    values = np.asarray(array[start:stop, columns])
    if values.ndim > 2:
        values = values[:, :, 0]
    present = values >= 0
    totals[f"{name}_sum"][columns] += np.where(present, values, 0).sum(
        axis=0, dtype=np.int64
    )
    totals[f"{name}_count"][columns] += present.sum(axis=0)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


def _metrics(
    totals: dict[str, np.ndarray],
    sums: dict[str, np.ndarray],
    num_variants: int,
    has_depth: bool,
    has_quality: bool,
) -> dict[str, np.ndarray]:
    diploid = totals["num_hom_ref"] + totals["num_het"] + totals["num_hom_alt"]
    autosomal_expected = sums["autosomal_expected_hom"]
    x_expected = sums["x_expected_hom"]
    metrics: dict[str, np.ndarray] = {name: totals[name] for name in SAMPLE_COUNTS}
    metrics |= {
        "num_singletons": totals["singletons"],
        "call_rate": _ratio(totals["num_called"], np.full_like(diploid, num_variants)),
        "mean_depth": (
            _ratio(totals["depth_sum"], totals["depth_count"])
            if has_depth
            else np.full(len(diploid), np.nan)
        ),
        "mean_gq": (
            _ratio(totals["quality_sum"], totals["quality_count"])
            if has_quality
            else np.full(len(diploid), np.nan)
        ),
        "heterozygosity": _ratio(totals["num_het"], diploid),
        "het_hom_alt_ratio": _ratio(totals["num_het"], totals["num_hom_alt"]),
        "ti_tv": _ratio(totals["num_transitions"], totals["num_transversions"]),
        "het_observed_hom": sums["autosomal_observed_hom"],
        "het_expected_hom": autosomal_expected,
        "het_num_called": totals["autosomal_called"],
        "het_f": _ratio(
            sums["autosomal_observed_hom"] - autosomal_expected,
            totals["autosomal_called"] - autosomal_expected,
        ),
        "x_num_called": totals["x_called"],
        "x_f": _ratio(
            sums["x_observed_hom"] - x_expected, totals["x_called"] - x_expected
        ),
        "y_num_called": totals["y_called"],
    }
    return metrics


# Samples per block of the kinship matrix (a task on a cluster): two blocks of
# dosages as four float32 indicator matrices each, ~330 MB at 10,000 variants.
KING_BLOCK = 1024


def kinship_block(
    rows_dosages: np.ndarray,
    columns_dosages: np.ndarray,
    rows_start: int,
    columns_start: int,
    min_kinship: float,
    complete: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """KING kinship between two blocks of samples (:func:`.kernels.king_block`):
    the pairs at or above ``min_kinship`` (first, second, kinship) and the
    histogram over :data:`KINSHIP_BINS` of every pair's kinship."""
    histogram = np.zeros(len(KINSHIP_BINS) - 1, dtype=np.int64)

    def tally(kinship: np.ndarray) -> None:
        clipped = np.clip(kinship, KINSHIP_BINS[0], KINSHIP_BINS[-1])
        histogram[:] += np.histogram(clipped, KINSHIP_BINS)[0]

    first, second, kinship, _both = king_block(
        rows_dosages,
        columns_dosages,
        rows_start,
        columns_start,
        min_kinship=min_kinship,
        complete=complete,
        on_block=tally,
    )
    return first, second, kinship, histogram


def _relatedness(
    result: SampleQc,
    dosages: np.ndarray,
    settings: QcSettings,
    check_cancelled: Callable[[], None],
    client: Any = None,
) -> None:
    """Kinship of every pair of samples, a pair of blocks of samples at a time
    (here, or as tasks on the cluster of ``client``); the dosages are kept
    for PCA."""
    num_samples = dosages.shape[1]
    if len(dosages) == 0 or num_samples < 2:
        result.principal_components = np.zeros((num_samples, 0))
        return
    complete = bool((dosages >= 0).all())
    pairs = king_block_pairs(num_samples, KING_BLOCK)
    blocks = {pair[0].start: pair[0] for pair in pairs}
    if client is None:
        pieces: dict[int, Any] = {
            start: dosages[:, block] for start, block in blocks.items()
        }
    else:
        # Each block goes to the cluster once (not once per pair), a copy of
        # one block at a time in this process.
        pieces = {
            start: client.scatter(np.ascontiguousarray(dosages[:, block]))
            for start, block in blocks.items()
        }
    arguments = [
        (
            pieces[rows.start],
            pieces[columns.start],
            rows.start,
            columns.start,
            settings.kinship_related,
            complete,
        )
        for rows, columns in pairs
    ]
    found: list[tuple[np.ndarray, ...]] = []
    histogram = result.kinship_histogram

    def add(_index: int, part: tuple[np.ndarray, ...]) -> None:
        check_cancelled()
        found.append(part[:3])
        histogram[:] += part[3]

    each_result(client, kinship_block, arguments, on_result=add)
    pieces.clear()  # releases the scattered blocks
    result.kinship_first, result.kinship_second, result.kinship = (
        np.concatenate(parts) for parts in zip(*found, strict=True)
    )
    result.dosages = dosages


def _outside_of(
    values: np.ndarray, reference: np.ndarray, groups: np.ndarray, limit: float
) -> np.ndarray:
    outside = np.zeros(len(values), dtype=bool)
    for group in np.unique(groups):
        members = (groups == group) & np.isfinite(reference)
        if members.sum() < 3:
            continue
        median = np.median(reference[members])
        mad = np.median(np.abs(reference[members] - median)) * 1.4826
        if mad <= 0:
            continue
        outside |= (groups == group) & (np.abs(values - median) > limit * mad)
    return outside


def _ancestry_outliers(scores: np.ndarray, fit: np.ndarray, limit: float) -> np.ndarray:
    """EIGENSOFT's rule: beyond ``limit`` SDs (of the fit samples that are not
    outliers) on any component, repeated up to five times."""
    outliers = np.zeros(len(scores), dtype=bool)
    if scores.size == 0:
        return outliers
    for _ in range(5):
        kept = scores[fit & ~outliers]
        if len(kept) < 3:
            break
        mean = kept.mean(axis=0)
        spread = kept.std(axis=0)
        spread[spread == 0] = np.inf
        found = (np.abs(scores - mean) > limit * spread).any(axis=1)
        if (found == outliers).all():
            break
        outliers = found
    return outliers


def flag_samples(result: SampleQc, settings: QcSettings) -> None:
    """Each sample's reasons to fail (none: it passes) and its inferred sex."""
    metrics = result.metrics
    num_samples = len(result.sample_ids)
    reasons: list[list[str]] = [[] for _ in range(num_samples)]

    def flag(mask: np.ndarray, reason: str) -> None:
        for index in np.flatnonzero(mask):
            reasons[index].append(reason)

    call_rate = metrics["call_rate"]
    flag(call_rate < settings.sample_min_call_rate, "low_call_rate")
    if result.has_depth:
        flag(metrics["mean_depth"] < settings.sample_min_mean_depth, "low_depth")
    if result.has_quality:
        flag(metrics["mean_gq"] < settings.sample_min_mean_gq, "low_gq")
    hard = np.array([bool(r) for r in reasons])
    for name in ("heterozygosity", "het_hom_alt_ratio", "ti_tv", "num_singletons"):
        values = metrics[name].astype(np.float64)
        # The median and MAD are learnt from the samples that pass the hard
        # filters; every sample is measured against them.
        reference = np.where(hard, np.nan, values)
        outside = _outside_of(
            values, reference, result.population, settings.sample_outlier_mads
        )
        flag(outside, f"outlier_{name}")
    inferred = np.full(num_samples, "unknown", dtype=object)
    x_f = metrics["x_f"]
    has_x = metrics["x_num_called"] > 0
    inferred[has_x & (x_f <= settings.sex_female_max_f)] = "F"
    inferred[has_x & (x_f >= settings.sex_male_min_f)] = "M"
    ambiguous = (
        has_x & (x_f > settings.sex_female_max_f) & (x_f < settings.sex_male_min_f)
    )
    inferred[ambiguous] = "ambiguous"
    flag(ambiguous, "sex_ambiguous")
    declared = result.declared_sex
    known = np.isin(declared, ["M", "F"]) & np.isin(inferred, ["M", "F"])
    flag(known & (declared != inferred), "sex_mismatch")
    result.inferred_sex = inferred
    dropped = _relatives_to_drop(result, settings, call_rate)
    for index, reason in dropped.items():
        reasons[index].append(reason)
    # Components from the samples that pass so far (no duplicate or relative
    # makes a component of its own); every sample is projected on them.
    fit = np.array([not sample_reasons for sample_reasons in reasons], dtype=bool)
    dosages = result.dosages
    if len(dosages) and fit.sum() >= 3:
        scores, values = pca_scores(dosages, settings.pca_components, fit=fit)
        result.principal_components, result.eigenvalues = scores, values
        flag(
            _ancestry_outliers(scores, fit, settings.pca_outlier_sd),
            "ancestry_outlier",
        )
    else:
        result.principal_components = np.zeros((num_samples, 0))
    result.dosages = np.empty((0, 0), dtype=np.int8)
    result.reasons = reasons


def _relatives_to_drop(
    result: SampleQc, settings: QcSettings, call_rate: np.ndarray
) -> dict[int, str]:
    """One of each duplicate pair, then greedily the most related, until the
    rest are unrelated (a maximal independent set, as gnomAD keeps); the sample
    with the lower call rate goes first."""
    dropped: dict[int, str] = {}
    pairs = list(
        zip(
            result.kinship_first.tolist(),
            result.kinship_second.tolist(),
            result.kinship.tolist(),
            strict=True,
        )
    )
    rate = np.nan_to_num(call_rate, nan=0.0)
    for first, second, kinship in sorted(pairs, key=lambda pair: -pair[2]):
        if kinship <= settings.kinship_duplicate:
            continue
        if first in dropped or second in dropped:
            continue
        loser = second if rate[second] <= rate[first] else first
        dropped[loser] = "duplicate"
    edges: dict[int, set[int]] = {}
    for first, second, kinship in pairs:
        if kinship <= settings.kinship_related or first in dropped or second in dropped:
            continue
        edges.setdefault(first, set()).add(second)
        edges.setdefault(second, set()).add(first)
    while any(edges.values()):
        loser = max(
            (node for node, linked in edges.items() if linked),
            key=lambda node: (len(edges[node]), -rate[node], node),
        )
        dropped[loser] = "related"
        for other in edges.pop(loser):
            edges[other].discard(loser)
    return dropped
