"""Sites-only VCFs (no sample columns) as aggregate-only datasets, against bcftools.

The file is written here in the shape of a gnomAD release (AC/AN/AF, nhomalt and
per-population ``AC_<pop>``/``AN_<pop>``/``nhomalt_<pop>``), with the GDI mini-node's
copy counts (``AC_HET``...) on the whole; its counts in the store must be what
``bcftools query`` prints for the same INFO fields.
"""

from __future__ import annotations

import json
import pathlib
import shutil

import numpy as np
import pysam
import pysam.bcftools
import pytest
import yaml
import zarr

from genomenode.errors import DatasetDescriptionError, StoreError, VcfError
from genomenode.ingest.pipeline import ingest
from genomenode.ingest.plan import plan_ingest
from genomenode.ingest.scaffold import scaffold_dataset
from genomenode.store.node import init_node
from genomenode.store.site_counts import SiteCounts, site_fields
from tests.conftest import write_dataset_yaml

HEADER = """##fileformat=VCFv4.2
##contig=<ID=1,length=249250621>
##contig=<ID=2,length=243199373>
##INFO=<ID=AC,Number=A,Type=Integer,Description="Alternate allele count">
##INFO=<ID=AN,Number=1,Type=Integer,Description="Total number of alleles">
##INFO=<ID=AF,Number=A,Type=Float,Description="Alternate allele frequency">
##INFO=<ID=nhomalt,Number=A,Type=Integer,Description="Homozygous individuals">
##INFO=<ID=AC_HET,Number=A,Type=Integer,Description="Copies in het calls">
##INFO=<ID=AC_nfe,Number=A,Type=Integer,Description="AC, non-Finnish Europeans">
##INFO=<ID=AN_nfe,Number=1,Type=Integer,Description="AN, non-Finnish Europeans">
##INFO=<ID=nhomalt_nfe,Number=A,Type=Integer,Description="nhomalt, nfe">
##INFO=<ID=AC_fin,Number=A,Type=Integer,Description="AC, Finnish">
##INFO=<ID=AN_fin,Number=1,Type=Integer,Description="AN, Finnish">
##INFO=<ID=AC_nfe_XX,Number=A,Type=Integer,Description="AC, nfe females">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO
"""
RECORDS = [
    "1\t100\t.\tA\tG\t.\tPASS\tAC=3;AN=100;AF=0.03;nhomalt=1;AC_HET=1;AC_nfe=2;"
    "AN_nfe=60;nhomalt_nfe=1;AC_fin=1;AN_fin=40;AC_nfe_XX=1",
    "1\t200\trs2\tC\tT,A\t.\tPASS\tAC=5,2;AN=98;AF=0.05,0.02;nhomalt=0,1;AC_HET=5,0;"
    "AC_nfe=4,1;AN_nfe=58;nhomalt_nfe=0,0;AC_fin=1,1;AN_fin=40",
    # AN_fin missing: Finland is left out of this record's frequencies.
    "2\t50\t.\tG\tGA\t.\tPASS\tAC=0;AN=90;AF=0;nhomalt=0;AC_nfe=0;AN_nfe=50;AC_fin=0",
]


def write_sites_vcf(path: pathlib.Path, records=RECORDS, header=HEADER) -> pathlib.Path:
    plain = path.with_suffix("")
    plain.write_text(header + "".join(record + "\n" for record in records))
    pysam.tabix_compress(str(plain), str(path), force=True)
    plain.unlink()
    return path


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    directory = tmp_path_factory.mktemp("sites")
    vcf = write_sites_vcf(directory / "sites.vcf.gz")
    dataset_yaml = write_dataset_yaml(
        directory,
        id="sites",
        genotypes=[{"path": vcf.name}],
        clinical=None,
        security_level="PUBLIC",
    )
    with init_node(directory / "node", node_id="n", country="FI") as node:
        result = ingest(node, dataset_yaml)
    return vcf, result, node.datasets_dir / "sites"


def _bcftools(vcf: pathlib.Path, fields: str) -> list[list[str]]:
    out = pysam.bcftools.query("-f", f"%CHROM\t%POS\t%REF\t%ALT\t{fields}\n", str(vcf))
    return [line.split("\t") for line in out.splitlines()]


def _numbers(text: str) -> list[int]:
    return [-1 if value == "." else int(value) for value in text.split(",")]


def test_aggregate_only_dataset_has_no_individuals(published):
    _, result, directory = published

    assert result.status == "published"
    assert (result.num_samples, result.num_individuals, result.num_variants) == (
        0,
        0,
        3,
    )
    manifest = json.loads((directory / "dataset.json").read_text())
    assert manifest["site_counts"] == {
        "format_version": 1,
        "populations": ["", "nfe", "fin"],
    }


