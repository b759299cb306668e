"""Genotype side of :mod:`genomenode.simulate` straight to VCF Zarr (no VCF text).

At 100,000 samples a 300 kb cohort is ~3 GB of VCF text that a node would then
parse again; bio2zarr's tskit converter writes the same calls as VCF Zarr
directly from the tree sequence. The sites, their alleles, the sample order and
names and the 1-based positions are those :func:`genomenode.simulate_vcf.write_vcf`
writes, so a cohort written both ways ingests to the same Beacon counts; what the
VCF Zarr lacks is the VCF's FORMAT ``DP``/``GQ`` and its INFO ``AC``/``AN``/``AF``
(docs/ingest.md: accepted inputs).
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tskit
from bio2zarr import tskit as bio2zarr_tskit

from .simulate_vcf import _ACGT
from .store.private import private_files

__all__ = ["kept_sites", "write_vcz"]

# Bytes of calls bio2zarr's encoder holds per chunk of variants (all samples).
_ENCODE_BUFFER_BYTES = 64 * 2**20


def kept_sites(ts: tskit.TreeSequence, *, keep_fixed: bool = False) -> np.ndarray:
    """Ids of the sites :func:`~genomenode.simulate_vcf.write_vcf` writes:
    biallelic ACGT sites carried by some, and (unless ``keep_fixed``) not all,
    of the samples."""
    keep = []
    for variant in ts.variants(copy=False):
        alleles = variant.alleles
        if len(alleles) != 2 or not all(allele in _ACGT for allele in alleles):
            continue
        count = int(np.count_nonzero(variant.genotypes))
        if count > 0 and (keep_fixed or count < ts.num_samples):
            keep.append(variant.site.id)
    return np.array(keep, dtype=np.int64)


@private_files()  # genotypes: 0600 files, 0700 directories
def write_vcz(
    ts: tskit.TreeSequence,
    path: str | Path,
    *,
    contig: str,
    sample_ids: Sequence[str],
    node_columns: np.ndarray,
    keep_fixed: bool = False,
    worker_processes: int = 0,
) -> int:
    """Write the biallelic SNVs of ``ts`` as VCF Zarr at ``path`` (replaced).

    Parameters are those of :func:`~genomenode.simulate_vcf.write_vcf`:
    ``node_columns`` gives each sample's two haplotypes as indices into
    ``ts.samples()``, in the order of ``sample_ids``.

    Returns
    -------
    int
        Number of variants written.
    """
    path = Path(path)
    keep = kept_sites(ts, keep_fixed=keep_fixed)
    dropped = np.setdiff1d(np.arange(ts.num_sites), keep)
    # Only the sites of the VCF; their mutations stay as they are.
    sites_ts = ts.delete_sites(dropped) if len(dropped) else ts
    # The individual of each VCF column, from its first haplotype's node.
    individuals = ts.nodes_individual[ts.samples()[node_columns[:, 0]]]
    mapping = sites_ts.map_to_vcf_model(
        individuals=individuals,
        individual_names=list(sample_ids),
        # tskit's positions are 0-based; VCF's POS is 1-based.
        position_transform=lambda positions: np.asarray(positions) + 1,
        contig_id=contig,
    )
    mapping = dataclasses.replace(mapping, contig_length=int(ts.sequence_length))
    num_samples = len(sample_ids)
    chunk = max(100, _ENCODE_BUFFER_BYTES // (3 * num_samples) // 100 * 100)
    partial = path.with_name(path.name + ".part")
    shutil.rmtree(partial, ignore_errors=True)
    bio2zarr_tskit.convert(
        sites_ts,
        partial,
        model_mapping=mapping,
        variants_chunk_size=chunk,
        samples_chunk_size=min(10_000, num_samples),
        worker_processes=worker_processes,
    )
    shutil.rmtree(path, ignore_errors=True)
    partial.rename(path)
    return int(sites_ts.num_sites)
