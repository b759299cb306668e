"""The published datasets: handles' fast scans against their obvious twins, and the
list read again when the datasets' generation moves."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy

from genomenode.ingest.pipeline import ingest
from genomenode.store.generation import bump_generation
from genomenode.store.node import init_node, open_node
from genomenode.store.published import PublishedDatasets

from ..conftest import in_process_workers, write_small_cohort


@pytest.fixture(scope="module")
def published_node(tmp_path_factory):
    root = tmp_path_factory.mktemp("published")
    with in_process_workers():
        node = init_node(root / "node", node_id="fi-node", country="FI")
        for dataset_id, seed in (("small-a", 1), ("small-b", 2)):
            ingest(
                node,
                write_small_cohort(root / dataset_id, dataset_id=dataset_id, seed=seed),
            )
    yield node
    node.close()


def _naive_sample_variants(handle, sample: int) -> list[tuple[int, int]]:
    genotypes = np.asarray(handle.store.root["call_genotype"][:, sample])
    return [
        (row, allele)
        for row in range(genotypes.shape[0])
        for allele in sorted({int(a) for a in genotypes[row] if a > 0})
    ]


@pytest.mark.parametrize("dataset_id", ["small-a", "small-b"])
def test_sample_variants_equal_a_naive_scan(published_node, dataset_id):
    handle = PublishedDatasets(published_node).get(dataset_id)
    num_samples = handle.store.root["call_genotype"].shape[1]
    for sample in sorted({0, 1, num_samples // 2, num_samples - 1}):
        expected = _naive_sample_variants(handle, sample)
        assert expected  # someone carries something, or the check is empty
        assert list(handle.sample_variants(sample)) == expected


def test_the_published_list_is_every_published_dataset_by_id(published_node):
    published = PublishedDatasets(published_node)
    assert [handle.id for handle in published.datasets()] == ["small-a", "small-b"]
    assert published.get("missing") is None
    # Unchanged facts keep their handle (and so what it has opened).
    first = published.get("small-a")
    assert published.get("small-a") is first


def test_the_database_is_read_only_when_the_signal_changes(node):
    """Per call the published datasets read the signal file, not the database;
    a change committed by another process (another Node on the same directory)
    is seen on the very next call."""
    published = PublishedDatasets(node, refresh_seconds=3600)
    statements: list[str] = []
    sqlalchemy.event.listen(
        node.engine,
        "before_cursor_execute",
        lambda *arguments: statements.append(arguments[2]),
    )
    assert published.datasets() == []
    read_first = len(statements)
    assert read_first > 0
    for _ in range(10):
        published.datasets()
    assert len(statements) == read_first
    with (
        open_node(node.config.node_dir) as other,
        other.session() as session,
        session.begin(),
    ):
        bump_generation(session)
    published.datasets()
    assert len(statements) > read_first
