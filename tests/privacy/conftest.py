"""One simulated population for the attack tests, served by real processes.

``genomenode simulate`` (msprime) draws 525 people; 420 of its main population are
dealt into 20 members (three datasets of 7, 7 and 6), 100 non-members and a
reference panel of 300 (:func:`genomenode.privacy.cohort.simulate_split_cohort`).
The members' datasets are PUBLIC and give anonymous callers counts, the most an
anonymous caller can be given, so that both attacks run as anonymous callers.

Nodes:

- ``single``: one node holding the three datasets (a beacon of 20 people);
- ``trio``: three nodes, one dataset each, behind ``genomenode network serve``.

Each is served twice: with ``disclosure_enabled=false`` (the unprotected
baseline) and with the defaults.
"""

from __future__ import annotations

import contextlib
import pathlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import httpx2
import numpy as np
import pytest
import yaml

from genomenode.ingest.pipeline import ingest
from genomenode.privacy.cohort import (
    SplitCohort,
    VariantGenotypes,
    read_genotypes,
    simulate_split_cohort,
)
from genomenode.privacy.oracle import BeaconOracle
from genomenode.store.node import init_node

from ..conftest import free_port, in_process_workers, wait_until_up
from ..network.test_network import _start as start_python
from ..network.test_network import _stop

MEMBERS, NON_MEMBERS, REFERENCE = 20, 100, 300
LENGTH = 8_000_000
UNPROTECTED = {"GENOMENODE_DISCLOSURE_ENABLED": "false"}
DEFAULTS: dict[str, str] = {}


@dataclass(frozen=True)
class AttackCohort:
    split: SplitCohort
    targets: VariantGenotypes
    is_member: np.ndarray
    reference: VariantGenotypes
    single_node: pathlib.Path
    trio_nodes: list[pathlib.Path]


@pytest.fixture(scope="session")
def attack_cohort(tmp_path_factory) -> AttackCohort:
    root = tmp_path_factory.mktemp("attack")
    split = simulate_split_cohort(
        root / "cohort",
        members=MEMBERS,
        non_members=NON_MEMBERS,
        reference=REFERENCE,
        parts=3,
        length=LENGTH,
        beacon={"anonymous": "count"},
    )
    targets = read_genotypes(split.pool_vcf, split.all_members + split.non_members)
    reference = read_genotypes(split.pool_vcf, split.reference)
    is_member = np.array([True] * MEMBERS + [False] * NON_MEMBERS)
    trio = []
    with in_process_workers():
        with init_node(root / "single", node_id="single", country="DE") as node:
            for description in split.dataset_yamls:
                ingest(node, description)
        for index, description in enumerate(split.dataset_yamls, start=1):
            directory = root / f"node-{index}"
            with init_node(directory, node_id=f"node-{index}", country="DE") as node:
                ingest(node, description)
            trio.append(directory)
    return AttackCohort(split, targets, is_member, reference, root / "single", trio)


def _start(arguments: list[str], environment: dict[str, str]) -> subprocess.Popen:
    return start_python(["-m", "genomenode", *arguments], environment)


@contextlib.contextmanager
def serve_node(node_dir: pathlib.Path, environment: dict[str, str]) -> Iterator[str]:
    """``genomenode serve`` on a free port; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = _start(
        ["serve", "--node", str(node_dir), "--port", str(port)],
        {**environment, "GENOMENODE_PUBLIC_URL": url},
    )
    try:
        wait_until_up(process, f"{url}/api/info")
        yield url
    finally:
        _stop(process)


@contextlib.contextmanager
def serve_network(
    node_dirs: list[pathlib.Path], environment: dict[str, str], root: pathlib.Path
) -> Iterator[str]:
    """The nodes and ``genomenode network serve`` over them; yields its URL."""
    with contextlib.ExitStack() as stack:
        urls = [stack.enter_context(serve_node(d, environment)) for d in node_dirs]
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        registry = {
            "format_version": 1,
            "network_id": "attack-net",
            "public_url": url,
            "timeout_seconds": 30,
            "nodes": [
                {"id": f"node-{index}", "country": "DE", "url": node_url}
                for index, node_url in enumerate(urls, start=1)
            ],
        }
        root.mkdir(parents=True, exist_ok=True)
        network_yaml = root / "NETWORK.yaml"
        network_yaml.write_text(yaml.safe_dump(registry, sort_keys=False))
        process = _start(
            ["network", "serve", str(network_yaml), "--port", str(port)],
            environment,
        )
        stack.callback(_stop, process)
        wait_until_up(process, f"{url}/network/status")
        yield url


def loopback_clients(count: int, stack: contextlib.ExitStack) -> list[httpx2.Client]:
    """``count`` HTTP clients, each from its own loopback address (127.0.1.x):
    to the node, ``count`` anonymous callers with a budget each."""
    clients = []
    for index in range(count):
        address = f"127.0.{1 + index // 250}.{1 + index % 250}"
        transport = httpx2.HTTPTransport(local_address=address)
        clients.append(
            stack.enter_context(httpx2.Client(transport=transport, timeout=60))
        )
    return clients


def oracles(
    url: str, clients: list[httpx2.Client], *, workers: int = 4
) -> list[BeaconOracle]:
    return [BeaconOracle(client, url, workers=workers) for client in clients]
