"""Ingest of real cohorts: counts against bcftools, metadata, encryption, no-ops."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pysam
import pytest
import zarr
from sqlalchemy import func, select

from genomenode.ingest import ingest
from genomenode.store.genotypes import GenotypeStore
from genomenode.store.models import Disease, Individual, Measure, StoredFile
from genomenode.store.node import open_node

from ..conftest import (
    CINECA_INDIVIDUALS,
    DATA,
    fill_tags,
    genotype_tally,
    write_dataset_yaml,
)


def _stored(node, dataset_id):
    root = zarr.open_group(node.datasets_dir / dataset_id / "genotypes.vcz", mode="r")
    return {
        name: root[name][:] for name in root.array_keys() if name != "call_genotype"
    }


def _assert_counts_match(node, dataset_id, vcf):
    """Every variant's stored counts equal a naive tally of bcftools' genotypes."""
    manifest = node.dataset_manifest(dataset_id)
    store = GenotypeStore(
        node.datasets_dir / dataset_id / "genotypes.vcz",
        manifest["genotypes"]["contigs"],
    )
    expected = genotype_tally(vcf)
    assert len(expected) == manifest["genotypes"]["num_variants"]
    arrays = _stored(node, dataset_id)
    for row, record in enumerate(expected):
        alleles = len(record["alleles"])
        stored_alleles = [str(a) for a in arrays["variant_allele"][row][:alleles]]
        assert stored_alleles == record["alleles"]
        for name in (
            "allele_count",
            "allele_count_hom",
            "allele_count_het",
            "allele_count_hemi",
        ):
            stored = list(arrays[f"variant_{name}"][row][:alleles])
            assert stored == record[name], (name, record["contig"], record["position"])
        assert arrays["variant_allele_total"][row] == record["allele_total"]
        assert arrays["variant_num_called"][row] == record["num_called"]
    # The position index finds every record by binary search; spot-check the reader.
    for row, record in enumerate(expected):
        assert row in store.rows_at(record["contig"], record["position"])
    for row in range(0, len(expected), max(1, len(expected) // 20)):
        counts = store.counts(row)
        assert list(counts.allele_count) == expected[row]["allele_count"]
        assert counts.position == expected[row]["position"]


def test_real_cohort_counts_equal_bcftools(node, cineca_dataset):
    result = ingest(node, cineca_dataset)
    assert result.status == "published"
    assert (result.num_individuals, result.num_samples, result.num_variants) == (
        2504,
        2504,
        1042,
    )
    vcf = cineca_dataset.parent / "cohort.vcf.gz"
    _assert_counts_match(node, "cineca-1kg", vcf)

    # The Debian bcftools and its +fill-tags plugin, as CI installs them.
    root = _stored(node, "cineca-1kg")
    names = {"AC": "", "AC_Hom": "_hom", "AC_Het": "_het", "AC_Hemi": "_hemi"}
    for row, expected in enumerate(fill_tags(vcf)):
        alternates = len(expected["AC"])
        for tag, suffix in names.items():
            stored = root[f"variant_allele_count{suffix}"][row, 1 : 1 + alternates]
            assert list(stored) == expected[tag], (row, tag)
        assert root["variant_allele_total"][row] == expected["AN"]
        assert root["variant_num_called"][row] == expected["NS"]


def test_real_cohort_metadata_and_encrypted_originals(
    sqlite_node, cineca_dataset, tmp_path
):
    node = sqlite_node
    ingest(node, cineca_dataset)
    individuals = json.loads(CINECA_INDIVIDUALS.read_text())
    with node.session() as session:
        assert session.scalar(select(func.count()).select_from(Individual)) == 2504
        num_diseases = session.scalar(select(func.count()).select_from(Disease))
        assert num_diseases == sum(len(i.get("diseases", [])) for i in individuals)
        bmi = session.scalars(
            select(Measure.value).where(Measure.assay_id == "LOINC:35925-4")
        ).all()
        expected_bmi = [
            m["measurementValue"]["value"]
            for i in individuals
            for m in i["measures"]
            if m["assayCode"]["id"] == "LOINC:35925-4"
        ]
        assert sorted(bmi) == pytest.approx(sorted(expected_bmi))
        males = session.scalar(
            select(func.count()).where(Individual.sex_id == "NCIT:C20197")
        )
        assert males == sum(i["sex"]["id"] == "NCIT:C20197" for i in individuals)
        files = session.scalars(select(StoredFile)).all()

    roles = sorted(file.role for file in files)
    # The VCF came without an index: the one the node made is stored too.
    assert roles == ["clinical", "description", "genotypes", "genotypes-index"]
    crypt4gh = shutil.which("crypt4gh", path=str(sys.prefix + "/bin"))
    for file in files:
        stored = node.datasets_dir / "cineca-1kg" / file.stored_path
        encrypted = stored.read_bytes()
        assert hashlib.sha256(encrypted).hexdigest() == file.sha256_encrypted
        assert encrypted[:8] == b"crypt4gh"
        # The crypt4gh command line reads the node's key and recovers the original.
        plain = subprocess.run(
            [crypt4gh, "decrypt", "--sk", str(node.config.path("private_key"))],
            input=encrypted,
            capture_output=True,
            check=True,
        ).stdout
        assert hashlib.sha256(plain).hexdigest() == file.sha256_plain
        assert len(plain) == file.size_plain
        if file.role == "genotypes-index":
            # Made by the node, so there is no original: it must index the VCF.
            assert (file.original_name, file.file_format) == (
                "cohort.vcf.gz.csi",
                "CSI",
            )
            vcf = tmp_path / "indexed" / "cohort.vcf.gz"
            vcf.parent.mkdir(exist_ok=True)
            shutil.copy(cineca_dataset.parent / "cohort.vcf.gz", vcf)
            vcf.with_name("cohort.vcf.gz.csi").write_bytes(plain)
            with pysam.VariantFile(str(vcf)) as variants:
                assert sum(1 for _ in variants.fetch("1")) == 1042
            continue
        original = cineca_dataset.parent / file.original_name
        assert plain == original.read_bytes()


def test_reingest_is_a_no_op_and_staging_is_gone(sqlite_node, cineca_dataset):
    first = ingest(sqlite_node, cineca_dataset)
    listing = sorted(
        p.name for p in (sqlite_node.datasets_dir / "cineca-1kg").rglob("*")
    )
    second = ingest(sqlite_node, cineca_dataset)
    assert (first.status, second.status) == ("published", "unchanged")
    assert second.num_variants == first.num_variants
    assert sorted(
        p.name for p in (sqlite_node.datasets_dir / "cineca-1kg").rglob("*")
    ) == (listing)
    assert not (sqlite_node.staging_dir / "cineca-1kg").exists()


def test_haploid_and_partly_missing_calls(sqlite_node, tmp_path):
    """Real chrX: males are written 0/. and 1/.; counts follow bcftools."""
    directory = tmp_path / "chrx"
    directory.mkdir()
    vcf = directory / "cohort.vcf.gz"
    # The file is plain gzip; nodes take BGZF, so recompress it as an operator would.
    plain = directory / "cohort.vcf"
    source = DATA / "realvcf" / "1KG_phase3_subset_chrX.vcf.gz"
    plain.write_bytes(gzip.decompress(source.read_bytes()))
    pysam.tabix_compress(str(plain), str(vcf))
    samples = genotype_samples(vcf)
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
    result = ingest(sqlite_node, dataset)
    assert result.num_samples == 1126
    _assert_counts_match(sqlite_node, "chrx", vcf)


def genotype_samples(vcf):
    with pysam.VariantFile(str(vcf)) as handle:
        return list(handle.header.samples)


@pytest.mark.slow
def test_worker_processes_give_the_same_store(tmp_path, cineca_dataset, monkeypatch):
    from genomenode.store.node import init_node

    stores = {}
    for workers in ("0", "2"):
        monkeypatch.setenv("GENOMENODE_WORKER_PROCESSES", workers)
        node = init_node(tmp_path / f"node{workers}", node_id="n", country="FI")
        ingest(node, cineca_dataset)
        stores[workers] = zarr.open_group(
            node.datasets_dir / "cineca-1kg" / "genotypes.vcz"
        )
    names = sorted(stores["0"].array_keys())
    assert names == sorted(stores["2"].array_keys())
    for name in names:
        np.testing.assert_array_equal(
            stores["0"][name][:], stores["2"][name][:], err_msg=name
        )


def test_cli_init_ingest_datasets(tmp_path, cineca_dataset):
    node_dir = tmp_path / "cli-node"
    environment = {"GENOMENODE_WORKER_PROCESSES": "0", "PATH": "/usr/bin:/bin"}

    def genomenode(*arguments, node=True):
        extra = {"GENOMENODE_NODE": str(node_dir)} if node else {}
        return subprocess.run(
            [sys.executable, "-m", "genomenode", *arguments],
            capture_output=True,
            text=True,
            env=environment | extra,
        )

    created = genomenode(
        "init",
        str(node_dir),
        "--node-id",
        "fi-node",
        "--country",
        "FI",
        "--json",
        node=False,
    )
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["node_id"] == "fi-node"
    published = genomenode("ingest", str(cineca_dataset), "--json")
    assert published.returncode == 0, published.stderr
    assert json.loads(published.stdout)["status"] == "published"
    listed = genomenode("datasets", "--json")
    rows = json.loads(listed.stdout)
    assert [(r["id"], r["num_samples"], r["num_variants"]) for r in rows] == [
        ("cineca-1kg", 2504, 1042)
    ]
    again = genomenode(
        "init", str(node_dir), "--node-id", "x", "--country", "FI", node=False
    )
    assert again.returncode == 1
    assert "is already a genomenode node" in again.stderr
    assert open_node(node_dir).published()[0].id == "cineca-1kg"


def test_simulated_cohort_counts_equal_bcftools(node, tmp_path):
    """A msprime cohort with Phenopackets: counts equal bcftools, phenotypes loaded."""
    from genomenode.simulate import simulate_cohort

    simulation = simulate_cohort(tmp_path / "sim", samples=120, seed=11, length=300_000)
    result = ingest(node, simulation.dataset_yaml)
    assert result.num_samples == 120
    assert result.num_variants == simulation.num_variants
    _assert_counts_match(node, simulation.dataset_id, simulation.vcf_path)
    with node.session() as session:
        cases = session.scalar(
            select(func.count()).where(Disease.term_id == "ICD10:I25.1")
        )
        ages = session.scalars(select(Individual.age_years)).all()
    assert cases == simulation.num_cases
    assert all(18 <= age <= 90 for age in ages)
    files = {
        file["role"]: file
        for file in node.dataset_manifest(simulation.dataset_id)["files"]
    }
    assert files["clinical"]["file_format"] == "TAR"


def test_number_g_info_fields_are_left_out_with_a_warning(
    sqlite_node, tmp_path, caplog
):
    """DESIGN: bio2zarr 0.2.1 fails on a real gnomAD file's Number=G INFO field."""
    from ..conftest import write_vcf

    directory = tmp_path / "g"
    directory.mkdir()
    header = (
        '##INFO=<ID=GLS,Number=G,Type=Float,Description="Per-genotype values">',
        '##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">',
    )
    records = [
        "1\t10\t.\tA\tG\t.\tPASS\tGLS=0.1,0.2,0.3;DP=3\tGT\t0/1\t1/1\t0/0",
        "1\t20\t.\tC\tT,G\t.\tPASS\tGLS=0.1,0.2,0.3,0.4,0.5,0.6;DP=4\tGT\t0/2\t./.\t1/2",
    ]
    write_vcf(directory / "cohort.vcf.gz", records, extra_header=header)
    (directory / "individuals.json").write_text(
        json.dumps(
            [
                {"id": s, "sex": {"id": "NCIT:C17998", "label": "unknown"}}
                for s in ("S1", "S2", "S3")
            ]
        )
    )
    dataset = write_dataset_yaml(directory, id="number-g")
    with caplog.at_level("WARNING"):
        ingest(sqlite_node, dataset)
    root = zarr.open_group(
        sqlite_node.datasets_dir / "number-g" / "genotypes.vcz", mode="r"
    )
    assert "variant_GLS" not in root
    assert root["variant_DP"][:].tolist() == [3, 4]
    assert "GLS" in caplog.text and "Number=G" in caplog.text
    _assert_counts_match(sqlite_node, "number-g", directory / "cohort.vcf.gz")


