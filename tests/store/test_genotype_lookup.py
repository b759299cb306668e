"""GenotypeStore's position lookup and stored counts against naive twins that
read the whole arrays with zarr."""

from __future__ import annotations

import os

import numpy as np
import pytest
import zarr

from genomenode.ingest import ingest
from genomenode.store.genotypes import GenotypeStore
from genomenode.store.node import init_node, open_node

from ..conftest import in_process_workers, write_small_cohort


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """200 variants over two contigs in chunks of 37 rows (the last partial), so
    that lookups cross chunk and contig boundaries."""
    directory = tmp_path_factory.mktemp("lookup")
    dataset_yaml = write_small_cohort(
        directory / "in", num_samples=20, num_variants=200, seed=5
    )
    os.environ["GENOMENODE_VARIANTS_CHUNK_SIZE"] = "37"
    try:
        with (
            in_process_workers(),
            init_node(directory / "node", node_id="n", country="FI") as node,
        ):
            ingest(node, dataset_yaml)
    finally:
        del os.environ["GENOMENODE_VARIANTS_CHUNK_SIZE"]
    with open_node(directory / "node") as node:
        contigs = node.dataset_manifest("small")["genotypes"]["contigs"]
        return GenotypeStore(node.datasets_dir / "small" / "genotypes.vcz", contigs)


def _naive_rows_at(store, contig, start, stop=None) -> list[int]:
    positions = zarr.open_group(store.path, mode="r")["variant_position"][:]
    first, last = store.contigs.get(contig, (0, 0))
    highest = start if stop is None else stop - 1
    return [row for row in range(first, last) if start <= positions[row] <= highest]


def test_rows_at_equals_a_scan(store):
    positions = store.positions(0, 200)
    edges = [-5, 0, 1, 2**31 - 1, 2**31, 2**40]
    asked = [int(value) for value in positions[::7]] + edges
    for contig in ("1", "2", "3"):
        for start in asked:
            assert list(store.rows_at(contig, start)) == _naive_rows_at(
                store, contig, start
            )
            for stop in [start + 1, start + 40, start + 2000, *edges]:
                assert list(store.rows_at(contig, start, stop)) == _naive_rows_at(
                    store, contig, start, stop
                )
    # The asked positions do find rows.
    assert list(store.rows_at("1", int(positions[0]))) == [0]


def test_counts_equal_the_stored_arrays(store):
    root = zarr.open_group(store.path, mode="r")
    arrays = {name: root[name][:] for name in root.array_keys()}
    contig_ids = list(arrays["contig_id"])
    assert root["variant_allele_total"].chunks == (37,)
    for row in range(len(arrays["variant_position"])):
        counts = store.counts(row)
        alleles = tuple(
            str(allele) for allele in arrays["variant_allele"][row] if allele
        )
        assert counts.alleles == alleles
        assert counts.contig == contig_ids[arrays["variant_contig"][row]]
        assert counts.position == arrays["variant_position"][row]
        assert counts.allele_count == tuple(
            arrays["variant_allele_count"][row][: len(alleles)].tolist()
        )
        assert counts.allele_total == arrays["variant_allele_total"][row]
        assert counts.num_called == arrays["variant_num_called"][row]
        assert counts.num_hom_ref == arrays["variant_num_hom_ref"][row]
        assert counts.num_het == arrays["variant_num_het"][row]
        assert counts.num_hom_alt == arrays["variant_num_hom_alt"][row]
    assert sum(store.counts(row).num_het for row in range(200)) > 0
    np.testing.assert_array_equal(
        store.read("variant_allele_total", 3, 150),
        arrays["variant_allele_total"][3:150],
    )
