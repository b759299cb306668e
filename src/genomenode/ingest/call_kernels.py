"""The compiled (numba) kernels of :mod:`.vcf_text`: VCF sample columns → arrays.

Imported on first use only (``vcf_text._kernels``): numba and its compiled code
take ~160 MB of a process's memory. The grammar and the values are
:mod:`.vcf_text`'s module docstring.
"""

from __future__ import annotations

import numba
import numpy as np

from .vcf_text import GT_KEY as _GT
from .vcf_text import MAX_PLOIDY as _MAX_PLOIDY

__all__ = ["parse_samples", "store_genotypes"]

_INT32_MISSING = -(2**31)
_INT32_END = -(2**31) + 1
_TAB = 9
_COLON = 58
_COMMA = 44
_DOT = 46
_MINUS = 45
_SLASH = 47
_PIPE = 124
_ZERO = 48
_NINE = 57


@numba.njit(cache=True, nogil=True)
def _pad(genotypes: np.ndarray, sample: int, alleles: int, ploidy: int) -> int:
    """Pad ``sample``'s alleles with -2 to ``ploidy``, the most of a sample
    before it; or, if it has more, those samples to its number. The new ploidy.

    Padding every sample to ``_MAX_PLOIDY`` cost a tenth of the kernel."""
    if alleles > ploidy:
        for earlier in range(sample):
            for rest in range(ploidy, alleles):
                genotypes[earlier, rest] = -2
        return alleles
    for rest in range(alleles, ploidy):
        genotypes[sample, rest] = -2
    return ploidy


