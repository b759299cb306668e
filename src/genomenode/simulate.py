"""Realistic synthetic cohorts for demos, tests and benchmarks.

Genotypes come from a coalescent simulation (msprime) under a European-like
demography, so allele frequencies, linkage disequilibrium and population
structure look like real data.  One or two common variants are planted as
causal for coronary artery disease, and per-individual clinical data are
written as GA4GH Phenopackets v2.  Everything derives from one seed and the
output is byte-identical for identical arguments.  The data are synthetic: no
real person is described.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pysam
import tskit
import yaml

from genomenode.simulate_vcf import (
    choose_causal,
    country_subset,
    sample_columns,
    simulate_countries_tree_sequence,
    simulate_tree_sequence,
    write_vcf,
)
from genomenode.simulate_vcz import write_vcz
from genomenode.store.private import private_files

__all__ = [
    "SimulationResult",
    "simulate_cohort",
    "simulate_countries",
    "simulate_tree_sequence",
]

CAUSAL_DISEASE = "ICD10:I25.1"
# Per-allele odds ratios of the planted variants (the first is the strong one).
CAUSAL_ODDS_RATIOS = (3.0, 2.0)
SECURITY_LEVELS = ("PUBLIC", "REGISTERED", "CONTROLLED")
HPO_VERSION = "2025-11-24"  # release the labels below were checked against

# Curated real HPO terms; ids and labels are verified in the tests.
HPO_TERMS = {
    "HP:0001677": "Coronary artery atherosclerosis",
    "HP:0001658": "Myocardial infarction",
    "HP:0100749": "Chest pain",
    "HP:0002094": "Dyspnea",
    "HP:0001635": "Congestive heart failure",
    "HP:0005110": "Atrial fibrillation",
    "HP:0001962": "Palpitations",
    "HP:0000822": "Hypertension",
    "HP:0005978": "Type II diabetes mellitus",
    "HP:0003074": "Hyperglycemia",
    "HP:0000855": "Insulin resistance",
    "HP:0003124": "Hypercholesterolemia",
    "HP:0003077": "Hyperlipidemia",
    "HP:0002155": "Hypertriglyceridemia",
    "HP:0001513": "Obesity",
    "HP:0002099": "Asthma",
    "HP:0000716": "Depression",
    "HP:0000739": "Anxiety",
    "HP:0012378": "Fatigue",
    "HP:0002315": "Headache",
    "HP:0002829": "Arthralgia",
    "HP:0002020": "Gastroesophageal reflux",
    "HP:0002027": "Abdominal pain",
}
# ICD-10 with the "ICD10:" prefix used by the CINECA synthetic Beacon data.
ICD10_TERMS = {
    "ICD10:I25.1": "Atherosclerotic heart disease of native coronary artery",
    "ICD10:I21": "Acute myocardial infarction",
    "ICD10:I10": "Essential (primary) hypertension",
    "ICD10:I48": "Atrial fibrillation and flutter",
    "ICD10:E11": "Type 2 diabetes mellitus",
    "ICD10:E78.0": "Pure hypercholesterolaemia",
    "ICD10:E66": "Obesity",
    "ICD10:J45": "Asthma",
    "ICD10:F32": "Depressive episode",
}
# HPO features by the disease that triggers them (None: background), with the
# probability that a person with the disease has the feature recorded.
_FEATURES: dict[str | None, dict[str, float]] = {
    "ICD10:I25.1": {"HP:0001677": 0.85, "HP:0100749": 0.45, "HP:0002094": 0.2},
    "ICD10:I21": {"HP:0001658": 0.95, "HP:0001635": 0.15},
    "ICD10:I10": {"HP:0000822": 0.95},
    "ICD10:I48": {"HP:0005110": 0.9, "HP:0001962": 0.45},
    "ICD10:E11": {"HP:0005978": 0.9, "HP:0003074": 0.4, "HP:0000855": 0.15},
    "ICD10:E78.0": {"HP:0003124": 0.9, "HP:0003077": 0.25, "HP:0002155": 0.1},
    "ICD10:E66": {"HP:0001513": 0.95},
    "ICD10:J45": {"HP:0002099": 0.9, "HP:0002094": 0.3},
    "ICD10:F32": {"HP:0000716": 0.9, "HP:0012378": 0.35, "HP:0000739": 0.25},
    None: {"HP:0002315": 0.08, "HP:0012378": 0.06, "HP:0002829": 0.07},
}
_FEATURES[None] |= {"HP:0002020": 0.06, "HP:0000739": 0.04, "HP:0002027": 0.04}
_FEATURES[None] |= {"HP:0100749": 0.02, "HP:0002094": 0.02, "HP:0001635": 0.01}
_RESOURCES = (
    {
        "id": "hp",
        "name": "human phenotype ontology",
        "url": "http://purl.obolibrary.org/obo/hp.owl",
        "version": HPO_VERSION,
        "namespacePrefix": "HP",
        "iriPrefix": "http://purl.obolibrary.org/obo/HP_",
    },
    {
        "id": "icd10",
        "name": "International Statistical Classification of Diseases and Related "
        "Health Problems 10th Revision",
        "url": "https://icd.who.int/browse10/2019/en",
        "version": "2019",
        "namespacePrefix": "ICD10",
        "iriPrefix": "https://icd.who.int/browse10/2019/en#/",
    },
)
_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_CONTIG_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class SimulationResult:
    """Paths and summary of a simulated cohort (see :func:`simulate_cohort`)."""

    dataset_yaml: Path
    vcf_path: Path
    phenopackets_dir: Path
    genes_path: Path
    dataset_id: str
    num_samples: int
    num_variants: int
    num_cases: int
    causal_variants: list[tuple[str, int, str, str]]
    #: The simulated population of each sample, in sample-id order ("FIN",
    #: "NWE" or "SEU"): 80% come from the country's own population.
    sample_populations: tuple[str, ...] = ()


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _bernoulli(rng: np.random.Generator, logit: np.ndarray) -> np.ndarray:
    return rng.random(len(logit)) < 1.0 / (1.0 + np.exp(-logit))


def _clinical(
    rng: np.random.Generator, dosages: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Draw sex, age and diseases; coronary artery disease follows a logistic
    liability with the planted variants, age, sex and risk-factor effects."""
    n = len(dosages[0])
    male = rng.random(n) < 0.5
    age = 18 + np.rint(72 * rng.beta(2.0, 1.8, n)).astype(int)
    z = (age - 55) / 10  # decades from a typical cohort age
    ones = np.ones(n)
    dis: dict[str, np.ndarray] = {}
    dis["ICD10:E66"] = _bernoulli(rng, _logit(0.18) + 0.1 * z)
    dis["ICD10:E11"] = _bernoulli(rng, _logit(0.05) + 0.5 * z + 1.2 * dis["ICD10:E66"])
    dis["ICD10:I10"] = _bernoulli(rng, _logit(0.22) + 0.6 * z + 0.8 * dis["ICD10:E66"])
    dis["ICD10:E78.0"] = _bernoulli(rng, _logit(0.10) + 0.3 * z)
    # Intercept: ~5% prevalence in non-carriers; 10-20% overall once the
    # planted alleles (10-40% frequency, OR 3 and 2 per allele) are added.
    liability = _logit(0.03) + 0.3 * z + 0.5 * male
    liability = liability + 0.4 * (dis["ICD10:E11"] + dis["ICD10:I10"])
    for odds_ratio, dosage in zip(CAUSAL_ODDS_RATIOS, dosages, strict=False):
        liability = liability + math.log(odds_ratio) * dosage
    dis[CAUSAL_DISEASE] = _bernoulli(rng, liability)
    dis["ICD10:I21"] = dis[CAUSAL_DISEASE] & (rng.random(n) < 0.25)
    dis["ICD10:I48"] = _bernoulli(rng, _logit(0.03) + 0.7 * z)
    dis["ICD10:J45"] = _bernoulli(rng, _logit(0.08) * ones)
    dis["ICD10:F32"] = _bernoulli(rng, _logit(0.05) + 0.5 * ~male)
    return male, age, {k: dis[k] for k in ICD10_TERMS}


