"""Federated answers equal the pooled ones: one cohort dealt across three real
node processes, analysed through the network, against statsmodels, scipy and
plink2 on the pooled files."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats

from .cohort import Pooled

DATASETS = ["part-1", "part-2", "part-3"]
COVARIATES = ["sex", "age"]
RELATIVE = 1e-6


def _close(federated: float, pooled: float, what: str) -> None:
    assert federated == pytest.approx(pooled, rel=RELATIVE, abs=1e-12), what


def _logistic_gwas(network, chunk_variants: int) -> dict:
    """The results of the logistic GWAS in windows of ``chunk_variants``."""
    job = network.submit(
        {
            "analysis": "gwas",
            "datasets": DATASETS,
            "phenotype": "ICD10:I25.1",
            "model": "logistic",
            "covariates": COVARIATES,
            "chunk_variants": chunk_variants,
        }
    )
    status = network.wait(job["id"])
    assert status["state"] == "COMPLETE", status
    assert {task["state"] for task in status["tasks"].values()} == {"COMPLETE"}
    return network.results(job["id"])


@pytest.fixture(scope="module")
def logistic(network) -> dict:
    return _logistic_gwas(network, 1000)


@pytest.fixture(scope="module")
def linear(network) -> dict:
    job = network.submit(
        {
            "analysis": "gwas",
            "datasets": DATASETS,
            "phenotype": "age",
            "model": "linear",
            "covariates": ["sex"],
        }
    )
    assert network.wait(job["id"])["state"] == "COMPLETE"
    return network.results(job["id"])


def _rows(result: dict, pooled: Pooled, most: int = 250) -> list[tuple[dict, int]]:
    index = {key: row for row, key in enumerate(pooled.keys)}
    rows = [row for row in result["rows"] if row["status"] == "ok"]
    picks = np.linspace(0, len(rows) - 1, min(most, len(rows))).round().astype(int)
    chosen = [rows[i] for i in sorted(set(picks.tolist()))]
    return [
        (row, index[f"{row['position']}:{row['reference']}:{row['alternate']}"])
        for row in chosen
    ]


def test_logistic_gwas_equals_pooled_statsmodels(logistic, pooled):
    assert len(logistic["rows"]) > 500
    covariates = np.column_stack([np.ones(len(pooled.sex)), pooled.sex, pooled.age])
    for row, variant in _rows(logistic, pooled):
        design = np.column_stack([covariates, pooled.dosages[variant]])
        fit = sm.Logit(pooled.cad, design).fit(disp=0, method="newton", tol=1e-12)
        what = f"{row['position']}"
        _close(row["beta"], fit.params[-1], what)
        _close(row["se"], fit.bse[-1], what)
        _close(row["p"], fit.pvalues[-1], what)
        assert row["num_observations"] == len(pooled.cad)


def test_the_rows_do_not_depend_on_how_the_rounds_group_windows(network, logistic):
    # Windows of 100 variants: up to three per round, and split into two
    # requests when their variants still fitting pass chunk_variants.
    small = _logistic_gwas(network, 100)
    assert small["num_withheld"] == logistic["num_withheld"]
    assert len(small["rows"]) == len(logistic["rows"])
    for ours, theirs in zip(small["rows"], logistic["rows"], strict=True):
        assert ours["position"] == theirs["position"]
        assert ours["status"] == theirs["status"], ours
        for name in ("beta", "se", "p"):
            if theirs[name] is None:
                assert ours[name] is None
            else:
                _close(ours[name], theirs[name], f"{ours['position']} {name}")


def test_linear_gwas_equals_pooled_statsmodels(linear, pooled):
    covariates = np.column_stack([np.ones(len(pooled.sex)), pooled.sex])
    for row, variant in _rows(linear, pooled):
        design = np.column_stack([covariates, pooled.dosages[variant]])
        fit = sm.OLS(pooled.age, design).fit()
        what = f"{row['position']}"
        _close(row["beta"], fit.params[-1], what)
        _close(row["se"], fit.bse[-1], what)
        _close(row["p"], fit.pvalues[-1], what)


def test_the_planted_causal_variant_is_the_top_hit(logistic, cohort):
    ranked = sorted(
        (row for row in logistic["rows"] if row["p"] is not None),
        key=lambda row: row["p"],
    )
    _, position, reference, alternate = cohort.causal[0]
    causal = [
        row
        for row in ranked
        if (row["position"], row["reference"], row["alternate"])
        == (position, reference, alternate)
    ]
    assert causal, "the planted variant was not analysed"
    # Variants in complete LD with it tie with it, never beat it.
    assert causal[0]["p"] == ranked[0]["p"]
    assert causal[0]["p"] < 1e-8


def test_chi_square_and_fisher_equal_pooled_scipy(network, pooled):
    job = network.submit(
        {"analysis": "table", "datasets": DATASETS, "phenotype": "ICD10:I25.1"}
    )
    assert network.wait(job["id"])["state"] == "COMPLETE"
    result = network.results(job["id"])
    index = {key: row for row, key in enumerate(pooled.keys)}
    # A table is released only if every non-empty cell on every node holds at
    # least nfilter.tab people: with ~30 cases a node, few variants pass.
    assert len(result["rows"]) > 15
    for row in result["rows"]:
        dosage = pooled.dosages[
            index[f"{row['position']}:{row['reference']}:{row['alternate']}"]
        ]
        cases, controls = dosage[pooled.cad == 1], dosage[pooled.cad == 0]
        table = np.array(
            [[(group == g).sum() for g in (0, 1, 2)] for group in (cases, controls)]
        )
        assert row["cases"] == table[0].tolist()
        assert row["controls"] == table[1].tolist()
        kept = table[:, table.sum(axis=0) > 0]
        chi2, p, _, _ = stats.chi2_contingency(kept, correction=False)
        _close(row["chi2_genotypic"], chi2, "genotypic")
        _close(row["p_genotypic"], p, "genotypic p")
        alleles = np.array(
            [[2 * t[2] + t[1], 2 * t[0] + t[1]] for t in table], dtype=np.int64
        )
        chi2, p, _, _ = stats.chi2_contingency(alleles, correction=False)
        _close(row["chi2_allelic"], chi2, "allelic")
        _close(row["p_allelic"], p, "allelic p")
        _, exact = stats.fisher_exact(alleles)
        _close(row["p_fisher"], exact, "fisher")


def _plink(pooled_vcf, out, phenotype_file, covariate_file, extra):
    subprocess.run(
        [
            shutil.which("plink2") or "/usr/bin/plink2",
            "--vcf",
            str(pooled_vcf),
            "--pheno",
            str(phenotype_file),
            "--covar",
            str(covariate_file),
            "--glm",
            "hide-covar",
            *extra,
            "--threads",
            "1",
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )


def _write_plink_inputs(pooled: Pooled, directory, outcome: np.ndarray, binary: bool):
    phenotype_file = directory / "pheno.tsv"
    covariate_file = directory / "covar.tsv"
    lines = ["#IID\tY"]
    for sample, value in zip(pooled.samples, outcome, strict=True):
        coded = int(value) + 1 if binary else value
        lines.append(f"{sample}\t{coded}")
    phenotype_file.write_text("\n".join(lines) + "\n")
    lines = ["#IID\tMALE\tAGE"]
    for sample, sex, age in zip(pooled.samples, pooled.sex, pooled.age, strict=True):
        lines.append(f"{sample}\t{sex:g}\t{age:g}")
    covariate_file.write_text("\n".join(lines) + "\n")
    return phenotype_file, covariate_file


def _plink_table(path) -> dict[int, dict[str, str]]:
    lines = path.read_text().splitlines()
    header = lines[0].lstrip("#").split("\t")
    out = {}
    for line in lines[1:]:
        row = dict(zip(header, line.split("\t"), strict=True))
        out[int(row["POS"])] = row
    return out


def test_logistic_gwas_equals_plink2(logistic, pooled, cohort, tmp_path):
    phenotype_file, covariate_file = _write_plink_inputs(
        pooled, tmp_path, pooled.cad, binary=True
    )
    # No Firth fallback: plink2's plain logistic regression, as the network runs.
    _plink(
        cohort.pool_vcf,
        tmp_path / "out",
        phenotype_file,
        covariate_file,
        ["no-firth"],
    )
    found = list(tmp_path.glob("out*.glm.logistic*"))
    assert found, list(tmp_path.iterdir())
    table = _plink_table(found[0])
    compared = 0
    for row in logistic["rows"]:
        theirs = table.get(row["position"])
        if row["status"] != "ok" or theirs is None or theirs.get("ERRCODE", ".") != ".":
            continue
        if theirs["A1"] != row["alternate"]:
            continue
        # plink2 fits logistic models in single precision and prints six
        # significant digits: it agrees to about 1e-5, statsmodels to 1e-6.
        assert float(theirs["OR"]) == pytest.approx(np.exp(row["beta"]), rel=2e-4)
        assert float(theirs["LOG(OR)_SE"]) == pytest.approx(row["se"], rel=2e-4)
        assert float(theirs["P"]) == pytest.approx(row["p"], rel=2e-3)
        compared += 1
    assert compared > 500


def test_summaries_equal_pooled_numpy(network, pooled):
    job = network.submit(
        {
            "analysis": "summary",
            "datasets": DATASETS,
            "variables": ["age", "sex", "ICD10:I25.1"],
        }
    )
    assert network.wait(job["id"])["state"] == "COMPLETE"
    variables = network.results(job["id"])["variables"]
    assert variables["age"]["num"] == len(pooled.age)
    _close(variables["age"]["mean"], pooled.age.mean(), "mean")
    _close(variables["age"]["variance"], pooled.age.var(ddof=1), "variance")
    assert variables["sex"]["counts"] == [
        int((pooled.sex == 0).sum()),
        int((pooled.sex == 1).sum()),
    ]
    assert variables["ICD10:I25.1"]["counts"][1] == int(pooled.cad.sum())


def test_frequencies_per_stratum_equal_pooled_counts(network, pooled):
    job = network.submit(
        {
            "analysis": "frequencies",
            "datasets": DATASETS,
            "strata": ["sex"],
            "region": {"contig": "1", "start": 1, "end": 300_000},
        }
    )
    assert network.wait(job["id"])["state"] == "COMPLETE"
    result = network.results(job["id"])
    assert result["strata"] == ["sex=0", "sex=1"]
    assert result["num_individuals"] == {
        "sex=0": int((pooled.sex == 0).sum()),
        "sex=1": int((pooled.sex == 1).sum()),
    }
    index = {key: row for row, key in enumerate(pooled.keys)}
    assert len(result["rows"]) > 100
    for row in result["rows"]:
        dosage = pooled.dosages[
            index[f"{row['position']}:{row['reference']}:{row['alternate']}"]
        ]
        expected = [int(dosage[pooled.sex == s].sum()) for s in (0, 1)]
        assert row["allele_count"] == expected
        assert row["allele_number"] == [
            2 * int((pooled.sex == s).sum()) for s in (0, 1)
        ]


def test_federated_pca_equals_pooled_pca_up_to_sign(network, pooled, cohort):
    job = network.submit(
        {
            "analysis": "pca",
            "datasets": DATASETS,
            "region": {"contig": "1", "start": 1, "end": 2_000_000},
            "components": 3,
            "max_variants": 60,
        }
    )
    status = network.wait(job["id"])
    assert status["state"] == "COMPLETE", status
    result = network.results(job["id"])
    index = {key: row for row, key in enumerate(pooled.keys)}
    rows = [index[key] for key in result["variants"]]
    dosages = pooled.dosages[rows]
    frequency = dosages.mean(axis=1) / 2
    np.testing.assert_allclose(result["frequencies"], frequency, rtol=1e-12)
    z = (dosages - 2 * frequency[:, None]) / np.sqrt(2 * frequency * (1 - frequency))[
        :, None
    ]
    values, vectors = np.linalg.eigh(z @ z.T)
    order = np.argsort(values)[::-1][:3]
    values, vectors = values[order], vectors[:, order]
    np.testing.assert_allclose(result["eigenvalues"], values, rtol=1e-6)
    loadings = np.array(result["loadings"])
    signs = np.sign((loadings * vectors).sum(axis=0))
    np.testing.assert_allclose(loadings, vectors * signs, atol=1e-6)
    pooled_scores = z.T @ vectors * signs
    for directory, samples in zip(network.node_dirs, cohort.samples, strict=True):
        dataset = directory.name.replace("node", "part")
        kept = np.load(directory / "analysis" / dataset / "pcs.npy")
        columns = [pooled.samples.index(sample) for sample in samples]
        np.testing.assert_allclose(kept, pooled_scores[columns], rtol=1e-6, atol=1e-9)
    # The scores stay on the nodes and serve as covariates there.
    gwas = network.submit(
        {
            "analysis": "gwas",
            "datasets": DATASETS,
            "phenotype": "age",
            "model": "linear",
            "covariates": ["sex", "pc1", "pc2"],
            "region": {"contig": "1", "start": 1, "end": 200_000},
        }
    )
    assert network.wait(gwas["id"])["state"] == "COMPLETE"
    found = network.results(gwas["id"])
    design = np.column_stack(
        [np.ones(len(pooled.sex)), pooled.sex, pooled_scores[:, :2]]
    )
    for row, variant in _rows(found, pooled, most=40):
        fit = sm.OLS(
            pooled.age, np.column_stack([design, pooled.dosages[variant]])
        ).fit()
        _close(row["beta"], fit.params[-1], "beta with PCs")
        _close(row["se"], fit.bse[-1], "se with PCs")


def _naive_pruned(z: np.ndarray, threshold: float, band: int) -> list[int]:
    """LD pruning read literally on the pooled standardised genotypes."""
    kept: list[int] = []
    for j in range(len(z)):
        if all(
            np.corrcoef(z[i], z[j])[0, 1] ** 2 < threshold
            if np.std(z[i]) and np.std(z[j])
            else True
            for i in kept
            if j - i <= band
        ):
            kept.append(j)
    return kept


def test_the_pca_variants_are_ld_pruned_on_pooled_r2(network, pooled, cohort):
    region = {"contig": "1", "start": 1, "end": 300_000}
    job = network.submit(
        {
            "analysis": "pca",
            "datasets": DATASETS,
            "region": region,
            "components": 2,
            "max_variants": 60,
            "ld_r2": 0.2,
            "ld_window": 10,
            "chunk_variants": 20_000,  # one window: every pair is compared
        }
    )
    status = network.wait(job["id"])
    assert status["state"] == "COMPLETE", status
    result = network.results(job["id"])
    # The candidates: released by every node (minor-allele count >= 5 on each),
    # pooled minor-allele frequency >= 0.05, in the region (one window).
    minimum = None
    for samples in cohort.samples:
        here = pooled.dosages[:, [pooled.samples.index(s) for s in samples]]
        minor = np.minimum(here.sum(axis=1), 2 * here.shape[1] - here.sum(axis=1))
        minimum = minor if minimum is None else np.minimum(minimum, minor)
    frequency = pooled.dosages.mean(axis=1) / 2
    candidates = np.flatnonzero(
        (minimum >= 5)
        & (np.minimum(frequency, 1 - frequency) >= 0.05)
        & (pooled.positions < region["end"])
    )
    p = frequency[candidates]
    z = (pooled.dosages[candidates] - 2 * p[:, None]) / np.sqrt(2 * p * (1 - p))[
        :, None
    ]
    # r² of standardised genotypes is their squared correlation about zero-mean
    # (the pooled frequency is the mean): the same number.
    kept = _naive_pruned(z, 0.2, 10)
    assert 60 < len(kept) < len(candidates)
    # Then thinned to 60 evenly spaced ones (the Gram matrix's nfilter.glm).
    kept = [kept[int(i)] for i in np.linspace(0, len(kept) - 1, 60).round()]
    assert result["variants"] == [pooled.keys[candidates[j]] for j in kept]


def _pooled_firth(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Firth's penalised logistic fit on pooled data, with the explicit hat
    matrix (the textbook iteration, logistf's step limit)."""
    beta = np.zeros(x.shape[1])
    for _ in range(200):
        mu = 1 / (1 + np.exp(-(x @ beta)))
        w = mu * (1 - mu)
        inverse = np.linalg.inv(x.T @ (w[:, None] * x))
        root = np.sqrt(w)[:, None] * x
        hat = np.einsum("ij,jk,ik->i", root, inverse, root)
        step = inverse @ (x.T @ (y - mu + hat * (0.5 - mu)))
        step *= min(1.0, 5.0 / np.max(np.abs(step)))
        beta = beta + step
        if np.max(np.abs(step)) < 1e-13:
            break
    mu = 1 / (1 + np.exp(-(x @ beta)))
    w = mu * (1 - mu)
    return beta, np.sqrt(np.diag(np.linalg.inv(x.T @ (w[:, None] * x))))


def test_federated_firth_equals_pooled_firth(network, pooled):
    job = network.submit(
        {
            "analysis": "gwas",
            "datasets": DATASETS,
            "phenotype": "ICD10:I25.1",
            "model": "logistic",
            "covariates": ["sex", "age"],
            "region": {"contig": "1", "start": 1, "end": 150_000},
            "firth": "all",
        }
    )
    status = network.wait(job["id"])
    assert status["state"] == "COMPLETE", status
    rows = network.results(job["id"])["rows"]
    assert len(rows) > 50 and all(row["status"] == "firth" for row in rows)
    index = {key: i for i, key in enumerate(pooled.keys)}
    design = np.column_stack([np.ones(len(pooled.cad)), pooled.sex, pooled.age])
    for row in rows[:: max(1, len(rows) // 25)]:
        dosage = pooled.dosages[
            index[f"{row['position']}:{row['reference']}:{row['alternate']}"]
        ]
        beta, se = _pooled_firth(np.column_stack([design, dosage]), pooled.cad)
        _close(row["beta"], beta[-1], "beta")
        _close(row["se"], se[-1], "se")
