"""Bounded memory: a large cohort gets shorter chunks of variants, so that what
bio2zarr's encode buffers (one chunk of variants for all samples) and what a
statistics task holds stay about the same whatever the number of samples.

The measurement itself (peak RSS of ingest at 2,000 against 8,000 samples) is
``python bench/scale.py --memory``; here, the chunking that bounds it.
"""

from __future__ import annotations

import zarr

from genomenode.ingest.pipeline import ingest
from genomenode.store.node import init_node
from genomenode.store.published import PublishedDatasets

from ..conftest import write_small_cohort


def test_a_large_cohort_is_chunked_to_bound_the_encode_buffer(tmp_path):
    cohort = write_small_cohort(tmp_path / "c", num_samples=3000, num_variants=40)
    with init_node(tmp_path / "node", node_id="n", country="FI") as node:
        ingest(node, cohort)
        vcz = node.datasets_dir / "small" / "genotypes.vcz"
        root = zarr.open_group(vcz, mode="r")
        # 64 MiB / (3,000 samples × 3 bytes) = 7,456 rows, rounded down to 7,400.
        assert root["call_genotype"].chunks[:2] == (7400, 1000)
        assert root["variant_position"].chunks == (7400,)
        assert root["call_genotype_by_variant"].chunks[0] == 50
        handle = PublishedDatasets(node).get("small")
        stored = handle.store.read("variant_allele_count", 0, 40)
        assert stored.sum() == 40 * 3000 * 2 - (40 // 17 + 1) * 2


def test_a_small_cohort_keeps_the_setting(tmp_path):
    cohort = write_small_cohort(tmp_path / "c", num_samples=20, num_variants=30)
    with init_node(tmp_path / "node", node_id="n", country="FI") as node:
        ingest(node, cohort)
        root = zarr.open_group(node.datasets_dir / "small" / "genotypes.vcz", mode="r")
        assert root["call_genotype"].chunks[0] == 10_000
