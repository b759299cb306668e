"""The QC kernels against obviously correct twins."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genomenode.qc import kernels
from genomenode.qc.kernels import (
    allele_classes,
    hwe_exact_p,
    king_pairs,
    pca_scores,
    sample_block_counts,
)


def _random_genotypes(rng, variants=40, samples=30, alleles=3):
    genotypes = rng.integers(0, alleles, (variants, samples, 2)).astype(np.int8)
    genotypes[rng.random((variants, samples, 2)) < 0.05] = -1
    haploid = rng.random((variants, samples)) < 0.1
    genotypes[haploid, 1] = -2
    return genotypes


def _naive_counts(genotypes, alleles):
    """bcftools stats' per-sample counts, one call at a time."""
    counts = {}
    for variant in range(genotypes.shape[0]):
        reference = alleles[variant][0]
        for sample in range(genotypes.shape[1]):
            a, b = (int(x) for x in genotypes[variant, sample])
            row = counts.setdefault(sample, dict.fromkeys(
                ("missing", "hom_ref", "het_snp", "hom_alt_snp", "ts", "tv",
                 "hap_ref", "hap_alt"), 0))  # fmt: skip
            present = [x for x in (a, b) if x >= 0]
            if not present:
                row["missing"] += 1
                continue
            if len(present) == 1:
                row["hap_ref" if present[0] == 0 else "hap_alt"] += 1
                continue
            low, high = sorted(present)
            if high == 0:
                row["hom_ref"] += 1
                continue
            first = low if low > 0 else high
            second = high if low > 0 else 0

            def snp(index, row=alleles[variant]):
                return index > 0 and len(row[index]) == 1 and len(row[0]) == 1

            if a != b and (snp(first) or snp(second)):
                row["het_snp"] += 1
            if a == b and snp(first):
                row["hom_alt_snp"] += 1
            if snp(first):
                pair = {reference, alleles[variant][first]}
                row["ts" if pair in ({"A", "G"}, {"C", "T"}) else "tv"] += 1
    return counts


def test_sample_counts_equal_a_call_by_call_count():
    rng = np.random.default_rng(3)
    genotypes = _random_genotypes(rng)
    bases = np.array(list("ACGT"))
    alleles = []
    for _ in range(genotypes.shape[0]):
        reference, *alternates = rng.choice(bases, 3, replace=False)
        if rng.random() < 0.2:
            alternates[1] = reference + "T"  # an insertion
        alleles.append([str(reference), *(str(a) for a in alternates)])
    counts, _non_ref = sample_block_counts(
        genotypes, allele_classes(np.array(alleles, dtype=object))
    )
    naive = _naive_counts(genotypes, alleles)
    for name, key in (
        ("num_missing", "missing"),
        ("num_hom_ref", "hom_ref"),
        ("num_het_snp", "het_snp"),
        ("num_hom_alt_snp", "hom_alt_snp"),
        ("num_transitions", "ts"),
        ("num_transversions", "tv"),
        ("num_hap_ref", "hap_ref"),
        ("num_hap_alt", "hap_alt"),
    ):
        expected = [naive[sample][key] for sample in range(genotypes.shape[1])]
        assert counts[name].tolist() == expected, name


def _naive_hwe(het, hom1, hom2):
    """Sum of the probabilities of every heterozygote count no likelier than
    the observed one, by exact enumeration in integers and fractions."""
    n = het + hom1 + hom2
    minor = min(2 * hom1 + het, 2 * hom2 + het)

    def probability(h):
        rare_hom = (minor - h) // 2
        common_hom = n - h - rare_hom
        ways = math.factorial(n) // (
            math.factorial(rare_hom) * math.factorial(h) * math.factorial(common_hom)
        )
        return (
            ways
            * 2**h
            * math.factorial(minor)
            * math.factorial(2 * n - minor)
            / (math.factorial(2 * n))
        )

    observed = probability(het)
    total = sum(
        probability(h)
        for h in range(minor % 2, minor + 1, 2)
        if probability(h) <= observed * (1 + 1e-7)
    )
    return min(total, 1.0)


