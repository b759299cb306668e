"""Cohorts for the attacks: members, non-members and a reference panel drawn from
one simulated population.

A membership test is only meaningful when members and non-members come from the
same population: otherwise it detects ancestry, not membership. So one msprime
run (:func:`genomenode.simulate.simulate_cohort`) simulates every individual,
and the individuals are then dealt at random into

- *members*: written as one or more datasets (one per node of a network), each a
  VCF of its members' columns (sites none of them carries dropped, as a real
  joint call would), their phenopackets and a ``dataset.yaml``;
- *non-members*: the controls whose statistics set the false-positive rate;
- a *reference panel*: the public frequencies an attacker compares against.

:func:`read_genotypes` reads any of the groups back as a dosage matrix.
"""

from __future__ import annotations

import pathlib
import shutil
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pysam
import pysam.bcftools
import yaml

from ..simulate import simulate_cohort

__all__ = [
    "SplitCohort",
    "VariantGenotypes",
    "read_genotypes",
    "simulate_split_cohort",
    "synthesise_genotypes",
]


@dataclass(frozen=True)
class VariantGenotypes:
    """Biallelic variants and the ALT dosage (0, 1, 2) of each sample.

    ``dosage`` has shape ``(variants, samples)``; positions are 1-based.
    """

    contig: np.ndarray
    position: np.ndarray
    reference: np.ndarray
    alternate: np.ndarray
    dosage: np.ndarray
    samples: list[str] = field(default_factory=list)

    def variant_keys(self) -> list[tuple[str, int, str, str]]:
        """``(contig, position, ref, alt)`` of every variant."""
        return list(
            zip(
                self.contig.tolist(),
                self.position.tolist(),
                self.reference.tolist(),
                self.alternate.tolist(),
                strict=True,
            )
        )

    def frequencies(self) -> np.ndarray:
        """ALT allele frequency per variant over these samples."""
        return self.dosage.sum(axis=1) / (2.0 * max(1, self.dosage.shape[1]))

    def carrier_frequencies(self) -> np.ndarray:
        """Share of these samples carrying the ALT allele, per variant."""
        return (self.dosage > 0).mean(axis=1)

    def frequencies_for(self, keys: list[tuple[str, int, str, str]]) -> np.ndarray:
        """ALT allele frequency of each of ``keys`` here (0 where absent)."""
        return self.aligned_to(keys).sum(axis=1) / (2.0 * max(1, self.dosage.shape[1]))

    def aligned_to(self, keys: list[tuple[str, int, str, str]]) -> np.ndarray:
        """Dosage rows for ``keys`` (zeros where a key is not among these variants):
        a variant a group does not carry is simply absent from its VCF."""
        index = {key: row for row, key in enumerate(self.variant_keys())}
        out = np.zeros((len(keys), self.dosage.shape[1]), dtype=np.int8)
        for row, key in enumerate(keys):
            found = index.get(key)
            if found is not None:
                out[row] = self.dosage[found]
        return out


@dataclass(frozen=True)
class SplitCohort:
    """What :func:`simulate_split_cohort` wrote and how it dealt the people."""

    pool_vcf: pathlib.Path
    dataset_yamls: list[pathlib.Path]
    dataset_ids: list[str]
    members: list[list[str]]
    non_members: list[str]
    reference: list[str]

    @property
    def all_members(self) -> list[str]:
        return [sample for part in self.members for sample in part]


def _home(populations: tuple[str, ...]) -> str:
    """The population most people were drawn from."""
    names, counts = np.unique(np.array(populations), return_counts=True)
    return str(names[np.argmax(counts)])


def _subset_vcf(source: pathlib.Path, target: pathlib.Path, samples: list[str]) -> None:
    # --min-ac 1: a joint call of these people alone has no site none of them
    # carries; --trim-alt-alleles keeps ALT lists to what they carry.
    pysam.bcftools.view(
        "--samples",
        ",".join(samples),
        "--min-ac",
        "1",
        "--trim-alt-alleles",
        "--output-type",
        "z",
        "--output",
        str(target),
        str(source),
        catch_stdout=False,
    )
    pysam.tabix_index(str(target), preset="vcf", force=True)


