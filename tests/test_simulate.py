"""Tests for genomenode.simulate (synthetic msprime cohorts)."""

from __future__ import annotations

import gzip
import itertools
import json
import os
import pathlib
import re
from pathlib import Path

import numpy as np
import phenopackets
import pysam
import pytest
import yaml
from google.protobuf import json_format

from genomenode.simulate import (
    CAUSAL_DISEASE,
    HPO_TERMS,
    ICD10_TERMS,
    SimulationResult,
    simulate_cohort,
    simulate_countries,
    simulate_tree_sequence,
)
from genomenode.simulate_vcf import BgzfWriter

from .conftest import assert_private

SMALL = {"samples": 120, "length": 300_000, "seed": 11}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    return simulate_cohort(tmp_path_factory.mktemp("small"), **SMALL)


def _records(path: Path) -> list[pysam.VariantRecord]:
    with pysam.VariantFile(str(path)) as vcf:
        return list(vcf)


def test_same_seed_gives_identical_bytes(
    cohort: SimulationResult, tmp_path: Path
) -> None:
    again = simulate_cohort(tmp_path / "again", **SMALL)
    first, second = cohort.vcf_path.parent, again.vcf_path.parent
    names = [cohort.vcf_path.name, cohort.vcf_path.name + ".tbi", "dataset.yaml"]
    names += ["genes.tsv", "phenopackets/FI00001.json", "phenopackets/FI00120.json"]
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    paths = ("dataset_yaml", "vcf_path", "phenopackets_dir", "genes_path")
    same = {k: v for k, v in cohort.__dict__.items() if k not in paths}
    assert same == {k: v for k, v in again.__dict__.items() if k not in paths}


def test_different_seed_gives_different_data(
    cohort: SimulationResult, tmp_path: Path
) -> None:
    other = simulate_cohort(tmp_path, **{**SMALL, "seed": 12})
    assert other.dataset_id == "fi-sim-12"
    assert other.vcf_path.read_bytes() != cohort.vcf_path.read_bytes()
    one = "phenopackets/FI00001.json"
    assert (tmp_path / one).read_bytes() != (cohort.vcf_path.parent / one).read_bytes()


def test_vcf_is_valid(cohort: SimulationResult) -> None:
    with pysam.VariantFile(str(cohort.vcf_path)) as vcf:
        header = vcf.header
        assert header.version == "VCFv4.3"
        assert header.contigs["1"].length == SMALL["length"]
        assert set(header.formats) == {"GT", "DP", "GQ"}
        assert header.formats["DP"].type == "Integer"
        assert header.formats["GQ"].type == "Integer"
        assert set(header.info) == {"AC", "AN", "AF"}
        assert "##source=genomenode-simulate" in str(header)
        samples = list(header.samples)
        records = list(vcf)
    assert samples == [f"FI{i:05d}" for i in range(1, SMALL["samples"] + 1)]
    assert len(records) == cohort.num_variants > 100
    positions = [r.pos for r in records]
    assert positions[0] >= 1 and positions[-1] <= SMALL["length"]
    assert all(a < b for a, b in itertools.pairwise(positions))
    heterozygous = 0
    for rec in records:
        assert rec.ref in "ACGT" and len(rec.ref) == 1
        assert len(rec.alts) == 1 and rec.alts[0] in "ACGT" and rec.alts[0] != rec.ref
        assert rec.filter.keys() == ["PASS"]
        calls = list(rec.samples.values())
        ac = sum(sum(call["GT"]) for call in calls)
        assert rec.info["AC"] == (ac,) and rec.info["AN"] == 2 * len(samples)
        assert 0 < ac < 2 * len(samples)
        for call in calls:
            assert call.phased and 10 <= call["DP"] <= 99 and 10 <= call["GQ"] <= 99
            heterozygous += call["GT"][0] != call["GT"][1]
    assert heterozygous > 0


def test_vcf_matches_tree_sequence_and_bcftools(cohort: SimulationResult) -> None:
    ts = simulate_tree_sequence(**SMALL, country="FI")
    expected = []
    for var in ts.variants():
        count = int(var.genotypes.sum())
        if len(var.alleles) == 2 and 0 < count < ts.num_samples:
            expected.append((int(var.site.position) + 1, *var.alleles, count))
    query = pysam.bcftools.query("-f", "%POS\t%REF\t%ALT\t%AC\n", str(cohort.vcf_path))
    got = [
        (int(p), r, a, int(c))
        for p, r, a, c in (x.split("\t") for x in query.splitlines())
    ]
    assert got == expected
    # Allele counts recounted from the GT fields that bcftools reads agree too.
    gts = pysam.bcftools.query("-f", "[%GT\t]\n", str(cohort.vcf_path))
    recount = [line.count("1") for line in gts.splitlines()]
    assert recount == [e[3] for e in expected]
    body = pysam.bcftools.view("-H", str(cohort.vcf_path))
    assert len(body.splitlines()) == cohort.num_variants