@numba.njit(cache=True, nogil=True)
def parse_samples(  # one pass over the text, kept whole
    line: np.ndarray,
    start: int,
    keys: np.ndarray,
    genotypes: np.ndarray,
    phased: np.ndarray,
    integers: np.ndarray,
    counts: np.ndarray,
) -> tuple[int, int, int, int]:
    """Parse the sample columns of ``line`` from ``start``.

    Returns ``(problem, ploidy, smallest, largest)``: ``problem`` is 0, or 1 +
    the offset in ``line`` where the text left the grammar (the module
    docstring); ``ploidy`` is the largest number of alleles of a sample;
    ``smallest`` and ``largest`` are those of the genotypes' ``array()``
    (alleles, padding and phases).
    """
    num_samples = genotypes.shape[0]
    num_keys = keys.shape[0]
    width = integers.shape[2]
    end = line.shape[0]
    for field in range(integers.shape[0]):
        counts[field] = 1
    # The most alleles of a sample so far (0 before the first): every sample's
    # alleles are padded with -2 to it (:func:`_pad`).
    ploidy = 0
    fewest = _MAX_PLOIDY  # alleles of the sample with fewest
    smallest = 1 << 20  # of the alleles
    largest = -(1 << 20)
    phases = 0  # bit 0: a phase 0 seen; bit 1: a phase 1 seen
    position = start
    for sample in range(num_samples):
        if position >= end:
            return position + 1, 0, 0, 0
        key = 0
        while True:
            if key >= num_keys:
                return position + 1, 0, 0, 0
            target = keys[key]
            if target == _GT:
                alleles = 0
                phase = 1
                first = line[position]
                if (
                    position + 3 <= end
                    and _ZERO <= first <= _NINE
                    and (line[position + 1] == _SLASH or line[position + 1] == _PIPE)
                    and _ZERO <= line[position + 2] <= _NINE
                    and (
                        position + 3 == end
                        or line[position + 3] == _COLON
                        or line[position + 3] == _TAB
                    )
                ):
                    # The common call: two one-digit alleles ("0|1", "1/1").
                    first_allele = first - _ZERO
                    second_allele = line[position + 2] - _ZERO
                    genotypes[sample, 0] = first_allele
                    genotypes[sample, 1] = second_allele
                    smallest = min(smallest, first_allele, second_allele)
                    largest = max(largest, first_allele, second_allele)
                    phase = 1 if line[position + 1] == _PIPE else 0
                    alleles = 2
                    position += 3
                general = alleles == 0  # not the common call: the whole grammar
                while general:
                    if alleles == _MAX_PLOIDY or position >= end:
                        return position + 1, 0, 0, 0
                    character = line[position]
                    if character == _DOT:
                        allele = -1
                        position += 1
                    elif _ZERO <= character <= _NINE:
                        # Digits read in place: a helper returning (value,
                        # count, end) made the kernel ~20 % slower, inlined or not.
                        allele = 0
                        digits = 0
                        while position < end and _ZERO <= line[position] <= _NINE:
                            allele = allele * 10 + (line[position] - _ZERO)
                            position += 1
                            digits += 1
                        if digits > 4:
                            return position + 1, 0, 0, 0
                    else:
                        return position + 1, 0, 0, 0
                    genotypes[sample, alleles] = allele
                    smallest = min(smallest, allele)
                    largest = max(largest, allele)
                    alleles += 1
                    if position < end and (
                        line[position] == _SLASH or line[position] == _PIPE
                    ):
                        if alleles == 1:
                            phase = 1 if line[position] == _PIPE else 0
                        position += 1
                        continue
                    break
                # A sample with as many alleles as the most so far changes
                # neither padding nor `fewest`: rare past the first sample.
                if alleles != ploidy:
                    ploidy = _pad(genotypes, sample, alleles, ploidy)
                    fewest = min(fewest, alleles)
                phased[sample] = phase
                phases |= 1 << phase
            elif target >= 0:
                values = 0
                while True:
                    if values == width or position >= end:
                        return position + 1, 0, 0, 0
                    character = line[position]
                    negative = character == _MINUS
                    if negative:
                        position += 1
                    if character == _DOT:
                        value = _INT32_MISSING
                        position += 1
                    else:
                        number = 0
                        digits = 0
                        while position < end:
                            character = line[position]
                            if character < _ZERO or character > _NINE:
                                break
                            number = number * 10 + (character - _ZERO)
                            position += 1
                            digits += 1
                        if digits == 0 or digits > 9:
                            return position + 1, 0, 0, 0
                        value = -number if negative else number
                    integers[target, sample, values] = value
                    values += 1
                    if position < end:
                        character = line[position]
                        if character == _COMMA:
                            position += 1
                            continue
                        if character != _COLON and character != _TAB:
                            return position + 1, 0, 0, 0
                    break
                # Stored only when it grows: a store every sample cost 6 %.
                if values > 1 and values > counts[target]:
                    counts[target] = values
                for rest in range(values, width):
                    integers[target, sample, rest] = _INT32_END
            else:
                while position < end and line[position] != _COLON:
                    if line[position] == _TAB:
                        break
                    position += 1
            if position >= end or line[position] == _TAB:
                break
            if line[position] != _COLON:
                return position + 1, 0, 0, 0
            position += 1
            key += 1
        # The keys this sample leaves out: missing, as htslib fills them.
        for absent in range(key + 1, num_keys):
            target = keys[absent]
            if target == _GT:
                genotypes[sample, 0] = -1
                for rest in range(1, _MAX_PLOIDY):
                    genotypes[sample, rest] = -2
                phased[sample] = 1
                fewest = 1
                ploidy = max(ploidy, 1)
                smallest = min(smallest, -1)
                largest = max(largest, -1)
                phases |= 2
            elif target >= 0:
                integers[target, sample, 0] = _INT32_MISSING
                for rest in range(1, width):
                    integers[target, sample, rest] = _INT32_END
        if position < end:
            position += 1  # the tab before the next sample
            if position >= end:
                return position + 1, 0, 0, 0  # an empty last column
        elif sample != num_samples - 1:
            return position + 1, 0, 0, 0  # fewer samples than the header
    if position < end:
        return position + 1, 0, 0, 0  # more samples than the header
    ploidy = max(ploidy, 1)  # a record without GT: as before any sample
    if ploidy == 1:
        # htslib has no second allele to read a phase from.
        phased[:] = 0
        phases = 1
    if phases & 1:
        smallest = min(smallest, 0)
        largest = max(largest, 0)
    if phases & 2:
        smallest = min(smallest, 1)
        largest = max(largest, 1)
    if fewest < ploidy:
        smallest = min(smallest, -2)
    return 0, ploidy, smallest, largest


@numba.njit(cache=True, nogil=True)
def store_genotypes(
    alleles: np.ndarray,
    phased: np.ndarray,
    target: np.ndarray,
    target_phased: np.ndarray,
) -> None:
    """Copy ``alleles`` (samples × ploidy) into ``target`` (samples × its ploidy,
    ``-2`` past ours) and the phases into ``target_phased`` (bool)."""
    ploidy = alleles.shape[1]
    width = target.shape[1]
    if ploidy == 2 and width == 2:
        # Diploid into diploid, loops of constant bounds: three times faster.
        for sample in range(alleles.shape[0]):
            target[sample, 0] = alleles[sample, 0]
            target[sample, 1] = alleles[sample, 1]
    else:
        for sample in range(alleles.shape[0]):
            for allele in range(ploidy):
                target[sample, allele] = alleles[sample, allele]
            for allele in range(ploidy, width):
                target[sample, allele] = -2
    for sample in range(alleles.shape[0]):
        target_phased[sample] = phased[sample] != 0