def _write_phenopackets(
    pp_dir: Path,
    rng: np.random.Generator,
    sample_ids: list[str],
    dosages: list[np.ndarray],
    seed: int,
    dataset_id: str,
) -> int:
    """Write one phenopacket JSON per sample; return the number of CAD cases."""
    male, age, diseases = _clinical(rng, dosages)
    n = len(sample_ids)
    # Onset somewhere in the adult years before the last encounter.
    onsets = {d: age - (rng.random(n) * (age - 18) * 0.7).astype(int) for d in diseases}
    hpo_order = {term: i for i, term in enumerate(HPO_TERMS)}
    present = np.zeros((n, len(HPO_TERMS)), dtype=bool)
    for disease, terms in _FEATURES.items():
        trigger = diseases[disease] if disease else np.ones(n, dtype=bool)
        for term, prob in terms.items():
            present[:, hpo_order[term]] |= trigger & (rng.random(n) < prob)
    features = [{"type": {"id": t, "label": lab}} for t, lab in HPO_TERMS.items()]
    created = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=seed % 31_536_000)
    meta = {
        "created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),  # from the seed: stable
        "createdBy": "genomenode simulate",
        "phenopacketSchemaVersion": "2.0",
        "resources": list(_RESOURCES),
    }
    pp_dir.mkdir(exist_ok=True)
    wanted = {f"{sid}.json" for sid in sample_ids}
    for stale in pp_dir.glob("*.json"):  # left over from a larger cohort
        if stale.name not in wanted:
            stale.unlink()
    for i, sid in enumerate(sample_ids):
        encounter = {"age": {"iso8601duration": f"P{age[i]}Y"}}
        sex = "MALE" if male[i] else "FEMALE"
        packet: dict = {
            "id": f"{dataset_id}.{sid}",
            "subject": {"id": sid, "timeAtLastEncounter": encounter, "sex": sex},
            "phenotypicFeatures": [
                f for f, on in zip(features, present[i], strict=True) if on
            ],
            "diseases": [
                {
                    "term": {"id": d, "label": ICD10_TERMS[d]},
                    "onset": {"age": {"iso8601duration": f"P{onsets[d][i]}Y"}},
                }
                for d in ICD10_TERMS
                if diseases[d][i]
            ],
            "metaData": meta,
        }
        packet = {k: v for k, v in packet.items() if v != []}
        text = json.dumps(packet, indent=2, ensure_ascii=False) + "\n"
        (pp_dir / f"{sid}.json").write_text(text, encoding="utf-8")
    return int(diseases[CAUSAL_DISEASE].sum())