def test_tabix_region_fetch(cohort: SimulationResult) -> None:
    records = _records(cohort.vcf_path)
    with pysam.VariantFile(str(cohort.vcf_path)) as vcf:
        for start, stop in [(0, 1000), (50_000, 90_000), (150_000, 150_001)]:
            fetched = [r.pos for r in vcf.fetch("1", start, stop)]
            assert fetched == [r.pos for r in records if start < r.pos <= stop]
    with pysam.TabixFile(str(cohort.vcf_path)) as tbx:
        assert tbx.contigs == ["1"]


def test_phenopackets_parse_strictly_and_match_vcf(cohort: SimulationResult) -> None:
    with pysam.VariantFile(str(cohort.vcf_path)) as vcf:
        samples = list(vcf.header.samples)
    files = sorted(cohort.phenopackets_dir.glob("*.json"))
    assert [f.stem for f in files] == samples
    sexes, ages = set(), []
    for path in files:
        text = path.read_text(encoding="utf-8")
        packet = json_format.Parse(text, phenopackets.Phenopacket())  # strict
        assert packet.subject.id == path.stem
        assert packet.id == f"{cohort.dataset_id}.{path.stem}"
        sexes.add(phenopackets.Sex.Name(packet.subject.sex))
        duration = packet.subject.time_at_last_encounter.age.iso8601duration
        ages.append(int(re.fullmatch(r"P(\d+)Y", duration).group(1)))
        for feature in packet.phenotypic_features:
            assert HPO_TERMS[feature.type.id] == feature.type.label
        for disease in packet.diseases:
            assert ICD10_TERMS[disease.term.id] == disease.term.label
            onset = disease.onset.age.iso8601duration
            assert 18 <= int(onset[1:-1]) <= ages[-1]
        meta = packet.meta_data
        assert meta.created_by == "genomenode simulate"
        assert meta.phenopacket_schema_version == "2.0"
        assert [r.namespace_prefix for r in meta.resources] == ["HP", "ICD10"]
    assert sexes == {"MALE", "FEMALE"}
    assert min(ages) >= 18 and max(ages) <= 90


def test_hpo_table_is_real() -> None:
    import pyhpo  # dev dependency hpo3, which bundles an HPO release

    pyhpo.Ontology()
    for term_id, label in HPO_TERMS.items():
        term = pyhpo.Ontology.get_hpo_object(term_id)
        assert (term.id, term.name) == (term_id, label)
        assert not term.is_obsolete


def test_planted_variant_is_enriched_in_cases(tmp_path: Path) -> None:
    result = simulate_cohort(tmp_path, samples=1000, length=200_000, seed=5)
    contig, pos, ref, alt = result.causal_variants[0]
    with pysam.VariantFile(str(result.vcf_path)) as vcf:
        (rec,) = [r for r in vcf.fetch(contig, pos - 1, pos) if r.pos == pos]
        assert (rec.ref, rec.alts) == (ref, (alt,))
        carrier = {s: 1 in call["GT"] for s, call in rec.samples.items()}
    case = {}
    for path in result.phenopackets_dir.glob("*.json"):
        packet = json.loads(path.read_text(encoding="utf-8"))
        ids = [d["term"]["id"] for d in packet.get("diseases", [])]
        case[packet["subject"]["id"]] = CAUSAL_DISEASE in ids
    cases = [carrier[s] for s in case if case[s]]
    controls = [carrier[s] for s in case if not case[s]]
    assert result.num_cases == len(cases)
    assert 0.05 < len(cases) / len(case) < 0.35  # plausible prevalence
    case_freq, control_freq = np.mean(cases), np.mean(controls)
    assert case_freq > control_freq + 0.15, (case_freq, control_freq)


