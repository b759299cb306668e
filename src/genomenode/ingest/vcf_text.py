"""A partition's VCF records as text, their sample columns parsed by a compiled kernel.

The direct writer (:mod:`.calls`) used to take every record from cyvcf2: htslib
parses each sample's FORMAT values into its own buffers, cyvcf2 copies them into
numpy arrays, and the writer copies them again. At 20,000 samples that parse
alone cost about as much CPU as bcftools' whole VCF → BCF conversion
(docs/benchmarks.md). Here a partition reads its records as text — BGZF blocks
from where the index puts its first record (:mod:`..store.bgzf`,
:mod:`..store.vcf_index`) — and a compiled kernel
(:func:`.call_kernels.parse_samples`, numba) fills arrays shaped and valued as
cyvcf2 gives them, so the writer's code after it is unchanged:

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

import numpy as np

from ..errors import StoreError
from ..store import bgzf
from ..store.vcf_index import VariantIndex, parse_index

__all__ = [
    "GT_KEY",
    "MAX_PLOIDY",
    "SKIP_KEY",
    "TextRecord",
    "TextRecords",
    "TextUnsupported",
    "covers",
    "first_offset",
    "header_lines",
    "index_of",
    "lines",
    "locus",
    "region_lines",
    "site_columns",
]

#: A FORMAT key's target in the kernel: the genotypes, or a key not kept (an
#: Integer field's target is its number).
GT_KEY = -1
SKIP_KEY = -2
#: Alleles a sample may have; more raises TextUnsupported (and cyvcf2 reads it).
MAX_PLOIDY = 8
# Bytes asked of the file at once.
_READ_SIZE = 4 << 20


@functools.cache
def _kernels() -> Any:
    """The compiled kernels (:mod:`.call_kernels`), imported on first use: numba
    and its compiled code take ~160 MB of a process's memory, which processes
    that never parse VCF text (the ingest's own, a server's) need not pay."""
    from . import call_kernels

    return call_kernels


class TextUnsupported(Exception):
    """The text has something the kernel does not parse: read it with cyvcf2."""


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
    """The lines of a bgzipped file from ``virtual_offset`` on, each with its
    newline (none on a last line without one); CRCs and lengths of the blocks
    checked."""
    block_offset, within = bgzf.split_virtual_offset(virtual_offset)
    with vcf.open("rb") as file:
        descriptor = file.fileno()

        def read(offset: int, length: int) -> bytes:
            return os.pread(descriptor, length, offset)

        size = os.fstat(descriptor).st_size
        blocks = bgzf.read_blocks(read, size, block_offset, read_size=_READ_SIZE)
        for line in bgzf.iter_lines(blocks, within):
            yield line.text


def header_lines(vcf: pathlib.Path) -> list[bytes]:
    """The header lines of the bgzipped VCF text ``vcf``, ``#CHROM`` line last."""
    header = []
    for line in lines(vcf, 0):
        if not line.startswith(b"#"):
            break
        header.append(line)
    if not header or not header[-1].startswith(b"#CHROM"):
        raise TextUnsupported(f"{vcf} has no #CHROM line")
    return header


def region_lines(
    vcf: pathlib.Path, contig: str, first: int, last: int | None
) -> Iterator[bytes]:
    """The record lines of ``contig`` whose POS is ``first`` to ``last`` (``None``:
    to the contig's end), in file order: what a tabix region query returns, less
    the earlier records overlapping it. Read from where the index puts ``first``;
    TextUnsupported when the text there is another contig's (a stale index) or
    the contig's records are out of order (a region query's business then)."""
    name = contig.encode()
    seen, previous = False, 0
    for line in lines(vcf, first_offset(vcf, contig, first)):
        if line.startswith(b"#"):
            continue
        if line.endswith(b"\r\n"):
            raise TextUnsupported(f"CR LF line ends in {vcf}")
        chrom, position = locus(line)
        if chrom != name:
            if seen:
                return  # the contig's records end here
            raise TextUnsupported(f"{chrom!r} where the index of {vcf} puts {contig}")
        if position < previous:
            raise TextUnsupported(f"records of {contig} out of order in {vcf}")
        seen, previous = True, position
        if last is not None and position > last:
            return
        if position >= first:
            yield line


def site_columns(line: bytes) -> bytes:
    """A record line's first eight columns (CHROM to INFO), without its newline."""
    end = 0
    for _ in range(8):
        end = line.find(b"\t", end) + 1
        if end == 0:
            if line.count(b"\t") == 7:  # a sites-only line
                return line.rstrip(b"\n")
            raise TextUnsupported("a record line with fewer than eight columns")
    return line[: end - 1]


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
        _kernels().store_genotypes(self._alleles, self._phased, target, target_phased)


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
        self.genotypes = np.empty((num_samples, MAX_PLOIDY), dtype=np.int16)
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
                GT_KEY if name == "GT" else self.fields.get(name, SKIP_KEY)
                for name in names
            ]
            known = (names, np.array(keys, dtype=np.int64))
            self._formats[format_column] = known
        return known

    def parse(self, line: bytes, chrom: str, position: int) -> TextRecord:
        """The record of ``line``, with or without its newline (its CHROM and
        POS already read)."""
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
        text = np.frombuffer(line, dtype=np.uint8)
        if line.endswith(b"\n"):
            text = text[:-1]  # a view: the line is not copied
        problem, ploidy, smallest, largest = _kernels().parse_samples(
            text,
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
