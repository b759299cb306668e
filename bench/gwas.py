"""Federated GWAS benchmark: a logistic GWAS with 6 covariates across three real
nodes through the network, next to ``plink2 --glm`` on the pooled data.

One cohort is simulated (:func:`genomenode.simulate.simulate_cohort`) and dealt
into three datasets, each ingested into its own node; the nodes and the network
run as real processes on loopback (the test suite's helpers). Then, in the same
run:

1. a federated PCA (4 components) whose scores stay on the nodes;
2. the federated logistic GWAS of ICD10:I25.1 on sex, age, pc1..pc4: wall time
   from submission to COMPLETE, and the number of round trips;
3. ``plink2 --glm no-firth`` on the pooled data with the same covariates (the
   PCs as the nodes kept them): from the pooled VCF, and from a PGEN made
   beforehand (the regression alone);
4. exactness: the federated β and SE against pooled statsmodels on a sample of
   variants (relative difference), and against plink2 at its printed precision.

Full: 3 nodes × 3,000 samples × ~80,000 variants (target: within 3× plink2,
exact to 1e-6). ``--quick``: 3 × 300 samples, ~6,000 variants.

Usage: python bench/gwas.py [--quick] [--samples-per-node N] [--length BP]
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from tests.analysis.cohort import deal_cohort, read_pooled
from tests.analysis.conftest import RESEARCHER, serve_network
from tests.conftest import grant_access, in_process_workers

from genomenode.ingest.pipeline import ingest
from genomenode.store.node import init_node

COVARIATES = ["sex", "age", "pc1", "pc2", "pc3", "pc4"]
PLINK = shutil.which("plink2") or "/usr/bin/plink2"


def _plink(arguments: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run([PLINK, *arguments], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"plink2 failed:\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--samples-per-node", type=int, default=None)
    parser.add_argument("--length", type=int, default=None)
    parser.add_argument("--chunk-variants", type=int, default=5000)
    arguments = parser.parse_args()
    per_node = arguments.samples_per_node or (300 if arguments.quick else 3000)
    length = arguments.length or (1_500_000 if arguments.quick else 14_000_000)

    with tempfile.TemporaryDirectory(prefix="bench-gwas-") as temporary:
        root = pathlib.Path(temporary)
        started = time.perf_counter()
        cohort = deal_cohort(
            root / "cohort", samples=3 * per_node, seed=5, length=length
        )
        pooled = read_pooled(cohort)
        print(
            f"cohort: 3 nodes × {per_node} samples, {len(pooled.keys)} biallelic "
            f"variants (simulated in {time.perf_counter() - started:.0f} s)"
        )
        templates = []
        with in_process_workers():
            for index, description in enumerate(cohort.dataset_yamls, start=1):
                directory = root / "templates" / f"node-{index}"
                with init_node(
                    directory, node_id=f"node-{index}", country="FI"
                ) as node:
                    ingest(node, description)
                    grant_access(node, cohort.dataset_ids[index - 1], RESEARCHER)
                templates.append(directory)
        with serve_network(templates, root / "served") as network:
            pca = network.submit(
                {
                    "analysis": "pca",
                    "datasets": cohort.dataset_ids,
                    "region": {"contig": "1", "start": 1, "end": length + 1},
                    "components": 4,
                    "max_variants": min(300, int(0.3 * per_node)),
                }
            )
            assert network.wait(pca["id"], 600)["state"] == "COMPLETE"
            started = time.perf_counter()
            job = network.submit(
                {
                    "analysis": "gwas",
                    "datasets": cohort.dataset_ids,
                    "phenotype": "ICD10:I25.1",
                    "model": "logistic",
                    "covariates": COVARIATES,
                    "chunk_variants": arguments.chunk_variants,
                }
            )
            status = network.wait(job["id"], 7200)
            federated_seconds = time.perf_counter() - started
            assert status["state"] == "COMPLETE", status
            result = network.results(job["id"])
            scores = {}
            for directory, samples in zip(
                network.node_dirs, cohort.samples, strict=True
            ):
                dataset = directory.name.replace("node", "part")
                kept = np.load(directory / "analysis" / dataset / "pcs.npy")
                scores.update(zip(samples, kept, strict=True))

        covariates = np.column_stack(
            [pooled.sex, pooled.age, np.array([scores[s] for s in pooled.samples])]
        )
        phenotype_file, covariate_file = root / "pheno.tsv", root / "covar.tsv"
        phenotype_file.write_text(
            "#IID\tY\n"
            + "".join(
                f"{s}\t{int(y) + 1}\n"
                for s, y in zip(pooled.samples, pooled.cad, strict=True)
            )
        )
        names = ["MALE", "AGE", "PC1", "PC2", "PC3", "PC4"]
        covariate_file.write_text(
            "#IID\t"
            + "\t".join(names)
            + "\n"
            + "".join(
                f"{s}\t" + "\t".join(repr(float(v)) for v in row) + "\n"
                for s, row in zip(pooled.samples, covariates, strict=True)
            )
        )
        glm = [
            "--pheno", str(phenotype_file), "--covar", str(covariate_file),
            "--glm", "hide-covar", "no-firth", "--threads", "2",
        ]  # fmt: skip
        from_vcf = _plink(
            ["--vcf", str(cohort.pool_vcf), *glm, "--out", str(root / "vcf")]
        )
        _plink(["--vcf", str(cohort.pool_vcf), "--make-pgen", "--out", str(root / "p")])
        from_pgen = _plink(
            ["--pfile", str(root / "p"), *glm, "--out", str(root / "pg")]
        )

        import statsmodels.api as sm

        rows = [row for row in result["rows"] if row["status"] == "ok"]
        index = {key: i for i, key in enumerate(pooled.keys)}
        design = np.column_stack([np.ones(len(pooled.cad)), covariates])
        worst = 0.0
        for row in rows[:: max(1, len(rows) // 100)]:
            key = f"{row['position']}:{row['reference']}:{row['alternate']}"
            x = np.column_stack([design, pooled.dosages[index[key]]])
            fit = sm.Logit(pooled.cad, x).fit(disp=0, method="newton", tol=1e-12)
            for ours, theirs in (
                (row["beta"], fit.params[-1]),
                (row["se"], fit.bse[-1]),
            ):
                worst = max(worst, abs(ours - theirs) / max(abs(theirs), 1e-12))
        plink_rows = {}
        found = next(root.glob("pg*.glm.logistic*"))
        lines = found.read_text().splitlines()
        header = lines[0].lstrip("#").split("\t")
        for line in lines[1:]:
            fields = dict(zip(header, line.split("\t"), strict=True))
            plink_rows[int(fields["POS"])] = fields
        plink_worst, compared = 0.0, 0
        for row in rows:
            theirs = plink_rows.get(row["position"])
            if (
                theirs is None
                or theirs.get("ERRCODE", ".") != "."
                or theirs["A1"] != row["alternate"]
            ):
                continue
            plink_worst = max(
                plink_worst,
                abs(float(theirs["LOG(OR)_SE"]) - row["se"]) / row["se"],
            )
            compared += 1

    print(
        f"federated GWAS: {len(result['rows'])} variants reported "
        f"({len(rows)} converged, {result['num_withheld']} withheld by the nodes' "
        f"minor-allele-count rule)"
    )
    print(f"  wall time {federated_seconds:.1f} s, {status['round_trips']} round trips")
    print(
        f"plink2 --glm: {from_vcf:.1f} s from the pooled VCF, "
        f"{from_pgen:.1f} s from a PGEN"
    )
    print(f"ratio federated / plink2 (from VCF): {federated_seconds / from_vcf:.2f}")
    print(f"ratio federated / plink2 (from PGEN): {federated_seconds / from_pgen:.2f}")
    print(f"exactness: max relative |Δ| of β and SE vs pooled statsmodels: {worst:.2e}")
    print(
        f"           max relative |Δ| of SE vs plink2 (6 significant digits), "
        f"{compared} variants: {plink_worst:.2e}"
    )


if __name__ == "__main__":
    main()
