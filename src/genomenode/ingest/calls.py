"""VCF → the per-sample (``call_*``) arrays of VCF Zarr, straight from cyvcf2.

bio2zarr's explode stores every FORMAT value of every sample in its intermediate
columnar format (ICF) and its encode reads them back: at 20,000 samples that round
trip was ~24 of the ~75 CPU s of the conversion (docs/benchmarks.md). Here:

- explode reads the VCF *without its samples* (htslib then skips the sample
  columns) and keeps only the per-variant fields in the ICF;
- each encode partition reads its own records once, samples included, and writes
  ``call_genotype``, ``call_genotype_phased``, ``call_genotype_mask`` and the
  numeric FORMAT arrays from cyvcf2's arrays into chunk buffers; the per-variant
  arrays are bio2zarr's, from the ICF.

The store is bio2zarr's, array for array (tests/ingest/test_calls.py compares the
two). bio2zarr gives an Integer FORMAT field the smallest integer dtype that holds
its values over the *whole file*, and ``call_genotype`` the largest ploidy in it;
an encode partition sees only its own records. So encode starts from a guess (the
smallest dtype, ploidy 2), a partition widens its buffers when a value does not
fit, and it records the bounds it saw (minimum, maximum, values per sample: the
summaries bio2zarr's explode keeps). :func:`settle` merges them and asks
bio2zarr's own schema generation for the dtypes and shapes, so they are
bio2zarr's by construction; a partition written with another dtype or shape (one
partition whose DP never passes 127 when another's does, a file of haploid calls
only) is encoded again, and then agrees.

Files whose FORMAT fields this does not cover (String or Character fields,
Number=., no GT) are converted by bio2zarr alone: :func:`direct_fields` decides
per file, at explode, since a FORMAT field left to bio2zarr needs the samples
parsed in explode too, and parsing them twice costs more than the ICF saves.
Data that breaks an assumption at encode (ploidy above 2, more values than the
header's Number, records not where the index puts them) raises
:class:`Unsupported`, and the caller converts with bio2zarr instead (whose
records check then names an unsorted line).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import logging
import os
import pathlib
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import zarr
from bio2zarr import constants as bio2zarr_constants
from bio2zarr import core as bio2zarr_core
from bio2zarr import vcf as bio2zarr_vcf
from bio2zarr import vcz as bio2zarr_vcz
from bio2zarr import zarr_utils as bio2zarr_zarr_utils

from ..store.objects import write_text_atomic
from . import sites, vcf_text

__all__ = [
    "Unsupported",
    "direct_fields",
    "encode_partition",
    "icf_with_calls",
    "settle",
    "strip_calls",
    "writing_every_chunk",
]

logger = logging.getLogger(__name__)

# Beside the ICF: the FORMAT fields (bio2zarr's VcfField dicts) left out of it.
CALL_FIELDS = "calls.json"
# In each encode partition: the bounds it saw and the arrays it wrote.
PARTITION_SUMMARY = "calls-summary.json"
# The ploidy encode assumes until the whole file has been read.
_GUESSED_PLOIDY = 2

_INT32_MISSING = bio2zarr_constants.VCF_INT_MISSING
_INT32_FILL = bio2zarr_constants.VCF_INT_FILL
# Values below this are htslib's missing / end-of-vector markers, not data.
_SMALLEST_VALUE = bio2zarr_constants.MIN_INT_VALUE
_FLOAT_MISSING = bio2zarr_constants.FLOAT32_MISSING
_FLOAT_FILL = bio2zarr_constants.FLOAT32_FILL


@contextlib.contextmanager
def writing_every_chunk() -> Iterator[None]:
    """Zarr arrays opened inside write every chunk, even one of fill values only.

    Before skipping such a chunk zarr compares it with the fill value, and that
    cost three times the compression itself: 0.37 of 0.52 CPU s to write a
    44 MB genotype chunk (zarr 3.1). A chunk not written reads as the fill value,
    so the arrays read the same either way.
    """
    with zarr.config.set({"array.write_empty_chunks": True}):
        yield


class Unsupported(Exception):
    """The file has something the direct writer does not convert: use bio2zarr."""


def direct_fields(fields: list[Any], num_samples: int) -> list[Any] | None:
    """The FORMAT fields of ``fields`` (bio2zarr ``VcfField``) when the direct
    writer can convert all of them, else ``None``.

    It takes GT and Integer or Float fields with a fixed Number, R, A or G: their
    shapes follow from the header and the alleles, which the ICF has.
    """
    if num_samples == 0:
        return None
    format_fields = [field for field in fields if field.category == "FORMAT"]
    if not any(field.name == "GT" for field in format_fields):
        return None
    for field in format_fields:
        if field.name == "GT":
            continue
        if field.vcf_type not in ("Integer", "Float"):
            return None
        if field.vcf_number not in ("R", "A", "G") and not field.vcf_number.isdigit():
            return None
    return format_fields


def strip_calls(icf: pathlib.Path) -> bool:
    """Take the FORMAT fields out of a freshly initialised ICF (``wip``), keeping
    them in ``calls.json``, when :func:`direct_fields` covers them all.

    Idempotent, so a killed explode can call it again. True when the ICF is (now)
    one without its calls.
    """
    wip_metadata = icf / "wip" / "metadata.json"
    metadata = json.loads(wip_metadata.read_text())
    fields = [bio2zarr_vcf.VcfField.fromdict(field) for field in metadata["fields"]]
    if not (icf / CALL_FIELDS).exists():
        chosen = direct_fields(fields, len(metadata["samples"]))
        vcf = pathlib.Path(metadata["partitions"][0]["vcf_path"])
        if chosen is None or vcf_text.index_of(vcf) is None:
            return False
        write_text_atomic(
            icf / CALL_FIELDS,
            json.dumps(
                {
                    "fields": [
                        definition
                        for definition in metadata["fields"]
                        if definition["category"] == "FORMAT"
                    ]
                },
                indent=2,
            ),
        )
    metadata["fields"] = [
        field for field in metadata["fields"] if field["category"] != "FORMAT"
    ]
    write_text_atomic(wip_metadata, json.dumps(metadata, indent=4))
    shutil.rmtree(icf / "FORMAT", ignore_errors=True)
    return True


def _call_fields(icf: pathlib.Path) -> list[Any]:
    data = json.loads((icf / CALL_FIELDS).read_text())
    return [bio2zarr_vcf.VcfField.fromdict(field) for field in data["fields"]]


def icf_with_calls(icf: pathlib.Path, summaries: dict[str, Any] | None = None) -> Any:
    """The ICF at ``icf`` with its FORMAT fields put back, for bio2zarr's schema.

    Without ``summaries`` (bounds per field), the guess encode starts from: the
    smallest dtypes and ploidy 2.
    """
    store = bio2zarr_vcf.IntermediateColumnarFormat(icf)
    fields = _call_fields(icf)
    for field in fields:
        if summaries is not None:
            field.summary = summaries[field.full_name]
        elif field.name == "GT":
            # Alleles, then the phase flag: ploidy + 1 values a sample.
            field.summary.max_number = _GUESSED_PLOIDY + 1
        if field.name == "GT":
            store.gt_field = field
    store.metadata.fields.extend(fields)
    return store


def _open(vcf: str, *, samples: bool) -> Any:
    try:
        return sites.open_indexed(vcf, samples=samples)
    except FileNotFoundError as error:
        raise Unsupported(str(error)) from None


class _Bounds:
    """What bio2zarr's explode records of a field's values: smallest and largest
    (missing and end-of-vector markers left out) and values per sample."""

    def __init__(self) -> None:
        self.min_value: float = float("inf")
        self.max_value: float = float("-inf")
        self.max_number = 0

    def add(self, values: np.ndarray, *, numeric_bounds: bool = True) -> None:
        self.max_number = max(self.max_number, int(values.shape[-1]))
        if not numeric_bounds or values.size == 0:
            return
        largest = int(values.max())
        if largest < _SMALLEST_VALUE:
            return
        smallest = int(values.min())
        if smallest < _SMALLEST_VALUE:
            smallest = int(values[values >= _SMALLEST_VALUE].min())
        self.min_value = min(self.min_value, smallest)
        self.max_value = max(self.max_value, largest)

    def add_range(self, number: int, smallest: int, largest: int) -> None:
        """:meth:`add` of values already summed up: ``number`` a sample, none of
        them below the markers."""
        self.max_number = max(self.max_number, number)
        self.min_value = min(self.min_value, smallest)
        self.max_value = max(self.max_value, largest)

    def summary(self) -> dict[str, Any]:
        return {
            "min_value": self.min_value,
            "max_value": self.max_value,
            "max_number": self.max_number,
        }


class _Cyvcf2Genotypes:
    """A cyvcf2 record's genotypes as the writer reads them (the text kernel's
    ``_Genotypes`` has the same methods): from ``genotype.array()``, the
    alleles then the phase."""

    def __init__(self, variant: Any) -> None:
        self._values = variant.genotype.array()
        self.ploidy = int(self._values.shape[1]) - 1

    def bounds(self) -> tuple[int, int]:
        return int(self._values.min()), int(self._values.max())

    def store(self, target: np.ndarray, target_phased: np.ndarray) -> None:
        ploidy = self.ploidy
        target[:, :ploidy] = self._values[:, :ploidy]
        target[:, ploidy:] = -2
        np.not_equal(self._values[:, ploidy], 0, out=target_phased)


def _genotype_of(variant: Any) -> Any:
    if isinstance(variant, vcf_text.TextRecord) and variant.genotype is not None:
        return variant.genotype
    return _Cyvcf2Genotypes(variant)


class _Column:
    """One ``call_*`` array of a partition: a chunk of rows in memory, flushed to
    the partition's own Zarr array, whose dtype may widen as values arrive."""

    def __init__(self, writer: Any, index: int, spec: Any) -> None:
        self.writer = writer
        self.index = index
        self.spec = spec
        schema = writer.schema
        self.shape = tuple(schema.get_shape(spec.dimensions))
        self.dtype = np.dtype(spec.dtype)
        partition = writer.metadata.partitions[index]
        chunk_length = min(schema.get_chunks(spec.dimensions)[0], self.shape[0])
        self.buffer = np.zeros((chunk_length, *self.shape[1:]), dtype=self.dtype)
        self.start = partition.start
        self.offset = partition.start
        self.array = self._create()

    def _create(self) -> Any:
        path = self.writer.wip_partition_path(self.index)
        shutil.rmtree(path / self.spec.name, ignore_errors=True)
        root = bio2zarr_zarr_utils.open_zarr_append(path, self.writer.zarr_format)
        spec = self.spec
        if self.dtype != np.dtype(spec.dtype):
            spec = dataclasses.replace(spec, dtype=self.dtype.str[1:])
        last = self.writer.metadata.partitions[-1].stop
        return self.writer.init_array(root, self.writer.schema, spec, last)

    def fit(self, smallest: int, largest: int) -> None:
        """Widen the dtype, buffer and rows written so far to hold the values."""
        if self.dtype.kind != "i":
            return
        limits = np.iinfo(self.dtype)
        if limits.min <= smallest and largest <= limits.max:
            return
        wider = np.dtype(bio2zarr_core.min_int_dtype(smallest, largest))
        if wider.itemsize < self.dtype.itemsize:
            wider = self.dtype
        written = (
            self.array[self.start : self.offset] if self.offset > self.start else None
        )
        self.dtype = wider
        self.buffer = self.buffer.astype(wider)
        self.array = self._create()
        if written is not None:
            self._write(written.astype(wider), self.start)

    def _write(self, rows: np.ndarray, offset: int) -> None:
        # One sample chunk at a time, as bio2zarr does: smaller copies in the codec.
        stop = offset + rows.shape[0]
        step = self.array.chunks[1]
        for begin in range(0, self.shape[1], step):
            self.array[offset:stop, begin : begin + step] = rows[
                :, begin : begin + step
            ]

    def flush(self, num_rows: int) -> None:
        if num_rows:
            self._write(self.buffer[:num_rows], self.offset)
            self.offset += num_rows

    def written(self) -> dict[str, Any]:
        return {"dtype": self.dtype.str, "shape": list(self.shape)}


