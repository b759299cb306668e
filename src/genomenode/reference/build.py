"""Build a dataset's reference: counts per population, chunk by chunk.

One task per block of variant rows (the store's ``variants_chunk_size``) reads
its calls in slabs of a few tens of MB (:mod:`genomenode.store.genotype_rows`:
the by-variant copy of ``call_genotype`` when the store has it, else one stored
chunk of samples at a time) and adds them into a genotype table per variant and
cell (:mod:`genomenode.store.genotype_counts`), so a task holds one slab and
the tables, never the cohort: memory is bounded whatever its size. The store is
read through the node (a local directory, an object store, a sealed store).
Tasks run in this process, or on the Dask cluster of the ``dask_scheduler``
setting (the same function, given a picklable
:class:`~genomenode.store.genotype_rows.GenotypeSource`); their results are
written as they arrive, at most a few at a time in flight.

QC flags come through one function, :func:`qc_masks`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import pathlib
import shutil
from collections.abc import Callable
from typing import Any

import numpy as np
import zarr

from ..errors import NotFoundError, StoreError
from ..qc.flags import load_flags
from ..store.compute import scheduler_client
from ..store.derived import publish_objects, writes_objects
from ..store.genotype_counts import block_cell_table, statistics_from_table
from ..store.genotype_rows import GenotypeRows, GenotypeSource
from ..store.node import Node
from ..store.private import private_files
from ..store.published import PublishedDataset, PublishedDatasets
from .populations import Populations, populations_of_cells
from .store import COUNT_ARRAYS, FORMAT_VERSION, REFERENCE_OBJECTS, reference_path

__all__ = [
    "BuildResult",
    "build_dataset_reference",
    "build_reference",
    "count_rows",
    "qc_masks",
]

# Calls handed to the kernel at a time: its int32 temporaries are ~5 times the
# int8 calls (~20 MB).
_KERNEL_CALLS = 2_000_000
# Largest reference (its count arrays, int32) built in memory and written whole.
_BUFFER_BYTES = 64 * 2**20
# Tasks in flight on a cluster: their results wait in memory until written.
_IN_FLIGHT = 8
# The most a call of count_rows in this process holds in its genotype tables.
_TABLE_BYTES = 32 * 2**20


@dataclasses.dataclass(frozen=True)
class BuildResult:
    """What one dataset's build produced."""

    dataset_id: str
    path: pathlib.Path | str
    populations: list[str]
    population_samples: list[int]
    num_variants: int
    num_variants_pass: int
    qc: bool
    seconds: float