def simulate_split_cohort(
    out_dir: str | pathlib.Path,
    *,
    members: int = 100,
    non_members: int = 100,
    reference: int = 100,
    parts: int = 1,
    seed: int = 12,
    length: int = 2_000_000,
    country: str = "DE",
    security_level: str = "PUBLIC",
    beacon: dict[str, str] | None = None,
    dataset_prefix: str = "attack",
) -> SplitCohort:
    """Simulate one population and deal it into members, non-members, reference.

    Parameters
    ----------
    out_dir
        Created if missing: ``pool/`` holds the whole simulation, ``<id>/`` each
        members' dataset.
    members, non_members, reference
        How many individuals in each group (simulated together).
    parts
        Number of member datasets (e.g. 3 for a network of three nodes); members
        are dealt round-robin.
    seed, length, country
        Of the simulation (:func:`~genomenode.simulate.simulate_cohort`); the
        deal derives from the seed too.
    security_level, beacon
        The datasets' ``security_level`` and ``beacon:`` granularity block
        (e.g. ``{"anonymous": "count"}``).
    dataset_prefix
        Dataset ids are ``<prefix>-<k>`` (``<prefix>`` alone when ``parts`` is 1).
    """
    out = pathlib.Path(out_dir)
    wanted = members + non_members + reference
    # simulate_cohort draws a fifth of its people from two other populations;
    # only the home population is dealt, so that ancestry is no signal.
    total = wanted + -(-wanted // 4)
    pool = simulate_cohort(
        out / "pool",
        samples=total,
        seed=seed,
        length=length,
        country=country,
        security_level=security_level,
        dataset_id="pool",
    )
    home = _home(pool.sample_populations)
    width = max(5, len(str(total)))
    people = [
        f"{country.upper()}{i:0{width}d}"
        for i, population in enumerate(pool.sample_populations, start=1)
        if population == home
    ]
    rng = np.random.default_rng([seed, 12])
    order = [people[i] for i in rng.permutation(len(people))][:wanted]
    member_ids = order[:members]
    non_member_ids = order[members : members + non_members]
    reference_ids = order[members + non_members :]
    pool_doc: dict[str, Any] = yaml.safe_load(pool.dataset_yaml.read_text())
    yamls, ids, dealt = [], [], []
    for part in range(parts):
        part_members = sorted(member_ids[part::parts])
        dataset_id = dataset_prefix if parts == 1 else f"{dataset_prefix}-{part + 1}"
        directory = out / dataset_id
        (directory / "phenopackets").mkdir(parents=True, exist_ok=True)
        vcf = directory / f"{dataset_id}.vcf.gz"
        _subset_vcf(pool.vcf_path, vcf, part_members)
        for sample in part_members:
            shutil.copy(
                pool.phenopackets_dir / f"{sample}.json",
                directory / "phenopackets" / f"{sample}.json",
            )
        shutil.copy(pool.genes_path, directory / "genes.tsv")
        document = {
            **pool_doc,
            "id": dataset_id,
            "name": f"Attack cohort {dataset_id} ({len(part_members)} members)",
            "genotypes": [{"path": vcf.name}],
        }
        document.pop("simulation", None)
        if beacon:
            document["beacon"] = dict(beacon)
        path = directory / "dataset.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        yamls.append(path)
        ids.append(dataset_id)
        dealt.append(part_members)
    return SplitCohort(
        pool_vcf=pool.vcf_path,
        dataset_yamls=yamls,
        dataset_ids=ids,
        members=dealt,
        non_members=sorted(non_member_ids),
        reference=sorted(reference_ids),
    )


def read_genotypes(
    vcf: str | pathlib.Path, samples: list[str] | None = None
) -> VariantGenotypes:
    """ALT dosages of ``samples`` (default: all) at the biallelic sites of ``vcf``.

    Multi-allelic sites are left out; a missing allele counts as REF.
    """
    arguments = ["--format", "%CHROM\t%POS\t%REF\t%ALT[\t%GT]\n"]
    if samples is not None:
        arguments += ["--samples", ",".join(samples)]
    text = str(pysam.bcftools.query(*arguments, str(vcf)))
    if samples is None:
        with pysam.VariantFile(str(vcf)) as opened:
            samples = list(opened.header.samples)
    contigs, positions, references, alternates, calls = [], [], [], [], []
    for line in text.splitlines():
        contig, position, ref, alt, *genotypes = line.split("\t")
        if "," in alt or alt == ".":
            continue
        contigs.append(contig)
        positions.append(int(position))
        references.append(ref)
        alternates.append(alt)
        calls.append("".join(genotypes))
    num_samples = len(samples)
    if calls:
        # Diploid calls "a|b" or "a/b": characters 0 and 2 of each 3-character
        # call are the alleles (this reader is for the simulated, biallelic VCFs).
        raw = np.frombuffer("".join(calls).encode(), dtype="S1").reshape(
            len(calls), num_samples, 3
        )
        dosage = (raw[:, :, 0] == b"1").astype(np.int8) + (raw[:, :, 2] == b"1")
    else:
        dosage = np.zeros((0, num_samples), dtype=np.int8)
    return VariantGenotypes(
        contig=np.array(contigs, dtype=object),
        position=np.array(positions, dtype=np.int64),
        reference=np.array(references, dtype=object),
        alternate=np.array(alternates, dtype=object),
        dosage=dosage.astype(np.int8),
        samples=list(samples),
    )


def synthesise_genotypes(
    variants: VariantGenotypes,
    num_samples: int,
    *,
    novel_per_person: float = 0.0,
    seed: int = 0,
) -> VariantGenotypes:
    """Genotypes of ``num_samples`` people drawn under Hardy-Weinberg equilibrium
    from the frequencies of ``variants``, each site independently, plus alleles
    the dataset does not have.

    The stand-in for non-members when the operator has none. An outsider carries
    about as many alleles unseen among the dataset's N people as a member carries
    alleles no other member has (exchangeability), so each synthetic person gets
    Poisson(``novel_per_person``) *novel* alleles: another base at a random SNV
    of the dataset. It still ignores linkage disequilibrium and the sampling
    noise of real people, so it describes real outsiders only roughly.
    """
    rng = np.random.default_rng(seed)
    frequencies = variants.frequencies()
    dosage = rng.binomial(2, frequencies[:, None], size=(len(frequencies), num_samples))
    novel_counts = rng.poisson(novel_per_person, size=num_samples)
    snvs = np.flatnonzero(
        np.array(
            [
                len(r) == 1 and len(a) == 1
                for r, a in zip(variants.reference, variants.alternate, strict=True)
            ],
            dtype=bool,
        )
    )
    contig, position = list(variants.contig), list(variants.position)
    reference, alternate = list(variants.reference), list(variants.alternate)
    extra_rows = []
    existing = set(variants.variant_keys())
    for person, count in enumerate(novel_counts):
        for row in rng.choice(snvs, size=min(count, snvs.size), replace=False):
            bases = [b for b in "ACGT" if b not in (reference[row], alternate[row])]
            key = (
                contig[row],
                int(position[row]),
                reference[row],
                str(rng.choice(bases)),
            )
            if key in existing:
                continue
            existing.add(key)
            column = np.zeros(num_samples, dtype=np.int8)
            column[person] = 1
            extra_rows.append((key, column))
    keys = [*variants.variant_keys(), *(key for key, _ in extra_rows)]
    if extra_rows:
        dosage = np.concatenate([dosage, np.array([c for _, c in extra_rows])])
    return VariantGenotypes(
        contig=np.array([key[0] for key in keys], dtype=object),
        position=np.array([key[1] for key in keys], dtype=np.int64),
        reference=np.array([key[2] for key in keys], dtype=object),
        alternate=np.array([key[3] for key in keys], dtype=object),
        dosage=dosage.astype(np.int8),
        samples=[f"synthetic-{i + 1}" for i in range(num_samples)],
    )
