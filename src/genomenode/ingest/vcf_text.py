"""A partition's VCF records as text, their sample columns parsed by a compiled kernel.

The direct writer (:mod:`.calls`) used to take every record from cyvcf2: htslib
parses each sample's FORMAT values into its own buffers, cyvcf2 copies them into
numpy arrays, and the writer copies them again. At 20,000 samples that parse
alone cost about as much CPU as bcftools' whole VCF → BCF conversion
(docs/benchmarks.md). Here a partition reads its records as text — BGZF blocks
from where the index puts its first record (:mod:`..store.bgzf`,
:mod:`..store.vcf_index`) — and :func:`_parse_samples` (numba) fills arrays shaped
and valued as cyvcf2 gives them, so the writer's code after it is unchanged:

- ``genotype.array()``: ``int16`` of ``samples × (ploidy + 1)``, the alleles
  (``-1`` missing, ``-2`` past a sample's last allele) then the phase: 1 when the
  separator before the second allele is ``|`` or, in a record of several
  alleles a sample, the sample has one; 0 throughout a record of one allele a
  sample (where cyvcf2 reads the last sample's phase from past its buffer);
- ``format(name)`` of an Integer field: ``int32`` of ``samples × values``, the
  record's largest count of values, with htslib's markers (``INT32_MIN`` missing,
  ``INT32_MIN + 1`` past a sample's last value; an absent field is one missing
  value);
- ``None`` for a field the record's FORMAT does not list.

The kernel takes the grammar real files use: GT of single separators and
alleles of up to four digits or ``.``, Integer values of up to nine digits (an
optional ``-``) or ``.``. Anything else — a Float field, ``+5``, an empty value,
more values than the array holds, a sample count that is not the header's, a
FORMAT key twice — raises :class:`TextUnsupported`, and the partition is read
with cyvcf2 instead (tests/ingest/test_vcf_text.py compares both on every
record of the test files and on generated ones).
"""

from __future__ import annotations

import functools
import os
import pathlib
from collections.abc import Iterator, Sequence
from typing import Any

import numba
import numpy as np

from ..errors import StoreError
from ..store import bgzf
from ..store.vcf_index import VariantIndex, parse_index

__all__ = ["TextRecord", "TextRecords", "TextUnsupported", "index_of", "lines"]

_GT = -1  # a FORMAT key's target: the genotypes
_SKIP = -2  # a key whose values are not kept
_INT32_MISSING = -(2**31)
_INT32_END = -(2**31) + 1
# Alleles a sample may have; more raises TextUnsupported (and cyvcf2 reads it).
_MAX_PLOIDY = 8
# Bytes asked of the file at once.
_READ_SIZE = 4 << 20

_TAB = 9
_COLON = 58
_COMMA = 44
_DOT = 46
_MINUS = 45
_SLASH = 47
_PIPE = 124
_ZERO = 48
_NINE = 57


class TextUnsupported(Exception):
    """The text has something the kernel does not parse: read it with cyvcf2."""


@numba.njit(cache=True, nogil=True)
def _ends_value(line: np.ndarray, position: int) -> bool:
    if position >= line.shape[0]:
        return True
    character = line[position]
    return character in (_COMMA, _COLON, _TAB)


