"""``genomenode analysis submit|status|results|cancel`` against the real network;
the TSV and the Manhattan / QQ plots it writes."""

from __future__ import annotations

import csv
import json
import time

from click.testing import CliRunner

from genomenode.cli import cli


def _run(arguments: list[str], **environment: str) -> str:
    result = CliRunner().invoke(cli, arguments, env=environment, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_submit_status_results_with_plots(network, tmp_path):
    token = network.passport()["Authorization"].removeprefix("Bearer ")
    submitted = json.loads(
        _run(
            [
                "analysis",
                "submit",
                "--network",
                network.url,
                "gwas",
                "--datasets",
                "part-1,part-2,part-3",
                "--phenotype",
                "ICD10:I25.1",
                "--model",
                "logistic",
                "--covariates",
                "sex,age",
                "--json",
            ],
            GENOMENODE_TOKEN=token,
        )
    )
    assert token not in json.dumps(submitted)
    deadline = time.monotonic() + 120
    while True:
        text = _run(
            ["analysis", "status", "--network", network.url, submitted["id"]],
            GENOMENODE_TOKEN=token,
        )
        if "COMPLETE" in text.splitlines()[0]:
            break
        assert "ERROR" not in text and time.monotonic() < deadline, text
        time.sleep(0.3)
    assert "part-3" in text and "round trips" in text
    out, plot = tmp_path / "gwas.tsv", tmp_path / "gwas.png"
    _run(
        [
            "analysis",
            "results",
            "--network",
            network.url,
            submitted["id"],
            "--out",
            str(out),
            "--plot",
            str(plot),
        ],
        GENOMENODE_TOKEN=token,
    )
    with open(out) as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert len(rows) > 500 and {"position", "beta", "se", "p"} <= set(rows[0])
    for name in ("gwas.png", "gwas.qq.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")
    for name in ("gwas.svg", "gwas.qq.svg"):
        assert "<svg" in (tmp_path / name).read_text()


def test_cancel_of_an_ended_job_is_a_clear_error(network):
    job = network.submit(
        {"analysis": "summary", "datasets": ["part-1"], "variables": ["age"]}
    )
    network.wait(job["id"])
    token = network.owner()["Authorization"].removeprefix("Bearer ")
    result = CliRunner().invoke(
        cli,
        ["analysis", "cancel", "--network", network.url, job["id"]],
        env={"GENOMENODE_TOKEN": token},
    )
    assert result.exit_code == 1
    assert "already ended" in result.output


def test_a_malformed_purpose_is_a_clear_error_before_anything_is_sent():
    for purpose, expected in (
        ("{not json", "not JSON"),
        ('{"term": "GRU"}', "purpose.term"),
    ):
        result = CliRunner().invoke(
            cli,
            [
                "analysis",
                "submit",
                "--network",
                "http://127.0.0.1:9",
                "summary",
                "--datasets",
                "part-1",
                "--variables",
                "age",
                "--purpose",
                purpose,
            ],
        )
        assert result.exit_code == 2, result.output
        assert "--purpose" in result.output and expected in result.output
