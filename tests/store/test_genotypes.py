"""The per-variant read path of GenotypeStore on real files, against bcftools/pysam."""

from __future__ import annotations

import dataclasses
import gzip
import shutil

import numpy as np
import pysam
import pytest
import zarr

from genomenode.errors import NotFoundError, StoreError
from genomenode.ingest import ingest
from genomenode.store import genotypes as genotypes_module
from genomenode.store.genotypes import (
    BY_VARIANT,
    GenotypeStore,
    by_variant_chunk_length,
)
from genomenode.store.population_counts import naive_population_counts

from ..conftest import (
    DATA,
    fill_tags,
    genotype_tally,
    write_dataset_yaml,
    write_small_cohort,
)


def _store(node, dataset_id) -> GenotypeStore:
    manifest = node.dataset_manifest(dataset_id)
    return GenotypeStore(
        node.datasets_dir / dataset_id / "genotypes.vcz",
        manifest["genotypes"]["contigs"],
    )


@pytest.fixture(scope="module")
def cineca(tmp_path_factory):
    """The 1000 Genomes slice (2,504 samples), ingested once: (store, vcf)."""
    from genomenode.store.node import init_node

    from ..conftest import CINECA_INDIVIDUALS, CINECA_VCF

    directory = tmp_path_factory.mktemp("cineca")
    shutil.copy(CINECA_VCF, directory / "cohort.vcf.gz")
    shutil.copy(CINECA_INDIVIDUALS, directory / "individuals.json")
    dataset = write_dataset_yaml(directory, id="cineca-1kg")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GENOMENODE_WORKER_PROCESSES", "0")
        node = init_node(directory / "node", node_id="n", country="FI")
        ingest(node, dataset)
    yield _store(node, "cineca-1kg"), directory / "cohort.vcf.gz"
    node.close()


