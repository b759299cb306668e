"""Numeric kernel: per-variant genotype tables from a block of ``call_genotype``.

A genotype table counts, for each variant, how many calls have allele pair (a, b),
where alleles ``0..A-1`` are themselves, ``A`` stands for missing (``-1``) and
``A+1`` for the fill value of a shorter ploidy (``-2``, a haploid call in a diploid
array). Every per-variant statistic (AC, AN, homozygous and heterozygous counts) is a
cheap function of that small table, so the genotype matrix is read once.

Per cell of samples (the reference's populations x sex, QC's populations), the
table of a variant and a cell counts the calls with allele pair (a, b), as
:func:`genomenode.store.genotype_counts.genotype_table` does for the whole cohort
(alleles ``0..A-1``, ``A`` for missing, ``A+1`` for the fill of a haploid call), so
:func:`~genomenode.store.genotype_counts.statistics_from_table` turns it into the
same AC, AN, homozygous, heterozygous and hemizygous counts, call for call. Tables
add up over blocks of samples, so a cohort is read one stored chunk at a time.

Each call is classified by one gather: its two int8 alleles read as one uint16
index a 65,536-entry table of pair codes, and one ``bincount`` over
``(variant, cell, pair)`` codes counts a whole block.

Most blocks hold only REF and first-ALT calls (values -2..1): for those,
:func:`biallelic_cell_table` counts with bits instead, ~4 times faster. Each
allele's "is REF" and "is ALT" flags are packed 64 to a word (a sample's two
alleles side by side), homozygous, heterozygous and hemizygous calls are a few
word operations on them, and a cell's count is the population count of the words
masked by its samples. It fills the table entries the statistics read
(``[0, 0]``, ``[0, 1]`` for every heterozygous call, ``[1, 1]``, ``[0, A]`` and
``[1, A]`` for every hemizygous REF or ALT call), so the statistics are the same,
call for call. A block without a missing or fill value (most of them) is cheaper
still: its ALT flags are the packed bytes themselves, and a cell's homozygous REF
calls are its samples less its heterozygous and homozygous ALT ones.
:func:`block_cell_table` looks at a block once and counts it by the cheapest
kernel that can.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = [
    "biallelic_cell_table",
    "block_cell_table",
    "cell_genotype_table",
    "genotype_table",
    "is_biallelic_block",
    "naive_cell_genotype_table",
    "naive_genotype_table",
    "statistics_from_table",
]


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


# Bytes of the bit kernel's (class, cell, variant, word) temporaries at a time.
_BIT_TEMPORARY_BYTES = 32 * 2**20
_EVEN_BITS = np.uint64(0x5555555555555555)
_ONE = np.uint64(1)


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


def is_biallelic_block(call_genotype: np.ndarray) -> bool:
    """Whether :func:`biallelic_cell_table` can count this block: diploid calls
    of REF, first ALT, missing or fill only."""
    return _bit_kind(call_genotype) is not None


def _bit_kind(call_genotype: np.ndarray) -> bool | None:
    """None: not for the bit kernel; else whether the block holds values 0 and 1
    only (no missing or fill value), which the bit kernel counts more cheaply."""
    if call_genotype.ndim != 3 or call_genotype.shape[2] != 2 or not call_genotype.size:
        return None
    # Values 0 and 1 only (the common block) in one pass: as bytes, -1 and -2 are
    # 255 and 254.
    if _only_ref_and_alt(call_genotype):
        return True
    return False if int(call_genotype.max()) <= 1 else None


def block_cell_table(
    call_genotype: np.ndarray,
    sample_cells: np.ndarray,
    num_cells: int,
    num_alleles: int,
) -> np.ndarray:
    """:func:`cell_genotype_table` of any block, by the bit kernel
    (:func:`biallelic_cell_table`) when it can count it: the block is looked at
    once to choose."""
    clean = _bit_kind(call_genotype)
    if clean is None:
        return cell_genotype_table(call_genotype, sample_cells, num_cells, num_alleles)
    return _bit_cell_table(call_genotype, sample_cells, num_cells, num_alleles, clean)


def _only_ref_and_alt(call_genotype: np.ndarray) -> bool:
    """Whether every value is 0 or 1 (int8 calls read as bytes: one reduction)."""
    if call_genotype.dtype != np.int8:
        return bool(call_genotype.min() >= 0) and bool(call_genotype.max() <= 1)
    return int(np.ascontiguousarray(call_genotype).view(np.uint8).max()) <= 1


def _packed(flags: np.ndarray, words: int) -> np.ndarray:
    """Rows of bools packed into little-endian uint64 words (zero padded)."""
    out = np.zeros((flags.shape[0], words * 8), dtype=np.uint8)
    packed = np.packbits(flags, axis=1, bitorder="little")
    out[:, : packed.shape[1]] = packed
    return out.view("<u8")


@functools.lru_cache(maxsize=16)
def _valid_bits(bits: int, words: int) -> np.ndarray:
    """A row's first ``bits`` bits set, in ``words`` uint64 words (read-only)."""
    valid = _packed(np.ones((1, bits), dtype=bool), words)[0]
    valid.flags.writeable = False
    return valid


