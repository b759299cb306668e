"""Three real nodes holding one simulated cohort dealt in three, and the network.

The cohort (600 people, ~3,600 variants; :mod:`tests.analysis.cohort`) is dealt
round-robin into ``part-1..3``, one CONTROLLED dataset per node. Node 1 runs the
development identity provider; nodes 2 and 3 trust it as their broker, so one
passport reaches all three. ``RESEARCHER`` is granted each dataset by that
node's committee; ``STRANGER`` holds a passport and no grant. All three nodes
trust the network's signed assertions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import pathlib
import shutil
import subprocess
import time
from collections.abc import Iterator

import httpx2
import pytest
import yaml
from fastapi.testclient import TestClient

from genomenode.app import create_app
from genomenode.ingest.pipeline import ingest
from genomenode.store.node import init_node, open_node

from ..conftest import free_port, grant_access, in_process_workers, wait_until_up
from ..network.test_network import _start, _stop
from .cohort import DealtCohort, Pooled, deal_cohort, read_pooled

RESEARCHER = "researcher@analysis.test"
STRANGER = "stranger@analysis.test"
NUM_SAMPLES = 600


@pytest.fixture(scope="session")
def cohort(tmp_path_factory) -> DealtCohort:
    # Seed 5: a cohort whose planted variant stands out at this size (most do).
    return deal_cohort(
        tmp_path_factory.mktemp("analysis") / "cohort", samples=NUM_SAMPLES, seed=5
    )


@pytest.fixture(scope="session")
def pooled(cohort) -> Pooled:
    return read_pooled(cohort)


@pytest.fixture(scope="session")
def node_templates(cohort, tmp_path_factory) -> list[pathlib.Path]:
    """Three initialised nodes with their dataset ingested and granted (copied
    for each network so that one's kills and files never reach another)."""
    root = tmp_path_factory.mktemp("analysis-nodes")
    directories = []
    with in_process_workers():
        for index, description in enumerate(cohort.dataset_yamls, start=1):
            directory = root / f"node-{index}"
            with init_node(directory, node_id=f"node-{index}", country="FI") as node:
                ingest(node, description)
                grant_access(node, cohort.dataset_ids[index - 1], RESEARCHER)
            directories.append(directory)
    return directories


@dataclasses.dataclass
class Network:
    url: str
    node_urls: list[str]
    node_dirs: list[pathlib.Path]
    processes: list[subprocess.Popen]
    network_process: subprocess.Popen
    network_yaml: pathlib.Path
    root: pathlib.Path
    passports: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    #: Who submitted each job (status and results are asked as its owner).
    submitters: dict[str, str] = dataclasses.field(default_factory=dict)

    def passport(self, subject: str = RESEARCHER) -> dict[str, str]:
        token = httpx2.post(
            f"{self.node_urls[0]}/dev-idp/token", json={"subject": subject}, timeout=30
        ).json()["access_token"]
        return {"Authorization": f"Bearer {token}"}

    def owner(self, subject: str = RESEARCHER, job_id: str = "") -> dict[str, str]:
        """A passport of ``subject`` (default: the job's submitter), kept for
        the session's requests (a job answers only its owner)."""
        subject = self.submitters.get(job_id, subject)
        if subject not in self.passports:
            self.passports[subject] = self.passport(subject)
        return self.passports[subject]

    def start_network(self) -> None:
        self.network_process = _start(
            [
                "-m",
                "genomenode",
                "network",
                "serve",
                str(self.network_yaml),
                "--port",
                self.url.rsplit(":", 1)[1],
            ],
            {},
        )
        wait_until_up(self.network_process, f"{self.url}/network/status")

    def stop_network(self) -> None:
        _stop(self.network_process)

    def submit(self, body: dict, subject: str = RESEARCHER) -> dict:
        response = httpx2.post(
            f"{self.url}/analysis/jobs",
            json=body,
            headers=self.owner(subject),
            timeout=60,
        )
        assert response.status_code == 201, response.text
        self.submitters[response.json()["id"]] = subject
        return response.json()

    def status(self, job_id: str) -> dict:
        return httpx2.get(
            f"{self.url}/analysis/jobs/{job_id}",
            headers=self.owner(job_id=job_id),
            timeout=30,
        ).json()

    def wait(self, job_id: str, seconds: float = 120) -> dict:
        deadline = time.monotonic() + seconds
        while True:
            status = self.status(job_id)
            if status["state"] in {
                "COMPLETE",
                "EXECUTOR_ERROR",
                "SYSTEM_ERROR",
                "CANCELED",
            }:
                return status
            assert time.monotonic() < deadline, status
            time.sleep(0.2)

    def results(self, job_id: str) -> dict:
        response = httpx2.get(
            f"{self.url}/analysis/jobs/{job_id}/results",
            headers=self.owner(job_id=job_id),
            timeout=60,
        )
        assert response.status_code == 200, response.text
        return response.json()["result"]


@contextlib.contextmanager
def serve_network(
    templates: list[pathlib.Path], root: pathlib.Path, environment: dict | None = None
) -> Iterator[Network]:
    """Copies of the template nodes served, and the network over them."""
    environment = environment or {}
    root.mkdir(parents=True, exist_ok=True)
    ports = [free_port() for _ in templates]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    network_url = f"http://127.0.0.1:{free_port()}"
    broker = f"{urls[0]}/dev-idp"
    trusted_network = json.dumps(
        [{"issuer": network_url, "jku": f"{network_url}/.well-known/jwks.json"}]
    )
    trusted_broker = json.dumps(
        [
            {
                "issuer": broker,
                "jku": f"{broker}/.well-known/jwks.json",
                "userinfo": f"{broker}/userinfo",
            }
        ]
    )
    directories: list[pathlib.Path] = []
    processes: list[subprocess.Popen] = []
    with contextlib.ExitStack() as stack:
        for index, (template, port, url) in enumerate(
            zip(templates, ports, urls, strict=True)
        ):
            directory = root / template.name
            shutil.copytree(template, directory)
            directories.append(directory)
            node_environment = {
                **environment,
                "GENOMENODE_PUBLIC_URL": url,
                "GENOMENODE_TRUSTED_NETWORKS": trusted_network,
            }
            if index == 0:
                node_environment["GENOMENODE_DEV_IDENTITY_PROVIDER"] = "true"
            else:
                node_environment["GENOMENODE_TRUSTED_BROKERS"] = trusted_broker
                node_environment["GENOMENODE_TRUSTED_VISA_ISSUERS"] = json.dumps(
                    [{"issuer": broker, "jku": f"{broker}/.well-known/jwks.json"}]
                )
            process = _start(
                [
                    "-m",
                    "genomenode",
                    "serve",
                    "--node",
                    str(directory),
                    "--port",
                    str(port),
                ],
                node_environment,
            )
            processes.append(process)
            stack.callback(_stop, process)
        for process, url in zip(processes, urls, strict=True):
            wait_until_up(process, f"{url}/api/info")
        network_yaml = root / "NETWORK.yaml"
        network_yaml.write_text(
            yaml.safe_dump(
                {
                    "format_version": 1,
                    "network_id": "analysis-net",
                    "public_url": network_url,
                    "timeout_seconds": 30,
                    # Job owners sign in at node 1's development provider.
                    "trusted_brokers": [
                        {"issuer": broker, "jku": f"{broker}/.well-known/jwks.json"}
                    ],
                    "nodes": [
                        {"id": f"node-{i}", "country": "FI", "url": url}
                        for i, url in enumerate(urls, start=1)
                    ],
                },
                sort_keys=False,
            )
        )
        network = Network(
            network_url,
            urls,
            directories,
            processes,
            None,
            network_yaml,
            root,  # type: ignore[arg-type]
        )
        network.start_network()
        stack.callback(lambda: network.stop_network())
        yield network


@pytest.fixture(scope="session")
def network(node_templates, tmp_path_factory) -> Iterator[Network]:
    with serve_network(node_templates, tmp_path_factory.mktemp("served")) as served:
        yield served


@pytest.fixture
def node_client(node_templates, tmp_path, monkeypatch):
    """Node 1 in-process; the test sets its settings first (``settings(...)``)."""
    directory = tmp_path / "node"
    shutil.copytree(node_templates[0], directory)
    opened = []

    def start(**settings: str) -> TestClient:
        for name, value in settings.items():
            monkeypatch.setenv(f"GENOMENODE_{name.upper()}", value)
        node = open_node(directory)
        opened.append(node)
        client = TestClient(
            create_app(node, base_url="http://testserver", dev_identity_provider=True)
        )
        token = client.post("/dev-idp/token", json={"subject": RESEARCHER}).json()
        client.headers["Authorization"] = f"Bearer {token['access_token']}"
        return client

    yield start
    for node in opened:
        node.close()
