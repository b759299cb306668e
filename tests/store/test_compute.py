"""The allele-frequency pass: its counting kernel against its obvious twin, and
the frequencies of a published dataset against ``bcftools +fill-tags``."""

from __future__ import annotations

import numpy as np
import pytest

from genomenode.access import removal
from genomenode.ingest import ingest
from genomenode.store.compute import allele_count_rows, allele_frequencies

from ..conftest import fill_tags, write_small_cohort


@pytest.mark.parametrize("shape", [(50, 300, 2), (7, 13, 1), (3, 1, 2), (4, 9, 2)])
def test_allele_count_rows_equals_summing_the_tests(shape):
    rng = np.random.default_rng(sum(shape))
    # Multi-allelic calls, missing (-1) and fill (-2) included.
    calls = rng.integers(-2, 4, size=shape).astype(np.int8)
    alternate, called = allele_count_rows(calls)
    assert alternate.tolist() == (calls > 0).sum(axis=(1, 2)).tolist()
    assert called.tolist() == (calls >= 0).sum(axis=(1, 2)).tolist()
    assert called.sum() > alternate.sum() > 0


def _fill_tags_frequencies(vcf) -> np.ndarray:
    """ALT allele frequency of each record by ``bcftools +fill-tags``: AC / AN."""
    return np.array([sum(row["AC"]) / max(row["AN"], 1) for row in fill_tags(vcf)])


def test_allele_frequencies_equal_bcftools_fill_tags(tmp_path, sqlite_node):
    # Two contigs, missing calls: every variant, in the VCF's order.
    dataset_yaml = write_small_cohort(tmp_path / "in", num_samples=40, seed=2)
    ingest(sqlite_node, dataset_yaml)
    expected = _fill_tags_frequencies(dataset_yaml.parent / "cohort.vcf.gz")
    frequencies = allele_frequencies(sqlite_node, "small")
    np.testing.assert_array_equal(frequencies, expected)
    # Asked again, from the store it keeps opened: the same numbers.
    np.testing.assert_array_equal(allele_frequencies(sqlite_node, "small"), expected)
    assert 0 < expected.mean() < 1


def test_a_dataset_published_again_is_opened_afresh(tmp_path, sqlite_node):
    """The opened store is kept by content: another cohort under the same id
    and path (fewer samples, other calls) is read as itself."""
    first = write_small_cohort(tmp_path / "first", num_samples=40, seed=2)
    ingest(sqlite_node, first)
    allele_frequencies(sqlite_node, "small")
    removal.remove(sqlite_node, "small", actor="operator")
    second = write_small_cohort(
        tmp_path / "second", num_samples=25, num_variants=300, seed=3
    )
    ingest(sqlite_node, second)
    expected = _fill_tags_frequencies(second.parent / "cohort.vcf.gz")
    np.testing.assert_array_equal(allele_frequencies(sqlite_node, "small"), expected)
