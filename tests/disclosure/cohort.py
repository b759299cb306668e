"""The cohort the differencing attacks of issue 12 run against.

400 people; the three oldest are alone at their ages (90, 88, 86), everyone else
is 18-85, so "age < 87" minus "age < 86" isolates one person (``P002``, aged 86)
and "age < 88" leaves out the two oldest (``P000``, ``P001``). Six diseases,
each carried by some of the three oldest (a count below the floor of 5 among
people aged 86 or more). 200 variants on contig 1: the first 100 common
(AF 5-40 %), the last 100 rare (1-3 carriers), the rare ones planted on the
isolated person and on the two oldest half of the time.

Synthetic (numpy, seeded): no real person is described.
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np

from ..conftest import write_dataset_yaml, write_vcf

NUM_PEOPLE = 400
NUM_COMMON = 100
NUM_RARE = 100
DISEASES = ("ICD10:I10", "ICD10:E11", "ICD10:I48", "ICD10:E78.0", "ICD10:J45")
ISOLATED = 2  # P002, aged 86
OLDEST = (0, 1)  # P000 aged 90, P001 aged 88
FIRST_POSITION = 10_000
STEP = 50


@dataclasses.dataclass
class Cohort:
    """What the attacker wants to learn, for checking the attacks."""

    ages: np.ndarray
    diseases: dict[str, np.ndarray]  # disease -> bool per person
    genotypes: np.ndarray  # variants x people x 2 (bool: ALT)
    references: list[str]
    alternates: list[str]

    def position(self, variant: int) -> int:
        return FIRST_POSITION + STEP * variant

    def carries(self, variant: int, person: int) -> bool:
        return bool(self.genotypes[variant, person].any())

    def old_count(self, disease: str, min_age: int = 86) -> int:
        """People aged ``min_age`` or more with ``disease``: below the floor."""
        return int((self.diseases[disease] & (self.ages >= min_age)).sum())


def build(directory: pathlib.Path, seed: int = 12, *, oldest: bool = True) -> Cohort:
    """Write the cohort (VCF + CSV) into ``directory``; its truth. Without
    ``oldest`` nobody is 86 or older (another node's cohort in the network)."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    ages = rng.integers(18, 86, NUM_PEOPLE)
    if oldest:
        ages[0], ages[1], ages[2] = 90, 88, 86
    diseases = {}
    for index, disease in enumerate(DISEASES):
        has = rng.random(NUM_PEOPLE) < 0.1 + 0.05 * index
        # Among the three oldest: 1 to 3 of them, so 0 < count < 5.
        has[:3] = [bool((index + person) % 3 != 2) for person in range(3)]
        diseases[disease] = has
    num_variants = NUM_COMMON + NUM_RARE
    genotypes = np.zeros((num_variants, NUM_PEOPLE, 2), dtype=bool)
    for variant in range(NUM_COMMON):
        frequency = rng.uniform(0.05, 0.4)
        genotypes[variant] = rng.random((NUM_PEOPLE, 2)) < frequency
    for variant in range(NUM_COMMON, num_variants):
        # A quarter of the rare variants are carried by none of the younger.
        how_many = 0 if variant % 8 in (0, 1) else rng.integers(0, 3)
        others = rng.choice(np.arange(3, NUM_PEOPLE), how_many, replace=False)
        for person in others:
            genotypes[variant, person, 0] = True
        if variant % 2 == 0:
            genotypes[variant, ISOLATED, 1] = True
        if variant % 4 in (0, 1):
            genotypes[variant, OLDEST[variant % 4 % 2], 0] = True
        if not genotypes[variant].any():
            genotypes[variant, rng.integers(3, NUM_PEOPLE), 0] = True
    references, alternates, records = [], [], []
    samples = [f"P{person:03d}" for person in range(NUM_PEOPLE)]
    for variant in range(num_variants):
        reference, alternate = rng.choice(list("ACGT"), size=2, replace=False)
        references.append(str(reference))
        alternates.append(str(alternate))
        calls = [f"{int(a)}|{int(b)}" for a, b in genotypes[variant]]
        records.append(
            "\t".join(
                [
                    "1",
                    str(FIRST_POSITION + STEP * variant),
                    ".",
                    str(reference),
                    str(alternate),
                    ".",
                    "PASS",
                    ".",
                    "GT",
                    *calls,
                ]
            )
        )
    write_vcf(directory / "cohort.vcf.gz", records, samples=samples, contigs=("1",))
    lines = ["sample,sex,age,diseases"]
    for person, sample in enumerate(samples):
        names = ";".join(d for d in DISEASES if diseases[d][person])
        sex = "female" if person % 2 else "male"
        lines.append(f"{sample},{sex},{ages[person]},{names}")
    (directory / "clinical.csv").write_text("\n".join(lines) + "\n")
    return Cohort(ages, diseases, genotypes, references, alternates)


def write_description(
    directory: pathlib.Path, dataset_id: str, security_level: str, **fields
) -> pathlib.Path:
    """A dataset.yaml over the cohort in ``directory``."""
    return write_dataset_yaml(
        directory,
        id=dataset_id,
        security_level=security_level,
        clinical={
            "format": "csv",
            "path": "clinical.csv",
            "columns": {
                "id": "sample",
                "sex": "sex",
                "age": "age",
                "diseases": "diseases",
            },
        },
        **fields,
    )
