"""A small real network for the portal's browser tests and its benchmark.

Three nodes (``genomenode serve``) and the network (``genomenode network serve``)
as processes on loopback, started with tests/network's helpers:

- ``fi-node`` (FI): a PUBLIC dataset, record-level for anonymous callers; it runs the
  development identity provider every node trusts as its broker;
- ``se-node`` (SE): a PUBLIC dataset, record-level for anonymous callers;
- ``ee-node`` (EE): a CONTROLLED dataset whose committee is the demo DAC member.

With ``results=True`` each node also runs QC on its dataset and builds its
reference (for the QC and reference pages; the EE node does not release its
CONTROLLED reference). Not by default: QC leaves failing people out of the
Beacon's frequencies, which the browser tests check against :data:`PLANTED`'s.

Every dataset carries the planted variant ``1-1000123-A-G`` at a known allele
frequency, overall and per sex (:data:`PLANTED`), so that the chart's bars can be
checked against numbers computed here, not read back from the node.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import pathlib
import subprocess
import time
from collections.abc import Iterator

import yaml

from genomenode.ingest.pipeline import ingest
from genomenode.qc.run import run_qc
from genomenode.reference.build import build_reference
from genomenode.store.node import init_node

from ..conftest import (
    free_port,
    gt_record,
    in_process_workers,
    sex_of,
    wait_until_up,
    write_dataset_yaml,
    write_vcf,
)
from ..network.test_network import _serve_network, _serve_node, _stop

PLANTED = "1-1000123-A-G"
DAC_MEMBER = "dac@demo.genomenode"
RESEARCHER = "researcher@demo.genomenode"


@dataclasses.dataclass(frozen=True)
class Cohort:
    """One node's dataset: who carries the planted allele, how many times."""

    node_id: str
    country: str
    security_level: str
    num_samples: int
    #: Alternate alleles of the planted variant per sample (0, 1 or 2), sample order.
    planted_dosages: tuple[int, ...]

    @property
    def dataset_id(self) -> str:
        return f"{self.node_id}-cohort"

    def frequency(self, sex: str | None = None) -> float:
        """The planted allele's frequency (``sex``: ``M``/``F``, odd samples male)."""
        chosen = [
            dosage
            for index, dosage in enumerate(self.planted_dosages)
            if sex is None or ("M" if index % 2 else "F") == sex
        ]
        return sum(chosen) / (2 * len(chosen))


def _dosages(num_samples: int, carriers: int, homozygous: int) -> tuple[int, ...]:
    dosages = [2] * homozygous + [1] * carriers
    return tuple(dosages + [0] * (num_samples - len(dosages)))


COHORTS = (
    Cohort("fi-node", "FI", "PUBLIC", 20, _dosages(20, 6, 1)),
    Cohort("se-node", "SE", "PUBLIC", 16, _dosages(16, 3, 0)),
    Cohort("ee-node", "EE", "CONTROLLED", 12, _dosages(12, 4, 2)),
)


def write_cohort(directory: pathlib.Path, cohort: Cohort) -> pathlib.Path:
    """The cohort's VCF (the planted variant among a few others), its individuals
    (odd samples male) and dataset.yaml."""
    directory.mkdir(parents=True, exist_ok=True)
    samples = [f"{cohort.country}{index:03d}" for index in range(cohort.num_samples)]
    genotype = {0: "0|0", 1: "0|1", 2: "1|1"}
    records = []
    for position in (1000001, 1000050, 1000123, 1000200, 1000377):
        if position == 1000123:
            calls = [genotype[dosage] for dosage in cohort.planted_dosages]
            reference, alternate = "A", "G"
        else:
            calls = [genotype[index % 3 == 0] for index in range(cohort.num_samples)]
            reference, alternate = "C", "T"
        records.append(gt_record("1", position, reference, alternate, calls))
    write_vcf(directory / "cohort.vcf.gz", records, samples=samples)
    individuals = [
        {
            "id": sample,
            "sex": sex_of(index),
            "diseases": [],
        }
        for index, sample in enumerate(samples)
    ]
    (directory / "individuals.json").write_text(json.dumps(individuals))
    fields: dict = {
        "id": cohort.dataset_id,
        "name": f"{cohort.country} reference cohort",
        "description": f"Whole genomes from {cohort.country}",
        "country": cohort.country,
        "security_level": cohort.security_level,
        "data_use": [{"id": "DUO:0000042"}],
    }
    if cohort.security_level == "CONTROLLED":
        fields["dac"] = {"members": [DAC_MEMBER]}
        fields["data_use"] = [{"id": "DUO:0000007", "disease": "ICD10:I25.1"}]
    else:
        fields["beacon"] = {"anonymous": "record"}
    return write_dataset_yaml(directory, **fields)