def test_dataset_yaml_and_genes(cohort: SimulationResult) -> None:
    root = cohort.dataset_yaml.parent
    doc = yaml.safe_load(cohort.dataset_yaml.read_text(encoding="utf-8"))
    keys = "format_version id name description country contact security_level"
    keys += " assembly data_use genotypes clinical genes simulation"
    assert list(doc) == keys.split()
    assert doc["format_version"] == 1 and doc["id"] == "fi-sim-11"
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,64}", doc["id"])
    assert "ynthetic" in doc["description"]
    assert doc["country"] == "FI" and doc["security_level"] == "CONTROLLED"
    assert doc["data_use"][0] == {"id": "DUO:0000007", "disease": CAUSAL_DISEASE}
    assert (root / doc["genotypes"][0]["path"]) == cohort.vcf_path
    assert (root / doc["clinical"]["path"]).is_dir()
    assert doc["clinical"]["format"] == "phenopackets"
    assert (root / doc["genes"]).is_file()
    sim = doc["simulation"]
    assert (sim["seed"], sim["samples"], sim["length"]) == (11, 120, 300_000)
    planted = [
        (c["contig"], c["position"], c["ref"], c["alt"]) for c in sim["causal_variants"]
    ]
    assert planted == cohort.causal_variants
    assert all(c["odds_ratio"] > 1 for c in sim["causal_variants"])

    lines = (root / doc["genes"]).read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t") == ["gene_id", "symbol", "contig", "start", "end"]
    genes = [
        (g, s, c, int(a), int(b))
        for g, s, c, a, b in (x.split("\t") for x in lines[1:])
    ]
    assert all(
        g.startswith("SIMG") and 0 <= a < b <= SMALL["length"]
        for g, _, _, a, b in genes
    )
    for _, pos, _, _ in cohort.causal_variants:
        assert any(a <= pos - 1 < b for _, _, _, a, b in genes)


def test_other_country_and_arguments(tmp_path: Path) -> None:
    options = {"country": "es", "security_level": "PUBLIC", "contig": "chr22"}
    result = simulate_cohort(tmp_path, samples=30, length=50_000, seed=2, **options)
    assert result.dataset_id == "es-sim-2"
    with pysam.VariantFile(str(result.vcf_path)) as vcf:
        assert list(vcf.header.samples)[:2] == ["ES00001", "ES00002"]
        assert list(vcf.header.contigs) == ["chr22"]
    doc = yaml.safe_load(result.dataset_yaml.read_text(encoding="utf-8"))
    assert doc["country"] == "ES" and doc["security_level"] == "PUBLIC"
    for bad in [
        {"security_level": "SECRET"},
        {"country": "FIN"},
        {"dataset_id": "a b"},
    ]:
        with pytest.raises(ValueError):
            simulate_cohort(tmp_path / "bad", **{**SMALL, **bad})


def test_bgzf_writer_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = rng.integers(0, 4, size=700_000, dtype=np.uint8).tobytes()
    path = tmp_path / "x.gz"
    with BgzfWriter(path, threads=3) as out:
        for piece in np.split(
            np.frombuffer(data, np.uint8), [1, 65_280, 65_281, 400_000]
        ):
            out.write(piece.tobytes())
    raw = path.read_bytes()
    assert gzip.decompress(raw) == data
    assert raw.endswith(
        bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
    )
    with pysam.BGZFile(str(path), "rb") as bgzf:
        assert bgzf.read() == data


def test_simulate_writes_private_files(tmp_path: Path, permissive_umask) -> None:
    from click.testing import CliRunner

    from genomenode.cli import cli

    out = tmp_path / "cohort"
    result = CliRunner().invoke(
        cli, ["simulate", str(out), "--samples", "20", "--length", "20000"]
    )
    assert result.exit_code == 0, result.output
    files = {path.relative_to(out).as_posix() for path in assert_private(out)}
    # Genotypes, their index, phenopackets, genes and the description were walked.
    assert {"fi-sim-7.vcf.gz", "fi-sim-7.vcf.gz.tbi", "dataset.yaml"} <= files
    assert any(name.startswith("phenopackets/") for name in files)
    # The umask is the caller's again afterwards.
    assert os.umask(0o022) == 0o022


def test_each_sample_names_its_population(cohort: SimulationResult) -> None:
    # 80 % from the country's own population, the rest split between the others.
    populations = cohort.sample_populations
    assert len(populations) == cohort.num_samples
    assert {name: populations.count(name) for name in set(populations)} == {
        "FIN": 96,
        "NWE": 12,
        "SEU": 12,
    }
    # The labels follow the VCF columns: Finns share long haplotypes, so a Finn's
    # closest neighbour (by genotype distance) is a Finn far more often than not.
    calls = pysam.bcftools.query("-f", "[%GT\t]\n", str(cohort.vcf_path))
    dosage = np.array(
        [[gt.count("1") for gt in line.split("\t")[:-1]] for line in calls.splitlines()]
    ).T
    distance = np.abs(dosage[:, None, :] - dosage[None, :, :]).sum(axis=2)
    np.fill_diagonal(distance, distance.max() + 1)
    finns = np.array([name == "FIN" for name in populations])
    nearest_is_finn = finns[distance.argmin(axis=1)]
    assert nearest_is_finn[finns].mean() > 0.9