@numba.njit(cache=True, nogil=True)
def _parse_samples(  # one pass over the text, kept whole
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
    ploidy = 1
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
                ploidy = max(ploidy, alleles)
                fewest = min(fewest, alleles)
                for rest in range(alleles, _MAX_PLOIDY):
                    genotypes[sample, rest] = -2
                phased[sample] = phase
                phases |= 1 << phase
            elif target >= 0:
                values = 0
                while True:
                    if values == width or position >= end:
                        return position + 1, 0, 0, 0
                    if line[position] == _DOT and _ends_value(line, position + 1):
                        value = _INT32_MISSING
                        position += 1
                    else:
                        negative = line[position] == _MINUS
                        if negative:
                            position += 1
                        number = 0
                        digits = 0
                        while position < end and _ZERO <= line[position] <= _NINE:
                            number = number * 10 + (line[position] - _ZERO)
                            position += 1
                            digits += 1
                        if digits == 0 or digits > 9 or not _ends_value(line, position):
                            return position + 1, 0, 0, 0
                        value = -number if negative else number
                    integers[target, sample, values] = value
                    values += 1
                    if position < end and line[position] == _COMMA:
                        position += 1
                        continue
                    break
                counts[target] = max(counts[target], values)
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


def index_of(vcf: pathlib.Path) -> pathlib.Path | None:
    """The ``.tbi`` or ``.csi`` index beside ``vcf``, if any."""
    for suffix in (".tbi", ".csi"):
        index = vcf.with_name(vcf.name + suffix)
        if index.exists():
            return index
    return None


@functools.lru_cache(maxsize=8)
def _index(path: pathlib.Path, mtime_ns: int) -> VariantIndex:
    return parse_index(path.read_bytes(), "tbi" if path.suffix == ".tbi" else "csi")


def first_offset(vcf: pathlib.Path, contig: str, position: int) -> int:
    """The virtual offset to read from for the records of ``contig`` at 1-based
    ``position`` or later (earlier records may come first) in the bgzipped VCF
    text ``vcf`` (TextUnsupported for a BCF file)."""
    with vcf.open("rb") as file:
        head = file.read(bgzf.MAX_BLOCK_SIZE)
    try:
        text = bgzf.decompress_block(head).startswith(b"##")
    except StoreError:
        text = False
    if not text:
        raise TextUnsupported(f"{vcf} is not bgzipped VCF text")
    index_path = index_of(vcf)
    if index_path is None:
        raise TextUnsupported(f"no index beside {vcf}")
    try:
        index = _index(index_path, index_path.stat().st_mtime_ns)
    except StoreError as error:
        raise TextUnsupported(f"{index_path}: {error}") from None
    offset = index.first_offset(contig, position - 1)
    if offset is None:
        raise TextUnsupported(f"the index of {vcf} has no records of {contig}")
    return offset


def lines(vcf: pathlib.Path, virtual_offset: int) -> Iterator[bytes]:
    """The lines of a bgzipped file from ``virtual_offset`` on, without their
    newlines (CRCs and lengths of the blocks checked)."""
    block_offset, within = bgzf.split_virtual_offset(virtual_offset)
    with vcf.open("rb") as file:
        descriptor = file.fileno()

        def read(offset: int, length: int) -> bytes:
            return os.pread(descriptor, length, offset)

        size = os.fstat(descriptor).st_size
        pending: list[bytes] = []
        skip = within
        for block in bgzf.read_blocks(read, size, block_offset, read_size=_READ_SIZE):
            data = block.data
            begin = skip
            skip = 0
            while True:
                newline = data.find(b"\n", begin)
                if newline < 0:
                    if begin < len(data):
                        pending.append(data[begin:])
                    break
                if pending:
                    pending.append(data[begin:newline])
                    yield b"".join(pending)
                    pending = []
                else:
                    yield data[begin:newline]
                begin = newline + 1
        if pending:
            yield b"".join(pending)


def locus(line: bytes) -> tuple[bytes, int]:
    """CHROM and POS of a record line."""
    first = line.find(b"\t")
    second = line.find(b"\t", first + 1)
    if first < 0 or second < 0:
        raise TextUnsupported("a record line with fewer than three columns")
    try:
        return line[:first], int(line[first + 1 : second])
    except ValueError:
        raise TextUnsupported("a record line whose POS is not a number") from None


@numba.njit(cache=True, nogil=True)
def _store(
    alleles: np.ndarray,
    phased: np.ndarray,
    target: np.ndarray,
    target_phased: np.ndarray,
) -> None:
    """Copy ``alleles`` (samples × ploidy) into ``target`` (samples × its ploidy,
    ``-2`` past ours) and the phases into ``target_phased`` (bool)."""
    ploidy = alleles.shape[1]
    for sample in range(alleles.shape[0]):
        for allele in range(ploidy):
            target[sample, allele] = alleles[sample, allele]
        for allele in range(ploidy, target.shape[1]):
            target[sample, allele] = -2
        target_phased[sample] = phased[sample] != 0


class _Genotypes:
    """cyvcf2's ``variant.genotype``: ``array()`` of alleles, then the phase;
    and what the writer needs of it without that copy (:meth:`bounds`,
    :meth:`store`)."""

    def __init__(
        self, alleles: np.ndarray, phased: np.ndarray, smallest: int, largest: int
    ) -> None:
        self._alleles = alleles
        self._phased = phased
        self._bounds = (smallest, largest)

    def array(self) -> np.ndarray:
        return np.concatenate([self._alleles, self._phased[:, None]], axis=1)

    @property
    def ploidy(self) -> int:
        return int(self._alleles.shape[1])

    def bounds(self) -> tuple[int, int]:
        """The smallest and largest value of :meth:`array`."""
        return self._bounds

    def store(self, target: np.ndarray, target_phased: np.ndarray) -> None:
        """Write the alleles into ``target`` (samples × ploidy, ``-2`` past ours)
        and the phases into ``target_phased``."""
        _store(self._alleles, self._phased, target, target_phased)


class TextRecord:
    """One record as the direct writer reads a cyvcf2 ``Variant``: ``CHROM``,
    ``POS``, ``FORMAT``, ``genotype`` and ``format(name)``. Its arrays are the
    parser's buffers: valid until the next record is parsed."""

    def __init__(
        self,
        chrom: str,
        position: int,
        format_keys: list[str],
        genotype: _Genotypes | None,
        values: dict[str, np.ndarray],
    ) -> None:
        self.CHROM = chrom
        self.POS = position
        self.FORMAT = format_keys
        self.genotype = genotype
        self._values = values

    def format(self, name: str) -> np.ndarray | None:
        return self._values.get(name)


class TextRecords:
    """Parses record lines of a VCF with ``num_samples`` samples whose FORMAT
    fields are GT and the Integer fields ``integer_fields`` (name, most values a
    sample: the array's width)."""

    def __init__(
        self, num_samples: int, integer_fields: Sequence[tuple[str, int]]
    ) -> None:
        self.fields = {name: number for number, (name, _) in enumerate(integer_fields)}
        width = max([values for _, values in integer_fields], default=1)
        self.genotypes = np.empty((num_samples, _MAX_PLOIDY), dtype=np.int16)
        self.phased = np.empty(num_samples, dtype=np.int16)
        self.integers = np.empty(
            (len(integer_fields), num_samples, width), dtype=np.int32
        )
        self.counts = np.empty(len(integer_fields), dtype=np.int64)
        self._formats: dict[bytes, tuple[list[str], np.ndarray]] = {}

    def _keys(self, format_column: bytes) -> tuple[list[str], np.ndarray]:
        known = self._formats.get(format_column)
        if known is None:
            names = format_column.decode("ascii", "replace").split(":")
            if len(set(names)) != len(names):
                raise TextUnsupported(f"a FORMAT key twice in {names}")
            keys = [
                _GT if name == "GT" else self.fields.get(name, _SKIP) for name in names
            ]
            known = (names, np.array(keys, dtype=np.int64))
            self._formats[format_column] = known
        return known

    def parse(self, line: bytes, chrom: str, position: int) -> TextRecord:
        """The record of ``line`` (its CHROM and POS already read)."""
        begin = 0
        for _ in range(8):
            begin = line.find(b"\t", begin) + 1
            if begin == 0:
                raise TextUnsupported(f"no sample columns at {chrom}:{position}")
        end = line.find(b"\t", begin)
        if end < 0:
            raise TextUnsupported(f"no sample columns at {chrom}:{position}")
        names, keys = self._keys(line[begin:end])
        column = end + 1
        problem, ploidy, smallest, largest = _parse_samples(
            np.frombuffer(line, dtype=np.uint8),
            column,
            keys,
            self.genotypes,
            self.phased,
            self.integers,
            self.counts,
        )
        if problem:
            raise TextUnsupported(
                f"sample text the kernel does not parse at {chrom}:{position}, "
                f"byte {problem - 1} of the line"
            )
        genotype = (
            _Genotypes(self.genotypes[:, :ploidy], self.phased, smallest, largest)
            if "GT" in names
            else None
        )
        values = {
            name: self.integers[number, :, : self.counts[number]]
            for name, number in self.fields.items()
            if name in names
        }
        return TextRecord(chrom, position, names, genotype, values)


def covers(fields: Sequence[Any]) -> bool:
    """Whether the kernel parses these FORMAT fields (bio2zarr ``VcfField``):
    GT and Integer fields."""
    return all(field.name == "GT" or field.vcf_type == "Integer" for field in fields)
