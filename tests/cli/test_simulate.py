"""cli/simulate.py: ``genomenode simulate`` (the cohorts: tests/test_simulate.py)."""

from __future__ import annotations

import yaml

from .conftest import invoke, invoke_json


def test_simulate_writes_a_cohort_and_says_its_security_level(tmp_path):
    text = invoke(
        "simulate", tmp_path / "c", "--samples", "10", "--length", "20000"
    ).stdout
    assert text.startswith("Simulated 10 samples × ")
    assert "(CONTROLLED): " in text
    result = invoke_json(
        *("simulate", tmp_path / "p", "--samples", "10", "--length", "20000"),
        *("--security-level", "PUBLIC", "--dataset-id", "open"),
    )
    assert result["dataset_id"] == "open"
    description = yaml.safe_load((tmp_path / "p" / "dataset.yaml").read_text())
    assert description["security_level"] == "PUBLIC"


def test_bad_values_are_usage_errors(tmp_path):
    refused = invoke("simulate", tmp_path / "c", "--samples", "1", expect=2)
    assert "--samples" in refused.stderr
