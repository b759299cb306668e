"""QC metrics against the reference tools on the same files.

- ``bcftools stats -s -`` (Debian's 1.16): every per-sample count of its PSC line
  exactly, the average depth to its printed 0.1; the dataset's transitions,
  transversions and singleton SNPs (TSTV, SiS) exactly.
- ``plink2 --het``: O(HOM) and OBS_CT exactly, E(HOM) and F to plink2's printed six
  significant digits (relative 1e-5).
- ``plink2 --hardy``: P to relative 1e-4 (plink2 prints six significant digits and
  computes in double precision; p-values below 1e-300 are compared as 0).
- ``plink --check-sex`` (plink 1.9: Debian's plink2 2.00a3.5 has none): X F to 1e-4
  on the simulated cohort; to 0.035 on the 1000 Genomes X slice, whose multi-allelic
  sites and ``0/.`` male calls plink 1.9 reads differently (it keeps two alleles);
  the sex inferred from F agrees wherever F is not within the tolerance of 0.2/0.8.
- ``plink2 --make-king-table``: KINSHIP to 1e-4 for every pair; NSNP exactly but for
  a few pairs with a sample missing many calls (off by one).

On the real 1000 Genomes slices (chr1 with indels and multi-allelic sites, chr22,
chrX with males written ``0/.``) and on the simulated cohort (DP, GQ, haploid X).
"""

from __future__ import annotations

import io
import subprocess

import numpy as np
import pandas as pd
import pytest

from genomenode.qc.kernels import king_pairs
from genomenode.qc.samples import AUTOSOME, X_CHROMOSOME, measure_samples, row_kinds
from genomenode.qc.settings import QcSettings
from genomenode.qc.variants import measure_variants
from tests.qc.conftest import Ingested, bcftools, plink2, plink19

PSC_COLUMNS = {
    "nRefHom": "num_hom_ref",
    "nNonRefHom": "num_hom_alt_snp",
    "nHets": "num_het_snp",
    "nTransitions": "num_transitions",
    "nTransversions": "num_transversions",
    "nIndels": "num_indels",
    "nSingletons": "num_singletons",
    "nHapRef": "num_hap_ref",
    "nHapAlt": "num_hap_alt",
    "nMissing": "num_missing",
}


def _samples(dataset: Ingested, **settings):
    root = dataset.root
    num_samples = root["call_genotype"].shape[1]
    return measure_samples(
        root,
        assembly=dataset.assembly,
        settings=QcSettings(**settings),
        population=np.full(num_samples, "FI", dtype=object),
        declared_sex=np.full(num_samples, "U", dtype=object),
    )