class _Calls:
    """The call arrays of one encode partition, filled a record at a time."""

    def __init__(self, writer: Any, index: int, fields: list[Any]) -> None:
        specs = {spec.name: spec for spec in writer.schema.fields}
        self.genotype = _Column(writer, index, specs["call_genotype"])
        self.phased = _Column(writer, index, specs["call_genotype_phased"])
        self.mask = _Column(writer, index, specs["call_genotype_mask"])
        self.ploidy = self.genotype.shape[2]
        self.gt_bounds = _Bounds()
        self.gt_name = next(field.full_name for field in fields if field.name == "GT")
        self.fields = [
            (field, _Column(writer, index, specs[f"call_{field.name}"]), _Bounds())
            for field in fields
            if field.name != "GT"
        ]
        self.row = 0
        self.chunk_length = self.genotype.buffer.shape[0]

    def add(self, variant: Any) -> None:
        if self.row == self.chunk_length:
            self.flush()
        self._add_genotypes(variant)
        for field, column, bounds in self.fields:
            values = variant.format(field.name)
            if field.vcf_type == "Integer":
                self._add_integers(column, bounds, values)
            else:
                self._add_floats(column, bounds, values)
        self.row += 1

    def _add_genotypes(self, variant: Any) -> None:
        row = self.row
        genotypes = self.genotype.buffer
        phased = self.phased.buffer
        if "GT" in variant.FORMAT and variant.genotype is not None:
            genotype = _genotype_of(variant)
            ploidy = genotype.ploidy
            smallest, largest = genotype.bounds()
            self.gt_bounds.add_range(ploidy + 1, smallest, largest)
            if ploidy > self.ploidy:
                if self.ploidy < _GUESSED_PLOIDY:
                    raise RuntimeError("ploidy grew after it was settled")
                raise Unsupported(f"ploidy {ploidy} at {variant.CHROM}:{variant.POS}")
            self.genotype.fit(smallest, largest)
            genotype.store(self.genotype.buffer[row], phased[row])
        else:
            genotypes[row] = -1
            phased[row] = False
        if self.ploidy == 1:
            # bio2zarr calls haploid genotypes phased (its issue 399).
            phased[row] = True

    def _add_integers(
        self, column: _Column, bounds: _Bounds, values: np.ndarray | None
    ) -> None:
        if values is None:
            column.buffer[self.row] = -1
            return
        bounds.add(values)
        width = 1 if len(column.shape) == 2 else column.shape[2]
        number = values.shape[1]
        if number > width:
            raise Unsupported(
                f"{number} values a sample in call array {column.spec.name}"
            )
        if values.min() < _SMALLEST_VALUE:
            values = np.where(values == _INT32_MISSING, -1, values)
            values = np.where(values == _INT32_FILL, -2, values)
        if values.size:
            column.fit(int(values.min()), int(values.max()))
        target = column.buffer
        if len(column.shape) == 2:
            target[self.row] = values[:, 0]
        else:
            target[self.row, :, :number] = values
            target[self.row, :, number:] = -2

    def _add_floats(
        self, column: _Column, bounds: _Bounds, values: np.ndarray | None
    ) -> None:
        if values is None:
            column.buffer[self.row] = _FLOAT_MISSING
            return
        bounds.add(values, numeric_bounds=False)
        width = 1 if len(column.shape) == 2 else column.shape[2]
        number = values.shape[1]
        if number > width:
            raise Unsupported(
                f"{number} values a sample in call array {column.spec.name}"
            )
        values = np.asarray(values, dtype=np.float32)
        # Every NaN, htslib's end-of-vector included, is missing (as in bio2zarr);
        # only the columns past this record's values are fill.
        missing = np.isnan(values)
        if missing.any():
            values = values.copy()
            values[missing] = _FLOAT_MISSING
        target = column.buffer
        if len(column.shape) == 2:
            target[self.row] = values[:, 0]
        else:
            target[self.row, :, :number] = values
            target[self.row, :, number:] = _FLOAT_FILL

    def flush(self) -> None:
        rows = self.row
        self.genotype.flush(rows)
        self.phased.flush(rows)
        np.less(self.genotype.buffer[:rows], 0, out=self.mask.buffer[:rows])
        self.mask.flush(rows)
        for _, column, _ in self.fields:
            column.flush(rows)
        self.row = 0

    def summary(self) -> dict[str, Any]:
        columns = [self.genotype, self.phased, self.mask]
        columns += [column for _, column, _ in self.fields]
        bounds = {self.gt_name: self.gt_bounds.summary()}
        for field, _, field_bounds in self.fields:
            bounds[field.full_name] = field_bounds.summary()
        return {
            "fields": bounds,
            "arrays": {column.spec.name: column.written() for column in columns},
        }


