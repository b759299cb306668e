"""An explode partition: the per-variant fields of the partition's records, for the ICF.

The ICF of the direct writer (:mod:`.calls`) holds only what a record says before
its samples: CHROM, POS, ID, REF, ALT, QUAL, FILTER, INFO and the reference length.
A tabix region query through cyvcf2 gave them, but htslib's region iterator reads
and inflates every line whole and cost three times a sequential read without samples
(6.2 of explode's 8 CPU s at 20,000 samples, docs/benchmarks.md). Here a partition
reads its lines as text from where the index puts its first record
(:func:`.vcf_text.region_lines`, libdeflate) and hands only their first eight
columns to htslib (cyvcf2's ``variant_from_string`` under the file's own header):
the values are htslib's — INFO types, missing values, END and the reference length
— because htslib still parses them. Text the line reader does not take (records
out of order, a stale index, CR line ends, a BCF file) raises
:class:`.vcf_text.TextUnsupported` and the partition is read with the region
query instead (tests/ingest/test_sites.py compares both on every test file).
"""

from __future__ import annotations

import functools
import logging
import os
import pathlib
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import cyvcf2
from bio2zarr import vcf as bio2zarr_vcf

from ..store.objects import write_text_atomic
from . import vcf_text

__all__ = ["explode_partition", "open_indexed"]

logger = logging.getLogger(__name__)

# The per-variant columns of an ICF, read from a cyvcf2 record.
_SITE_COLUMNS: tuple[tuple[str, Callable[[Any], Any]], ...] = (
    ("CHROM", lambda variant: variant.CHROM),
    ("POS", lambda variant: variant.POS),
    ("QUAL", lambda variant: variant.QUAL),
    ("ID", lambda variant: variant.ID),
    ("FILTERS", lambda variant: variant.FILTERS),
    ("REF", lambda variant: variant.REF),
    ("ALT", lambda variant: variant.ALT),
    ("rlen", lambda variant: variant.end - variant.start),
)


def open_indexed(vcf: str, *, samples: bool) -> Any:
    """cyvcf2 over ``vcf`` with its index; without ``samples``, htslib skips the
    sample columns."""
    path = pathlib.Path(vcf)
    index = vcf_text.index_of(path)
    if index is None:
        raise FileNotFoundError(f"no index beside {vcf}")
    reader = cyvcf2.VCF(str(path), samples=None if samples else [])
    reader.set_index(str(index))
    return reader


def explode_partition(icf: pathlib.Path | str, index: int) -> None:
    """One explode partition of an ICF without calls: the per-variant fields of
    the partition's records (module docstring)."""
    writer = bio2zarr_vcf.IntermediateColumnarFormatWriter(icf)
    writer.load_metadata()
    summary_path = writer.wip_path / f"p{index}.json"
    summary_path.unlink(missing_ok=True)
    partition = writer.metadata.partitions[index]
    try:
        summary = _write_sites(writer, index, _text_sites(partition))
    except vcf_text.TextUnsupported as reason:
        logger.info("explode partition %d read with a region query: %s", index, reason)
        writer.load_metadata()  # the summaries the text attempt began are dropped
        for field in writer.metadata.fields:
            shutil.rmtree(
                bio2zarr_vcf.get_vcf_field_path(writer.path, field) / f"p{index}",
                ignore_errors=True,
            )
        summary = _write_sites(writer, index, _region_sites(partition))
    write_text_atomic(summary_path, summary.asjson())


def _write_sites(writer: Any, index: int, variants: Iterator[Any]) -> Any:
    """Append each variant's per-variant fields to partition ``index``; its summary."""
    metadata = writer.metadata
    info_fields = [(field.full_name, field.name) for field in metadata.info_fields]
    num_records = 0
    last_position = None
    with bio2zarr_vcf.IcfPartitionWriter(metadata, writer.path, index) as columns:
        for variant in variants:
            for name, value_of in _SITE_COLUMNS:
                columns.append(name, value_of(variant))
            for full_name, name in info_fields:
                columns.append(full_name, variant.INFO.get(name, None))
            num_records += 1
            last_position = variant.POS
    return bio2zarr_vcf.IcfPartitionMetadata(
        num_records=num_records,
        last_position=last_position,
        field_summaries=columns.field_summaries,
    )


def _region_sites(partition: Any) -> Iterator[Any]:
    """The partition's records from a tabix/CSI region query, samples skipped."""
    region = partition.region
    first = 1 if region.start is None else region.start
    reader = open_indexed(partition.vcf_path, samples=False)
    try:
        for variant in reader(str(region)):
            # A region query also returns earlier records overlapping it.
            if first > variant.POS:
                continue
            yield variant
    finally:
        reader.close()


def _text_sites(partition: Any) -> Iterator[Any]:
    """The partition's records parsed by htslib from their first eight columns."""
    region = partition.region
    path = pathlib.Path(partition.vcf_path)
    parse = _site_parser(path, path.stat().st_mtime_ns)
    first = 1 if region.start is None else region.start
    for line in vcf_text.region_lines(path, region.contig, first, region.end):
        yield parse(line)


@functools.lru_cache(maxsize=4)
def _site_parser(path: pathlib.Path, mtime_ns: int) -> Callable[[bytes], Any]:
    """A record line → the cyvcf2 ``Variant`` of its first eight columns, parsed
    under ``path``'s header with its ``#CHROM`` line cut after INFO."""
    header = vcf_text.header_lines(path)
    columns = header[-1].rstrip(b"\r\n").split(b"\t")
    if columns[:8] != [
        b"#CHROM", b"POS", b"ID", b"REF", b"ALT", b"QUAL", b"FILTER", b"INFO"
    ]:  # fmt: skip
        raise vcf_text.TextUnsupported(f"{path} has no #CHROM line of VCF")
    text = b"".join(header[:-1]) + b"\t".join(columns[:8]) + b"\n"
    try:
        template = cyvcf2.Writer.from_string(os.devnull, text.decode())
    except Exception as error:  # cyvcf2 raises a bare Exception
        raise vcf_text.TextUnsupported(f"header of {path}: {error}") from None

    def parse(line: bytes) -> Any:
        sites = vcf_text.site_columns(line)
        try:
            return template.variant_from_string(sites.decode())
        except Exception as error:  # htslib's parse error; the region query says it
            raise vcf_text.TextUnsupported(f"{error}") from None

    return parse