def _bcftools_stats(vcf) -> dict[str, list[list[str]]]:
    text = subprocess.run(
        [bcftools(), "stats", "-s", "-", str(vcf)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    lines: dict[str, list[list[str]]] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            fields = line.split("\t")
            lines.setdefault(fields[0], []).append(fields)
    return lines


@pytest.mark.parametrize("name", ["chr22", "cineca", "planted"])
def test_per_sample_counts_equal_bcftools_stats(name, request):
    dataset = request.getfixturevalue(name)
    if name == "planted":
        dataset = dataset[0]
    samples = _samples(dataset)
    stats = _bcftools_stats(dataset.vcf)
    header = [
        "PSC", "id", "sample", "nRefHom", "nNonRefHom", "nHets", "nTransitions",
        "nTransversions", "nIndels", "average depth", "nSingletons", "nHapRef",
        "nHapAlt", "nMissing",
    ]  # fmt: skip
    table = pd.DataFrame(stats["PSC"], columns=header).set_index("sample")
    table = table.loc[samples.sample_ids]
    for column, metric in PSC_COLUMNS.items():
        expected = table[column].astype(int).to_numpy()
        assert (samples.metrics[metric] == expected).all(), column
    depth = table["average depth"].astype(float).to_numpy()
    ours = np.nan_to_num(samples.metrics["mean_depth"])
    assert np.abs(ours - depth).max() <= 0.05 + 1e-9
    (tstv,) = stats["TSTV"]
    assert samples.site_counts["num_transitions"] == int(tstv[2])
    assert samples.site_counts["num_transversions"] == int(tstv[3])
    singletons = [row for row in stats.get("SiS", []) if row[2] == "1"]
    assert samples.site_counts["num_singleton_snps"] == int(singletons[0][3])


def _plink(dataset: Ingested, tmp_path, *arguments: str, sex: dict | None = None):
    """plink2 on the dataset's VCF; variant ids CHROM:POS:REF:ALT."""
    out = tmp_path / "plink"
    command = [
        plink2(),
        "--vcf",
        str(dataset.vcf),
        "--vcf-half-call",
        "h",
        "--set-all-var-ids",
        "@:#:$r:$a",
        "--new-id-max-allele-len",
        "1000",
        "--allow-extra-chr",
        "--threads",
        "1",
        "--out",
        str(out),
        *arguments,
    ]
    if sex is not None:
        sex_file = tmp_path / "sex.txt"
        sex_file.write_text(
            "#IID\tSEX\n" + "".join(f"{k}\t{v}\n" for k, v in sex.items())
        )
        command += ["--update-sex", str(sex_file)]
    subprocess.run(command, check=True, capture_output=True)
    return out


def _read(path) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(path.read_text()), sep="\t")


@pytest.mark.parametrize("name", ["chr22", "planted"])
def test_heterozygosity_equals_plink2_het(name, request, tmp_path):
    dataset = request.getfixturevalue(name)
    if name == "planted":
        dataset = dataset[0]
    samples = _samples(dataset)
    out = _plink(dataset, tmp_path, "--het", "--autosome")
    het = _read(out.with_suffix(".het")).set_index("#IID").loc[samples.sample_ids]
    metrics = samples.metrics
    assert (metrics["het_observed_hom"] == het["O(HOM)"].to_numpy()).all()
    assert (metrics["het_num_called"] == het["OBS_CT"].to_numpy()).all()
    np.testing.assert_allclose(
        metrics["het_expected_hom"], het["E(HOM)"].to_numpy(), rtol=1e-5
    )
    np.testing.assert_allclose(metrics["het_f"], het["F"].to_numpy(), atol=1e-5)


@pytest.mark.parametrize("name", ["chr22", "cineca", "planted"])
def test_hwe_equals_plink2_hardy(name, request, tmp_path):
    dataset = request.getfixturevalue(name)
    if name == "planted":
        dataset = dataset[0]
    root = dataset.root
    num_samples = root["call_genotype"].shape[1]
    positions = root["variant_position"][:]
    contigs = [str(c) for c in root["contig_id"][:]]
    kinds = row_kinds(contigs, root["variant_contig"][:], positions, dataset.assembly)
    variants = measure_variants(
        root,
        kinds=kinds,
        sample_pass=np.ones(num_samples, dtype=bool),
        population=np.full(num_samples, "FI", dtype=object),
        settings=QcSettings(),
    )
    out = _plink(dataset, tmp_path, "--hardy", "--autosome", "--max-alleles", "2")
    hardy = _read(out.with_suffix(".hardy"))
    alleles = root["variant_allele"][:]
    ids = [
        f"{contigs[c]}:{p}:{a[0]}:{a[1]}"
        for c, p, a in zip(root["variant_contig"][:], positions, alleles, strict=True)
    ]
    row_of = {variant_id: row for row, variant_id in enumerate(ids)}
    rows = np.array([row_of[variant_id] for variant_id in hardy["ID"]])
    ours = variants.hwe_p[rows, 0]
    theirs = hardy["P"].to_numpy(dtype=float)
    assert len(rows) > 500
    tiny = theirs < 1e-300
    np.testing.assert_allclose(ours[~tiny], theirs[~tiny], rtol=1e-4, atol=1e-300)
    assert (ours[tiny] < 1e-290).all()


def _sex_from_ploidy(dataset: Ingested) -> dict[str, int]:
    """plink's sex codes from the calls: a haploid X call outside the PARs is a
    male's (1), else female (2); what the 1000 Genomes slice tells of sex."""
    root = dataset.root
    kinds = row_kinds(
        [str(c) for c in root["contig_id"][:]],
        root["variant_contig"][:],
        root["variant_position"][:],
        dataset.assembly,
    )
    genotypes = root["call_genotype"][:][kinds == X_CHROMOSOME]
    haploid = ((genotypes[:, :, 0] >= 0) != (genotypes[:, :, 1] >= 0)).any(axis=0)
    ids = [str(s) for s in root["sample_id"][:]]
    return {sample: 1 if male else 2 for sample, male in zip(ids, haploid, strict=True)}


@pytest.mark.parametrize(("name", "tolerance"), [("chrx", 0.035), ("planted", 1e-4)])
def test_x_inbreeding_equals_plink_check_sex(name, tolerance, request, tmp_path):
    # plink2 2.00a3.5 (Debian 12) has no --check-sex yet: plink 1.9's, which
    # plink2's later --check-sex reproduces.
    dataset = request.getfixturevalue(name)
    if name == "planted":
        dataset = dataset[0]
    sex = _sex_from_ploidy(dataset)
    samples = _samples(dataset)
    sex_file = tmp_path / "sex.txt"
    sex_file.write_text("".join(f"{k} {k} {v}\n" for k, v in sex.items()))
    split = "b37" if dataset.assembly == "GRCh37" else "hg38"
    out = tmp_path / "plink"
    common = ["--allow-extra-chr", "--threads", "1", "--out", str(out)]
    subprocess.run(
        [
            plink19(), "--vcf", str(dataset.vcf), "--double-id", "--vcf-half-call",
            "h", "--update-sex", str(sex_file), "--split-x", split, "no-fail",
            "--make-bed", *common,
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    subprocess.run(
        [plink19(), "--bfile", str(out), "--check-sex", *common],
        check=True,
        capture_output=True,
    )
    text = out.with_suffix(".sexcheck").read_text()
    table = pd.read_csv(io.StringIO(text), sep=r"\s+").set_index("IID")
    table = table.loc[samples.sample_ids]
    theirs = table["F"].to_numpy(dtype=float)
    x_f = samples.metrics["x_f"]
    print("largest difference in X F:", np.abs(x_f - theirs).max())
    np.testing.assert_allclose(x_f, theirs, atol=tolerance)
    # and the sex inferred with the same thresholds (0.2 and 0.8), except where
    # F is within the tolerance of one
    inferred = np.where(x_f >= 0.8, 1, np.where(x_f <= 0.2, 2, 0))
    near = (np.abs(x_f - 0.8) < tolerance) | (np.abs(x_f - 0.2) < tolerance)
    assert (inferred == table["SNPSEX"].to_numpy())[~near].all()


@pytest.mark.parametrize("name", ["chr22", "planted"])
def test_kinship_equals_plink2_king(name, request, tmp_path):
    dataset = request.getfixturevalue(name)
    if name == "planted":
        dataset = dataset[0]
    root = dataset.root
    kinds = row_kinds(
        [str(c) for c in root["contig_id"][:]],
        root["variant_contig"][:],
        root["variant_position"][:],
        dataset.assembly,
    )
    alleles = root["variant_allele"][:]
    biallelic_snp = (
        (kinds == AUTOSOME)
        & np.array([len(a[0]) == 1 and len(a[1]) == 1 for a in alleles])
        & ((alleles[:, 2] == "") if alleles.shape[1] > 2 else True)
    )
    genotypes = root["call_genotype"][:][biallelic_snp]
    called = (genotypes >= 0).all(axis=2)
    dosages = np.where(called, genotypes.sum(axis=2), -1).astype(np.int8)
    first, second, kinship, both = king_pairs(dosages, min_kinship=-np.inf, block=300)
    out = _plink(
        dataset,
        tmp_path,
        "--make-king-table",
        "--autosome",
        "--snps-only",
        "--max-alleles",
        "2",
    )
    table = _read(out.with_suffix(".kin0"))
    ids = [str(s) for s in root["sample_id"][:]]
    index = {sample: i for i, sample in enumerate(ids)}
    theirs = {
        (min(index[a], index[b]), max(index[a], index[b])): (k, n)
        for a, b, k, n in zip(
            table["#IID1"], table["IID2"], table["KINSHIP"], table["NSNP"], strict=True
        )
    }
    assert len(theirs) == len(first) == len(ids) * (len(ids) - 1) // 2
    expected = np.array([theirs[(i, j)][0] for i, j in zip(first, second, strict=True)])
    count = np.array([theirs[(i, j)][1] for i, j in zip(first, second, strict=True)])
    np.testing.assert_allclose(kinship, expected, atol=1e-4)
    # plink2 counts one variant more for a handful of pairs with the planted
    # low-quality sample (4 of 12,720 here); everywhere else NSNP is equal.
    assert np.abs(both - count).max() <= 1
    assert (both == count).mean() > 0.999