def _site_values(source: Any, name: str, start: int, stop: int) -> list[Any]:
    return [value[0] for value in source.fields[name].iter_values(start, stop)]


def _duplicates_before(source: Any, start: int, contig: str, position: int) -> int:
    """Records just before ``start`` at the same contig and position: a region
    query starting at ``position`` returns them first."""
    count = 0
    end = start
    while end > 0:
        begin = max(0, end - 64)
        contigs = _site_values(source, "CHROM", begin, end)
        positions = _site_values(source, "POS", begin, end)
        for record_contig, record_position in zip(
            reversed(contigs), reversed(positions), strict=True
        ):
            if record_contig != contig or record_position != position:
                return count
            count += 1
        end = begin
    return count


def _records(source: Any, vcf: str, start: int, stop: int) -> Iterator[Any]:
    """The VCF records ``start`` to ``stop`` (in file order), checked against the
    ICF's contigs and positions."""
    contigs = _site_values(source, "CHROM", start, stop)
    positions = [int(position) for position in _site_values(source, "POS", start, stop)]
    reader = _open(vcf, samples=True)
    try:
        index = 0
        while index < len(contigs):
            contig = contigs[index]
            end = index
            while end < len(contigs) and contigs[end] == contig:
                end += 1
            first, last = positions[index], positions[end - 1]
            if any(b < a for a, b in itertools.pairwise(positions[index:end])):
                raise Unsupported(f"unsorted records in {contig}:{first}-{last}")
            skip = _duplicates_before(source, start + index, contig, first)
            for variant in reader(f"{contig}:{first}-{last}"):
                found = (variant.CHROM, variant.POS)
                if found[1] < first:
                    continue
                if skip:
                    skip -= 1
                    continue
                if found != (contig, positions[index]):
                    # Unsorted records under a stale index, or a changed file:
                    # bio2zarr converts it, and the records check says where.
                    raise Unsupported(
                        f"record {start + index} is {found[0]}:{found[1]}, "
                        f"expected {contig}:{positions[index]}"
                    )
                yield variant
                index += 1
                if index == end:
                    break
            if index != end:
                raise Unsupported(
                    f"records missing from {vcf} in {contig}:{first}-{last}"
                )
    finally:
        reader.close()


