"""ingest/scaffold.py: a dataset.yaml for an existing VCF."""

from __future__ import annotations

import pytest
import yaml

from genomenode.dataset import read_dataset_description
from genomenode.errors import DatasetDescriptionError, InputError, VcfError
from genomenode.ingest.scaffold import scaffold_dataset
from tests.conftest import write_vcf


def _vcf(path, extra_header=()):
    return write_vcf(
        path,
        ["\t".join(["1", "100", ".", "A", "G", ".", "PASS", ".", "GT", "0|1", "1|1"])],
        samples=["A1", "B2"],
        extra_header=extra_header,
    )


def test_a_filled_in_scaffold_is_a_valid_description(tmp_path):
    vcf = _vcf(
        tmp_path / "my cohort.vcf.gz",
        extra_header=("##reference=file:///refs/GRCh37/hs37d5.fa",),
    )
    written = scaffold_dataset(
        vcf, country="FI", contact_name="Steward", contact_email="s@example.org"
    )
    assert written.dataset_yaml == tmp_path / "dataset.yaml"
    assert (written.dataset_id, written.assembly, written.to_fill) == (
        "my-cohort",
        "GRCh37",
        (),
    )
    description = read_dataset_description(written.dataset_yaml)
    assert description.security_level == "CONTROLLED"
    assert description.genotypes == (vcf,)
    assert description.clinical.format == "csv"
    document = yaml.safe_load(written.dataset_yaml.read_text())
    assert document["beacon"] == {
        "anonymous": "boolean",
        "registered": "count",
        "granted": "record",
    }
    assert "#   genomenode ingest --dry-run" in written.dataset_yaml.read_text()


def test_what_only_the_operator_knows_is_todo_and_refused(tmp_path):
    written = scaffold_dataset(_vcf(tmp_path / "c.vcf.gz"), tmp_path / "out/d.yaml")
    assert written.to_fill == ("country", "contact.name", "contact.email")
    assert written.assembly == "GRCh38"
    assert "CHECK: the VCF header does not name its assembly" in (
        written.dataset_yaml.read_text()
    )
    assert yaml.safe_load(written.dataset_yaml.read_text())["genotypes"] == [
        {"path": "../c.vcf.gz"}
    ]
    with pytest.raises(DatasetDescriptionError, match="'country': 'TODO'"):
        read_dataset_description(written.dataset_yaml)


def test_bad_input_and_existing_files_are_refused(tmp_path):
    plain = tmp_path / "plain.vcf.gz"
    plain.write_bytes(b"##fileformat=VCFv4.3\n")
    with pytest.raises(VcfError, match="not compressed"):
        scaffold_dataset(plain)
    vcf = _vcf(tmp_path / "c.vcf.gz")
    with pytest.raises(InputError, match="security_level"):
        scaffold_dataset(vcf, security_level="SECRET")
    (tmp_path / "clinical.csv").write_text("mine\n")
    with pytest.raises(InputError, match="never overwrites") as refused:
        scaffold_dataset(vcf)
    assert refused.value.path == str(tmp_path / "clinical.csv")
    assert not (tmp_path / "dataset.yaml").exists()
