"""A simulated cohort for QC tests, with planted problems QC must find.

Unrelated people of one population: ten short autosomes and an X of unlinked
sites in Hardy-Weinberg equilibrium (kinship and F need many independent loci; a
few Mb of one coalescent simulation, as ``genomenode simulate`` writes, are a
handful of linked blocks). Calls are ``GT:DP:GQ:AD``; males are haploid on X.

Planted, on top of the simulation (what :class:`Planted` names):

- a duplicate: one sample's calls are a copy of another's;
- a sex swap: a male declared female in the clinical CSV;
- a low-quality sample: 30 % of its calls missing, low DP and GQ, genotyping
  errors (heterozygous calls where there were none);
- two variants out of Hardy-Weinberg equilibrium: one where everybody is
  heterozygous (a typical paralogue artefact), one with no heterozygote at all.
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np
import pysam
import yaml

__all__ = ["Planted", "write_cohort"]

_CHROMOSOMES = [*(str(number) for number in range(1, 11)), "X"]
_LENGTH = 200_000
_SITES = 800
# X is placed past GRCh38's first pseudo-autosomal region (which ends at 2.78 Mb).
_X_OFFSET = 5_000_000


@dataclasses.dataclass(frozen=True)
class Planted:
    dataset_yaml: pathlib.Path
    vcf: pathlib.Path
    sample_ids: list[str]
    sexes: list[str]  # declared (after the swap)
    duplicate: tuple[str, str]  # (original, copy)
    sex_swapped: str
    low_quality: str
    hwe_excess: tuple[str, int]  # (contig, position)
    hwe_deficit: tuple[str, int]


def _simulate(
    num_samples: int, rng: np.random.Generator
) -> tuple[list[str], list[int], list[tuple[str, str]], np.ndarray]:
    """Sites (contig, position, alleles) and haplotypes (sites × 2 samples).

    Unlinked sites in Hardy-Weinberg equilibrium, their frequencies drawn from the
    neutral spectrum (density 1/x): kinship and F then have only their sampling
    noise, which is what the thresholds are for.
    """
    contigs, positions, alleles = [], [], []
    for name in _CHROMOSOMES:
        spots = np.sort(rng.choice(_LENGTH, _SITES, replace=False)) + 1
        offset = _X_OFFSET if name == "X" else 0
        for spot in spots:
            reference, alternate = rng.choice(list("ACGT"), 2, replace=False)
            contigs.append(name)
            positions.append(int(spot) + offset)
            alleles.append((str(reference), str(alternate)))
    lowest = 1 / (2 * num_samples)
    frequency = lowest ** rng.random(len(positions))  # density 1/x on [lowest, 1]
    frequency = np.where(rng.random(len(positions)) < 0.5, frequency, 1 - frequency)
    haplotypes = rng.random((len(positions), 2 * num_samples)) < frequency[:, None]
    return contigs, positions, alleles, haplotypes.astype(np.int8)


def write_cohort(
    directory: pathlib.Path, *, num_samples: int = 160, seed: int = 11
) -> Planted:
    """Write the cohort (VCF, CSV clinical data, dataset.yaml) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    contigs, positions, alleles, haplotypes = _simulate(num_samples, rng)
    first = haplotypes[:, 0::2]
    second = haplotypes[:, 1::2].copy()
    num_variants = len(positions)
    male = rng.random(num_samples) < 0.5
    ids = [f"Q{index + 1:04d}" for index in range(num_samples)]
    on_x = np.array([contig == "X" for contig in contigs])
    second[np.ix_(on_x, male)] = -2  # haploid X in males
    missing = np.zeros((num_variants, num_samples), dtype=bool)
    depth = rng.poisson(30, (num_variants, num_samples)) + 5
    quality = np.clip(rng.normal(70, 15, (num_variants, num_samples)), 21, 99).astype(
        int
    )

    original, copy = 2, 6
    first[:, copy], second[:, copy] = first[:, original], second[:, original]
    male[copy] = male[original]
    swapped = int(np.flatnonzero(male & (np.arange(num_samples) > 10))[0])
    bad = int(np.flatnonzero(np.arange(num_samples) > swapped + 2)[0])
    missing[:, bad] = rng.random(num_variants) < 0.3
    depth[:, bad] = rng.poisson(4, num_variants) + 1
    quality[:, bad] = rng.integers(3, 15, num_variants)
    autosomal = np.flatnonzero(~on_x)
    errors = autosomal[rng.random(len(autosomal)) < 0.08]
    first[errors, bad] = 0
    second[errors, bad] = 1

    frequency = (first + np.where(second >= 0, second, 0)).sum(axis=1) / (
        first.shape[1] + (second >= 0).sum(axis=1)
    )
    order = np.argsort(np.abs(frequency - 0.5))
    candidates = [row for row in order if not on_x[row]]
    excess, deficit = int(candidates[0]), int(candidates[1])
    first[excess], second[excess] = 0, 1
    called = second[deficit] >= 0
    homozygous = rng.random(num_samples) < frequency[deficit]
    first[deficit] = np.where(homozygous, 1, 0)
    second[deficit] = np.where(called, first[deficit], -2)

    vcf = directory / "cohort.vcf.gz"
    _write_vcf(
        vcf, ids, contigs, positions, alleles, first, second, missing, depth, quality
    )
    declared = ["male" if is_male else "female" for is_male in male]
    declared[swapped] = "female"
    clinical = directory / "clinical.csv"
    clinical.write_text(
        "sample_id,sex\n"
        + "".join(
            f"{sample},{sex}\n" for sample, sex in zip(ids, declared, strict=True)
        )
    )
    description = {
        "format_version": 1,
        "id": "qc-cohort",
        "name": "QC test cohort",
        "description": "Simulated, with planted problems",
        "country": "FI",
        "contact": {"name": "Test", "email": "test@example.org"},
        "security_level": "CONTROLLED",
        "assembly": "GRCh38",
        "data_use": [{"id": "DUO:0000042"}],
        "genotypes": [{"path": vcf.name}],
        "clinical": {
            "format": "csv",
            "path": clinical.name,
            "columns": {"id": "sample_id", "sex": "sex"},
        },
    }
    dataset_yaml = directory / "dataset.yaml"
    dataset_yaml.write_text(yaml.safe_dump(description, sort_keys=False))
    return Planted(
        dataset_yaml=dataset_yaml,
        vcf=vcf,
        sample_ids=ids,
        sexes=declared,
        duplicate=(ids[original], ids[copy]),
        sex_swapped=ids[swapped],
        low_quality=ids[bad],
        hwe_excess=(contigs[excess], positions[excess]),
        hwe_deficit=(contigs[deficit], positions[deficit]),
    )