def qc_masks(
    node: Node, dataset_id: str
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The QC flags of a dataset: (sample_pass, variant_pass), None where QC
    never ran (everything passes).

    The one place the reference reads QC flags (docs/reference.md):
    :func:`genomenode.qc.flags.load_flags`.
    """
    flags = load_flags(node, dataset_id)
    if flags is None:
        return None, None
    return (
        np.asarray(flags.sample_pass, dtype=bool),
        np.asarray(flags.variant_pass, dtype=bool),
    )


def count_rows(
    source: GenotypeSource | GenotypeRows | str,
    start: int,
    stop: int,
    sample_cells: np.ndarray,
    membership: np.ndarray,
) -> dict[str, np.ndarray]:
    """Counts of variant rows ``start:stop`` per ALT allele and population.

    ``source`` is the dataset's VCF Zarr (a local directory's path, or a
    :class:`~genomenode.store.genotype_rows.GenotypeSource` for any store, or
    one already opened in this process).
    Returns ``allele_count``, ``allele_count_hom`` (copies in homozygous calls),
    ``allele_count_het``, ``allele_count_hemi`` of shape ``(rows, alts, pops)``
    and ``allele_number`` ``(rows, pops)``, int32. Plain arguments: a Dask worker
    runs it as well as this process.
    """
    if isinstance(source, str):
        source = GenotypeSource(path=source)
    genotypes = source if isinstance(source, GenotypeRows) else source.open()
    num_alleles = genotypes.num_alleles
    num_cells = membership.shape[0]
    width = num_alleles + 2
    table = np.zeros((stop - start, num_cells, width, width), dtype=np.int64)
    # A stored chunk of QC-failing samples only is not read at all.
    for first, samples, piece in genotypes.blocks(
        start, stop, samples_needed=sample_cells >= 0
    ):
        cells = sample_cells[samples]
        # Rows per kernel call: its int32 temporaries stay ~_KERNEL_CALLS calls.
        step = max(1, _KERNEL_CALLS // max(1, samples.stop - samples.start))
        offset = first - start
        for row in range(0, len(piece), step):
            rows = piece[row : row + step]
            table[offset + row : offset + row + len(rows)] += block_cell_table(
                rows, cells, num_cells, num_alleles
            )
    num_rows = stop - start
    statistics = statistics_from_table(
        table.reshape(num_rows * num_cells, width, width)
    )

    def per_population(name: str) -> np.ndarray:
        values = (
            statistics[name].reshape(num_rows, num_cells, num_alleles).astype(np.int64)
        )
        summed = np.einsum("rca,cp->rap", values, membership)
        return summed[:, 1:, :].astype(np.int32)

    counts = {
        "allele_count": per_population("variant_allele_count"),
        "allele_count_hom": per_population("variant_allele_count_hom"),
        "allele_count_het": per_population("variant_allele_count_het"),
        "allele_count_hemi": per_population("variant_allele_count_hemi"),
    }
    totals = statistics["variant_allele_total"].reshape(num_rows, num_cells)
    counts["allele_number"] = (totals.astype(np.int64) @ membership).astype(np.int32)
    return counts


def _populations(
    handle: PublishedDataset, sample_pass: np.ndarray | None
) -> Populations:
    groups, names = handle.population_groups
    return populations_of_cells(groups, names, sample_pass)


# The counts are true (unreleased) aggregates: 0600 files, 0700 directories.
@private_files()
def build_dataset_reference(
    handle: PublishedDataset,
    *,
    sample_pass: np.ndarray | None = None,
    variant_pass: np.ndarray | None = None,
    scheduler: str | None = None,
    worker_wait: float | None = None,
    on_rows: Callable[[int], None] | None = None,
) -> BuildResult:
    """Build (or rebuild) one dataset's reference.

    Parameters
    ----------
    handle
        A published dataset with genotypes.
    sample_pass, variant_pass
        QC flags (None: all pass), in the VCF Zarr's sample and variant order.
    scheduler
        A Dask scheduler's address; None computes in this process.
    worker_wait
        Seconds to wait for a cluster without workers (``dask_worker_wait``).
    on_rows
        Called with the number of rows done, for progress.
    """
    started = dt.datetime.now(dt.UTC)
    dataset_directory = handle.node.datasets_dir / handle.id
    manifest = handle.manifest
    vcz = manifest["genotypes"]["path"]
    # Through the node: a local directory, an object store or a sealed store.
    location, read_object = handle.node.dataset_zarr(
        handle.id, manifest["fingerprint"], vcz
    )
    root: Any = zarr.open_group(location, mode="r")
    if "call_genotype" not in root:
        raise StoreError(
            f"dataset {handle.id} has no genotypes (sites only): nothing to count"
        )
    # Opened once here (a zarr group lookup costs ~1 ms), for this process too.
    opened = GenotypeRows(root, read_object, location if read_object is None else None)
    num_variants = opened.shape[0]
    num_alts = opened.num_alleles - 1
    if variant_pass is not None and len(variant_pass) != num_variants:
        raise ValueError(
            f"variant_pass has {len(variant_pass)} values for {num_variants} variants"
        )
    populations = _populations(handle, sample_pass)
    num_populations = len(populations.names)
    step = int(opened.chunks[0])
    target = reference_path(dataset_directory)
    # An object store or a sealed node: built in staging, then published as
    # (sealed) objects; a plain local node: beside the dataset, then renamed.
    as_objects = writes_objects(handle.node)
    temporary = (
        handle.node.staging_dir / f"{handle.id}.reference.tmp-{os.getpid()}"
        if as_objects
        else target.with_name(f"{target.name}.tmp-{os.getpid()}")
    )
    shutil.rmtree(temporary, ignore_errors=True)
    group: Any = zarr.open_group(temporary, mode="w")
    chunk_rows = max(1, min(step, num_variants))
    shapes = {
        name: (num_variants, num_alts, num_populations) for name in COUNT_ARRAYS
    } | {"allele_number": (num_variants, num_populations)}
    # A reference of up to _BUFFER_BYTES is counted into memory and each array
    # written once (zarr spends ~1.5 ms of CPU per array created or written: a
    # third of a quick build went there); a larger one is written block by block
    # as the counts arrive.
    buffered = sum(4 * math.prod(shape) for shape in shapes.values()) <= _BUFFER_BYTES
    arrays: dict[str, Any] = {
        name: (
            np.zeros(shape, dtype=np.int32)
            if buffered
            else group.create_array(
                name,
                shape=shape,
                chunks=(chunk_rows, *shape[1:]),
                dtype=np.int32,
            )
        )
        for name, shape in shapes.items()
    }
    passing = (
        np.ones(num_variants, dtype=bool)
        if variant_pass is None
        else np.asarray(variant_pass, dtype=bool)
    )
    group.create_array("variant_pass", data=passing, chunks=(chunk_rows,))
    blocks = [
        (start, min(start + step, num_variants))
        for start in range(0, num_variants, step)
    ]
    arguments = (populations.sample_cells, populations.membership)

    def write(start: int, counts: dict[str, np.ndarray]) -> None:
        for name, values in counts.items():
            arrays[name][start : start + len(values)] = values
        if on_rows is not None:
            on_rows(len(counts["allele_number"]))

    with scheduler_client(scheduler, worker_wait=worker_wait) as client:
        if client is None:
            # Runs of blocks at a time: the next slab is decoded while the last
            # is counted only within one call, and a call's tables stay small.
            width = num_alts + 3
            table_bytes = max(1, populations.membership.shape[0] * width * width * 8)
            run = max(1, _TABLE_BYTES // table_bytes // step)
            for first in range(0, len(blocks), run):
                start, stop = (
                    blocks[first][0],
                    blocks[min(first + run, len(blocks)) - 1][1],
                )
                write(start, count_rows(opened, start, stop, *arguments))
        else:
            from distributed import as_completed

            source = GenotypeSource.of(
                handle.node, handle.id, manifest["fingerprint"], vcz
            )

            cells, membership = (
                client.scatter(value, broadcast=True) for value in arguments
            )
            starts: dict[str, int] = {}
            # as_completed finds its client as the current one.
            with client.as_current():
                queue = as_completed()
                remaining = list(blocks)

                def submit() -> None:
                    start, stop = remaining.pop(0)
                    future = client.submit(
                        count_rows,
                        source,
                        start,
                        stop,
                        cells,
                        membership,
                        pure=False,
                    )
                    starts[future.key] = start
                    queue.add(future)

                # At most _IN_FLIGHT results wait to be written: bounded memory.
                for _ in range(min(_IN_FLIGHT, len(remaining))):
                    submit()
                for future in queue:
                    write(starts.pop(future.key), future.result())
                    future.release()
                    if remaining:
                        submit()
    if buffered:
        for name, values in arrays.items():
            group.create_array(
                name, data=values, chunks=(chunk_rows, *values.shape[1:])
            )
    samples = populations.num_samples
    # One write of the group's metadata, not one per attribute.
    group.update_attributes(
        {
            "format_version": FORMAT_VERSION,
            "dataset_id": handle.id,
            "populations": populations.names,
            "population_samples": [int(value) for value in samples],
            "cell_samples": populations.cell_samples(),
            "qc": sample_pass is not None or variant_pass is not None,
            "built_at": started.isoformat(timespec="seconds"),
        }
    )
    where: pathlib.Path | str = target
    if as_objects:
        prefix = handle.node.dataset_prefix(handle.id, manifest["fingerprint"])
        try:
            where = publish_objects(
                handle.node,
                handle.id,
                manifest["fingerprint"],
                REFERENCE_OBJECTS,
                temporary,
                # A plain build of before (e.g. encrypt_at_rest set since).
                replaces=(f"{prefix}/{target.name}",),
            )
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
    else:
        # Replace the previous build whole: readers see the old or the new one.
        old = target.with_name(f"{target.name}.old-{os.getpid()}")
        if target.exists():
            target.rename(old)
        temporary.rename(target)
        shutil.rmtree(old, ignore_errors=True)
        # A build kept as objects before (the node sealed then) would hide it.
        shutil.rmtree(dataset_directory / REFERENCE_OBJECTS, ignore_errors=True)
    return BuildResult(
        dataset_id=handle.id,
        path=where,
        populations=populations.names,
        population_samples=[int(value) for value in samples],
        num_variants=int(num_variants),
        num_variants_pass=int(passing.sum()),
        qc=sample_pass is not None or variant_pass is not None,
        seconds=(dt.datetime.now(dt.UTC) - started).total_seconds(),
    )


def build_reference(
    node: Node,
    *,
    dataset_ids: list[str] | None = None,
    on_rows: Callable[[int], None] | None = None,
) -> list[BuildResult]:
    """Build the reference of every published dataset with genotypes (or those
    named), with its QC flags (:func:`qc_masks`), on the node's Dask scheduler
    when the ``dask_scheduler`` setting names one."""
    published = PublishedDatasets(node)
    handles = published.datasets()
    if dataset_ids:
        known = {handle.id: handle for handle in handles}
        missing = [name for name in dataset_ids if name not in known]
        if missing:
            raise NotFoundError(f"no published dataset {', '.join(missing)}")
        handles = [known[name] for name in dataset_ids]
    scheduler = node.config.values.get("dask_scheduler")
    results = []
    for handle in handles:
        if handle.site_counts is not None:
            continue  # a sites-only dataset: no genotypes to count
        sample_pass, variant_pass = qc_masks(node, handle.id)
        results.append(
            build_dataset_reference(
                handle,
                sample_pass=sample_pass,
                variant_pass=variant_pass,
                scheduler=scheduler,
                worker_wait=node.config.dask_worker_wait,
                on_rows=on_rows,
            )
        )
    return results
