"""Encryption at rest (``encrypt_at_rest``): no genotype and no sample id can be
read from any file of a sealed dataset without the node's key, the sealed store
answers exactly as a plain one, and a chunk moved elsewhere does not decrypt.

The scan is first run on the plain node, where it must find what was planted:
so it is a scan that can fail.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import subprocess
import sys

import numcodecs
import numpy as np
import pytest

from genomenode.errors import StoreError
from genomenode.ingest.pipeline import ingest
from genomenode.store.node import init_node, open_node
from genomenode.store.published import PublishedDatasets

from ..conftest import in_process_workers, write_small_cohort

DATASET = "small"
PLANTED_ROW = 5
_CODECS = [
    numcodecs.Blosc(),
    numcodecs.Zstd(),
    numcodecs.LZ4(),
    numcodecs.Zlib(),
    numcodecs.GZip(),
    numcodecs.BZ2(),
    numcodecs.LZMA(),
]


def _decodings(data: bytes) -> list[bytes]:
    """The bytes themselves and every decompression of them that succeeds."""
    found = [data]
    for codec in _CODECS:
        try:
            found.append(bytes(codec.decode(data)))
        except Exception:
            continue
    return found


def _readable(directory: pathlib.Path, needles: list[bytes]) -> set[bytes]:
    """The needles found in any file under ``directory``, raw or decompressed."""
    found: set[bytes] = set()
    for path in directory.rglob("*"):
        if not path.is_file():
            continue
        for decoded in _decodings(path.read_bytes()):
            found |= {needle for needle in needles if needle in decoded}
    return found


def _ingest(node_dir: pathlib.Path, cohort: pathlib.Path, *, sealed: bool):
    os.environ["GENOMENODE_ENCRYPT_AT_REST"] = "true" if sealed else "false"
    try:
        with in_process_workers():
            node = init_node(node_dir, node_id="fi-node", country="FI")
            ingest(node, cohort)
    finally:
        os.environ.pop("GENOMENODE_ENCRYPT_AT_REST")
    return node


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    directory = tmp_path_factory.mktemp("sealed-cohort")
    return write_small_cohort(directory, num_samples=50, num_variants=240, seed=11)


@pytest.fixture(scope="module")
def nodes(tmp_path_factory, cohort):
    root = tmp_path_factory.mktemp("sealed")
    plain = _ingest(root / "plain", cohort, sealed=False)
    sealed = _ingest(root / "sealed", cohort, sealed=True)
    yield {"plain": plain, "sealed": sealed}
    plain.close()
    sealed.close()


def _needles(node) -> list[bytes]:
    handle = PublishedDatasets(node).get(DATASET)
    calls = np.ascontiguousarray(handle.store.genotypes(PLANTED_ROW)).tobytes()
    samples = [sample.encode() for sample in handle.store.samples]
    # A run of the planted variant's calls long enough to be unique, and the ids
    # of the first and last samples.
    return [calls, samples[0] + b"\x04", samples[-1]]


def test_nothing_is_readable_from_a_sealed_dataset(nodes):
    needles = _needles(nodes["plain"])
    plain_found = _readable(nodes["plain"].datasets_dir / DATASET, needles)
    assert needles[0] in plain_found and needles[2] in plain_found  # the scan works
    sealed_dir = nodes["sealed"].datasets_dir / DATASET
    assert _readable(sealed_dir, needles) == set()
    vcz = sealed_dir / "genotypes.vcz"
    for path in vcz.rglob("*"):
        if path.is_file() and path.name != "genomenode-at-rest.json":
            # Not even the arrays' metadata is plaintext JSON. (Not "starts with
            # {": a sealed object's first byte is random, and 1 in 256 is a brace.)
            assert not _is_json(path.read_bytes()), path


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:  # not UTF-8, or not JSON
        return False
    return True


def test_the_sealed_store_answers_exactly_as_the_plain_one(nodes):
    plain = PublishedDatasets(nodes["plain"]).get(DATASET)
    sealed = PublishedDatasets(nodes["sealed"]).get(DATASET)
    assert plain is not None and sealed is not None
    assert sealed.store.samples == plain.store.samples
    groups, names = plain.population_groups
    for row in range(plain.facts.num_variants):
        assert sealed.store.counts(row) == plain.store.counts(row)
        np.testing.assert_array_equal(
            sealed.store.genotypes(row), plain.store.genotypes(row)
        )
        np.testing.assert_array_equal(
            sealed.store.carriers(row, 1), plain.store.carriers(row, 1)
        )
        counted = sealed.store.population_counts(row, 1, groups, len(names))
        expected = plain.store.population_counts(row, 1, groups, len(names))
        for field in dataclasses.fields(expected):
            np.testing.assert_array_equal(
                getattr(counted, field.name), getattr(expected, field.name)
            )
    assert list(sealed.sample_variants(3)) == list(plain.sample_variants(3))
    assert sealed.num_alleles == plain.num_alleles


def test_a_chunk_moved_to_another_place_does_not_decrypt(nodes, tmp_path):
    source = nodes["sealed"].config.node_dir
    copy = tmp_path / "copy"
    shutil.copytree(source, copy)
    vcz = copy / "store" / "datasets" / DATASET / "genotypes.vcz"
    by_variant = vcz / "call_genotype_by_variant"
    first, second = sorted(p for p in by_variant.iterdir() if p.name[0].isdigit())[:2]
    first.write_bytes(second.read_bytes())  # a valid sealed chunk, wrong place
    with open_node(copy) as node:
        handle = PublishedDatasets(node).get(DATASET)
        length = handle.store.array("call_genotype_by_variant").chunks[0]
        row = int(first.name.split(".")[0]) * length
        with pytest.raises(StoreError, match="does not decrypt"):
            handle.store.genotypes(row)


def test_another_node_key_reads_nothing(nodes, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(nodes["sealed"].config.node_dir, copy)
    other = init_node(tmp_path / "other", node_id="x", country="FI")
    other.close()
    for name in ("node.sec", "node.pub"):
        shutil.copy(tmp_path / "other" / "keys" / name, copy / "keys" / name)
    with open_node(copy) as node:
        handle = PublishedDatasets(node).get(DATASET)
        with pytest.raises(StoreError, match="does not decrypt"):
            handle.store.counts(0)


def test_an_ingest_killed_while_sealing_resumes_to_the_same_store(
    tmp_path, cohort, nodes
):
    node_dir = tmp_path / "node"
    init_node(node_dir, node_id="fi-node", country="FI").close()
    environment = dict(
        os.environ,
        GENOMENODE_ENCRYPT_AT_REST="true",
        GENOMENODE_WORKER_PROCESSES="0",
        PYTHONPATH=str(pathlib.Path(__file__).resolve().parents[2] / "src"),
    )
    command = [sys.executable, "-m", "genomenode", "ingest", "--node", str(node_dir)]
    killed = subprocess.run(
        [*command, str(cohort)],
        env={**environment, "GENOMENODE_TEST_KILL_AT": "publish:sealed"},
        capture_output=True,
        text=True,
    )
    assert killed.returncode == -9, killed.stderr
    with open_node(node_dir) as node:
        assert PublishedDatasets(node).datasets() == []
    resumed = subprocess.run(
        [*command, str(cohort)], env=environment, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    with open_node(node_dir) as node:
        handle = PublishedDatasets(node).get(DATASET)
        reference = PublishedDatasets(nodes["plain"]).get(DATASET)
        for row in range(reference.facts.num_variants):
            np.testing.assert_array_equal(
                handle.store.genotypes(row), reference.store.genotypes(row)
            )
        vcz = node.datasets_dir / DATASET / "genotypes.vcz"
        assert (vcz / "genomenode-at-rest.json").exists()
        assert not vcz.with_name("genotypes.vcz.sealed").exists()