def _text_records(
    source: Any, vcf: str, start: int, stop: int, calls: _Calls
) -> Iterator[Any]:
    """The records ``start`` to ``stop`` as :func:`_records` gives them, parsed
    from the VCF text (:mod:`.vcf_text`); TextUnsupported where it cannot."""
    contigs = _site_values(source, "CHROM", start, stop)
    positions = [int(position) for position in _site_values(source, "POS", start, stop)]
    if not contigs:
        return
    path = pathlib.Path(vcf)
    encoded = [contig.encode() for contig in contigs]
    expected = list(zip(encoded, positions, strict=True))
    first_contig, first = expected[0]
    skip = _duplicates_before(source, start, contigs[0], first)
    parser = vcf_text.TextRecords(
        len(source.metadata.samples),
        [
            (field.name, 1 if len(column.shape) == 2 else column.shape[2])
            for field, column, _ in calls.fields
        ],
    )
    found = 0
    for line in vcf_text.lines(path, vcf_text.first_offset(path, contigs[0], first)):
        if line.startswith(b"#"):
            continue
        locus = vcf_text.locus(line)
        if found == 0:
            if locus[0] != first_contig:
                raise vcf_text.TextUnsupported(f"{locus} where the index points")
            if locus[1] < first:
                continue
            if skip:
                skip -= 1
                continue
        if locus != expected[found]:
            raise Unsupported(
                f"record {start + found} is {locus[0].decode()}:{locus[1]}, "
                f"expected {contigs[found]}:{positions[found]}"
            )
        yield parser.parse(line, contigs[found], locus[1])
        found += 1
        if found == len(expected):
            return
    raise Unsupported(f"records missing from {vcf} after {start + found}")


