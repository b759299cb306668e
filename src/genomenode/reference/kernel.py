"""Numeric kernel: genotype tables per variant and per cell of samples.

The table of a variant and a cell counts the calls with allele pair (a, b), as
:func:`genomenode.store.genotype_counts.genotype_table` does for the whole cohort
(alleles ``0..A-1``, ``A`` for missing, ``A+1`` for the fill of a haploid call), so
:func:`~genomenode.store.genotype_counts.statistics_from_table` turns it into the
same AC, AN, homozygous, heterozygous and hemizygous counts, call for call. Tables
add up over blocks of samples, so a cohort is read one stored chunk at a time.

Each call is classified by one gather: its two int8 alleles read as one uint16
index a 65,536-entry table of pair codes, and one ``bincount`` over
``(variant, cell, pair)`` codes counts a whole block.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["cell_genotype_table", "naive_cell_genotype_table"]


@functools.lru_cache(maxsize=32)
def _pair_codes(num_alleles: int, ploidy: int) -> np.ndarray:
    """Pair code ``first * W + second`` of every possible call, by its bytes."""
    width = num_alleles + 2
    codes = np.arange(256**ploidy, dtype=f"<u{ploidy}")
    calls = codes.view(np.int8).reshape(-1, ploidy).astype(np.int32)
    # -1 (missing) -> A, -2 (fill) -> A + 1; other negative bytes never occur.
    mapped = np.where(calls >= 0, calls, num_alleles - 1 - calls)
    mapped = np.clip(mapped, 0, width - 1)
    first = mapped[:, 0]
    second = mapped[:, 1] if ploidy == 2 else np.full_like(first, width - 1)
    return (first * width + second).astype(np.int32)


def cell_genotype_table(
    call_genotype: np.ndarray,
    sample_cells: np.ndarray,
    num_cells: int,
    num_alleles: int,
) -> np.ndarray:
    """Counts of allele pairs per variant and cell, ``(variants, cells, W, W)``.

    Parameters
    ----------
    call_genotype
        ``(variants, samples, ploidy)`` int8, ploidy 1 or 2.
    sample_cells
        Cell of each sample, ``0 <= cell < num_cells``, or -1 (not counted).
    num_cells
        Number of cells.
    num_alleles
        Alleles of the store (``variant_allele``'s width), ``W = A + 2``.
    """
    num_variants, num_samples, ploidy = call_genotype.shape
    if ploidy not in (1, 2):
        raise ValueError(f"ploidy {ploidy} is not supported (1 or 2)")
    if len(sample_cells) != num_samples:
        raise ValueError(f"{len(sample_cells)} cells for {num_samples} samples")
    width = num_alleles + 2
    pairs = width * width
    slots = num_cells + 1  # the last one takes the samples counted nowhere
    calls = np.ascontiguousarray(call_genotype).view(f"<u{ploidy}")[..., 0]
    total = num_variants * slots * pairs
    kind = np.int32 if total < 2**31 else np.int64
    # One gather, then two broadcast adds in place: (variant, cell, pair) codes.
    index = np.take(_pair_codes(num_alleles, ploidy).astype(kind, copy=False), calls)
    index += (np.arange(num_variants, dtype=kind) * (slots * pairs))[:, None]
    cells = np.where(sample_cells < 0, num_cells, sample_cells).astype(kind)
    index += (cells * pairs)[None, :]
    table = np.bincount(index.ravel(), minlength=total)
    return table.reshape(num_variants, slots, width, width)[:, :num_cells]


def naive_cell_genotype_table(
    call_genotype: np.ndarray,
    sample_cells: np.ndarray,
    num_cells: int,
    num_alleles: int,
) -> np.ndarray:
    """The obviously correct twin of :func:`cell_genotype_table`, for tests."""
    num_variants, num_samples, ploidy = call_genotype.shape
    width = num_alleles + 2
    table = np.zeros((num_variants, num_cells, width, width), dtype=np.int64)

    def code(value: int) -> int:
        return {-1: num_alleles, -2: num_alleles + 1}.get(value, value)

    for variant in range(num_variants):
        for sample in range(num_samples):
            cell = int(sample_cells[sample])
            if cell < 0:
                continue
            first = code(int(call_genotype[variant, sample, 0]))
            second = (
                code(int(call_genotype[variant, sample, 1]))
                if ploidy == 2
                else num_alleles + 1
            )
            table[variant, cell, first, second] += 1
    return table
