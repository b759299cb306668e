"""Checking a dataset's inputs without writing anything.

The first step of every ingest (``validate``), its ``clinical`` step (run beside
the conversion) and the whole of ``genomenode ingest --dry-run``: the description,
the VCF's container and header (or a VCF Zarr's arrays), the clinical records
against the genotyped samples, the gene table and the aligned reads. The
variant records themselves are checked later, on the converted arrays (see
:mod:`genomenode.ingest.vcf`), so a dry run does not catch a bad record.
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib
from typing import Any

from ..dataset import DatasetDescription
from ..errors import ClinicalDataError, DatasetDescriptionError, VcfError
from ..store.genes import GeneTable
from ..store.site_counts import site_fields
from . import vcf
from .alignments import alignment_sample, check_alignment_reference
from .clinical import ClinicalRecord, MapChunks, read_clinical, write_records
from .vcz import is_vcz, read_vcz_header

__all__ = ["CheckedInputs", "check_clinical", "check_inputs", "read_genotypes_header"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class CheckedInputs:
    """What :func:`check_inputs` read: enough to say what an ingest would publish."""

    header: vcf.VcfHeader
    num_clinical_records: int
    #: Genotyped samples without a clinical record (allowed by ``missing_clinical``).
    samples_without_clinical: tuple[str, ...]
    #: The VCF sample each entry of ``alignments`` is of.
    alignment_samples: tuple[str, ...]

    def staging_state(self) -> dict[str, Any]:
        """What the ingest's ``validate`` step records for the later steps."""
        return {
            "num_header_lines": self.header.num_header_lines,
            "contigs": list(self.header.contigs),
            "num_samples": len(self.header.samples),
            "info_number_g": list(self.header.info_number_g),
            "file_format": self.header.file_format,
            "info_fields": list(self.header.info_fields),
            "alignment_samples": list(self.alignment_samples),
        }


def check_inputs(
    description: DatasetDescription,
    *,
    keep_records: pathlib.Path | None = None,
    map_chunks: MapChunks | None = None,
    clinical: bool = True,
) -> CheckedInputs:
    """Check everything ``description`` points to that can be checked up front.

    With ``keep_records``, the clinical records read are also written there
    (:func:`~genomenode.ingest.clinical.write_records`), for the ingest's
    metadata step to load without parsing the inputs a second time. With
    ``map_chunks``, a directory of Phenopackets is parsed through it
    (:func:`~genomenode.ingest.clinical.read_clinical`). Without ``clinical``,
    the clinical records are left to :func:`check_clinical` (the ingest reads
    them beside the conversion); the result then counts none.

    Raises
    ------
    InputError
        A subclass naming the file, line and field of the first problem found.
    """
    header = read_genotypes_header(description)
    if header.sites_only:
        _check_sites_only(description, header)
    num_records, missing = (
        check_clinical(
            description, header, keep_records=keep_records, map_chunks=map_chunks
        )
        if clinical
        else (0, ())
    )
    if description.genes is not None:
        _check_genes(description.genes, header.contigs)
    for number, alignment in enumerate(description.alignments):
        check_alignment_reference(alignment, number, description.source)
    alignment_samples = tuple(
        alignment_sample(alignment, number, header.samples, description.source)
        for number, alignment in enumerate(description.alignments)
    )
    return CheckedInputs(
        header=header,
        num_clinical_records=num_records,
        samples_without_clinical=missing,
        alignment_samples=alignment_samples,
    )


def read_genotypes_header(description: DatasetDescription) -> vcf.VcfHeader:
    """The header of the dataset's VCF (its container checked) or VCF Zarr."""
    genotypes = description.genotypes[0]
    if is_vcz(genotypes):
        return read_vcz_header(genotypes)
    vcf.check_bgzf(genotypes)
    return vcf.read_header(genotypes)


def check_clinical(
    description: DatasetDescription,
    header: vcf.VcfHeader,
    *,
    keep_records: pathlib.Path | None = None,
    map_chunks: MapChunks | None = None,
    collect: list[ClinicalRecord] | None = None,
) -> tuple[int, tuple[str, ...]]:
    """Read the clinical records (see :func:`check_inputs`; appended to
    ``collect`` too if given) and match them to the genotyped samples of
    ``header``: their number, and the samples without one (an error unless
    ``missing_clinical: allow``)."""
    seen = _clinical_ids(description, keep_records, map_chunks, collect)
    missing = tuple(sample for sample in header.samples if sample not in seen)
    if missing and description.missing_clinical == "error":
        shown = ", ".join(repr(sample) for sample in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise ClinicalDataError(
            f"{len(missing)} genotyped sample(s) have no clinical record: "
            f"{shown}{more}. "
            "Add their records, or set `missing_clinical: allow` in dataset.yaml",
            path=description.clinical.path if description.clinical else None,
        )
    return len(seen), missing


def _check_sites_only(description: DatasetDescription, header: vcf.VcfHeader) -> None:
    """A sites-only VCF is an aggregate-only dataset: counts in INFO, no people."""
    if description.clinical is not None:
        raise DatasetDescriptionError(
            "a sites-only VCF (no sample columns) makes an aggregate-only dataset "
            "without individuals: remove the clinical: block",
            path=description.source,
            field="clinical",
        )
    if description.alignments:
        raise DatasetDescriptionError(
            "a sites-only VCF has no samples for aligned reads to belong to",
            path=description.source,
            field="alignments",
        )
    if "" not in site_fields(header.info_fields).fields:
        raise VcfError(
            "a sites-only VCF (no sample columns) needs its counts in INFO: "
            "declare and fill AC (Number=A) and AN (Number=1); see "
            "docs/ingest.md, accepted inputs",
            path=header.path,
            field="INFO",
        )


def _clinical_ids(
    description: DatasetDescription,
    keep_records: pathlib.Path | None,
    map_chunks: MapChunks | None,
    collect: list[ClinicalRecord] | None = None,
) -> set[str]:
    """The ids of the clinical records (none for a genotypes-only dataset)."""
    seen: set[str] = set()
    if description.clinical is None:
        return seen
    records = read_clinical(description.clinical, map_chunks=map_chunks)
    if keep_records is not None:
        records = write_records(records, keep_records)
    for record in records:
        if record.id in seen:
            raise ClinicalDataError(
                f"individual {record.id!r} appears twice",
                path=description.clinical.path,
                field="id",
            )
        seen.add(record.id)
        if collect is not None:
            collect.append(record)
    return seen


def _check_genes(path: pathlib.Path, contigs: tuple[str, ...]) -> None:
    """Read the gene table (errors name file and line); warn of unknown contigs."""
    table = GeneTable.read(path)
    known = {
        contig[3:] if contig.lower().startswith("chr") else contig for contig in contigs
    }
    unknown = sorted({gene.contig for gene in table} - known)
    if unknown:
        logger.warning(
            "%s: %d gene contig(s) are not in the VCF header (%s); queries for "
            "their genes will find nothing",
            path,
            len(unknown),
            ", ".join(unknown[:5]),
        )