@pytest.mark.parametrize(
    "genotypes",
    [(10, 40, 50), (0, 50, 50), (100, 0, 0), (30, 35, 35), (1, 99, 0), (57, 21, 22)],
)
def test_hwe_equals_exact_enumeration(genotypes):
    het, hom1, hom2 = genotypes
    ours = hwe_exact_p(np.array([het]), np.array([hom1]), np.array([hom2]))[0]
    assert ours == pytest.approx(_naive_hwe(het, hom1, hom2), rel=1e-9, abs=1e-300)


def test_hwe_of_nobody_called_is_nan():
    assert np.isnan(hwe_exact_p(np.array([0]), np.array([0]), np.array([0]))[0])


def _naive_king(dosages, i, j):
    both = (dosages[:, i] >= 0) & (dosages[:, j] >= 0)
    x, y = dosages[both, i], dosages[both, j]
    het_het = np.sum((x == 1) & (y == 1))
    ibs0 = np.sum(((x == 0) & (y == 2)) | ((x == 2) & (y == 0)))
    het_i, het_j = np.sum(x == 1), np.sum(y == 1)
    low = min(het_i, het_j)
    return (het_het - 2 * ibs0) / (2 * low) + 0.5 - (het_i + het_j) / (4 * low)


@pytest.mark.parametrize("missing", [0.05, 0.0])
def test_king_equals_pair_by_pair(missing):
    # With nobody missing, the kernel takes its one-product path.
    rng = np.random.default_rng(5)
    dosages = rng.integers(0, 3, (300, 23)).astype(np.int8)
    dosages[rng.random(dosages.shape) < missing] = -1
    dosages[:, 7] = dosages[:, 3]  # a duplicate
    first, second, kinship, _both = king_pairs(dosages, min_kinship=-np.inf, block=8)
    assert len(first) == 23 * 22 // 2
    for i, j, value in zip(first, second, kinship, strict=True):
        assert value == pytest.approx(_naive_king(dosages, i, j), rel=1e-5)
    (index,) = np.flatnonzero((first == 3) & (second == 7))
    assert kinship[index] == pytest.approx(0.5)


@pytest.mark.parametrize("kept_bytes", [256 * 2**20, 0])
def test_pca_equals_a_full_svd(kept_bytes, monkeypatch):
    # Both ways: the standardised matrix kept, and rebuilt block by block.
    monkeypatch.setattr(kernels, "_STANDARDISED_BYTES", kept_bytes)
    # Four populations: three components of structure above the noise (the
    # randomised SVD converges on those; the noise's own are nearly tied).
    rng = np.random.default_rng(8)
    frequency = rng.uniform(0.2, 0.8, 600)
    groups = np.repeat(np.arange(4), 30)
    drift = rng.normal(0, 0.12, (600, 4))
    shifted = np.clip(frequency[:, None] + drift[:, groups], 0.01, 0.99)
    dosages = rng.binomial(2, shifted).astype(np.int8)
    scores, values = pca_scores(dosages, 3)
    p = dosages.mean(axis=1) / 2
    standardised = (dosages.T - 2 * p) / np.sqrt(2 * p * (1 - p))
    left, singular, _ = np.linalg.svd(standardised, full_matrices=False)
    expected = left[:, :3] * singular[:3]
    # A randomised SVD with four power iterations: within 1 % of the scale.
    scale = np.abs(expected).max()
    np.testing.assert_allclose(np.abs(scores), np.abs(expected), atol=0.01 * scale)
    np.testing.assert_allclose(values, singular[:3] ** 2 / 600, rtol=1e-2)


def test_pca_projects_the_samples_left_out_of_the_fit():
    rng = np.random.default_rng(9)
    dosages = rng.binomial(2, rng.uniform(0.1, 0.9, (300, 1)), (300, 50)).astype(
        np.int8
    )
    dosages[:, 49] = dosages[:, 48]  # a duplicate, left out of the fit
    fit = np.ones(50, dtype=bool)
    fit[49] = False
    scores, _values = pca_scores(dosages, 2, fit=fit)
    np.testing.assert_allclose(scores[49], scores[48])
