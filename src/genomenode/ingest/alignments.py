"""Aligned reads (BAM, CRAM) of a dataset: whose reads they are, and an index.

The files are stored encrypted as they are; the ingest only reads their headers
(to tell which VCF sample the reads are of) and makes sure each has an index, made
in the staging area when the operator supplied none, so that slices can be served.
"""

from __future__ import annotations

import os
import pathlib
import shutil

import pysam

from ..dataset import AlignmentSource
from ..errors import DatasetDescriptionError, InputError

__all__ = [
    "alignment_sample",
    "check_alignment_reference",
    "ensure_alignment_index",
    "stage_reference",
]

#: A BAI indexes references up to 2^29 bases; longer ones need a CSI.
_BAI_MAX_LENGTH = 1 << 29


def _header(source: AlignmentSource, field: str) -> pysam.AlignmentHeader:
    mode = "rc" if source.format == "CRAM" else "rb"
    try:
        with pysam.AlignmentFile(os.fspath(source.path), mode, check_sq=False) as file:
            return file.header
    except (OSError, ValueError) as error:
        raise InputError(
            f"cannot read the {source.format} header: {error}",
            path=source.path,
            field=field,
        ) from None


def alignment_sample(
    source: AlignmentSource,
    number: int,
    vcf_samples: tuple[str, ...],
    description_path: pathlib.Path,
) -> str:
    """The VCF sample the reads of ``source`` (``alignments[number]``) are of.

    The ``sample`` given in dataset.yaml, else the one SM tag of the read groups;
    either must be a sample of the VCF.

    Raises
    ------
    DatasetDescriptionError
        Naming ``alignments[number].sample``.
    InputError
        The file's header cannot be read (naming ``alignments[number].path``).
    """
    field = f"alignments[{number}].sample"
    header = _header(source, f"alignments[{number}].path")
    sample = source.sample
    if sample is None:
        tagged = sorted(
            {
                str(group["SM"])
                for group in header.to_dict().get("RG", [])
                if "SM" in group
            }
        )
        if len(tagged) != 1:
            found = ", ".join(repr(name) for name in tagged) or "none"
            raise DatasetDescriptionError(
                f"{source.path.name}: the read groups name {found} as sample (SM); "
                "say which VCF sample the reads are of with `sample:`",
                path=description_path,
                field=field,
            )
        sample = tagged[0]
        where = f"the read groups of {source.path.name} say sample {sample!r}"
    else:
        where = f"sample {sample!r}"
    if sample not in vcf_samples:
        raise DatasetDescriptionError(
            f"{where}, which is not a sample of the VCF; give the VCF's name for it "
            "with `sample:`",
            path=description_path,
            field=field,
        )
    return sample


def check_alignment_reference(
    source: AlignmentSource, number: int, description_path: pathlib.Path
) -> None:
    """Make sure a CRAM (``alignments[number]``) names its reference FASTA.

    Raises
    ------
    DatasetDescriptionError
        A CRAM without ``reference``, naming ``alignments[number].reference``.
    """
    if source.format == "CRAM" and source.reference is None:
        raise DatasetDescriptionError(
            f"{source.path.name}: a CRAM needs its reference FASTA to be served; "
            "give it with `reference:`",
            path=description_path,
            field=f"alignments[{number}].reference",
        )


def stage_reference(
    fasta: pathlib.Path,
    target: pathlib.Path,
    sources: list[tuple[int, AlignmentSource]],
) -> None:
    """Copy ``fasta`` to ``target`` and index it there (``.fai``, ``.gzi`` if bgzipped).

    A reference genome is public data: it is stored as it is, not encrypted, so
    that a CRAM can be decoded against it. ``sources`` are the CRAMs (with their
    number in ``alignments``) compressed against it: each of their references
    must be in the FASTA.

    Raises
    ------
    InputError
        The FASTA cannot be indexed or lacks a reference of a CRAM, naming
        ``alignments[number].reference``.
    """
    field = f"alignments[{sources[0][0]}].reference"
    shutil.copyfile(fasta, target)
    try:
        pysam.faidx(os.fspath(target))
        with pysam.FastaFile(os.fspath(target)) as indexed:
            names = set(indexed.references)
    except (pysam.SamtoolsError, OSError, ValueError) as error:
        message = str(error).strip().splitlines()[-1] if str(error).strip() else ""
        raise InputError(
            f"cannot index the reference FASTA: {message} (a FASTA, plain or "
            "bgzipped, is needed)",
            path=fasta,
            field=field,
        ) from None
    for number, source in sources:
        missing = [
            name
            for name in _header(source, f"alignments[{number}].path").references
            if name not in names
        ]
        if missing:
            raise InputError(
                f"{source.path.name} has reads on {missing[0]!r}, which is not in "
                "this FASTA; give the reference the CRAM was made with",
                path=fasta,
                field=f"alignments[{number}].reference",
            )


def ensure_alignment_index(
    source: AlignmentSource, number: int, work_dir: pathlib.Path
) -> tuple[pathlib.Path, bool]:
    """The index of ``source`` and whether the node made it.

    An index beside the file that is not older than it is used as it is; otherwise
    the file is linked into ``work_dir`` and indexed there (a BAI, a CSI for
    references longer than 2^29, a CRAI for a CRAM), so the operator's directory is
    not written to. Made once: a rerun finds the finished index.

    Raises
    ------
    InputError
        The file cannot be indexed (not sorted by coordinate, damaged), naming
        ``alignments[number].path``.
    """
    field = f"alignments[{number}].path"
    index = source.index
    if index is not None and index.stat().st_mtime >= source.path.stat().st_mtime:
        return index, False
    if source.format == "CRAM":
        options, suffix = [], ".crai"
    elif any(length > _BAI_MAX_LENGTH for length in _header(source, field).lengths):
        options, suffix = ["-c"], ".csi"
    else:
        options, suffix = [], ".bai"
    indexed = work_dir / "index"
    made = indexed / (source.path.name + suffix)
    if made.exists():
        return made, True
    partial = work_dir / "index.part"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    link = partial / source.path.name
    os.symlink(source.path, link)
    try:
        pysam.samtools.index(*options, os.fspath(link))
    except pysam.SamtoolsError as error:
        message = str(error).strip().splitlines()[-1] if str(error).strip() else ""
        raise InputError(
            f"cannot index {source.path.name}: {message} (is it sorted by "
            "coordinate? `samtools sort` sorts it)",
            path=source.path,
            field=field,
        ) from None
    os.replace(partial, indexed)
    return made, True