def test_whole_dataset_counts_equal_bcftools(published):
    vcf, _, directory = published
    root = zarr.open_group(directory / "genotypes.vcz", mode="r")
    count = root["variant_allele_count"][:]
    total = root["variant_allele_total"][:]
    hom_alt = root["variant_num_hom_alt"][:]

    rows = _bcftools(vcf, "%INFO/AC\t%INFO/AN\t%INFO/nhomalt")
    assert len(rows) == len(count)
    for row, (_, position, _, alternates, ac, an, nhomalt) in enumerate(rows):
        assert root["variant_position"][row] == int(position)
        alternate_counts = _numbers(ac)
        num_alternates = len(alternates.split(","))
        assert count[row][1 : 1 + num_alternates].tolist() == alternate_counts
        assert count[row][0] == int(an) - sum(alternate_counts)
        assert total[row] == int(an)
        assert hom_alt[row] == sum(_numbers(nhomalt))


@pytest.mark.parametrize("population", ["nfe", "fin"])
def test_population_counts_equal_bcftools(published, population):
    vcf, _, directory = published
    counts = SiteCounts(directory / "genotypes.vcz")
    rows = _bcftools(vcf, f"%INFO/AC_{population}\t%INFO/AN_{population}")
    for row, (_, _, _, alternates, ac, an) in enumerate(rows):
        for allele, expected in enumerate(_numbers(ac), start=1):
            found = {item.population: item for item in counts.frequencies(row, allele)}
            if an == ".":
                assert population not in found
                continue
            assert (found[population].count, found[population].total) == (
                expected,
                int(an),
            )
        assert len(alternates.split(",")) == len(_numbers(ac))


def test_homozygous_and_heterozygous_copies(published):
    _, _, directory = published
    counts = SiteCounts(directory / "genotypes.vcz")
    whole = {item.population: item for item in counts.frequencies(1, 2)}

    # nhomalt counts individuals: 1 homozygous individual is 2 copies.
    assert (whole[""].hom, whole[""].het, whole[""].hemi) == (2, 0, None)
    assert whole["nfe"].hom == 0 and whole["fin"].hom is None


def test_convention_names_populations():
    fields = site_fields(
        ["AC", "AN", "AC_HOM", "AC_HET", "AC_afr", "AN_afr", "AC_amr", "AC_nfe_XX"]
    )

    # amr has no AN; AC_HOM/AC_HET are the whole's; AC_nfe_XX is not a population.
    assert fields.populations == ["", "afr"]
    assert fields.fields[""] == {
        "count": "AC",
        "total": "AN",
        "hom": "AC_HOM",
        "het": "AC_HET",
    }


def test_store_refuses_an_unknown_format_version(published, tmp_path):
    _, _, directory = published
    copy = tmp_path / "copy.vcz"
    shutil.copytree(directory / "genotypes.vcz", copy)
    root = zarr.open_group(copy, mode="r+")
    attributes = dict(root.attrs["genomenode_site_counts"])
    root.attrs["genomenode_site_counts"] = {**attributes, "format_version": 99}

    with pytest.raises(StoreError, match="format_version 99"):
        SiteCounts(copy)


def test_sites_only_without_ac_and_an_is_refused_at_validation(tmp_path):
    header = (
        "\n".join(line for line in HEADER.splitlines() if "ID=AN," not in line) + "\n"
    )
    records = [record.replace("AN=", "XN=") for record in RECORDS]
    vcf = write_sites_vcf(tmp_path / "sites.vcf.gz", records, header)
    dataset_yaml = write_dataset_yaml(
        tmp_path, id="no-an", genotypes=[{"path": vcf.name}], clinical=None
    )
    with init_node(tmp_path / "node", node_id="n", country="FI") as node:
        with pytest.raises(VcfError) as caught:
            ingest(node, dataset_yaml)
        assert "AC (Number=A) and AN (Number=1)" in str(caught.value)
        state = json.loads((node.staging_dir / "no-an" / "ingest.json").read_text())
        assert state["done"] == {}


def test_sites_only_with_clinical_records_is_refused(tmp_path):
    vcf = write_sites_vcf(tmp_path / "sites.vcf.gz")
    (tmp_path / "individuals.json").write_text("[]")
    dataset_yaml = write_dataset_yaml(
        tmp_path, id="with-clinical", genotypes=[{"path": vcf.name}]
    )
    with (
        init_node(tmp_path / "node", node_id="n", country="FI") as node,
        pytest.raises(DatasetDescriptionError, match="aggregate-only"),
    ):
        ingest(node, dataset_yaml)


def test_whole_dataset_hemizygous_unknown_is_minus_one(published):
    _, _, directory = published
    root = zarr.open_group(directory / "genotypes.vcz", mode="r")
    assert np.all(root["variant_allele_count_hemi"][:] == -1)
    assert np.all(root["variant_num_called"][:] == -1)


def test_scaffold_of_a_sites_only_vcf_passes_the_dry_run(tmp_path):
    vcf = write_sites_vcf(tmp_path / "sites.vcf.gz")

    written = scaffold_dataset(
        vcf, country="FI", contact_name="Steward", contact_email="s@example.org"
    )
    with init_node(tmp_path / "node", node_id="n", country="FI") as node:
        plan = plan_ingest(node, written.dataset_yaml)

    assert written.clinical_template is None
    assert "clinical:" not in yaml.safe_load(written.dataset_yaml.read_text())
    assert (plan.action, plan.num_samples, plan.num_clinical_records) == (
        "publish",
        0,
        0,
    )