def encode_partition(vcz: pathlib.Path | str, index: int) -> None:
    """One encode partition: the per-variant arrays from the ICF (bio2zarr), the
    call arrays from the partition's VCF records (here)."""
    with writing_every_chunk():
        _encode_partition(vcz, index)


def _encode_partition(vcz: pathlib.Path | str, index: int) -> None:
    writer = bio2zarr_vcz.VcfZarrWriter(bio2zarr_vcf.IntermediateColumnarFormat, vcz)
    writer.load_metadata()
    partition = writer.metadata.partitions[index]
    wip = writer.wip_partition_path(index)
    shutil.rmtree(wip, ignore_errors=True)
    wip.mkdir(parents=True)
    names = {spec.name for spec in writer.schema.fields}
    if "variant_id" in names:
        writer.encode_id_partition(index)
    if "variant_filter" in names:
        writer.encode_filters_partition(index)
    if "variant_contig" in names:
        writer.encode_contig_partition(index)
    _encode_alleles(writer, index)
    for spec in writer.schema.fields:
        if spec.source is not None and not spec.source.startswith("FORMAT/"):
            writer.encode_array_partition(spec, index)
    icf = pathlib.Path(writer.metadata.source_path)
    fields = _call_fields(icf)
    vcf = writer.source.metadata.partitions[0].vcf_path
    calls = None
    if vcf_text.covers(fields):
        try:
            calls = _Calls(writer, index, fields)
            records = _text_records(
                writer.source, vcf, partition.start, partition.stop, calls
            )
            for variant in records:
                calls.add(variant)
        except vcf_text.TextUnsupported as reason:
            logger.info("partition %d read with cyvcf2: %s", index, reason)
            calls = None
    if calls is None:
        calls = _Calls(writer, index, fields)
        for variant in _records(writer.source, vcf, partition.start, partition.stop):
            calls.add(variant)
    calls.flush()
    (wip / PARTITION_SUMMARY).write_text(json.dumps(calls.summary()))
    final = writer.partition_path(index)
    shutil.rmtree(final, ignore_errors=True)
    os.rename(wip, final)


