"""Inputs as operators have them, each compared with bcftools.

A real 1000 Genomes slice (tests/data/cineca) cut down with bcftools to 30 samples,
then written as the operator might have it: without a clinical file, as BCF, without
``##contig`` lines. Each publishes the counts bcftools reads from the same records.
"""

from __future__ import annotations

import gzip
import json
import pathlib
import shutil

import pysam
import pysam.bcftools
import pytest
import zarr

from genomenode.dataset import read_dataset_description
from genomenode.errors import VcfError
from genomenode.ingest.check import check_inputs
from genomenode.ingest.pipeline import ingest
from genomenode.ingest.plan import plan_ingest
from genomenode.ingest.vcf import read_header
from genomenode.store.node import init_node
from tests.conftest import CINECA_VCF, genotype_tally, write_dataset_yaml

NUM_SAMPLES = 30


@pytest.fixture(scope="module")
def subset(tmp_path_factory) -> pathlib.Path:
    """The first 30 samples of the 1000 Genomes slice, bgzipped (bcftools)."""
    directory = tmp_path_factory.mktemp("subset")
    with pysam.VariantFile(str(CINECA_VCF)) as variants:
        samples = list(variants.header.samples)[:NUM_SAMPLES]
    path = directory / "subset.vcf.gz"
    pysam.bcftools.view(
        "-s",
        ",".join(samples),
        "-Oz",
        "-o",
        str(path),
        str(CINECA_VCF),
        catch_stdout=False,
    )
    return path


def _ingest(tmp_path: pathlib.Path, vcf: pathlib.Path, name: str, **fields):
    """Ingest ``vcf`` (copied, with its index if any) alone on a fresh node."""
    directory = tmp_path / name
    directory.mkdir()
    shutil.copy(vcf, directory / vcf.name)
    for suffix in (".tbi", ".csi"):
        index = vcf.with_name(vcf.name + suffix)
        if index.exists():
            shutil.copy(index, directory / index.name)
    fields.setdefault("clinical", None)
    dataset_yaml = write_dataset_yaml(
        directory, id=name, genotypes=[{"path": vcf.name}], **fields
    )
    with init_node(directory / "node", node_id="n", country="FI") as node:
        result = ingest(node, dataset_yaml)
    return result, node.datasets_dir / name / "genotypes.vcz"


def _published_counts(vcz: pathlib.Path) -> list[dict]:
    root = zarr.open_group(vcz, mode="r")
    contigs = [str(contig) for contig in root["contig_id"][:]]
    rows = []
    for contig, position, alleles, count, total in zip(
        root["variant_contig"][:],
        root["variant_position"][:],
        root["variant_allele"][:],
        root["variant_allele_count"][:],
        root["variant_allele_total"][:],
        strict=True,
    ):
        alleles = [str(allele) for allele in alleles if allele]
        rows.append(
            {
                "contig": contigs[contig],
                "position": int(position),
                "alleles": alleles,
                "allele_count": [int(n) for n in count[: len(alleles)]],
                "allele_total": int(total),
            }
        )
    return rows


def _bcftools_counts(vcf: pathlib.Path) -> list[dict]:
    keys = ("contig", "position", "alleles", "allele_count", "allele_total")
    return [{key: row[key] for key in keys} for row in genotype_tally(vcf)]


def test_genotypes_only_dataset_needs_no_clinical_file(tmp_path, subset):
    result, vcz = _ingest(tmp_path, subset, "no-clinical")

    assert result.status == "published"
    # Every genotyped sample is an individual, without clinical data.
    assert result.num_individuals == result.num_samples == NUM_SAMPLES
    assert _published_counts(vcz) == _bcftools_counts(subset)
    manifest = json.loads((vcz.parent / "dataset.json").read_text())
    assert "clinical" not in {entry["role"] for entry in manifest["files"]}


def test_bcf_input_publishes_what_bcftools_reads(tmp_path, subset):
    bcf = tmp_path / "subset.bcf"
    pysam.bcftools.view("-Ob", "-o", str(bcf), str(subset), catch_stdout=False)
    header = read_header(bcf)
    assert header.file_format == "BCF"
    assert header.samples == read_header(subset).samples
    assert header.contigs == read_header(subset).contigs

    result, vcz = _ingest(tmp_path, bcf, "bcf")

    assert result.num_variants == len(_bcftools_counts(subset))
    assert _published_counts(vcz) == _bcftools_counts(bcf) == _bcftools_counts(subset)
    manifest = json.loads((vcz.parent / "dataset.json").read_text())
    formats = {entry["role"]: entry["file_format"] for entry in manifest["files"]}
    assert formats["genotypes"] == "BCF"


def test_bcf_dry_run(tmp_path, subset):
    bcf = tmp_path / "in" / "subset.bcf"
    bcf.parent.mkdir()
    pysam.bcftools.view("-Ob", "-o", str(bcf), str(subset), catch_stdout=False)
    dataset_yaml = write_dataset_yaml(
        bcf.parent, id="bcf", genotypes=[{"path": bcf.name}], clinical=None
    )
    with init_node(tmp_path / "node", node_id="n", country="FI") as node:
        plan = plan_ingest(node, dataset_yaml)

    assert plan.num_samples == NUM_SAMPLES
    assert "1" in plan.contigs


def _without_contig_lines(source: pathlib.Path, target: pathlib.Path) -> pathlib.Path:
    with gzip.open(source, "rt") as lines:
        kept = [line for line in lines if not line.startswith("##contig")]
    plain = target.with_suffix("")
    plain.write_text("".join(kept))
    pysam.tabix_compress(str(plain), str(target), force=True)
    plain.unlink()
    return target


@pytest.mark.parametrize("indexed", [True, False])
def test_vcf_without_contig_lines_gives_the_same_answer(tmp_path, subset, indexed):
    bare = _without_contig_lines(subset, tmp_path / "bare.vcf.gz")
    if indexed:
        pysam.tabix_index(str(bare), preset="vcf", csi=True, force=True)
    assert read_header(bare).contigs == ()

    _, declared = _ingest(tmp_path, subset, "declared")
    result, vcz = _ingest(tmp_path, bare, "bare")

    assert result.status == "published"
    assert _published_counts(vcz) == _published_counts(declared)
    assert _published_counts(vcz) == _bcftools_counts(bare)
    root = zarr.open_group(vcz, mode="r")
    assert [str(contig) for contig in root["contig_id"][:]] == ["1"]


def test_undeclared_contig_fails_before_the_conversion(tmp_path, subset):
    directory = tmp_path / "in"
    directory.mkdir()
    vcf = directory / "partial.vcf.gz"
    with gzip.open(subset, "rt") as lines:
        # Declare contig 2 only; the records are on contig 1.
        kept = [
            line
            for line in lines
            if not line.startswith("##contig") or line.startswith("##contig=<ID=2,")
        ]
    vcf.with_suffix("").write_text("".join(kept))
    pysam.tabix_compress(str(vcf.with_suffix("")), str(vcf), force=True)
    dataset_yaml = write_dataset_yaml(
        directory, id="partial", genotypes=[{"path": vcf.name}], clinical=None
    )
    check_inputs(read_dataset_description(dataset_yaml))
    with (
        init_node(tmp_path / "node", node_id="n", country="FI") as node,
        pytest.raises(VcfError) as caught,
    ):
        ingest(node, dataset_yaml)

    assert "contig '1'" in str(caught.value)
    assert "##contig" in str(caught.value)
    state = json.loads((node.staging_dir / "partial" / "ingest.json").read_text())
    assert "explode" not in state["done"]
