"""Numeric kernel: per-variant genotype tables from a block of ``call_genotype``.

A genotype table counts, for each variant, how many calls have allele pair (a, b),
where alleles ``0..A-1`` are themselves, ``A`` stands for missing (``-1``) and
``A+1`` for the fill value of a shorter ploidy (``-2``, a haploid call in a diploid
array). Every per-variant statistic (AC, AN, homozygous and heterozygous counts) is a
cheap function of that small table, so the genotype matrix is read once.
"""

from __future__ import annotations

import numpy as np

__all__ = ["genotype_table", "naive_genotype_table", "statistics_from_table"]


def genotype_table(call_genotype: np.ndarray, num_alleles: int) -> np.ndarray:
    """Counts of allele pairs per variant, shape ``(variants, A+2, A+2)``.

    ``call_genotype`` has shape ``(variants, samples, ploidy)`` with ploidy 1 or 2.
    A haploid array is treated as diploid with the second allele filled.
    """
    num_variants, _num_samples, ploidy = call_genotype.shape
    width = num_alleles + 2
    if ploidy not in (1, 2):
        raise ValueError(f"ploidy {ploidy} is not supported (1 or 2)")

    def codes(alleles: np.ndarray) -> np.ndarray:
        values = alleles.astype(np.int32)
        # -1 (missing) -> A, -2 (fill) -> A + 1
        return np.where(values >= 0, values, num_alleles - 1 - values)

    first = codes(call_genotype[:, :, 0])
    second = (
        codes(call_genotype[:, :, 1])
        if ploidy == 2
        else np.full_like(first, num_alleles + 1)
    )
    offsets = (np.arange(num_variants, dtype=np.int64) * width * width)[:, None]
    index = offsets + first * width + second
    table = np.bincount(index.ravel(), minlength=num_variants * width * width)
    return table.reshape(num_variants, width, width)


def naive_genotype_table(call_genotype: np.ndarray, num_alleles: int) -> np.ndarray:
    """The obviously correct twin of :func:`genotype_table`, for tests."""
    num_variants, num_samples, ploidy = call_genotype.shape
    width = num_alleles + 2
    table = np.zeros((num_variants, width, width), dtype=np.int64)

    def code(value: int) -> int:
        if value == -1:
            return num_alleles
        if value == -2:
            return num_alleles + 1
        return value

    for variant in range(num_variants):
        for sample in range(num_samples):
            first = code(int(call_genotype[variant, sample, 0]))
            second = (
                code(int(call_genotype[variant, sample, 1]))
                if ploidy == 2
                else num_alleles + 1
            )
            table[variant, first, second] += 1
    return table


def statistics_from_table(table: np.ndarray) -> dict[str, np.ndarray]:
    """Per-variant statistics from genotype tables.

    Returns arrays keyed by their VCF Zarr name:

    ``variant_allele_count`` (variants, alleles)
        Copies of each allele among all calls (bcftools AC, with REF at 0).
    ``variant_allele_total``
        Called alleles (bcftools AN).
    ``variant_allele_count_hom`` / ``_het`` / ``_hemi`` (variants, alleles)
        Copies of each allele in homozygous, heterozygous and haploid calls
        (bcftools +fill-tags AC_Hom, AC_Het, AC_Hemi). A partly missing diploid
        call ``a/.`` counts as haploid, as bcftools counts it.
    ``variant_num_called``
        Samples whose call has at least one called allele (bcftools NS).
    ``variant_num_hom_ref`` / ``variant_num_het`` / ``variant_num_hom_alt``
        Diploid calls that are 0/0; a/b with a != b; a/a with a > 0.
    """
    width = table.shape[1]
    num_alleles = width - 2
    missing, fill = num_alleles, num_alleles + 1
    alleles = np.arange(num_alleles)
    diploid = table[:, :num_alleles, :num_alleles]
    diagonal = diploid[:, alleles, alleles]
    off_diagonal = diploid.copy()
    off_diagonal[:, alleles, alleles] = 0
    # A haploid call sits in (a, fill); (fill, a) is allowed for symmetry. A partly
    # missing diploid call (a, missing) has one called allele: bcftools +fill-tags
    # counts it as haploid (AC_Hemi, NS), and so does genomenode.
    hemi = (
        table[:, :num_alleles, fill]
        + table[:, fill, :num_alleles]
        + table[:, :num_alleles, missing]
        + table[:, missing, :num_alleles]
    )
    het = off_diagonal.sum(axis=2) + off_diagonal.sum(axis=1)
    hom = 2 * diagonal
    allele_count = hom + het + hemi
    return {
        "variant_allele_count": allele_count.astype(np.int32),
        "variant_allele_total": allele_count.sum(axis=1).astype(np.int32),
        "variant_allele_count_hom": hom.astype(np.int32),
        "variant_allele_count_het": het.astype(np.int32),
        "variant_allele_count_hemi": hemi.astype(np.int32),
        "variant_num_called": (diploid.sum(axis=(1, 2)) + hemi.sum(axis=1)).astype(
            np.int32
        ),
        "variant_num_hom_ref": diagonal[:, 0].astype(np.int32),
        "variant_num_het": off_diagonal.sum(axis=(1, 2)).astype(np.int32),
        "variant_num_hom_alt": diagonal[:, 1:].sum(axis=1).astype(np.int32),
    }