def _encode_alleles(writer: Any, index: int) -> None:
    """``variant_allele`` and ``variant_length`` from the ICF, without genotypes."""
    partition = writer.metadata.partitions[index]
    alleles = writer.init_partition_array(index, "variant_allele")
    lengths = writer.init_partition_array(index, "variant_length")
    for site in writer.source.iter_alleles_and_genotypes(
        partition.start, partition.stop, None, alleles.array.shape[1]
    ):
        alleles.buff[alleles.next_buffer_row()] = site.alleles
        lengths.buff[lengths.next_buffer_row()] = site.variant_length
    writer.finalise_partition_array(index, alleles)
    writer.finalise_partition_array(index, lengths)


def _merged_summaries(writer: Any, icf: pathlib.Path) -> tuple[dict[str, Any], list]:
    partition_summaries = [
        json.loads((writer.partition_path(index) / PARTITION_SUMMARY).read_text())
        for index in range(writer.num_partitions)
    ]
    merged = {}
    for field in _call_fields(icf):
        summary = bio2zarr_vcf.VcfFieldSummary()
        for partition_summary in partition_summaries:
            summary.update(
                bio2zarr_vcf.VcfFieldSummary(
                    **partition_summary["fields"][field.full_name]
                )
            )
        merged[field.full_name] = summary
    return merged, partition_summaries


def settle(writer: Any, make_schema: Callable[[Any], Any]) -> list[int]:
    """After every encode partition: give the store bio2zarr's dtypes and shapes
    for the whole file, and remove the partitions written with others.

    ``make_schema`` turns an ICF (with its calls put back) into the schema, as
    encode made the first one. Returns the partitions to encode again (none,
    usually); resumable at any point (the array definitions change before the
    schema that says they should, the partitions go last).
    """
    icf = pathlib.Path(writer.metadata.source_path)
    merged, partition_summaries = _merged_summaries(writer, icf)
    settled = make_schema(icf_with_calls(icf, merged))
    current = {spec.name: spec for spec in writer.schema.fields}
    wanted = {spec.name: spec for spec in settled.fields}
    if set(current) != set(wanted):
        raise RuntimeError("the settled schema has other arrays than the guessed one")

    def layout(schema: Any, spec: Any) -> dict[str, Any]:
        return {
            "dtype": np.dtype(spec.dtype).str,
            "shape": list(schema.get_shape(spec.dimensions)),
        }

    changed = [
        name
        for name in wanted
        if layout(settled, wanted[name]) != layout(writer.schema, current[name])
        or wanted[name].dimensions != current[name].dimensions
    ]
    if any(not name.startswith("call_") for name in changed):
        # Not expected (the per-variant fields' bounds were known from the
        # start); if it happens, every partition follows the new schema.
        redo = list(range(writer.num_partitions))
    else:
        redo = [
            index
            for index, summary in enumerate(partition_summaries)
            if any(
                summary["arrays"][name] != layout(settled, spec)
                for name, spec in wanted.items()
                if name in summary["arrays"]
            )
        ]
    if changed:
        root = bio2zarr_zarr_utils.open_zarr_append(
            writer.arrays_path, writer.zarr_format
        )
        last = writer.metadata.partitions[-1].stop
        for name in changed:
            shutil.rmtree(writer.arrays_path / name)
            writer.init_array(root, settled, wanted[name], last)
        writer.metadata.schema = settled
        write_text_atomic(
            writer.wip_path / "metadata.json",
            json.dumps(writer.metadata.asdict(), indent=4),
        )
    for index in redo:
        shutil.rmtree(writer.partition_path(index))
    return redo
