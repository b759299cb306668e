"""Building: the same counts on a real Dask cluster (scheduler and worker
processes) as in this process, QC masks honoured, bounded memory per task, and
the CLI over the library."""

from __future__ import annotations

import json
import pathlib
import tracemalloc

import numcodecs
import numpy as np
import zarr
from click.testing import CliRunner
from distributed import LocalCluster
from fastapi.testclient import TestClient

from genomenode.app import create_app
from genomenode.cli import cli
from genomenode.reference import build
from genomenode.reference.build import build_dataset_reference, count_rows
from genomenode.reference.service import reference_store
from genomenode.store.genotype_rows import GenotypeSource
from genomenode.store.published import PublishedDatasets


def _variant_id(handle, row: int) -> str:
    alleles = handle.store.alleles(row, row + 1)[0]
    position = int(handle.store.positions(row, row + 1)[0])
    return f"1-{position}-{alleles[0]}-{alleles[1]}"


ARRAYS = (
    "allele_count",
    "allele_count_hom",
    "allele_count_het",
    "allele_count_hemi",
    "allele_number",
)


def _arrays(path: pathlib.Path) -> dict[str, np.ndarray]:
    root = zarr.open_group(path, mode="r")
    return {name: np.asarray(root[name][:]) for name in (*ARRAYS, "variant_pass")}


def test_a_dask_cluster_builds_the_same_reference(reference_node, tmp_path):
    handle = PublishedDatasets(reference_node.node).get("kg")
    before = _arrays(reference_store(handle).path)
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        result = build_dataset_reference(handle, scheduler=cluster.scheduler_address)
    after = _arrays(result.path)
    for name in before:
        assert np.array_equal(before[name], after[name]), name


def test_a_reference_too_large_to_buffer_is_written_block_by_block(
    reference_node, monkeypatch
):
    handle = PublishedDatasets(reference_node.node).get("kg")
    before = _arrays(reference_store(handle).path)
    monkeypatch.setattr(build, "_BUFFER_BYTES", 0)
    written = []
    original = zarr.Array.__setitem__

    def counting(self, selection, value):
        written.append(self.name)
        return original(self, selection, value)

    monkeypatch.setattr(zarr.Array, "__setitem__", counting)
    after = _arrays(build_dataset_reference(handle).path)
    assert "/allele_count" in written  # the streaming path ran
    for name in before:
        assert np.array_equal(before[name], after[name]), name


def test_qc_masks_leave_out_samples_and_variants(reference_node):
    handle = PublishedDatasets(reference_node.node).get("kg")
    num_samples = handle.facts.num_samples
    sample_pass = np.ones(num_samples, dtype=bool)
    sample_pass[::2] = False
    variant_pass = np.ones(handle.facts.num_variants, dtype=bool)
    variant_pass[5] = False
    try:
        result = build_dataset_reference(
            handle, sample_pass=sample_pass, variant_pass=variant_pass
        )
        store = reference_store(handle)
        assert (
            store.qc and result.qc and result.num_variants_pass == len(variant_pass) - 1
        )
        assert store.counts(5, 1) is None  # a failing variant is not in the reference
        counts = store.counts(0, 1)
        index = counts.populations.index("FI")
        assert counts.allele_number[index] <= 2 * sample_pass.sum()
        assert store.population_samples[index] == sample_pass.sum()
        # The same as counting the passing samples' columns alone.
        genotypes = np.asarray(handle.store.genotypes(0))[sample_pass]
        assert counts.allele_count[index] == (genotypes == 1).sum()
        # The Beacon's frequencies are the reference's: QC-passing samples only,
        # and none for a QC-failing variant.
        app = create_app(reference_node.node, disclosure_enabled=False)
        with TestClient(app) as client:
            (first, fifth) = (
                client.get(
                    f"/api/g_variants/{variant}",
                    params={"requestedGranularity": "record"},
                ).json()["response"]["resultSets"][0]["results"][0]
                for variant in (_variant_id(handle, 0), _variant_id(handle, 5))
            )
        (fi,) = (
            item
            for item in first["frequencyInPopulations"][0]["frequencies"]
            if item["population"] == "FI"
        )
        assert fi["alleleNumber"] == counts.allele_number[index]
        assert "frequencyInPopulations" not in fifth
    finally:
        build_dataset_reference(handle)  # as the other tests expect it


