"""QC and the reference build read the store through the node, wherever it is:
a node whose store is sealed (``encrypt_at_rest``) and a node whose sealed store
is in an S3 bucket (a real ``moto.server`` process) give the same QC results,
reference counts and allele frequencies as a plain local node.

The plain node reads the same VCF Zarr bytes the old path-based code read, so
it anchors the comparison; the other two could not be opened at all before
(zarr would have read sealed bytes, or a local directory that does not exist).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from genomenode.ingest.pipeline import ingest
from genomenode.qc.flags import load_flags, load_report
from genomenode.qc.run import run_qc
from genomenode.reference.build import build_reference
from genomenode.reference.store import ReferenceStore, reference_path
from genomenode.store.compute import allele_frequencies
from genomenode.store.genotype_rows import GenotypeSource
from genomenode.store.node import init_node

from ..conftest import in_process_workers, write_small_cohort
from ..scale.moto_server import BUCKET, s3_service

DATASET = "small"
_ARRAYS = (
    "allele_count",
    "allele_count_hom",
    "allele_count_het",
    "allele_count_hemi",
    "allele_number",
    "variant_pass",
)


@pytest.fixture(scope="module")
def s3():
    with s3_service() as service:
        saved = {name: os.environ.get(name) for name in service.environment()}
        os.environ.update(service.environment())
        try:
            yield service
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _node(directory, cohort, *, sealed, storage=None, endpoint=None):
    os.environ["GENOMENODE_ENCRYPT_AT_REST"] = "true" if sealed else "false"
    try:
        with in_process_workers():
            node = init_node(
                directory,
                node_id="fi-node",
                country="FI",
                storage=storage,
                storage_endpoint=endpoint,
            )
            ingest(node, cohort)
    finally:
        os.environ.pop("GENOMENODE_ENCRYPT_AT_REST")
    return node


@pytest.fixture(scope="module")
def nodes(tmp_path_factory, s3):
    directory = tmp_path_factory.mktemp("stores")
    cohort = write_small_cohort(
        directory / "cohort", num_samples=60, num_variants=300, seed=5
    )
    made = {
        "plain": _node(directory / "plain", cohort, sealed=False),
        "sealed": _node(directory / "sealed", cohort, sealed=True),
        "s3": _node(
            directory / "s3",
            cohort,
            sealed=True,
            storage=f"s3://{BUCKET}/stores-node",
            endpoint=s3.endpoint,
        ),
    }
    for node in made.values():
        run_qc(node, DATASET)
        build_reference(node)
    yield made
    for node in made.values():
        node.close()


def test_the_other_stores_are_not_plain_directories(nodes):
    for name in ("sealed", "s3"):
        node = nodes[name]
        manifest = node.dataset_manifest(DATASET)
        source = GenotypeSource.of(
            node, DATASET, manifest["fingerprint"], manifest["genotypes"]["path"]
        )
        assert source.node_dir and not source.path, name
        assert source.open().reads_copy
    assert nodes["s3"].remote and not nodes["sealed"].remote


@pytest.mark.parametrize("name", ["sealed", "s3"])
def test_qc_results_equal_the_plain_node(nodes, name):
    plain, other = (
        load_report(nodes["plain"], DATASET),
        load_report(nodes[name], DATASET),
    )
    assert other["summary"] == plain["summary"]
    assert other["samples"] == plain["samples"]
    assert other["related_pairs"] == plain["related_pairs"]
    expected, got = (
        load_flags(nodes["plain"], DATASET),
        load_flags(nodes[name], DATASET),
    )
    assert expected is not None and got is not None
    assert np.array_equal(got.sample_pass, expected.sample_pass)
    assert np.array_equal(got.variant_pass, expected.variant_pass)


@pytest.mark.parametrize("name", ["sealed", "s3"])
def test_reference_counts_equal_the_plain_node(nodes, name):
    def store(node):
        return ReferenceStore(reference_path(node.datasets_dir / DATASET))

    plain, other = store(nodes["plain"]), store(nodes[name])
    assert other.populations == plain.populations
    assert other.population_samples == plain.population_samples
    assert plain.qc and other.qc
    expected = plain.block(0, plain.num_variants)
    got = other.block(0, other.num_variants)
    for array in _ARRAYS:
        assert np.array_equal(got[array], expected[array]), array
    assert expected["allele_number"].sum() > 0


@pytest.mark.parametrize("name", ["sealed", "s3"])
def test_allele_frequencies_equal_the_plain_node(nodes, name):
    expected = allele_frequencies(nodes["plain"], DATASET)
    assert np.array_equal(allele_frequencies(nodes[name], DATASET), expected)
    assert 0 < expected.mean() < 1
