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


def test_alleles_that_are_no_variant_are_left_out(tmp_path):
    """``*`` and ``<NON_REF>`` are not Beacon variants: not counted, not listed,
    not carried, wherever they sit among the ALT alleles."""
    from genomenode.store.genotypes import NOT_VARIANTS

    from ..conftest import write_dataset_yaml, write_vcf

    records = [
        "1\t100\t.\tA\tG\t.\tPASS\t.\tGT\t0/1\t0/0\t1/1",
        "1\t101\t.\tA\t*,C\t.\tPASS\t.\tGT\t1/2\t0/1\t2/2",
        "1\t102\t.\tA\tT,<NON_REF>\t.\tPASS\t.\tGT\t1/2\t2/2\t0/1",
        "1\t103\t.\tA\t*\t.\tPASS\t.\tGT\t0/1\t1/1\t0/0",
        "1\t104\t.\tA\tC,*,G\t.\tPASS\t.\tGT\t2/3\t1/2\t3/3",
    ]
    directory = tmp_path / "stars"
    directory.mkdir()
    write_vcf(directory / "cohort.vcf.gz", records)
    (directory / "clinical.csv").write_text("sample,sex\nS1,male\nS2,male\nS3,male\n")
    description = write_dataset_yaml(
        directory,
        id="stars",
        clinical={
            "format": "csv",
            "path": "clinical.csv",
            "columns": {"id": "sample", "sex": "sex"},
        },
    )
    with in_process_workers():
        node = init_node(tmp_path / "node", node_id="n", country="FI")
        ingest(node, description)
    try:
        handle = PublishedDatasets(node).get("stars")
        keys = [(0, 1), (1, 2), (2, 1), (4, 1), (4, 3)]
        assert handle.num_alleles == len(keys)
        assert list(handle.allele_keys(0, 100)) == keys
        assert list(handle.allele_keys(2, 2)) == keys[2:4]
        for sample in range(3):
            carried = list(handle.sample_variants(sample))
            assert carried == [
                key
                for key in _naive_sample_variants(handle, sample)
                if str(handle.store.alleles(key[0], key[0] + 1)[0][key[1]])
                not in NOT_VARIANTS
            ]
            assert set(carried) <= set(keys)
    finally:
        node.close()
