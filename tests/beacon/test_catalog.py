"""The published-dataset handles: fast scans against their obvious twins."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy

from genomenode.beacon.catalog import Catalog
from genomenode.node import open_node
from genomenode.store.generation import bump_generation


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


def test_the_database_is_read_only_when_the_signal_changes(node):
    """Per call the catalog reads the generation's signal file, not the database;
    a change committed by another process (another Node on the same directory)
    is seen on the very next call."""
    catalog = Catalog(node, refresh_seconds=3600)
    statements: list[str] = []
    sqlalchemy.event.listen(
        node.engine,
        "before_cursor_execute",
        lambda *arguments: statements.append(arguments[2]),
    )
    assert catalog.datasets() == []
    read_first = len(statements)
    assert read_first > 0
    for _ in range(10):
        catalog.datasets()
    assert len(statements) == read_first
    with (
        open_node(node.config.node_dir) as other,
        other.session() as session,
        session.begin(),
    ):
        bump_generation(session)
    catalog.datasets()
    assert len(statements) > read_first