def biallelic_cell_table(
    call_genotype: np.ndarray,
    sample_cells: np.ndarray,
    num_cells: int,
    num_alleles: int,
) -> np.ndarray:
    """The table entries of :func:`cell_genotype_table` that the statistics read,
    ``(variants, cells, W, W)``, for a block of which
    :func:`is_biallelic_block` holds; the other entries are 0."""
    flat = np.ascontiguousarray(call_genotype)
    clean = _only_ref_and_alt(flat)
    return _bit_cell_table(flat, sample_cells, num_cells, num_alleles, clean)


def _bit_cell_table(
    call_genotype: np.ndarray,
    sample_cells: np.ndarray,
    num_cells: int,
    num_alleles: int,
    clean: bool,
) -> np.ndarray:
    """:func:`biallelic_cell_table`, told whether the block holds 0 and 1 only."""
    num_variants, num_samples, _ploidy = call_genotype.shape
    if len(sample_cells) != num_samples:
        raise ValueError(f"{len(sample_cells)} cells for {num_samples} samples")
    width = num_alleles + 2
    missing = num_alleles
    bits = 2 * num_samples
    words = (bits + 63) // 64
    flat = np.ascontiguousarray(call_genotype).reshape(num_variants, bits)
    # Bit 2s is sample s's first allele, bit 2s+1 its second: shifting by one
    # lines the second up with the first; results are read on even bits only.
    if clean:
        # No missing or fill value: packbits reads a nonzero byte (1) as ALT,
        # and every other bit of the row is REF; every call is diploid, so a
        # cell's homozygous REF calls are its samples less the other two kinds.
        # A third of the general case's work (two comparisons and packs of the
        # whole block, five kinds of call masked per cell): the reference at
        # 20,000 samples went from 4.9 to ~3 CPU s.
        alt = _packed(flat.view(np.bool_), words)
        ref = ~alt & _valid_bits(bits, words)
        ref_second, alt_second = ref >> _ONE, alt >> _ONE
        classes = np.stack([(ref & alt_second) | (alt & ref_second), alt & alt_second])
    else:
        ref = _packed(flat == 0, words)
        alt = _packed(flat == 1, words)
        ref_second, alt_second = ref >> _ONE, alt >> _ONE
        called = ref | alt
        called_second = called >> _ONE
        classes = np.stack(
            [
                (ref & alt_second) | (alt & ref_second),
                alt & alt_second,
                ref & ref_second,
                (ref & ~called_second) | (ref_second & ~called),
                (alt & ~called_second) | (alt_second & ~called),
            ]
        )
    cell_flags = np.zeros((num_cells, bits), dtype=bool)
    for cell in range(num_cells):
        cell_flags[cell, 0::2] = sample_cells == cell
    masks = _packed(cell_flags, words) & _EVEN_BITS
    counts = np.empty((len(classes), num_cells, num_variants), dtype=np.int64)
    step = max(1, _BIT_TEMPORARY_BYTES // max(1, classes.nbytes))
    for first in range(0, num_cells, step):
        masked = classes[:, None] & masks[None, first : first + step, None, :]
        counts[:, first : first + step] = np.bitwise_count(masked).sum(
            axis=-1, dtype=np.int64
        )
    table = np.zeros((num_variants, num_cells, width, width), dtype=np.int64)
    het, hom_alt = counts[0].T, counts[1].T  # each (variants, cells)
    table[:, :, 0, 1] = het
    table[:, :, 1, 1] = hom_alt
    if clean:
        in_cell = np.bincount(sample_cells[sample_cells >= 0], minlength=num_cells)
        table[:, :, 0, 0] = in_cell[:num_cells][None, :] - het - hom_alt
    else:
        table[:, :, 0, 0] = counts[2].T
        table[:, :, 0, missing] = counts[3].T
        table[:, :, 1, missing] = counts[4].T
    return table


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