def _peak_of_a_task(path: pathlib.Path, num_samples: int) -> tuple[int, int]:
    """Peak bytes of one task over 1,000 variants x ``num_samples`` stored in
    chunks of 1,000 x 500; and the bytes of its genotype matrix."""
    rng = np.random.default_rng(num_samples)
    root = zarr.open_group(path, mode="w")
    calls = root.create_array(
        "call_genotype",
        shape=(1_000, num_samples, 2),
        chunks=(1_000, 500, 2),
        dtype=np.int8,
    )
    calls[:] = rng.integers(-1, 2, (1_000, num_samples, 2), np.int8)
    root.create_array("variant_allele", shape=(1_000, 2), dtype=str)
    cells = rng.integers(0, 4, num_samples).astype(np.int32)
    membership = np.eye(4, dtype=np.int64)
    tracemalloc.start()
    counts = count_rows(str(path), 0, 1_000, cells, membership)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    everything = np.asarray(calls[:])
    assert counts["allele_number"][:, 0].tolist() == (
        (everything[:, cells == 0] >= 0).sum(axis=(1, 2)).tolist()
    )
    return peak, everything.nbytes


def test_a_task_holds_one_stored_chunk_not_the_cohort(tmp_path):
    """Memory is bounded by a stored chunk, whatever the number of samples."""
    small, _ = _peak_of_a_task(tmp_path / "small.vcz", 2_000)
    large, matrix = _peak_of_a_task(tmp_path / "large.vcz", 16_000)
    assert large < 1.5 * small, (small, large)
    assert large < matrix / 2, (large, matrix)


def test_the_cli_builds_and_exports(reference_node, tmp_path):
    node = str(reference_node.node.config.node_dir)
    runner = CliRunner()
    built = runner.invoke(
        cli, ["reference", "build", "--node", node, "--dataset", "kgx", "--json"]
    )
    assert built.exit_code == 0, built.output
    (item,) = json.loads(built.output)["datasets"]
    assert item["dataset_id"] == "kgx" and item["populations"]["FI"] == 1126
    out = tmp_path / "goe.parquet"
    exported = runner.invoke(
        cli,
        [
            "reference",
            "export",
            "--node",
            node,
            "--format",
            "parquet",
            "--out",
            str(out),
            "--json",
        ],
    )
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.output)["num_records"] > 1_000
    wrong = runner.invoke(
        cli,
        [
            "reference",
            "export",
            "--node",
            node,
            "--format",
            "vcf",
            "--out",
            str(tmp_path / "x.vcf"),
        ],
    )
    assert wrong.exit_code != 0 and ".vcf.gz" in wrong.output


def test_the_by_variant_copy_and_call_genotype_count_the_same(tmp_path):
    """The copy is decoded by hand (edges of blocks, chunks of missing calls
    only that are not stored); counts equal those read from ``call_genotype``."""
    rng = np.random.default_rng(3)
    values = rng.integers(-1, 3, (230, 70, 2)).astype(np.int8)
    values[:120, :, :] = np.minimum(values[:120], 1)  # biallelic rows: bit kernel
    values[50:100] = -1  # whole copy chunks of missing calls
    cells = rng.integers(-1, 3, 70)
    membership = np.eye(3, dtype=np.int64)
    counted = {}
    for with_copy in (False, True):
        path = tmp_path / f"copy-{with_copy}.vcz"
        root = zarr.open_group(path, mode="w", zarr_format=2)
        root.create_array("call_genotype", data=values, chunks=(100, 30, 2))
        root.create_array("variant_allele", shape=(230, 3), dtype=str)
        if with_copy:
            root.create_array(
                "call_genotype_by_variant",
                data=values,
                chunks=(25, 70, 2),
                fill_value=-1,
                compressors=numcodecs.Blosc(cname="lz4", shuffle=0),
            )
        source = GenotypeSource(path=str(path))
        assert source.open().reads_copy is with_copy
        counted[with_copy] = count_rows(source, 13, 207, cells, membership)
    assert not (
        tmp_path / "copy-True.vcz" / "call_genotype_by_variant" / "2.0.0"
    ).exists()
    for name, expected in counted[False].items():
        assert np.array_equal(counted[True][name], expected), name
    assert counted[True]["allele_number"].sum() > 0