@pytest.fixture(scope="module")
def chrx(tmp_path_factory):
    """Real chrX (1,126 samples; males written ``0/.``), ingested once."""
    from genomenode.store.node import init_node

    directory = tmp_path_factory.mktemp("chrx")
    vcf = directory / "cohort.vcf.gz"
    plain = directory / "cohort.vcf"
    source = DATA / "realvcf" / "1KG_phase3_subset_chrX.vcf.gz"
    plain.write_bytes(gzip.decompress(source.read_bytes()))
    pysam.tabix_compress(str(plain), str(vcf))
    with pysam.VariantFile(str(vcf)) as handle:
        samples = list(handle.header.samples)
    (directory / "clinical.csv").write_text(
        "sample,sex\n" + "".join(f"{sample},unknown\n" for sample in samples)
    )
    dataset = write_dataset_yaml(
        directory,
        id="chrx",
        clinical={
            "format": "csv",
            "path": "clinical.csv",
            "columns": {"id": "sample", "sex": "sex"},
        },
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GENOMENODE_WORKER_PROCESSES", "0")
        node = init_node(directory / "node", node_id="n", country="FI")
        ingest(node, dataset)
    yield _store(node, "chrx"), vcf
    node.close()


def _stored_statistics(store: GenotypeStore) -> dict[str, np.ndarray]:
    return {
        name: store.root[name][:]
        for name in (
            "variant_allele_count",
            "variant_allele_total",
            "variant_allele_count_hom",
            "variant_allele_count_het",
            "variant_allele_count_hemi",
            "variant_num_called",
        )
    }


@pytest.fixture(params=["cineca", "chrx"])
def real(request):
    return request.getfixturevalue(request.param)


def test_genotypes_equal_call_genotype(real):
    store, _vcf = real
    call_genotype = store.root["call_genotype"][:]
    row_bytes = call_genotype.shape[1] * call_genotype.shape[2]
    assert store.root[BY_VARIANT].chunks[0] == by_variant_chunk_length(
        10_000, row_bytes
    )
    assert store.root[BY_VARIANT].chunks[0] == 50
    for row in range(len(call_genotype)):
        np.testing.assert_array_equal(store.genotypes(row), call_genotype[row])
    assert not store.genotypes(0).flags.writeable


def test_population_counts_add_up_to_stored_statistics(real):
    store, vcf = real
    statistics = _stored_statistics(store)
    tally = genotype_tally(vcf)
    num_samples = len(store.samples)
    rng = np.random.default_rng(11)
    # Random groups covering every sample: their sums are dataset-wide counts.
    groups = rng.integers(0, 4, size=num_samples)
    for row, record in enumerate(tally):
        for allele in range(len(record["alleles"])):
            counts = store.population_counts(row, allele, groups, 4)
            assert counts.allele_count.sum() == record["allele_count"][allele]
            assert counts.allele_total.sum() == record["allele_total"]
            assert counts.allele_count_hom.sum() == record["allele_count_hom"][allele]
            assert counts.allele_count_het.sum() == record["allele_count_het"][allele]
            hemi = record["allele_count_hemi"][allele]
            assert counts.allele_count_hemi.sum() == hemi
            assert counts.num_called.sum() == record["num_called"]
            for name in ("count", "count_hom", "count_het", "count_hemi"):
                stored = statistics[f"variant_allele_{name}"][row, allele]
                assert getattr(counts, f"allele_{name}").sum() == stored
            assert counts.allele_total.sum() == statistics["variant_allele_total"][row]


def test_population_counts_equal_naive_twin_with_excluded_samples(real):
    store, _vcf = real
    rng = np.random.default_rng(5)
    groups = rng.integers(-1, 6, size=len(store.samples))
    num_rows = store.root["variant_position"].shape[0]
    for row in rng.choice(num_rows, size=min(num_rows, 60), replace=False):
        row = int(row)
        fast = store.population_counts(row, 1, groups, 6)
        naive = naive_population_counts(store.genotypes(row), 1, groups, 6)
        for field in dataclasses.fields(fast):
            assert (
                getattr(fast, field.name).tolist()
                == getattr(naive, field.name).tolist()
            ), (row, field.name)


def _pysam_carriers(vcf) -> list[dict[int, list[int]]]:
    """Per record: allele -> indices of samples whose GT has that allele (pysam)."""
    records = []
    with pysam.VariantFile(str(vcf)) as handle:
        samples = list(handle.header.samples)
        for record in handle:
            carriers: dict[int, list[int]] = {}
            for index, sample in enumerate(samples):
                for allele in set(record.samples[sample]["GT"]):
                    if allele is not None:
                        carriers.setdefault(allele, []).append(index)
            records.append(carriers)
    return records


def test_carriers_equal_pysam(real):
    store, vcf = real
    for row, expected in enumerate(_pysam_carriers(vcf)):
        num_alleles = sum(1 for allele in store.alleles(row, row + 1)[0] if allele)
        for allele in range(1, num_alleles):
            carriers = store.carriers(row, allele)
            assert carriers.tolist() == expected.get(allele, []), (row, allele)
            calls = store.carrier_calls(row, allele)
            assert calls.samples.tolist() == carriers.tolist()


def test_carrier_zygosity_on_chrx(chrx):
    store, _vcf = chrx
    # Males are written 1/. in this file: hemizygous carriers, as bcftools counts
    # them (AC_Hemi).
    zygosities = set()
    for row in range(0, store.root["variant_position"].shape[0], 7):
        calls = store.carrier_calls(row, 1)
        zygosity = calls.zygosity()
        zygosities.update(zygosity)
        hemi = store.root["variant_allele_count_hemi"][row, 1]
        assert zygosity.count("hemizygous") == hemi
    assert zygosities == {"heterozygous", "homozygous", "hemizygous"}


def test_chrx_counts_equal_bcftools_fill_tags(chrx):
    """Real chrX (males ``0/.``, ``1/.``): the stored statistics, and the counts of
    two groups of samples, are ``bcftools +fill-tags``' on the file and on each
    group's samples (the per-population rows of ``frequencyInPopulations``)."""
    store, vcf = chrx
    statistics = _stored_statistics(store)
    samples = store.samples
    groups = np.arange(len(samples)) % 2
    expected_all = fill_tags(vcf)
    expected_groups = [fill_tags(vcf, list(samples[group::2])) for group in (0, 1)]
    assert len(expected_all) == len(statistics["variant_allele_total"]) == 1069
    names = {"AC": "", "AC_Hom": "_hom", "AC_Het": "_het", "AC_Hemi": "_hemi"}
    num_hemi = 0
    for row, expected in enumerate(expected_all):
        alternates = len(expected["AC"])
        assert statistics["variant_allele_total"][row] == expected["AN"], row
        assert statistics["variant_num_called"][row] == expected["NS"], row
        for tag, suffix in names.items():
            stored = statistics[f"variant_allele_count{suffix}"][row]
            assert stored[1 : 1 + alternates].tolist() == expected[tag], (row, tag)
        num_hemi += sum(expected["AC_Hemi"])
        counts = store.population_counts(row, 1, groups, 2)
        for group in (0, 1):
            tags = expected_groups[group][row]
            assert (
                counts.allele_count[group],
                counts.allele_total[group],
                counts.num_called[group],
                counts.allele_count_hom[group],
                counts.allele_count_het[group],
                counts.allele_count_hemi[group],
            ) == (
                tags["AC"][0],
                tags["AN"],
                tags["NS"],
                tags["AC_Hom"][0],
                tags["AC_Het"][0],
                tags["AC_Hemi"][0],
            ), (row, group)
    # The file's males are all partly missing calls: the case this test is for.
    assert num_hemi > 1000


def test_carriers_equal_bcftools_subset(cineca):
    """``bcftools query -s`` (a subset of samples) on the commonest ALT alleles."""
    store, vcf = cineca
    samples = store.samples
    chosen = samples[::37]
    out = pysam.bcftools.query(
        "-s", ",".join(chosen), "-f", "[%GT\t]\n", str(vcf)
    ).splitlines()
    common = np.argsort(store.root["variant_allele_count"][:, 1])[-40:]
    for row in common.tolist():
        calls = out[row].rstrip("\t").split("\t")
        expected = [
            sample
            for sample, call in zip(chosen, calls, strict=True)
            if "1" in call.replace("|", "/").split("/")
        ]
        carriers = {samples[index] for index in store.carriers(row, 1)}
        assert [sample for sample in chosen if sample in carriers] == expected
        assert expected


def test_unknown_rows_and_alleles_are_not_found(cineca):
    store, _vcf = cineca
    num_rows = store.root["variant_position"].shape[0]
    with pytest.raises(NotFoundError):
        store.genotypes(num_rows)
    with pytest.raises(NotFoundError):
        store.carriers(0, store.root["variant_allele"].shape[1])
    with pytest.raises(NotFoundError):
        store.population_counts(0, -1, np.zeros(len(store.samples), np.int64), 1)


def test_genotype_cache_is_bounded(cineca, monkeypatch):
    store, _vcf = cineca
    fresh = GenotypeStore(store.path, store.contigs)
    chunk_bytes = 50 * len(store.samples) * 2
    monkeypatch.setattr(genotypes_module, "_CACHED_GENOTYPE_BYTES", 3 * chunk_bytes)
    for row in range(0, store.root["variant_position"].shape[0], 50):
        fresh.genotypes(row)
    # The last chunk of 1,042 rows holds 42: three chunks fit, the last partial.
    assert len(fresh._genotype_chunks) == 3
    cached = sum(chunk.nbytes for chunk in fresh._genotype_chunks.values())
    assert fresh._genotype_bytes == cached <= 3 * chunk_bytes


def test_store_without_the_copy_says_to_reingest(cineca, tmp_path):
    store, _vcf = cineca
    old = tmp_path / "old.vcz"
    shutil.copytree(store.path, old)
    shutil.rmtree(old / BY_VARIANT)
    older = GenotypeStore(old, store.contigs)
    # Counts from the stored statistics still work; per-sample reads say why not.
    assert older.counts(0).allele_total > 0
    with pytest.raises(StoreError, match="re-ingest"):
        older.genotypes(0)


@pytest.mark.parametrize(
    ("variants_chunk_size", "length"),
    [(10_000, 50), (64, 64), (128, 64), (37, 37), (97, 1), (1, 1), (60, 60), (90, 45)],
)
def test_chunk_length_divides_the_block(variants_chunk_size, length):
    assert by_variant_chunk_length(variants_chunk_size, 2 * 2504) == length


@pytest.mark.parametrize(
    ("variants_chunk_size", "samples", "length"),
    [
        (10_000, 10_000, 50),  # 64 rows fit: the divisor below
        (1_100, 20_000, 25),  # 32 rows fit (the chunk size ingest picks, pipeline.py)
        (200, 100_000, 5),  # 6 rows fit: 1 MB, not 50 rows' 10 MB
        (100, 1_000_000, 1),  # a row is 2 MB: one a chunk
        (97, 100_000, 1),  # a prime block: one row
    ],
)
def test_chunk_length_is_bounded_in_bytes(variants_chunk_size, samples, length):
    """A one-variant read (a carriers query) decodes a whole chunk: with many
    samples a chunk holds fewer variants, up to 1.28 MB of diploid calls."""
    chosen = by_variant_chunk_length(variants_chunk_size, samples * 2)
    assert chosen == length
    assert variants_chunk_size % chosen == 0
    assert chosen == 1 or chosen * samples * 2 <= 64 * 10_000 * 2


@pytest.mark.slow
@pytest.mark.parametrize("variants_chunk_size", ["37", "130"])
def test_odd_chunk_sizes_with_two_workers(tmp_path, monkeypatch, variants_chunk_size):
    """Blocks of 37 rows (chunks of 37) and 130 (chunks of 65, last one partial)."""
    from genomenode.store.node import init_node

    monkeypatch.setenv("GENOMENODE_WORKER_PROCESSES", "2")
    monkeypatch.setenv("GENOMENODE_VARIANTS_CHUNK_SIZE", variants_chunk_size)
    dataset = write_small_cohort(tmp_path / "in", num_variants=301)
    with init_node(tmp_path / "node", node_id="n", country="FI") as node:
        ingest(node, dataset)
        root = zarr.open_group(node.datasets_dir / "small" / "genotypes.vcz", mode="r")
        by_variant = root[BY_VARIANT]
        row_bytes = by_variant.shape[1] * by_variant.shape[2]
        assert by_variant.chunks[0] == by_variant_chunk_length(
            int(variants_chunk_size), row_bytes
        )
        np.testing.assert_array_equal(by_variant[:], root["call_genotype"][:])


def test_blocks_too_big_for_memory_are_read_in_slabs(cineca, tmp_path, monkeypatch):
    """A slab of one copy chunk (50 rows) gives the same statistics and copy."""
    store, _vcf = cineca
    vcz = tmp_path / "copy.vcz"
    shutil.copytree(store.path, vcz)
    monkeypatch.setattr(genotypes_module, "_SLAB_BYTES", 1)
    genotypes_module.create_genotypes_by_variant(vcz, 10_000)
    num_variants = store.root["variant_position"].shape[0]
    statistics = genotypes_module.statistics_for_rows(str(vcz), 0, num_variants)
    for name, values in statistics.items():
        np.testing.assert_array_equal(values, store.root[name][:], err_msg=name)
    copied = zarr.open_group(vcz, mode="r")[BY_VARIANT][:]
    np.testing.assert_array_equal(copied, store.root["call_genotype"][:])


def test_tasks_must_write_whole_chunks(cineca, tmp_path):
    store, _vcf = cineca
    vcz = tmp_path / "copy.vcz"
    shutil.copytree(store.path, vcz)
    with pytest.raises(ValueError, match="not whole chunks of 50"):
        genotypes_module.statistics_for_rows(str(vcz), 25, 100)


def test_chunk_files_read_as_zarr_reads_them(cineca, tmp_path):
    """The direct chunk reader equals zarr, also for an unwritten (missing) chunk."""
    store, _vcf = cineca
    vcz = tmp_path / "copy.vcz"
    shutil.copytree(store.path, vcz)
    (vcz / BY_VARIANT / "3.0.0").unlink()
    direct = GenotypeStore(vcz, store.contigs)
    through_zarr = GenotypeStore(vcz, store.contigs)
    through_zarr._plain_chunks = False  # the fallback for other layouts
    expected = zarr.open_group(vcz, mode="r")[BY_VARIANT][:]
    assert (expected[150:200] == -1).all()
    for row in range(expected.shape[0]):
        np.testing.assert_array_equal(direct.genotypes(row), expected[row])
        np.testing.assert_array_equal(through_zarr.genotypes(row), expected[row])
