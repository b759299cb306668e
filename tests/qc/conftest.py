"""QC fixtures: ingested datasets (real 1000 Genomes slices, the planted cohort)."""

from __future__ import annotations

import dataclasses
import pathlib
import shutil
import subprocess
from typing import Any

import pytest
import yaml
import zarr

from genomenode.ingest.pipeline import ingest
from genomenode.store.node import Node, init_node
from tests.conftest import CINECA_VCF, DATA
from tests.qc.cohort import Planted, write_cohort

CHR22_VCF = DATA / "realvcf" / "1KG_phase3_subset_chr22.vcf.gz"
CHRX_VCF = DATA / "realvcf" / "1KG_phase3_subset_chrX.vcf.gz"


def bcftools() -> str:
    found = shutil.which("bcftools")
    assert found, "bcftools (Debian) is needed: apt-get install bcftools"
    return found


def plink2() -> str:
    found = shutil.which("plink2")
    assert found, "plink2 (Debian) is needed: apt-get install plink2"
    return found


def plink19() -> str:
    found = shutil.which("plink1.9")
    assert found, (
        "plink 1.9 (Debian) is needed for --check-sex: apt-get install plink1.9"
    )
    return found


@dataclasses.dataclass
class Ingested:
    node: Node
    dataset_id: str
    vcf: pathlib.Path  # bgzipped and indexed copy
    assembly: str

    @property
    def root(self) -> Any:
        manifest = self.node.dataset_manifest(self.dataset_id)
        path = self.node.datasets_dir / self.dataset_id / manifest["genotypes"]["path"]
        return zarr.open_group(path, mode="r")


def _ingest(
    directory: pathlib.Path,
    node: Node,
    source: pathlib.Path,
    dataset_id: str,
    assembly: str,
) -> Ingested:
    """Ingest a VCF without clinical data (every sample of unknown sex)."""
    directory.mkdir(parents=True)
    vcf = directory / "cohort.vcf.gz"
    # The UW-GAC slices are plain gzip: recompress them as BGZF, indexed.
    subprocess.run([bcftools(), "view", "-Oz", "-o", str(vcf), str(source)], check=True)
    subprocess.run([bcftools(), "index", "-f", str(vcf)], check=True)
    description = {
        "format_version": 1,
        "id": dataset_id,
        "name": dataset_id,
        "description": "QC test data",
        "country": "FI",
        "contact": {"name": "Test", "email": "test@example.org"},
        "security_level": "CONTROLLED",
        "assembly": assembly,
        "data_use": [{"id": "DUO:0000042"}],
        "genotypes": [{"path": vcf.name}],
    }
    (directory / "dataset.yaml").write_text(yaml.safe_dump(description))
    ingest(node, directory / "dataset.yaml")
    return Ingested(node, dataset_id, vcf, assembly)


@pytest.fixture(scope="session")
def qc_node(tmp_path_factory) -> Any:
    """One node (SQLite) holding the QC test datasets, ingested once."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GENOMENODE_WORKER_PROCESSES", "0")
        for name in ("GENOMENODE_DB_URL", "GENOMENODE_DB_SCHEMA", "GENOMENODE_NODE"):
            patch.delenv(name, raising=False)
        root = tmp_path_factory.mktemp("qc")
        node = init_node(root / "node", node_id="qc-node", country="FI")
        datasets: dict[str, Any] = {"root": root, "node": node}
        yield datasets
        node.close()


@pytest.fixture(scope="session")
def chr22(qc_node) -> Ingested:
    return _ingest(
        qc_node["root"] / "chr22", qc_node["node"], CHR22_VCF, "kg-chr22", "GRCh37"
    )


@pytest.fixture(scope="session")
def chrx(qc_node) -> Ingested:
    return _ingest(
        qc_node["root"] / "chrx", qc_node["node"], CHRX_VCF, "kg-chrx", "GRCh37"
    )


@pytest.fixture(scope="session")
def cineca(qc_node) -> Ingested:
    return _ingest(
        qc_node["root"] / "cineca", qc_node["node"], CINECA_VCF, "kg-chr1", "GRCh37"
    )


@pytest.fixture(scope="session")
def planted(qc_node) -> tuple[Ingested, Planted]:
    """The simulated cohort with its planted problems, ingested (QC not run)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GENOMENODE_WORKER_PROCESSES", "0")
        cohort = write_cohort(qc_node["root"] / "planted")
        ingest(qc_node["node"], cohort.dataset_yaml)
    return Ingested(qc_node["node"], "qc-cohort", cohort.vcf, "GRCh38"), cohort
