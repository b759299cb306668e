"""One simulated cohort dealt across nodes, and its pooled truth.

:func:`genomenode.simulate.simulate_cohort` draws the cohort (with the planted
coronary artery disease variants); its people are dealt round-robin into
``parts`` datasets, each a VCF of its people's columns (every site kept, as a
joint call of the whole cohort would), their phenopackets and a dataset.yaml.
The pooled VCF and phenopackets stay as the truth to compare against.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import shutil

import numpy as np
import pysam
import pysam.bcftools
import yaml

from genomenode.privacy.cohort import read_genotypes
from genomenode.simulate import simulate_cohort


@dataclasses.dataclass(frozen=True)
class DealtCohort:
    pool_vcf: pathlib.Path
    pool_dir: pathlib.Path
    dataset_yamls: list[pathlib.Path]
    dataset_ids: list[str]
    samples: list[list[str]]
    causal: list[tuple[str, int, str, str]]


def deal_cohort(
    out: pathlib.Path,
    *,
    samples: int,
    parts: int = 3,
    seed: int = 3,
    length: int = 1_000_000,
    security_level: str = "CONTROLLED",
    prefix: str = "part",
) -> DealtCohort:
    pool = simulate_cohort(
        out / "pool",
        samples=samples,
        seed=seed,
        length=length,
        security_level=security_level,
        dataset_id="pool",
    )
    with pysam.VariantFile(str(pool.vcf_path)) as opened:
        everyone = list(opened.header.samples)
    document = yaml.safe_load(pool.dataset_yaml.read_text())
    document.pop("simulation", None)
    yamls, ids, dealt = [], [], []
    for part in range(parts):
        chosen = everyone[part::parts]
        dataset_id = f"{prefix}-{part + 1}"
        directory = out / dataset_id
        (directory / "phenopackets").mkdir(parents=True, exist_ok=True)
        vcf = directory / f"{dataset_id}.vcf.gz"
        pysam.bcftools.view(
            "--samples",
            ",".join(chosen),
            "--output-type",
            "z",
            "--output",
            str(vcf),
            str(pool.vcf_path),
            catch_stdout=False,
        )
        pysam.tabix_index(str(vcf), preset="vcf", force=True)
        for sample in chosen:
            shutil.copy(
                pool.phenopackets_dir / f"{sample}.json",
                directory / "phenopackets" / f"{sample}.json",
            )
        shutil.copy(pool.genes_path, directory / "genes.tsv")
        path = directory / "dataset.yaml"
        path.write_text(
            yaml.safe_dump(
                {**document, "id": dataset_id, "genotypes": [{"path": vcf.name}]},
                sort_keys=False,
            )
        )
        yamls.append(path)
        ids.append(dataset_id)
        dealt.append(chosen)
    return DealtCohort(
        pool.vcf_path, out / "pool", yamls, ids, dealt, pool.causal_variants
    )


@dataclasses.dataclass(frozen=True)
class Pooled:
    """The pooled data, read straight from the files (the truth)."""

    keys: list[str]
    positions: np.ndarray
    dosages: np.ndarray  # variants × samples
    samples: list[str]
    sex: np.ndarray
    age: np.ndarray
    cad: np.ndarray


def read_pooled(cohort: DealtCohort) -> Pooled:
    # bcftools query and NumPy (the privacy tools' reader): fast at bench sizes.
    genotypes = read_genotypes(cohort.pool_vcf)
    keys = [
        f"{position}:{reference}:{alternate}"
        for _, position, reference, alternate in genotypes.variant_keys()
    ]
    positions = genotypes.position
    rows = genotypes.dosage
    samples = genotypes.samples
    sex, age, cad = [], [], []
    for sample in samples:
        packet = json.loads(
            (cohort.pool_dir / "phenopackets" / f"{sample}.json").read_text()
        )
        subject = packet["subject"]
        sex.append(1.0 if subject["sex"] == "MALE" else 0.0)
        age.append(
            float(subject["timeAtLastEncounter"]["age"]["iso8601duration"][1:-1])
        )
        diseases = {d["term"]["id"] for d in packet.get("diseases", [])}
        cad.append(1.0 if "ICD10:I25.1" in diseases else 0.0)
    return Pooled(
        keys,
        np.asarray(positions),
        np.asarray(rows, dtype=np.float64),
        samples,
        np.array(sex),
        np.array(age),
        np.array(cad),
    )
