"""The network's union of three national references, over real processes.

Three countries' cohorts from one shared history (``simulate_countries``), one
per node (PUBLIC, REGISTERED, and CONTROLLED with general-research consent on a
node that releases CONTROLLED references), each node's reference built, the
nodes and ``genomenode network serve`` started as processes. For a variant common
in every country, the network lists each country with its own numbers and the
pooled European ones, equal to a tally over the three cohorts' VCFs.
"""

from __future__ import annotations

import contextlib
import json
import pathlib

import httpx2
import pysam
import pytest
import yaml

from genomenode.ingest.pipeline import ingest
from genomenode.reference.build import build_reference
from genomenode.simulate import simulate_countries
from genomenode.store.node import init_node

from ..conftest import free_port, in_process_workers, wait_until_up
from ..network.test_network import _stop
from ..privacy.conftest import _start, serve_node

COUNTRIES = ("FI", "IT", "PT")
LEVELS = ("PUBLIC", "REGISTERED", "CONTROLLED")
FIELDS = (
    "alleleCount",
    "alleleNumber",
    "alleleCountHomozygous",
    "alleleCountHeterozygous",
    "alleleCountHemizygous",
)


def _sexes(cohort_dir: pathlib.Path) -> dict[str, str]:
    sexes = {}
    for path in (cohort_dir / "phenopackets").glob("*.json"):
        subject = json.loads(path.read_text())["subject"]
        sexes[subject["id"]] = {"MALE": "M", "FEMALE": "F"}[subject["sex"]]
    return sexes


def _tally(vcf: pathlib.Path, sexes: dict[str, str], position: int, alternate: str):
    """AC, AN, hom copies, het, hemi of one allele by population, from the VCF."""
    country = vcf.name[:2].upper()
    tally: dict[str, list[int]] = {}
    with pysam.VariantFile(str(vcf)) as reading:
        for record in reading.fetch("1", position - 1, position):
            if record.pos != position or alternate not in record.alts:
                continue
            allele = record.alts.index(alternate) + 1
            for name, call in record.samples.items():
                called = [a for a in call["GT"] if a is not None]
                copies = called.count(allele)
                values = [copies, len(called), 2 * (copies == 2), int(copies == 1), 0]
                sex = sexes[name]
                for population in (country, f"{country}_{sex}", sex):
                    row = tally.setdefault(population, [0] * 5)
                    for index, value in enumerate(values):
                        row[index] += value
    return tally


@pytest.fixture(scope="module")
def three_nodes(tmp_path_factory):
    root = tmp_path_factory.mktemp("goe")
    cohorts = simulate_countries(
        root / "cohorts",
        countries=COUNTRIES,
        samples=(90, 70, 60),
        seed=21,
        length=300_000,
        security_levels=LEVELS,
        dataset_ids=[f"{c.lower()}-cohort" for c in COUNTRIES],
    )
    node_dirs = []
    with in_process_workers():
        for cohort, country in zip(cohorts, COUNTRIES, strict=True):
            document = yaml.safe_load(cohort.dataset_yaml.read_text())
            document["data_use"] = [{"id": "DUO:0000042"}]  # general research use
            cohort.dataset_yaml.write_text(yaml.safe_dump(document))
            directory = root / f"{country.lower()}-node"
            with init_node(
                directory, node_id=f"{country.lower()}-node", country=country
            ) as node:
                ingest(node, cohort.dataset_yaml)
                build_reference(node)
            node_dirs.append(directory)
    return cohorts, node_dirs, root


@contextlib.contextmanager
def _network(node_dirs, root):
    with contextlib.ExitStack() as stack:
        urls = [
            stack.enter_context(
                serve_node(
                    directory,
                    {"GENOMENODE_REFERENCE_RELEASE_CONTROLLED": "true"}
                    if country == "PT"
                    else {},
                )
            )
            for directory, country in zip(node_dirs, COUNTRIES, strict=True)
        ]
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        registry = {
            "format_version": 1,
            "network_id": "goe",
            "public_url": url,
            "timeout_seconds": 30,
            "nodes": [
                {"id": f"{country.lower()}-node", "country": country, "url": node_url}
                for country, node_url in zip(COUNTRIES, urls, strict=True)
            ],
        }
        network_yaml = root / "NETWORK.yaml"
        network_yaml.write_text(yaml.safe_dump(registry, sort_keys=False))
        process = _start(
            ["network", "serve", str(network_yaml), "--port", str(port)], {}
        )
        stack.callback(_stop, process)
        wait_until_up(process, f"{url}/network/status")
        yield url, urls


