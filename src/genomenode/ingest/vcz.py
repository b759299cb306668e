"""A VCF Zarr genotype file (``genotypes: [{path: cohort.vcz}]``): checks and import.

sgkit and bio2zarr users hold their cohorts as VCF Zarr already (``vcf2zarr``,
``tskit2zarr``, ``plink2zarr``); for them the VCF text is a detour the node
would parse again. A ``.vcz`` directory is read with zarr, checked like a VCF's
header (the arrays the node needs, their shapes, unique sample ids), and copied
into the dataset's ``genotypes.vcz`` with the node's chunking (variants chunked
as the ingest chooses for bounded memory, samples by ``samples_chunk_size``,
Zarr format 2 like bio2zarr's VCF path). The steps after that (records check,
statistics, by-variant copy, originals, metadata, sealing, publish) are those of
a VCF ingest. Arrays the node does not need (filters, quality, FORMAT fields)
are copied when present and not required: QC uses ``call_DP``/``call_GQ`` only
if they are there.
"""

from __future__ import annotations

import os
import pathlib
import shutil
from typing import Any

import numpy as np
import zarr

from ..errors import VcfError
from .vcf import VcfHeader
from .workers import Reporter

__all__ = [
    "REQUIRED_ARRAYS",
    "import_vcz",
    "is_vcz",
    "read_vcz_header",
    "rechunk_sites",
]

#: What the node reads of a VCF Zarr (docs/ingest.md: accepted inputs).
REQUIRED_ARRAYS = (
    "sample_id",
    "contig_id",
    "variant_contig",
    "variant_position",
    "variant_allele",
    "call_genotype",
)
_NOT_COPIED = frozenset({"region_index"})
#: ``file_format`` of a VCF Zarr input in the ingest's staging state.
VCZ_FORMAT = "VCZ"


def is_vcz(path: pathlib.Path) -> bool:
    """Whether the genotype input is a VCF Zarr directory (dataset.py accepts a
    directory only when its name ends in ``.vcz``)."""
    return path.is_dir()


def _open(path: pathlib.Path) -> Any:
    try:
        return zarr.open_group(path, mode="r")
    except (OSError, ValueError, KeyError, zarr.errors.GroupNotFoundError) as error:
        raise VcfError(
            f"not a VCF Zarr group: {type(error).__name__}: {error}", path=path
        ) from None


def _dimensions(array: Any) -> list[str] | None:
    names = array.attrs.get("_ARRAY_DIMENSIONS")
    if names is None:
        names = getattr(array.metadata, "dimension_names", None)
    return None if names is None else [str(name) for name in names]


def read_vcz_header(path: pathlib.Path) -> VcfHeader:
    """Check a VCF Zarr's arrays and read what a VCF header would give.

    Raises
    ------
    VcfError
        Naming the directory and the array at fault.
    """
    root = _open(path)
    present = set(root.array_keys())
    for name in REQUIRED_ARRAYS:
        if name not in present:
            raise VcfError(
                f"array {name} is missing: a VCF Zarr input needs "
                + ", ".join(REQUIRED_ARRAYS),
                path=path,
                field=name,
            )
    genotypes = root["call_genotype"]
    num_variants = root["variant_position"].shape[0]
    samples = tuple(str(sample) for sample in root["sample_id"][:])
    contigs = tuple(str(contig) for contig in root["contig_id"][:])
    if len(genotypes.shape) != 3 or genotypes.shape[:2] != (
        num_variants,
        len(samples),
    ):
        raise VcfError(
            f"call_genotype has shape {genotypes.shape}; expected (variants "
            f"{num_variants}, samples {len(samples)}, ploidy)",
            path=path,
            field="call_genotype",
        )
    if not samples:
        raise VcfError(
            "no samples: a sites-only dataset is ingested from a VCF with AC/AN",
            path=path,
            field="sample_id",
        )
    for name in ("variant_contig", "variant_allele"):
        if root[name].shape[0] != num_variants:
            raise VcfError(
                f"{name} has {root[name].shape[0]} rows, variant_position "
                f"{num_variants}",
                path=path,
                field=name,
            )
    seen: set[str] = set()
    for sample in samples:
        if sample in seen:
            raise VcfError(
                f"duplicate sample id {sample!r}", path=path, field="sample_id"
            )
        seen.add(sample)
    return VcfHeader(
        path=path,
        num_header_lines=0,
        contigs=contigs,
        samples=samples,
        info_number_g=(),
        file_format=VCZ_FORMAT,
        info_fields=(),
    )


def _target_chunks(
    array: Any,
    variants_chunk_size: int,
    samples_chunk_size: int,
    sites_chunk_size: int,
) -> tuple[int, ...]:
    dimensions = _dimensions(array)
    if dimensions and dimensions[0] == "samples":
        return (samples_chunk_size, *(max(1, size) for size in array.shape[1:]))
    if not dimensions or dimensions[0] != "variants":
        return tuple(max(1, size) for size in array.shape)
    # As bio2zarr chunks a VCF's arrays (a chunk may be longer than the array),
    # except that only arrays with a samples dimension take the chunk length
    # lowered for a large cohort: a Beacon lookup reads one chunk of each
    # per-variant array, and short chunks would make it miss more often.
    with_samples = "samples" in dimensions
    chunks = [variants_chunk_size if with_samples else sites_chunk_size]
    for name, size in zip(dimensions[1:], array.shape[1:], strict=True):
        chunks.append(samples_chunk_size if name == "samples" else max(1, size))
    return tuple(chunks)


