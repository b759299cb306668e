"""A node serving three datasets, built once per test session for the Beacon tests.

- ``cineca-1kg``: the real 1000 Genomes slice + CINECA individuals, PUBLIC, and
  (its ``beacon:`` block) records even for anonymous callers, so every endpoint
  can be exercised at every granularity over HTTP;
- ``sim-public``: a simulated cohort (msprime, Phenopackets with HPO terms,
  ICD-10 diseases, a gene table), PUBLIC with the default granularities
  (anonymous: boolean);
- ``sim-controlled``: another simulated cohort, CONTROLLED (anonymous callers must
  never learn anything about it).
"""

from __future__ import annotations

import json
import pathlib
import shutil

import pytest
import yaml
from fastapi.testclient import TestClient

from genomenode.app import create_app
from genomenode.ingest.pipeline import ingest
from genomenode.node import Node, init_node
from genomenode.simulate import simulate_cohort

from ..conftest import (
    CINECA_INDIVIDUALS,
    CINECA_VCF,
    in_process_workers,
    write_dataset_yaml,
)


def _simulated(directory: pathlib.Path, dataset_id: str, level: str, seed: int):
    result = simulate_cohort(
        directory,
        samples=120,
        seed=seed,
        length=400_000,
        country="FI",
        security_level=level,
        dataset_id=dataset_id,
    )
    return result


@pytest.fixture(scope="session")
def beacon_node(tmp_path_factory) -> Node:
    root = tmp_path_factory.mktemp("beacon")
    with in_process_workers():
        cineca = root / "cineca"
        cineca.mkdir()
        shutil.copy(CINECA_VCF, cineca / "cohort.vcf.gz")
        shutil.copy(CINECA_INDIVIDUALS, cineca / "individuals.json")
        cineca_yaml = write_dataset_yaml(
            cineca,
            id="cineca-1kg",
            security_level="PUBLIC",
            beacon={"anonymous": "record"},
        )
        public = _simulated(root / "sim-public", "sim-public", "PUBLIC", seed=3)
        controlled = _simulated(
            root / "sim-controlled", "sim-controlled", "CONTROLLED", seed=4
        )
        node = init_node(root / "node", node_id="fi-node", country="FI")
        for description in (cineca_yaml, public.dataset_yaml, controlled.dataset_yaml):
            ingest(node, description)
    node.simulations = {"sim-public": public, "sim-controlled": controlled}  # type: ignore[attr-defined]
    yield node
    node.close()


@pytest.fixture(scope="session")
def client(beacon_node) -> TestClient:
    # These tests check exact answers (and the floor and subset rule, which stay
    # with the layer off); the defaults' noise and budgets: tests/disclosure.
    app = create_app(beacon_node, disclosure_enabled=False)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def cineca_records() -> list[dict]:
    return json.loads(CINECA_INDIVIDUALS.read_text())


def dataset_yaml(path: pathlib.Path) -> dict:
    return yaml.safe_load(path.read_text())