def _write_genes(
    path: Path, rng: np.random.Generator, contig: str, length: int, causal: list[int]
) -> None:
    """Synthetic gene table: one gene around each causal variant, others spread
    one per bin over the region (0-based half-open, like BED)."""
    genes = []
    for pos in causal:
        left, right = (int(x) for x in rng.integers(2_000, 20_000, size=2))
        genes.append((max(0, pos - left), min(length, pos + right)))
    bins = min(50, max(3, length // 200_000))
    width = length // bins
    for b in range(bins):
        size = int(rng.integers(width // 10, width // 2 + 1))
        start = b * width + int(rng.integers(0, width - size + 1))
        if all(start >= e or start + size <= s for s, e in genes[: len(causal)]):
            genes.append((start, start + size))
    rows = ["gene_id\tsymbol\tcontig\tstart\tend"]
    for i, (start, end) in enumerate(sorted(genes), start=1):
        rows.append(f"SIMG{i:04d}\tSIMGENE{i}\t{contig}\t{start}\t{end}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


class _Progress:
    """Optional rich progress display on stderr; a no-op when disabled."""

    def __init__(self, enabled: bool) -> None:
        self._bar: Any = None
        if enabled:
            from rich.console import Console
            from rich.progress import Progress

            self._bar = Progress(console=Console(stderr=True))
            self._bar.start()
            self._task = self._bar.add_task("simulating ancestry", total=None)

    def stage(self, description: str, total: int | None = None) -> None:
        if self._bar is not None:
            self._bar.reset(self._task, description=description, total=total)

    def advance(self, steps: int) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, steps)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


# Genotypes and phenopackets of (simulated) people: 0600 files, 0700 directories.
@private_files()
def simulate_cohort(
    out_dir: str | Path,
    *,
    samples: int = 2000,
    seed: int = 7,
    length: int = 5_000_000,
    country: str = "FI",
    security_level: str = "CONTROLLED",
    dataset_id: str | None = None,
    contig: str = "1",
    progress: bool = False,
    vcz: bool = False,
) -> SimulationResult:
    """Simulate a synthetic cohort and write it as a genomenode dataset.

    Writes into ``out_dir``: ``dataset.yaml``, ``<dataset_id>.vcf.gz`` (BGZF,
    VCF 4.3, phased ``GT`` plus ``DP``/``GQ``) with its ``.tbi``,
    ``phenopackets/<sample_id>.json`` (Phenopackets v2, one per individual)
    and ``genes.tsv`` (synthetic ``SIMG*`` genes, 0-based half-open).  The
    ``simulation:`` block of ``dataset.yaml`` records the planted causal
    variants for coronary artery disease (``ICD10:I25.1``); it is informative
    only.  Output is byte-identical for identical arguments.

    Parameters
    ----------
    out_dir : path-like
        Output directory, created if missing; existing outputs are replaced.
    samples : int
        Number of diploid individuals.
    seed : int
        Random seed; everything derives from it.
    length : int
        Length of the simulated contig in base pairs.
    country : str
        ISO 3166-1 alpha-2 code: sample-id prefix, ``country`` of the dataset,
        and main population (``FI`` gives a Finnish-like bottlenecked one).
    security_level : {"PUBLIC", "REGISTERED", "CONTROLLED"}
        Access level recorded in ``dataset.yaml``.
    dataset_id : str, optional
        Dataset id, default ``f"{country.lower()}-sim-{seed}"``.
    contig : str
        Contig name used in the VCF and gene table.
    progress : bool
        Show a progress display on stderr.
    vcz : bool
        Write the genotypes as VCF Zarr, ``<dataset_id>.vcz``, straight from
        the tree sequence (bio2zarr's tskit converter: the same sites, samples
        and calls, without ``DP``/``GQ``) instead of the VCF: for cohorts whose
        VCF text would be too large to write and parse.

    Returns
    -------
    SimulationResult
        Paths, counts and the planted causal variants as
        ``(contig, position_1based, ref, alt)``.
    """
    country = country.upper()
    dataset_id = dataset_id or f"{country.lower()}-sim-{seed}"
    if not re.fullmatch(r"[A-Z]{2}", country):
        raise ValueError(f"country must be a two-letter code, got {country!r}")
    if security_level not in SECURITY_LEVELS:
        raise ValueError(f"security_level must be one of {SECURITY_LEVELS}")
    if not _ID_RE.fullmatch(dataset_id) or not _CONTIG_RE.fullmatch(contig):
        raise ValueError(f"invalid dataset_id {dataset_id!r} or contig {contig!r}")
    if samples < 1 or length < 1_000 or seed < 0:
        raise ValueError("need samples >= 1, length >= 1000 and seed >= 0")
    return _write_cohort(
        Path(out_dir),
        None,
        samples=samples,
        seed=seed,
        length=length,
        country=country,
        security_level=security_level,
        dataset_id=dataset_id,
        contig=contig,
        progress=progress,
        vcz=vcz,
    )


def _write_cohort(
    out: Path,
    ts: tskit.TreeSequence | None,
    *,
    samples: int,
    seed: int,
    length: int,
    country: str,
    security_level: str,
    dataset_id: str,
    contig: str,
    progress: bool,
    causal_sites: list[tuple[int, str, str]] | None = None,
    description: str | None = None,
    simulation: dict[str, Any] | None = None,
    keep_fixed: bool = False,
    vcz: bool = False,
) -> SimulationResult:
    """Write one cohort from its tree sequence (simulated here when None, under
    the progress display). ``causal_sites``: the planted variants, when a joint
    simulation chose them for every country."""
    out.mkdir(parents=True, exist_ok=True)
    rng_order, rng_causal, rng_clinical, rng_vcf, rng_genes = (
        np.random.default_rng(s) for s in np.random.SeedSequence([seed, 2]).spawn(5)
    )
    bar = _Progress(progress)
    try:
        if ts is None:
            ts = simulate_tree_sequence(
                samples=samples, seed=seed, length=length, country=country
            )
        columns = sample_columns(ts, rng_order)
        node_population = ts.tables.nodes.population[ts.samples()[columns[:, 0]]]
        names = [population.metadata["name"] for population in ts.populations()]
        populations = tuple(names[index] for index in node_population)
        width = max(5, len(str(samples)))
        sample_ids = [f"{country}{i:0{width}d}" for i in range(1, samples + 1)]
        causal = causal_sites or choose_causal(ts, rng_causal)
        variant = tskit.Variant(ts)
        dosages = []
        for pos, _, _ in causal:
            variant.decode(ts.site(position=pos).id)
            dosages.append(variant.genotypes[columns].sum(axis=1))

        pp_dir = out / "phenopackets"
        if vcz:
            bar.stage("writing VCF Zarr", total=None)
            vcf_path = out / f"{dataset_id}.vcz"
            num_variants = write_vcz(
                ts,
                vcf_path,
                contig=contig,
                sample_ids=sample_ids,
                node_columns=columns,
                keep_fixed=keep_fixed,
            )
            num_cases = _write_phenopackets(
                pp_dir, rng_clinical, sample_ids, dosages, seed, dataset_id
            )
        else:
            vcf_path, num_variants, num_cases = _write_vcf_and_phenopackets(
                ts,
                out,
                bar,
                dataset_id=dataset_id,
                contig=contig,
                sample_ids=sample_ids,
                columns=columns,
                rng_vcf=rng_vcf,
                rng_clinical=rng_clinical,
                dosages=dosages,
                seed=seed,
                keep_fixed=keep_fixed,
            )
    finally:
        bar.close()
    genes_path = out / "genes.tsv"
    _write_genes(genes_path, rng_genes, contig, length, [c[0] for c in causal])

    causal_out = [(contig, pos + 1, ref, alt) for pos, ref, alt in causal]
    doc = {
        "format_version": 1,
        "id": dataset_id,
        "name": f"Simulated {country} cohort (seed {seed}, {samples} samples)",
        "description": description
        or (
            "Synthetic cohort simulated with msprime by genomenode (European-like "
            "demography, planted coronary artery disease variants). Not real "
            "people; for demos, tests and benchmarks only."
        ),
        "country": country,
        "contact": {"name": "genomenode demo", "email": "demo@example.org"},
        "security_level": security_level,
        "assembly": "GRCh38",
        "data_use": [
            {"id": "DUO:0000007", "disease": CAUSAL_DISEASE},
            {"id": "DUO:0000019"},
        ],
        "genotypes": [{"path": vcf_path.name}],
        "clinical": {"format": "phenopackets", "path": pp_dir.name},
        "genes": genes_path.name,
        "simulation": {
            "seed": seed,
            "samples": samples,
            "length": length,
            "causal_variants": [
                {"contig": c, "position": p, "ref": r, "alt": a, "odds_ratio": o}
                for (c, p, r, a), o in zip(causal_out, CAUSAL_ODDS_RATIOS, strict=False)
            ],
            **(simulation or {}),
        },
    }
    header = (
        "# Synthetic dataset written by genomenode simulate.\n"
        "# The simulation: block is informative only (ground truth for demos).\n"
    )
    dataset_yaml = out / "dataset.yaml"
    dataset_yaml.write_text(
        header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    return SimulationResult(
        dataset_yaml=dataset_yaml,
        vcf_path=vcf_path,
        phenopackets_dir=pp_dir,
        genes_path=genes_path,
        dataset_id=dataset_id,
        num_samples=samples,
        num_variants=num_variants,
        num_cases=num_cases,
        causal_variants=causal_out,
        sample_populations=populations,
    )


def _write_vcf_and_phenopackets(
    ts: tskit.TreeSequence,
    out: Path,
    bar: _Progress,
    *,
    dataset_id: str,
    contig: str,
    sample_ids: list[str],
    columns: np.ndarray,
    rng_vcf: np.random.Generator,
    rng_clinical: np.random.Generator,
    dosages: list[np.ndarray],
    seed: int,
    keep_fixed: bool,
) -> tuple[Path, int, int]:
    """The VCF and its index, and the phenopackets while tabix indexes."""
    bar.stage("writing VCF", total=ts.num_sites)
    vcf_path = out / f"{dataset_id}.vcf.gz"
    num_variants = write_vcf(
        ts,
        vcf_path,
        contig=contig,
        sample_ids=sample_ids,
        node_columns=columns,
        rng=rng_vcf,
        on_sites=bar.advance,
        index=False,
        keep_fixed=keep_fixed,
    )
    bar.stage("indexing VCF, writing phenopackets", total=1)
    # Tabix re-reads the whole VCF without holding the GIL: overlap it.
    with ThreadPoolExecutor(max_workers=1) as pool:
        indexing = pool.submit(
            pysam.tabix_index, str(vcf_path), preset="vcf", force=True
        )
        pp_dir = out / "phenopackets"
        num_cases = _write_phenopackets(
            pp_dir, rng_clinical, sample_ids, dosages, seed, dataset_id
        )
        indexing.result()
        bar.advance(1)
    return vcf_path, num_variants, num_cases


# Genotypes and phenopackets of (simulated) people: 0600 files, 0700 directories.
@private_files()
def simulate_countries(
    out_dir: str | Path,
    *,
    countries: Sequence[str] = ("FI", "IT", "PT"),
    samples: Sequence[int] | int = 300,
    seed: int = 7,
    length: int = 5_000_000,
    security_levels: Sequence[str] | str = "CONTROLLED",
    dataset_ids: Sequence[str] | None = None,
    contig: str = "1",
    progress: bool = False,
) -> list[SimulationResult]:
    """Simulate one cohort per country from one shared history.

    Unlike :func:`simulate_cohort` (one independent simulation per call), every
    country's people are drawn from one joint demography
    (:func:`genomenode.simulate_vcf.country_demography`): the cohorts share their
    common variants, at country-specific frequencies, and each has a few private
    rare ones, as national cohorts of a European reference do. The planted causal
    variants are the same sites in every country. Each country's cohort is written
    to ``out_dir/<country lower>`` exactly as :func:`simulate_cohort` writes one.

    Parameters
    ----------
    out_dir : path-like
        Parent directory of the cohorts' directories.
    countries : sequence of str
        ISO 3166-1 alpha-2 codes, one population (and cohort) each.
    samples : int or sequence of int
        Diploid individuals per country (one number for all, or one each).
    seed : int
        Random seed of the joint simulation; each cohort's clinical data and
        sample order derive from it and the country's position.
    length : int
        Length of the simulated contig in base pairs.
    security_levels : str or sequence of str
        Security level of each cohort's ``dataset.yaml``.
    dataset_ids : sequence of str, optional
        Dataset ids, default ``<country>-cohort-<seed>``.
    contig : str
        Contig name.
    progress : bool
        Show a progress display on stderr.

    Returns
    -------
    list of SimulationResult
        One per country, in the order of ``countries``; ``sample_populations``
        names each sample's country.
    """
    codes = [country.upper() for country in countries]
    if not codes or len(set(codes)) != len(codes):
        raise ValueError(f"need distinct countries, got {list(countries)}")
    for code in codes:
        if not re.fullmatch(r"[A-Z]{2}", code):
            raise ValueError(f"country must be a two-letter code, got {code!r}")
    sizes = [samples] * len(codes) if isinstance(samples, int) else list(samples)
    levels = (
        [security_levels] * len(codes)
        if isinstance(security_levels, str)
        else list(security_levels)
    )
    ids = list(dataset_ids or [f"{code.lower()}-cohort-{seed}" for code in codes])
    if not len(sizes) == len(levels) == len(ids) == len(codes):
        raise ValueError("samples, security_levels and dataset_ids: one per country")
    for size, level, dataset_id in zip(sizes, levels, ids, strict=True):
        if size < 1:
            raise ValueError("need samples >= 1 for every country")
        if level not in SECURITY_LEVELS:
            raise ValueError(f"security_level must be one of {SECURITY_LEVELS}")
        if not _ID_RE.fullmatch(dataset_id):
            raise ValueError(f"invalid dataset_id {dataset_id!r}")
    if not _CONTIG_RE.fullmatch(contig) or length < 1_000 or seed < 0:
        raise ValueError("need a valid contig, length >= 1000 and seed >= 0")
    joint = simulate_countries_tree_sequence(
        samples=sizes, countries=codes, seed=seed, length=length
    )
    causal = choose_causal(joint, np.random.default_rng([seed, 3]))
    results = []
    for index, (code, size, level, dataset_id) in enumerate(
        zip(codes, sizes, levels, ids, strict=True)
    ):
        results.append(
            _write_cohort(
                Path(out_dir) / code.lower(),
                country_subset(joint, code),
                samples=size,
                # Each country's own clinical draws and sample order.
                seed=seed * 1_000 + index,
                length=length,
                country=code,
                security_level=level,
                dataset_id=dataset_id,
                contig=contig,
                progress=progress,
                causal_sites=causal,
                description=(
                    f"Synthetic {code} cohort of a joint European simulation with "
                    f"msprime by genomenode (countries {', '.join(codes)}, seed "
                    f"{seed}: shared variants at country-specific frequencies). "
                    "Not real people; for demos, tests and benchmarks only."
                ),
                simulation={"joint_seed": seed, "countries": codes},
                keep_fixed=True,
            )
        )
    return results
