"""The published-dataset handles: fast scans against their obvious twins."""

from __future__ import annotations

import numpy as np
import pytest

from genomenode.beacon.catalog import Catalog


def _naive_sample_variants(handle, sample: int) -> list[tuple[int, int]]:
    genotypes = np.asarray(handle.store.root["call_genotype"][:, sample])
    return [
        (row, allele)
        for row in range(genotypes.shape[0])
        for allele in sorted({int(a) for a in genotypes[row] if a > 0})
    ]


@pytest.mark.parametrize("dataset_id", ["cineca-1kg", "sim-public"])
def test_sample_variants_equal_a_naive_scan(beacon_node, dataset_id):
    handle = Catalog(beacon_node).get(dataset_id)
    num_samples = handle.store.root["call_genotype"].shape[1]
    for sample in sorted({0, 1, num_samples // 2, num_samples - 1}):
        expected = _naive_sample_variants(handle, sample)
        assert expected  # someone carries something, or the check is empty
        assert list(handle.sample_variants(sample)) == expected