def _common_variants(cohorts):
    """Sites in every cohort, common everywhere (AC >= 10 in each)."""
    sites = None
    for cohort in cohorts:
        with pysam.VariantFile(str(cohort.vcf_path)) as vcf:
            common = {
                (record.pos, record.ref, record.alts[0])
                for record in vcf
                if record.info["AC"][0] >= 10
                and record.info["AN"] - record.info["AC"][0] >= 10
            }
        sites = common if sites is None else sites & common
    assert sites, "no variant common to all three cohorts"
    return sorted(sites)


def test_the_union_lists_every_country_and_the_pooled_numbers(three_nodes):
    cohorts, node_dirs, root = three_nodes
    sexes = [_sexes(cohort.vcf_path.parent) for cohort in cohorts]
    for site in _common_variants(cohorts):
        position, reference, alternate = site
        tallies = {
            country: _tally(cohort.vcf_path, found, position, alternate)
            for cohort, country, found in zip(cohorts, COUNTRIES, sexes, strict=True)
        }
        # One whose every count is 0 or at least the floor: published exactly.
        if all(
            value == 0 or value >= 5
            for tally in tallies.values()
            for row in tally.values()
            for value in row
        ):
            break
    else:
        raise AssertionError("no common variant without small counts")
    variant = f"1-{position}-{reference}-{alternate}"
    with _network(node_dirs, root) as (url, node_urls):
        document = httpx2.get(f"{url}/reference/variants/{variant}", timeout=60).json()
        one = httpx2.get(f"{node_urls[2]}/reference/variants/{variant}", timeout=60)
        bad = httpx2.get(f"{url}/reference/variants/1-x-A-G", timeout=60)
        index = httpx2.get(f"{url}/reference", timeout=60).json()
        # Both routes are in the published OpenAPI, the node's and the network's.
        for base in (url, node_urls[0]):
            paths = httpx2.get(f"{base}/api/openapi.json", timeout=60).json()["paths"]
            assert "/reference/variants/{variant_id}" in paths
    assert [node["status"] for node in document["nodes"]] == ["ok"] * 3
    assert [
        [item["datasetId"] for item in node["datasets"]] for node in index["nodes"]
    ] == [["fi-cohort"], ["it-cohort"], ["pt-cohort"]]
    assert all(item["built"] for node in index["nodes"] for item in node["datasets"])
    assert one.json()["exists"]  # the CONTROLLED node releases its reference
    assert bad.status_code == 400
    assert [item["country"] for item in document["countries"]] == sorted(COUNTRIES)
    for item in document["countries"]:
        country = item["country"]
        rows = {row["population"]: row for row in item["populations"]}
        assert set(rows) == {country, f"{country}_M", f"{country}_F"}
        for population, row in rows.items():
            expected = tallies[country][population]
            assert [row[field] for field in FIELDS] == expected, population
            assert row["alleleFrequency"] == pytest.approx(expected[0] / expected[1])
    pooled = {row["population"]: row for row in document["pooled"]}
    assert list(pooled) == ["total", "M", "F"]
    assert document["pooledIncomplete"] == []
    for population in ("M", "F"):
        expected = [sum(t[population][i] for t in tallies.values()) for i in range(5)]
        assert [pooled[population][field] for field in FIELDS] == expected
    total = [sum(t[c][i] for c, t in tallies.items()) for i in range(5)]
    assert [pooled["total"][field] for field in FIELDS] == total
    assert pooled["total"]["alleleNumber"] == 2 * (90 + 70 + 60)