def test_init_and_ingest_leave_only_private_files(
    tmp_path, monkeypatch, permissive_umask
):
    """Keys, database, store and staging: 0600 files in 0700 directories, also
    what bio2zarr's worker processes write."""
    from genomenode.ingest import pipeline
    from genomenode.simulate import simulate_cohort
    from genomenode.store.node import init_node

    from ..conftest import assert_private

    monkeypatch.setenv("GENOMENODE_WORKER_PROCESSES", "2")
    simulation = simulate_cohort(tmp_path / "sim", samples=30, seed=3, length=50_000)
    node = init_node(tmp_path / "node", node_id="n", country="FI")

    # An ingest stopped before publishing leaves its staging area: private too.
    def stop(run):
        raise RuntimeError("stopped before publishing")

    with monkeypatch.context() as patch:
        patch.setitem(pipeline._STEP_FUNCTIONS, "publish", stop)
        with pytest.raises(RuntimeError, match="stopped"):
            ingest(node, simulation.dataset_yaml)
    staged = assert_private(node.staging_dir)
    assert any("genotypes.vcz" in path.parts for path in staged)
    assert any(path.name.endswith(".c4gh") for path in staged)
    ingest(node, simulation.dataset_yaml)
    files = assert_private(tmp_path / "node")
    names = {path.name for path in files}
    assert {"node.sec", "node.pub", "genomenode.db", "dataset.json"} <= names
    assert any(name.endswith(".c4gh") for name in names)
    assert any("genotypes.vcz" in path.parts for path in files)
    assert os.umask(0o022) == 0o022


