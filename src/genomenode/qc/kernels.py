"""Numeric kernels of the QC: per-sample counts, the HWE exact test, KING, PCA.

Each kernel works on one block of ``call_genotype`` (variants × samples × ploidy,
int8: allele index, -1 missing, -2 the fill of a haploid call) or on the small
matrix of common-variant dosages, so that the callers in :mod:`.samples` and
:mod:`.variants` bound memory by a block. The tests compare each with an
obviously correct twin and with bcftools / plink2.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import numpy as np
from scipy.special import gammaln, logsumexp

__all__ = [
    "SAMPLE_COUNTS",
    "AlleleClasses",
    "allele_classes",
    "hwe_exact_p",
    "king_block",
    "king_block_pairs",
    "king_pairs",
    "pca_scores",
    "sample_block_counts",
]

_TRANSITIONS = frozenset({("A", "G"), ("G", "A"), ("C", "T"), ("T", "C")})

#: Per-sample counters of :func:`sample_block_counts`, as bcftools stats names
#: them where it has them (PSC line).
SAMPLE_COUNTS = (
    "num_missing",  # nMissing: a call with no allele (bcftools: any allele missing)
    "num_hom_ref",  # nRefHom: diploid 0/0
    "num_hom_alt_snp",  # nNonRefHom: a/a, a > 0, at a SNP allele
    "num_het_snp",  # nHets: a/b, a != b, either a SNP allele
    "num_transitions",  # nTransitions: non-ref diploid call, first ALT a transition
    "num_transversions",  # nTransversions
    "num_indels",  # nIndels: non-ref diploid call with an indel allele
    "num_hap_ref",  # nHapRef
    "num_hap_alt",  # nHapAlt
    "num_het",  # every diploid a/b, a != b
    "num_hom_alt",  # every diploid a/a, a > 0
    "num_called",  # calls with no missing allele (diploid or haploid)
)


@dataclasses.dataclass(frozen=True)
class AlleleClasses:
    """What each allele of a block of variants is (shape variants × alleles)."""

    snp: np.ndarray
    transition: np.ndarray
    indel: np.ndarray


def _allele_class(reference: str, alternate: str) -> tuple[bool, bool, bool]:
    """(SNP, transition, indel) of one ALT against REF.

    A SNP is an ALT of REF's length differing at one base (bcftools trims the
    common bases the same way); a symbolic or ``*`` allele is neither.
    """
    if not alternate or alternate[0] in "<*" or "[" in alternate or "]" in alternate:
        return False, False, False
    if len(alternate) != len(reference):
        return False, False, True
    changes = [
        (ref, alt)
        for ref, alt in zip(reference.upper(), alternate.upper(), strict=True)
        if ref != alt
    ]
    if len(changes) != 1:
        return False, False, False
    return True, changes[0] in _TRANSITIONS, False


def allele_classes(alleles: np.ndarray) -> AlleleClasses:
    """SNP / transition / indel flags of every allele of ``variant_allele`` rows.

    REF (column 0) and the empty strings that pad a row are none of them.
    """
    shape = alleles.shape
    snp = np.zeros(shape, dtype=bool)
    transition = np.zeros(shape, dtype=bool)
    indel = np.zeros(shape, dtype=bool)
    cache: dict[tuple[str, str], tuple[bool, bool, bool]] = {}
    for row in range(shape[0]):
        reference = str(alleles[row, 0])
        for column in range(1, shape[1]):
            alternate = str(alleles[row, column])
            if not alternate:
                break
            key = (reference, alternate)
            found = cache.get(key)
            if found is None:
                found = cache[key] = _allele_class(reference, alternate)
            snp[row, column], transition[row, column], indel[row, column] = found
    return AlleleClasses(snp, transition, indel)


# Up to this many alleles, _take compares instead of gathering: a gather needs an
# 8-byte index per call, a comparison per allele one byte.
_COMPARED_ALLELES = 4


def _take(per_allele: np.ndarray, allele: np.ndarray) -> np.ndarray:
    """``per_allele[v, allele[v, s]]`` for a (variants, samples) index array."""
    num_alleles = per_allele.shape[1]
    if num_alleles > _COMPARED_ALLELES:
        return np.take_along_axis(per_allele, allele.astype(np.intp), axis=1)
    result = np.zeros(allele.shape, dtype=per_allele.dtype)
    for index in range(num_alleles):
        value = per_allele[:, index]
        if value.any():
            result |= (allele == index) & value[:, None]
    return result


def sample_block_counts(
    genotypes: np.ndarray, classes: AlleleClasses
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-sample counters of one block, and each variant's non-ref diploid calls.

    Parameters
    ----------
    genotypes
        ``call_genotype`` rows × samples × ploidy (1 or 2).
    classes
        :func:`allele_classes` of the same rows.

    Returns
    -------
    dict, numpy.ndarray
        :data:`SAMPLE_COUNTS` summed over the block's variants (int64, one per
        sample), and the boolean (variants × samples) matrix of diploid calls
        that are not 0/0, from which the caller finds singletons (bcftools: a
        site where exactly one sample has such a call).
    """
    first = genotypes[:, :, 0]
    second = genotypes[:, :, 1] if genotypes.shape[2] > 1 else np.full_like(first, -2)
    # A call with one allele (``1``, or ``1/.`` as 1000 Genomes writes males' X)
    # is haploid, as the store's counts and bcftools +fill-tags count it.
    diploid = (first >= 0) & (second >= 0)
    haploid = (first >= 0) != (second >= 0)
    missing = (first < 0) & (second < 0)
    called_allele = np.maximum(first, second)
    low = np.minimum(first, second)
    high = np.maximum(first, second)
    hom_ref = diploid & (high == 0)
    non_ref = diploid & (high > 0)
    het = diploid & (first != second)
    hom_alt = diploid & (first == second) & (first > 0)
    # bcftools' ial: the first ALT of the call; jal: the second one of an a/b call.
    first_alt = np.where(low > 0, low, np.maximum(high, 0))
    second_alt = np.where(low > 0, high, 0)
    snp_first = _take(classes.snp, first_alt)
    snp_any = snp_first | _take(classes.snp, second_alt)
    indel_any = _take(classes.indel, first_alt) | _take(classes.indel, second_alt)
    transition = _take(classes.transition, first_alt)
    counts = {
        "num_missing": missing.sum(axis=0),
        "num_hom_ref": hom_ref.sum(axis=0),
        "num_hom_alt_snp": (hom_alt & snp_any).sum(axis=0),
        "num_het_snp": (het & snp_any).sum(axis=0),
        "num_transitions": (non_ref & snp_first & transition).sum(axis=0),
        "num_transversions": (non_ref & snp_first & ~transition).sum(axis=0),
        "num_indels": (non_ref & indel_any).sum(axis=0),
        "num_hap_ref": (haploid & (called_allele == 0)).sum(axis=0),
        "num_hap_alt": (haploid & (called_allele > 0)).sum(axis=0),
        "num_het": het.sum(axis=0),
        "num_hom_alt": hom_alt.sum(axis=0),
        "num_called": (~missing).sum(axis=0),
    }
    return {name: value.astype(np.int64) for name, value in counts.items()}, non_ref


