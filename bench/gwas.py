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

Wall and CPU time (user + system of the three node processes and the network,
from /proc; of plink2 from its rusage) are both printed: the machine may be
shared, and CPU time is the fairer comparison then.

Usage: python bench/gwas.py [--quick] [--samples-per-node N] [--length BP]
       [--chunk-variants N] [--profile DIR] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import pickle
import resource
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
PY_SPY = str(pathlib.Path(sys.executable).parent / "py-spy")


def _plink(arguments: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one plink2 run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([PLINK, *arguments], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"plink2 failed:\n{done.stdout}\n{done.stderr}")
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _cpu_seconds(pids: list[int]) -> float:
    """CPU seconds (user + system) the running processes ``pids`` have used."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1]
        user, system = fields.split()[11:13]
        total += int(user) + int(system)
    return total / ticks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--samples-per-node", type=int, default=None)
    parser.add_argument("--length", type=int, default=None)
    parser.add_argument("--chunk-variants", type=int, default=5000)
    parser.add_argument(
        "--profile",
        type=pathlib.Path,
        default=None,
        help="write py-spy flame graphs of node 1 and the network to this folder",
    )
    parser.add_argument(
        "--keep",
        type=pathlib.Path,
        default=None,
        help="keep the simulated cohort and ingested nodes in this folder and "
        "reuse them on later runs of the same size",
    )
    arguments = parser.parse_args()
    per_node = arguments.samples_per_node or (300 if arguments.quick else 3000)
    length = arguments.length or (1_500_000 if arguments.quick else 14_000_000)

    with tempfile.TemporaryDirectory(prefix="bench-gwas-") as temporary:
        root = pathlib.Path(temporary)
        built = root
        if arguments.keep is not None:
            built = arguments.keep / f"{per_node}x3-{length}"
        started = time.perf_counter()
        saved = built / "cohort.pickle"
        if saved.exists():
            cohort = pickle.loads(saved.read_bytes())
        else:
            if built != root:
                shutil.rmtree(built, ignore_errors=True)  # a run cut short
            cohort = deal_cohort(
                built / "cohort", samples=3 * per_node, seed=5, length=length
            )
        pooled = read_pooled(cohort)
        print(
            f"cohort: 3 nodes × {per_node} samples, {len(pooled.keys)} biallelic "
            f"variants (ready in {time.perf_counter() - started:.0f} s)"
        )
        templates = [built / "templates" / f"node-{i}" for i in (1, 2, 3)]
        if not saved.exists():
            with in_process_workers():
                for index, description in enumerate(cohort.dataset_yamls, start=1):
                    directory = templates[index - 1]
                    with init_node(
                        directory, node_id=f"node-{index}", country="FI"
                    ) as node:
                        ingest(node, description)
                        grant_access(node, cohort.dataset_ids[index - 1], RESEARCHER)
            saved.write_bytes(pickle.dumps(cohort))
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
            pids = [p.pid for p in network.processes] + [network.network_process.pid]
            profilers = []
            if arguments.profile is not None:
                arguments.profile.mkdir(parents=True, exist_ok=True)
                for name, pid in (("node-1", pids[0]), ("network", pids[-1])):
                    profilers.append(
                        subprocess.Popen(
                            [
                                PY_SPY, "record", "--pid", str(pid), "--rate",
                                "200", "--output",
                                str(arguments.profile / f"{name}.svg"),
                            ]
                        )
                    )  # fmt: skip
                time.sleep(1)
            cpu_before = _cpu_seconds(pids)
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
            federated_cpu = _cpu_seconds(pids) - cpu_before
            for profiler in profilers:
                profiler.send_signal(2)
                profiler.wait(60)
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
            "--glm", "hide-covar", "no-firth", "--threads", "2", "--memory", "4000",
        ]  # fmt: skip
        from_vcf, from_vcf_cpu = _plink(
            ["--vcf", str(cohort.pool_vcf), *glm, "--out", str(root / "vcf")]
        )
        _plink(["--vcf", str(cohort.pool_vcf), "--make-pgen", "--out", str(root / "p")])
        from_pgen, from_pgen_cpu = _plink(
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
    print(
        f"  wall time {federated_seconds:.1f} s, CPU time {federated_cpu:.1f} s "
        f"(3 nodes + network), {status['round_trips']} round trips"
    )
    print(
        f"plink2 --glm: {from_vcf:.1f} s wall, {from_vcf_cpu:.1f} s CPU from the "
        f"pooled VCF; {from_pgen:.1f} s wall, {from_pgen_cpu:.1f} s CPU from a PGEN"
    )
    for label, wall, cpu in (
        ("VCF", from_vcf, from_vcf_cpu),
        ("PGEN", from_pgen, from_pgen_cpu),
    ):
        print(
            f"ratio federated / plink2 (from {label}): wall "
            f"{federated_seconds / wall:.2f}, CPU {federated_cpu / cpu:.2f}"
        )
    print(f"exactness: max relative |Δ| of β and SE vs pooled statsmodels: {worst:.2e}")
    print(
        f"           max relative |Δ| of SE vs plink2 (6 significant digits), "
        f"{compared} variants: {plink_worst:.2e}"
    )


if __name__ == "__main__":
    main()