def test_a_clinical_directory_is_archived_the_same_on_any_host(tmp_path):
    """The tar of a clinical directory depends on its content only: no owner,
    time or mode of the files, and every member a regular file."""
    import tarfile
    import types

    from genomenode.ingest import originals

    archives = []
    for copy, mode in (("a", 0o600), ("b", 0o755)):
        directory = tmp_path / copy / "packets"
        (directory / "more").mkdir(parents=True)
        (directory / "P1.json").write_text('{"id": "P1"}')
        (directory / "more" / "P2.json").write_text('{"id": "P2"}')
        for member in directory.rglob("*.json"):
            member.chmod(mode)
            os.utime(member, (1_000_000 * len(copy) * mode, 1_000_000 * mode))
        work = tmp_path / copy / "work"
        work.mkdir()
        members = sorted(directory.rglob("*.json"))
        run = types.SimpleNamespace(work=work)
        archives.append(originals._archive(run, directory, members))
    first, second = (archive.read_bytes() for archive in archives)
    assert first == second
    with tarfile.open(archives[0]) as tar:
        members = tar.getmembers()
        assert [member.name for member in members] == [
            "packets/P1.json",
            "packets/more/P2.json",
        ]
        for member in members:
            assert member.isreg()
            owner = (member.uid, member.gid, member.uname, member.gname)
            assert owner == (0, 0, "", "")
            assert (member.mtime, member.mode) == (0, 0o644)
        assert tar.extractfile(members[1]).read() == b'{"id": "P2"}'