def _copy_array(source: Any, target: Any, name: str, chunks: tuple[int, ...]) -> None:
    """Copy one array, ``chunks[0]`` rows at a time (memory: one row block)."""
    array = source[name]
    dtype = array.dtype
    if dtype.kind in "OTU":
        # Text (alleles, ids): zarr 2's variable-length strings, as bio2zarr.
        dtype = str
    # A Zarr 2 source's codecs carry over; a Zarr 3 one's do not fit format 2.
    same_format = array.metadata.zarr_format == 2
    copy = target.create_array(
        name,
        shape=array.shape,
        chunks=chunks,
        dtype=dtype,
        fill_value=array.fill_value,
        compressors=(array.compressors or None) if same_format else "auto",
        filters=(array.filters or None) if same_format else "auto",
        overwrite=True,
    )
    copy.attrs.update(dict(array.attrs))
    dimensions = _dimensions(array)
    if dimensions and "_ARRAY_DIMENSIONS" not in copy.attrs:
        copy.attrs["_ARRAY_DIMENSIONS"] = dimensions
    if array.ndim == 0:
        copy[...] = array[...]
        return
    for start in range(0, array.shape[0], chunks[0]):
        stop = min(start + chunks[0], array.shape[0])
        block = np.asarray(array[start:stop])
        if block.dtype.kind == "T":
            block = block.astype(object)
        copy[start:stop] = block


def import_vcz(
    source: pathlib.Path,
    target: pathlib.Path,
    *,
    variants_chunk_size: int,
    samples_chunk_size: int,
    sites_chunk_size: int,
    reporter: Reporter,
) -> None:
    """Copy the VCF Zarr ``source`` to ``target`` with the node's chunking:
    ``variants_chunk_size`` × ``samples_chunk_size`` for arrays of calls,
    ``sites_chunk_size`` variants for per-variant arrays.

    All or nothing: written beside ``target`` and renamed into place, so a
    killed run redoes the copy (and a finished one is not done again).
    """
    if target.exists():
        return
    partial = target.with_name(target.name + ".part")
    shutil.rmtree(partial, ignore_errors=True)
    root = _open(source)
    copy: Any = zarr.open_group(partial, mode="w", zarr_format=2)
    copy.attrs.update(dict(root.attrs))
    # bio2zarr's region_index describes the source's chunks, not the copy's.
    names = sorted(name for name in root.array_keys() if name not in _NOT_COPIED)
    with reporter.step("Copy VCF Zarr", len(names)) as advance:
        for name in names:
            chunks = _target_chunks(
                root[name], variants_chunk_size, samples_chunk_size, sites_chunk_size
            )
            try:
                _copy_array(root, copy, name, chunks)
            except (ValueError, TypeError, OSError) as error:
                raise VcfError(
                    f"cannot copy array {name}: {type(error).__name__}: {error}",
                    path=source,
                    field=name,
                ) from None
            advance()
    os.replace(partial, target)


def rechunk_sites(vcz: pathlib.Path, sites_chunk_size: int) -> list[str]:
    """Rewrite the per-variant arrays of ``vcz`` (no samples dimension) in chunks
    of ``sites_chunk_size`` variants where they are shorter; the names rewritten.

    bio2zarr chunks every array of a VCF by one variants chunk length, which the
    ingest lowers for a large cohort to bound the memory of the calls (200 at
    100,000 samples). A Beacon count reads one chunk of eight per-variant arrays:
    with chunks that short, the first counts on a freshly opened store each read
    about eight chunks (~5 ms, against 0.03 once cached). A VCF Zarr input gets
    the same layout from :func:`import_vcz`.

    Resumable: each array is copied beside the store, the original moved aside,
    the copy moved in (two renames). A rerun moves in a copy whose original had
    already been moved aside, and drops anything else left beside.
    """
    beside = vcz.with_name(vcz.name + ".rechunk")
    if beside.exists():
        for copied in beside.iterdir():
            moved_aside = not (vcz / copied.name).exists()
            if copied.is_dir() and not copied.name.endswith(".old") and moved_aside:
                os.rename(copied, vcz / copied.name)
        shutil.rmtree(beside)
    root: Any = zarr.open_group(vcz, mode="r")
    names = []
    for name in sorted(root.array_keys()):
        array = root[name]
        dimensions = _dimensions(array) or []
        if dimensions[:1] != ["variants"] or "samples" in dimensions:
            continue
        if array.chunks[0] >= min(sites_chunk_size, array.shape[0]):
            continue
        names.append(name)
    if not names:
        return []
    copies: Any = zarr.open_group(beside, mode="w", zarr_format=2)
    for name in names:
        array = root[name]
        chunks = (sites_chunk_size, *(max(1, size) for size in array.shape[1:]))
        _copy_array(root, copies, name, chunks)
        os.rename(vcz / name, beside / f"{name}.old")
        os.rename(beside / name, vcz / name)
    shutil.rmtree(beside)
    return names