def _write_vcf(
    path: pathlib.Path,
    ids: list[str],
    contigs: list[str],
    positions: list[int],
    alleles: list,
    first: np.ndarray,
    second: np.ndarray,
    missing: np.ndarray,
    depth: np.ndarray,
    quality: np.ndarray,
) -> None:
    header = [
        "##fileformat=VCFv4.3",
        *(
            f"##contig=<ID={name},length={_LENGTH + (_X_OFFSET if name == 'X' else 0)}>"
            for name in _CHROMOSOMES
        ),
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Read depth">',
        '##FORMAT=<ID=GQ,Number=1,Type=Integer,Description="Genotype quality">',
        '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths">',
        "\t".join(
            [
                *("#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"),
                *("FORMAT", *ids),
            ]
        ),
    ]
    # Every call as text, from a table of (genotype, DP, GQ) → "GT:DP:GQ:AD".
    kinds = ("0/0", "0/1", "1/1", "0", "1", "./.", ".")
    alternate_share = (0.0, 0.5, 1.0, 0.0, 1.0, 0.0, 0.0)
    table = []
    for kind, share in zip(kinds, alternate_share, strict=True):
        for dp in range(100):
            for gq in range(100):
                if kind.startswith("."):
                    table.append(f"{kind}:.:.:.")
                else:
                    alt = int(dp * share)
                    table.append(f"{kind}:{dp}:{gq}:{dp - alt},{alt}")
    text = np.array(table, dtype=object)
    code = np.where(
        second == -2,
        3 + first,
        np.where(first + second == 2, 2, first + second),
    )
    code = np.where(missing, np.where(second == -2, 6, 5), code)
    index = code * 10_000 + np.clip(depth, 0, 99) * 100 + np.clip(quality, 0, 99)
    lines = header
    for row, (contig, position, pair) in enumerate(
        zip(contigs, positions, alleles, strict=True)
    ):
        lines.append(
            f"{contig}\t{position}\t.\t{pair[0]}\t{pair[1]}\t.\tPASS\t.\tGT:DP:GQ:AD\t"
            + "\t".join(text[index[row]])
        )
    plain = path.with_suffix("")
    plain.write_text("\n".join(lines) + "\n")
    pysam.tabix_compress(str(plain), str(path), force=True)
    plain.unlink()
    pysam.tabix_index(str(path), preset="vcf", force=True, csi=True)