# -- the multi-country mode: one shared history ---------------------------------


@pytest.fixture(scope="module")
def countries(tmp_path_factory: pytest.TempPathFactory) -> list[SimulationResult]:
    return simulate_countries(
        tmp_path_factory.mktemp("countries"),
        countries=("FI", "IT", "PT", "DE"),
        samples=(150, 150, 150, 150),
        seed=5,
        length=1_000_000,
    )


def _frequencies(result: SimulationResult) -> dict[tuple[int, str, str], float]:
    with pysam.VariantFile(str(result.vcf_path)) as vcf:
        return {
            (record.pos, record.ref, record.alts[0]): record.info["AC"][0]
            / record.info["AN"]
            for record in vcf
        }


def _hudson_fst(first: np.ndarray, second: np.ndarray, n: int) -> float:
    """Hudson's F_ST (Bhatia et al. 2013, ratio of averages) of two samples of n
    haplotypes each."""
    numerator = (
        (first - second) ** 2
        - first * (1 - first) / (n - 1)
        - second * (1 - second) / (n - 1)
    )
    denominator = first * (1 - second) + second * (1 - first)
    return float(numerator.sum() / denominator.sum())


def test_countries_share_their_common_variants(countries) -> None:
    frequencies = [_frequencies(result) for result in countries]
    for index, own in enumerate(frequencies):
        common = [site for site, frequency in own.items() if frequency >= 0.05]
        assert len(common) > 100
        for other_index, other in enumerate(frequencies):
            if other_index != index:
                shared = sum(site in other for site in common) / len(common)
                assert shared > 0.9, (index, other_index, shared)
        # ... and each has private variants of its own, nearly all of them rare.
        private = [
            site
            for site in own
            if not any(
                site in other for j, other in enumerate(frequencies) if j != index
            )
        ]
        assert len(private) > 20
        assert np.mean([own[site] < 0.05 for site in private]) > 0.9


def test_country_frequencies_differ_as_european_populations_do(countries) -> None:
    frequencies = [_frequencies(result) for result in countries]
    sites = sorted(set().union(*frequencies))
    matrix = np.array([[f.get(site, 0.0) for site in sites] for f in frequencies])
    fst = {
        (countries[i].dataset_id[:2], countries[j].dataset_id[:2]): _hudson_fst(
            matrix[i], matrix[j], 300
        )
        for i, j in itertools.combinations(range(len(countries)), 2)
    }
    # Between European populations Hudson's F_ST runs from ~0.001 (neighbours)
    # to ~0.02 (Finns against the south); the Finnish founders stand out.
    for pair, value in fst.items():
        assert 0.0005 < value < 0.03, (pair, value)
    assert fst[("fi", "it")] > fst[("it", "pt")]
    assert fst[("fi", "pt")] > fst[("it", "pt")]


def test_country_cohorts_are_datasets_of_their_own(countries) -> None:
    ids = [result.dataset_id for result in countries]
    assert ids == ["fi-cohort-5", "it-cohort-5", "pt-cohort-5", "de-cohort-5"]
    for result, country in zip(countries, ("FI", "IT", "PT", "DE"), strict=True):
        document = yaml.safe_load(result.dataset_yaml.read_text())
        assert document["country"] == country
        assert document["simulation"]["countries"] == ["FI", "IT", "PT", "DE"]
        assert set(result.sample_populations) == {country}
        with pysam.VariantFile(str(result.vcf_path)) as vcf:
            assert next(iter(vcf.header.samples)) == f"{country}00001"
    # The planted variants are the same sites in every country.
    planted = {tuple(map(tuple, result.causal_variants)) for result in countries}
    assert len(planted) == 1
    with pytest.raises(ValueError, match="distinct"):
        simulate_countries(pathlib.Path("/nonexistent"), countries=("FI", "FI"))


def test_cli_multi_country_mode(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from genomenode.cli import cli

    result = CliRunner().invoke(
        cli,
        [
            "simulate",
            str(tmp_path),
            "--countries",
            "FI,IT",
            "--samples",
            "30",
            "--length",
            "50000",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    cohorts = json.loads(result.output)["cohorts"]
    assert [item["dataset_id"] for item in cohorts] == ["fi-cohort-7", "it-cohort-7"]
    assert (tmp_path / "it" / "dataset.yaml").exists()
    bad = CliRunner().invoke(cli, ["simulate", str(tmp_path), "--countries", "FI,FIN"])
    assert bad.exit_code != 0 and "two-letter" in bad.output