def expected_homozygosity(allele_frequencies: np.ndarray) -> np.ndarray:
    """Chance a call is homozygous under HWE: ``sum_i p_i**2`` per variant."""
    return (allele_frequencies**2).sum(axis=1)


def hwe_exact_p(
    num_het: np.ndarray, num_hom_first: np.ndarray, num_hom_second: np.ndarray
) -> np.ndarray:
    """Hardy-Weinberg exact test p-values (Wigginton et al. 2005), as plink2 --hardy.

    The probability, given the allele counts, of a heterozygote count at most as
    likely as the one observed. Terms beyond 40 standard deviations of the
    heterozygote count are below float64's range and left out, so that a batch
    costs a window of the distribution, not all of it. NaN where nobody is called.
    """
    het = np.asarray(num_het, dtype=np.int64)
    hom1 = np.asarray(num_hom_first, dtype=np.int64)
    hom2 = np.asarray(num_hom_second, dtype=np.int64)
    total = het + hom1 + hom2
    rare = np.minimum(2 * hom1 + het, 2 * hom2 + het)
    result = np.full(len(het), np.nan)
    called = total > 0
    result[called & (rare == 0)] = 1.0
    todo = np.flatnonzero(called & (rare > 0))
    if not len(todo):
        return result
    n = total[todo].astype(np.float64)
    minor = rare[todo].astype(np.float64)
    observed = het[todo].astype(np.float64)
    frequency = minor / (2 * n)
    expected = 2 * n * frequency * (1 - frequency)
    spread = np.sqrt(np.maximum(expected * (1 - frequency * (1 - frequency)), 1.0))
    low = np.maximum(expected - 40 * spread - 2, 0)
    high = np.minimum(expected + 40 * spread + 2, minor)
    # Parity of the heterozygote count is that of the minor allele count.
    low = low - ((low - minor) % 2)
    low = np.maximum(low, minor % 2)
    steps = ((high - low) // 2).astype(np.int64) + 1
    constant = (
        gammaln(n + 1)
        + gammaln(minor + 1)
        + gammaln(2 * n - minor + 1)
        - gammaln(2 * n + 1)
    )

    def log_probability(h: np.ndarray, index: np.ndarray) -> np.ndarray:
        hom_minor = (minor[index, None] - h) / 2
        hom_major = n[index, None] - h - hom_minor
        return (
            constant[index, None]
            - gammaln(hom_minor + 1)
            - gammaln(h + 1)
            - gammaln(hom_major + 1)
            + h * np.log(2.0)
        )

    # Batches of similar width, each at most ~2 million terms.
    order = np.argsort(steps, kind="stable")
    start = 0
    while start < len(order):
        width = int(steps[order[start]])
        stop = start + 1
        while stop < len(order):
            wider = int(steps[order[stop]])
            if (stop + 1 - start) * wider > 2_000_000 or wider > 2 * width + 16:
                break
            stop += 1
        index = order[start:stop]
        width = int(steps[index].max())
        grid = low[index, None] + 2 * np.arange(width)[None, :]
        inside = grid <= high[index, None]
        terms = log_probability(np.where(inside, grid, low[index, None]), index)
        terms[~inside] = -np.inf
        at_observed = log_probability(observed[index, None], index)[:, 0]
        # plink2's tolerance for ties: a term within a factor 1 + 1e-7 counts.
        kept = np.where(terms <= at_observed[:, None] + 1e-7, terms, -np.inf)
        result[todo[index]] = np.minimum(np.exp(logsumexp(kept, axis=1)), 1.0)
        start = stop
    return result


def _blocks(count: int, size: int) -> Iterator[slice]:
    for start in range(0, count, size):
        yield slice(start, min(start + size, count))


def king_pairs(
    dosages: np.ndarray,
    *,
    min_kinship: float,
    block: int = 1024,
    on_block: Callable[[np.ndarray], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """KING-robust kinship of every pair of samples at or above ``min_kinship``.

    ``dosages`` is variants × samples (ALT copies 0, 1, 2; -1 missing), biallelic.
    The estimator is plink2 --make-king's (Manichaikul et al. 2010, between
    families): over the variants both samples have called (one matrix product
    per block pair when nobody has a missing call, five otherwise),
    ``(HETHET - 2 IBS0) / (2 min(het_i, het_j)) + 1/2 - (het_i + het_j) /
    (4 min(het_i, het_j))``. Computed in blocks of samples by matrix products
    (:func:`king_block`, one per pair of blocks), so memory is a few blocks ×
    variants.

    Returns
    -------
    first, second, kinship, num_variants
        Pairs (first < second), their kinship and the variants both called.
        ``on_block`` receives each block's kinships (pairs i < j only), e.g. to
        keep a histogram of all pairs.
    """
    num_samples = dosages.shape[1]
    complete = bool((dosages >= 0).all())
    found = [
        king_block(
            dosages[:, rows],
            dosages[:, columns],
            rows.start,
            columns.start,
            min_kinship=min_kinship,
            complete=complete,
            on_block=on_block,
        )
        for rows, columns in king_block_pairs(num_samples, block)
    ]
    if not found:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0), empty
    return tuple(np.concatenate(parts) for parts in zip(*found, strict=True))  # type: ignore[return-value]


def king_block_pairs(num_samples: int, block: int) -> list[tuple[slice, slice]]:
    """The pairs of sample blocks :func:`king_pairs` computes, in its order:
    each block with itself and every later one."""
    blocks = list(_blocks(num_samples, block))
    return [
        (rows, columns)
        for rows in blocks
        for columns in blocks
        if columns.stop > rows.start
    ]


def king_block(
    rows_dosages: np.ndarray,
    columns_dosages: np.ndarray,
    rows_start: int,
    columns_start: int,
    *,
    min_kinship: float,
    complete: bool,
    on_block: Callable[[np.ndarray], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`king_pairs` between two blocks of samples (the dosages of samples
    ``rows_start...`` and ``columns_start...``): the pairs i < j at or above
    ``min_kinship``, their kinship and the variants both called.

    ``complete`` says that nobody in the whole matrix has a missing call (the
    one-product shortcut); every block of a matrix is computed the same way.
    """

    def indicators(part: np.ndarray) -> tuple[np.ndarray, ...]:
        columns = part.T
        by_value = [(columns == value).astype(np.float32) for value in (0, 1, 2)]
        return (*by_value, (columns >= 0).astype(np.float32))

    def complete_terms(part: np.ndarray) -> tuple[np.ndarray, ...]:
        columns = part.T.astype(np.float32)
        return columns, (part == 1).sum(axis=0), (columns**2).sum(axis=1)

    if complete:
        # Nobody missing: the pair's counts are each sample's own, and
        # HETHET - 2 IBS0 = (het_i + het_j - sum (d_i - d_j)**2) / 2 (the
        # squared difference is 1 for 0/1 and 1/2, 0 for 1/1, 4 for 0/2): one
        # product of dosages instead of three of indicators, exact in float32
        # (integers below 2**24).
        dosage_i, het_count_i, square_i = complete_terms(rows_dosages)
        dosage_j, het_count_j, square_j = complete_terms(columns_dosages)
        gram = dosage_i @ dosage_j.T
        het_first = np.broadcast_to(het_count_i[:, None].astype(np.float32), gram.shape)
        het_second = np.broadcast_to(
            het_count_j[None, :].astype(np.float32), gram.shape
        )
        difference = square_i[:, None] + square_j[None, :] - 2 * gram
        shared = (het_first + het_second - difference) / 2
        both = np.full(gram.shape, rows_dosages.shape[0], dtype=np.float32)
    else:
        hom_ref_i, het_i, hom_alt_i, called_i = indicators(rows_dosages)
        hom_ref_j, het_j, hom_alt_j, called_j = indicators(columns_dosages)
        het_het = het_i @ het_j.T
        ibs0 = hom_ref_i @ hom_alt_j.T + hom_alt_i @ hom_ref_j.T
        shared = het_het - 2 * ibs0
        het_first = het_i @ called_j.T
        het_second = called_i @ het_j.T
        both = called_i @ called_j.T
    smaller = np.minimum(het_first, het_second)
    with np.errstate(divide="ignore", invalid="ignore"):
        kinship = (
            shared / (2 * smaller) + 0.5 - (het_first + het_second) / (4 * smaller)
        )
    first = np.arange(rows_start, rows_start + rows_dosages.shape[1])[:, None]
    second = np.arange(columns_start, columns_start + columns_dosages.shape[1])[None, :]
    upper = (first < second) & np.isfinite(kinship)
    if on_block is not None:
        on_block(kinship[upper])
    keep = upper & (kinship >= min_kinship)
    i, j = np.nonzero(keep)
    return (
        i + rows_start,
        j + columns_start,
        kinship[i, j].astype(np.float64),
        both[i, j].astype(np.int64),
    )


# Largest standardised samples × variants matrix pca_scores keeps (float64).
_STANDARDISED_BYTES = 256 * 2**20


def _standardised(
    dosages: np.ndarray, mean: np.ndarray, scale: np.ndarray
) -> np.ndarray:
    """Samples × variants, ``(d - 2p) / sqrt(2p(1-p))``, missing as 0.

    In place in one float64 matrix: the kept matrix of :func:`pca_scores` may
    be 256 MB, and two temporaries of its size tripled the client's peak.
    """
    values = dosages.T.astype(np.float64)
    values -= mean
    values /= scale
    values[dosages.T < 0] = 0.0
    return values


def pca_scores(
    dosages: np.ndarray,
    num_components: int,
    *,
    fit: np.ndarray | None = None,
    seed: int = 0,
    block: int = 1024,
    iterations: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """Principal components of samples from common-variant dosages.

    Randomised SVD (Halko et al. 2011) of the standardised samples × variants
    matrix of the ``fit`` samples (default all), built a block of samples at a
    time: memory is the dosages plus samples × (components + 10) numbers, never
    a samples × samples matrix. Every sample is then projected on the
    components, so that duplicates and relatives (left out of ``fit``) do not
    make components of their own.

    Returns
    -------
    scores, eigenvalues
        Samples × components (projections on the variant loadings), and the
        eigenvalues of the fit samples' relationship matrix (variance / variants).
    """
    num_variants, num_samples = dosages.shape
    chosen = np.flatnonzero(np.ones(num_samples, bool) if fit is None else fit)
    components = max(1, min(num_components, len(chosen) - 1, num_variants))
    part_dosages = dosages[:, chosen]
    called = part_dosages >= 0
    counts = np.where(called, part_dosages, 0).sum(axis=1, dtype=np.float64)
    frequency = counts / np.maximum(2 * called.sum(axis=1), 1)
    mean = 2 * frequency
    scale = np.sqrt(np.maximum(2 * frequency * (1 - frequency), 1e-12))
    width = min(components + 10, len(chosen), num_variants)
    rng = np.random.default_rng(seed)

    # The fit samples' standardised matrix, kept when it is small enough: the
    # iterations then multiply by it instead of rebuilding it block by block.
    kept = (
        _standardised(part_dosages, mean, scale)
        if len(chosen) * num_variants * 8 <= _STANDARDISED_BYTES
        else None
    )

    def times(source: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        # (standardised source).T @ matrix: samples × k
        if kept is not None and source is part_dosages:
            return kept @ matrix
        count = source.shape[1]
        out = np.empty((count, matrix.shape[1]))
        for part in _blocks(count, block):
            out[part] = _standardised(source[:, part], mean, scale) @ matrix
        return out

    def transposed_times(matrix: np.ndarray) -> np.ndarray:  # X_fit.T @ matrix
        if kept is not None:
            return kept.T @ matrix
        out = np.zeros((num_variants, matrix.shape[1]))
        for part in _blocks(len(chosen), block):
            out += _standardised(part_dosages[:, part], mean, scale).T @ matrix[part]
        return out

    basis, _ = np.linalg.qr(
        times(part_dosages, rng.standard_normal((num_variants, width)))
    )
    for _ in range(iterations):
        basis, _ = np.linalg.qr(transposed_times(basis))
        basis, _ = np.linalg.qr(times(part_dosages, basis))
    small = transposed_times(basis).T  # width × variants
    _left, singular, right = np.linalg.svd(small, full_matrices=False)
    loadings = right[:components].T
    return times(dosages, loadings), singular[:components] ** 2 / num_variants
