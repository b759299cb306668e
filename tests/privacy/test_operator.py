"""``genomenode privacy attack``: the operator's attack on its own node, in-process."""

from __future__ import annotations

import json

import numpy as np
import pysam
import pysam.bcftools
import pytest
from click.testing import CliRunner

from genomenode.cli import cli
from genomenode.privacy.cohort import VariantGenotypes, synthesise_genotypes

pytestmark = pytest.mark.slow


def _attack(*arguments: str) -> dict:
    result = CliRunner().invoke(cli, ["privacy", "attack", *arguments, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_sb_with_real_outsiders_finds_the_members_when_unprotected(
    attack_cohort, tmp_path, monkeypatch
):
    monkeypatch.setenv("GENOMENODE_DISCLOSURE_ENABLED", "false")
    outsiders = tmp_path / "outsiders.vcf.gz"
    samples = attack_cohort.split.non_members + attack_cohort.split.reference[:100]
    pysam.bcftools.view(
        "--samples",
        ",".join(samples),
        "--output-type",
        "z",
        "--output",
        str(outsiders),
        str(attack_cohort.split.pool_vcf),
        catch_stdout=False,
    )
    pysam.tabix_index(str(outsiders), preset="vcf", force=True)
    report = _attack(
        "--node",
        str(attack_cohort.single_node),
        "attack-1",
        "--attack",
        "sb",
        "--queries",
        "800",
        "--non-members",
        str(outsiders),
    )
    assert report["dataset"] == "attack-1"
    assert report["non_members"] == f"vcf:{outsiders}"
    assert (report["num_members"], report["num_non_members"]) == (7, 100)
    assert 0 < report["num_queries"] <= 800
    assert report["num_refused"] == 0
    assert report["power"] >= 0.9
    assert report["observed_fpr"] <= 0.05


def test_homer_against_the_defaults_reports_what_the_budget_refused(attack_cohort):
    report = _attack(
        "--node",
        str(attack_cohort.single_node),
        "attack-2",
        "--attack",
        "homer",
        "--queries",
        "300",
    )
    assert report["non_members"].startswith("synthetic")
    assert report["num_refused"] >= 1
    assert report["num_queries"] + report["num_unsent"] == 300
    assert report["power"] <= 0.1


def test_an_unknown_dataset_is_one_line(attack_cohort):
    result = CliRunner().invoke(
        cli, ["privacy", "attack", "--node", str(attack_cohort.single_node), "nope"]
    )
    assert result.exit_code == 1
    assert "no published dataset 'nope'" in result.output


def test_synthetic_outsiders_carry_alleles_the_dataset_lacks():
    rng = np.random.default_rng(0)
    dosage = rng.binomial(2, 0.2, size=(50, 10)).astype(np.int8)
    genotypes = VariantGenotypes(
        contig=np.array(["1"] * 50, dtype=object),
        position=np.arange(100, 150),
        reference=np.array(["A"] * 50, dtype=object),
        alternate=np.array(["G"] * 50, dtype=object),
        dosage=dosage,
    )
    synthetic = synthesise_genotypes(genotypes, 40, novel_per_person=3.0, seed=1)
    novel = [key for key in synthetic.variant_keys() if key[3] not in ("G",)]
    assert novel and all(key[3] in ("C", "T") for key in novel)
    assert synthetic.dosage.shape == (50 + len(novel), 40)
    assert synthetic.frequencies()[:50] == pytest.approx(
        genotypes.frequencies(), abs=0.15
    )
