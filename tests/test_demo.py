"""``make demo``: three national nodes and the network, live, as separate processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from rich.console import Console
from sqlalchemy import select

from genomenode.beacon.schemas import validate
from genomenode.demo import DEMO_RESEARCHER, run_demo
from genomenode.store.models import AuditEntry
from genomenode.store.node import open_node

from .conftest import assert_private


def _visible(document: dict) -> set[str]:
    """Dataset ids with result sets in a merged network answer."""
    return {
        str(item.get("id")).rpartition(":")[2].rpartition("/")[2]
        for item in document.get("response", {}).get("resultSets", [])
    }


@pytest.mark.slow
def test_the_demo_network_shows_each_kind_of_caller(tmp_path, permissive_umask):
    started = time.monotonic()
    shown = run_demo(
        tmp_path,
        scale=0.1,
        length=300_000,
        wait=False,
        ports=(None, None, None),
        network_port=None,
    )
    elapsed = time.monotonic() - started
    for name in ("anonymous", "registered", "granted"):
        statuses = {item["id"]: item["status"] for item in shown[name]["info"]["nodes"]}
        assert statuses == {"fi-node": "ok", "it-node": "ok", "pt-node": "ok"}
    assert shown["anonymous"]["responseSummary"]["exists"] is True
    assert "pt-cohort" not in _visible(shown["anonymous"])
    assert _visible(shown["registered"]) == {"fi-cohort", "it-cohort"}
    assert _visible(shown["granted"]) == {"fi-cohort", "it-cohort", "pt-cohort"}
    validate(shown["granted"], "beaconCountResponse")
    records = shown["records"]
    assert records["meta"]["returnedGranularity"] == "record"
    validate(records, "beaconResultsetsResponse")
    (result_set,) = records["response"]["resultSets"]
    assert result_set["id"] == "pt-cohort" and result_set["results"]
    assert shown["application"]["state"] == "approved"
    assert shown["application"]["applicant"] == DEMO_RESEARCHER
    assert {item["country"] for item in shown["search"]} == {"FI", "IT", "PT"}
    assert elapsed < 120
    # Run again: cohorts and nodes are reused and the story is the same, told
    # truly: the committee revokes the earlier grant, the researcher applies again.
    # The commands to try come out whole, however narrow the terminal.
    console = Console(width=60, record=True)
    served = []
    again = run_demo(
        tmp_path,
        scale=0.1,
        length=300_000,
        wait=False,
        ports=(None, None, None),
        network_port=None,
        console=console,
        on_ready=served.append,
    )
    told = console.export_text()
    flat = " ".join(told.split())  # the prose may wrap at 60 columns
    assert flat.count("already published by an earlier run") == 3
    assert again["revoked_earlier"] == [shown["application"]["id"]]
    assert f"(application {shown['application']['id']}): the DAC revokes it" in flat
    assert _visible(again["registered"]) == {"fi-cohort", "it-cohort"}
    assert again["application"]["state"] == "approved"
    assert again["application"]["id"] != shown["application"]["id"]
    assert _visible(again["granted"]) == {"fi-cohort", "it-cohort", "pt-cohort"}
    (description,) = served
    assert [node["node_id"] for node in description["nodes"]] == [
        "fi-node",
        "it-node",
        "pt-node",
    ]
    for command in description["try"]:
        assert f"  {command}\n" in told
    # Each node verified the network's signed assertion and names it in its log.
    for node_id in ("fi-node", "it-node", "pt-node"):
        with open_node(tmp_path / node_id) as node, node.session() as session:
            networks = {
                (entry.details or {}).get("network")
                for entry in session.scalars(select(AuditEntry))
            }
        assert any(str(name).startswith("http://127.0.0.1:") for name in networks)
    # Cohorts, nodes, logs and what the servers wrote (keys, links secret): private.
    names = {path.name for path in assert_private(tmp_path)}
    assert {"NETWORK.yaml", "links.key", "genomenode.db", "fi-node.log"} <= names
    assert os.umask(0o022) == 0o022


def test_the_demo_set_up_writes_private_files(tmp_path, permissive_umask):

    from genomenode.demo import DemoNode, _prepare

    node = DemoNode("PT", "CONTROLLED", samples=20, seed=13, port=8083)
    broker = "http://127.0.0.1:8081/dev-idp"
    _prepare(
        Console(quiet=True),
        tmp_path,
        node,
        length=30_000,
        broker=broker,
        network="http://127.0.0.1:9000",
    )
    files = {path.relative_to(tmp_path).as_posix() for path in assert_private(tmp_path)}
    # The simulated genotypes and phenopackets, and the node's store and keys.
    assert {"pt-cohort/pt-cohort.vcf.gz", "pt-cohort/dataset.yaml"} <= files
    assert any(name.startswith("pt-cohort/phenopackets/") for name in files)
    assert {"pt-node/keys/node.sec", "pt-node/genomenode.db"} <= files
    assert any(name.endswith(".c4gh") for name in files)


@pytest.mark.slow
def test_ctrl_c_stops_the_whole_network(tmp_path):
    demo = subprocess.Popen(
        [
            *(sys.executable, "-m", "genomenode", "demo"),
            *("--dir", str(tmp_path), "--scale", "0.1"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        # Started with SIGINT ignored, as a background job of a script is (and as
        # this test process may be): Ctrl-C must stop the demo all the same.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    lines = []
    deadline = time.monotonic() + 120
    for line in demo.stdout:
        lines.append(line)
        if "Ctrl-C stops" in line or time.monotonic() > deadline:
            break
    assert any("Ctrl-C stops" in line for line in lines), "".join(lines)
    registry = tmp_path / "NETWORK.yaml"
    children = subprocess.run(
        ["pgrep", "-f", str(tmp_path)], capture_output=True, text=True
    ).stdout.split()
    assert len(children) >= 4  # three nodes and the network
    demo.send_signal(signal.SIGINT)
    rest, _ = demo.communicate(timeout=60)
    assert demo.returncode == 0, rest
    assert "Stopped." in rest
    left = subprocess.run(
        ["pgrep", "-f", str(tmp_path)], capture_output=True, text=True
    ).stdout.split()
    assert left == [], f"processes left running: {left}"
    assert registry.exists()