@dataclasses.dataclass
class PortalNetwork:
    url: str
    node_urls: dict[str, str]
    broker: str
    processes: dict[str, subprocess.Popen]
    root: pathlib.Path


@contextlib.contextmanager
def portal_network(
    root: pathlib.Path, *, results: bool = False
) -> Iterator[PortalNetwork]:
    """The three nodes and the network, running; stopped on exit (``results``:
    QC run and reference built on each node first)."""
    with in_process_workers():
        for cohort in COHORTS:
            dataset_yaml = write_cohort(root / f"{cohort.node_id}-data", cohort)
            with init_node(
                root / cohort.node_id, node_id=cohort.node_id, country=cohort.country
            ) as node:
                ingest(node, dataset_yaml)
                if results:
                    run_qc(node, cohort.dataset_id)
                    build_reference(node)
    # Ports are chosen last, right before the servers bind them: another
    # process on a shared machine may take a free port in between.
    ports = {cohort.node_id: free_port() for cohort in COHORTS}
    urls = {node_id: f"http://127.0.0.1:{port}" for node_id, port in ports.items()}
    broker = f"{urls['fi-node']}/dev-idp"
    network_port = free_port()
    network_url = f"http://127.0.0.1:{network_port}"
    trusted = {
        "issuer": broker,
        "jku": f"{broker}/.well-known/jwks.json",
        "userinfo": f"{broker}/userinfo",
    }
    for cohort in COHORTS:
        node_dir = root / cohort.node_id
        config_path = node_dir / "genomenode.yaml"
        config = yaml.safe_load(config_path.read_text())
        config["public_url"] = urls[cohort.node_id]
        # Exact frequencies are checked; the defences have their own tests.
        config["disclosure_enabled"] = False
        config["trusted_networks"] = [
            {"issuer": network_url, "jku": f"{network_url}/.well-known/jwks.json"}
        ]
        if cohort.node_id == "fi-node":
            config["dev_identity_provider"] = True
        else:
            config["trusted_brokers"] = [trusted]
            config["trusted_visa_issuers"] = [{"issuer": broker, "jku": trusted["jku"]}]
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    registry = {
        "format_version": 1,
        "network_id": "portal-net",
        "public_url": network_url,
        "timeout_seconds": 3,
        "circuit_breaker": {"failure_threshold": 0},
        # The network's portal signs visitors in at the first trusted broker,
        # and analysis jobs belong to its passports' subjects.
        "trusted_brokers": [{"issuer": broker, "jku": trusted["jku"]}],
        "nodes": [
            {"id": c.node_id, "country": c.country, "url": urls[c.node_id]}
            for c in COHORTS
        ],
    }
    network_yaml = root / "NETWORK.yaml"
    network_yaml.write_text(yaml.safe_dump(registry, sort_keys=False))
    processes: dict[str, subprocess.Popen] = {}
    try:
        for cohort in COHORTS:
            processes[cohort.node_id] = _serve_node(
                root / cohort.node_id, ports[cohort.node_id], {}
            )
        processes["network"] = _serve_network(network_yaml, network_port)
        deadline = time.monotonic() + 90
        for node_id, url in urls.items():
            wait_until_up(processes[node_id], f"{url}/api/info", deadline=deadline)
        wait_until_up(
            processes["network"], f"{network_url}/network/status", deadline=deadline
        )
        yield PortalNetwork(network_url, urls, broker, processes, root)
    finally:
        for process in processes.values():
            _stop(process)


def stop_node(network: PortalNetwork, node_id: str) -> None:
    """Stop one node's process (the page must then say it failed)."""
    _stop(network.processes[node_id])
