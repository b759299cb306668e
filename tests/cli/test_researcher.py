"""A researcher's whole path against a real ``genomenode serve``: sign in with the
device flow at the node's development identity provider, apply, be approved by the
DAC, see the grant, fetch bytes with the stored token, and stay signed in when the
access token expires (refreshed).

``genomenode login`` runs as its own process (it waits for the user); the user's
approval is the verification page's form, posted as a browser would. The other
commands run in-process with click's runner; every one reads the same token file
(``$GENOMENODE_CONFIG_DIR``, one per test).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import stat
import subprocess
import sys

import httpx2
import pysam
import pytest
from click.testing import CliRunner

from genomenode.access import workflow
from genomenode.cli import cli
from genomenode.client.tokens import TokenStore
from genomenode.ingest.pipeline import ingest
from genomenode.store.node import init_node, open_node

from ..conftest import (
    free_port,
    in_process_workers,
    wait_until_up,
    write_dataset_yaml,
    write_small_cohort,
)

DATASET = "cli-controlled"
RESEARCHER = "researcher@demo.genomenode"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("researcher")
    with in_process_workers():
        write_small_cohort(root / "cohort", dataset_id=DATASET, num_variants=600)
        description = write_dataset_yaml(
            root / "cohort", id=DATASET, security_level="CONTROLLED"
        )
        node = init_node(root / "node", node_id="n", country="FI")
        ingest(node, description)
        node.close()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "genomenode", "serve"),
            *("--node", str(root / "node"), "--port", str(port)),
        ],
        env={
            **os.environ,
            "GENOMENODE_PUBLIC_URL": url,
            "GENOMENODE_DEV_IDENTITY_PROVIDER": "true",
        },
        start_new_session=True,
        stderr=subprocess.PIPE,
    )
    wait_until_up(process, f"{url}/api/info")
    yield {"url": url, "broker": f"{url}/dev-idp", "node_dir": root / "node"}
    os.killpg(process.pid, signal.SIGTERM)
    process.communicate(timeout=30)


def _login(broker: str, subject: str) -> subprocess.CompletedProcess:
    """``genomenode login``, approved on the verification page as ``subject``."""
    process = subprocess.Popen(
        [sys.executable, "-m", "genomenode", "login", "--broker", broker],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    shown = ""
    for line in process.stderr:
        shown += line
        found = re.search(r"(http\S+/device\?user_code=\S+)", line)
        if found:
            break
    else:
        process.wait(timeout=10)
        raise AssertionError(f"login showed no verification URL:\n{shown}")
    page = httpx2.get(found.group(1))
    assert page.status_code == 200 and "Sign in as" in page.text
    user_code = re.search(r"name='user_code' value='([A-Z-]+)'", page.text).group(1)
    approved = httpx2.post(
        found.group(1).split("?")[0],
        data={"user_code": user_code, "subject": subject, "action": "approve"},
    )
    assert approved.status_code == 200, approved.text
    stdout, rest = process.communicate(timeout=60)
    return subprocess.CompletedProcess(
        process.args, process.returncode, stdout, shown + rest
    )


def run(*arguments: str, expect: int = 0):
    result = CliRunner().invoke(cli, list(arguments))
    assert result.exit_code == expect, (result.stdout, result.stderr)
    return result


def test_login_apply_approve_grants_fetch_and_refresh(server, tmp_path):
    url = server["url"]
    login = _login(server["broker"], RESEARCHER)
    assert login.returncode == 0, login.stderr
    assert f"as {RESEARCHER}" in login.stdout
    store = TokenStore()
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    first = store.get()
    assert first.broker == server["broker"] and first.subject == RESEARCHER
    token = first.access_token.reveal()
    assert token not in login.stdout + login.stderr

    applied = run(
        "apply",
        "--node",
        url,
        "--dataset",
        DATASET,
        "--purpose",
        "DUO:0000042",
        "--title",
        "Variants of the cohort",
        "--description",
        "Allele frequencies for a cardiology study.",
    )
    assert re.search(rf"Application (\d+) for {DATASET} is submitted", applied.stdout)
    assert "DUO says approve" in applied.stdout
    application_id = int(re.search(r"Application (\d+)", applied.stdout).group(1))
    assert run("grants", "--node", url).stdout.strip() == "No grants."
    denied = run(
        "fetch",
        *("--server", url, "--dataset", DATASET, "--region", "1"),
        *("--out", str(tmp_path / "denied.vcf.gz")),
        expect=1,
    )
    assert "403" in denied.stderr

    # The DAC decides (an operator, through the library).
    with open_node(server["node_dir"]) as node:
        workflow.approve(
            node.engine,
            application_id,
            actor="operator:test",
            ends_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=30),
            as_operator=True,
        )

    (grant,) = json.loads(run("grants", "--node", url, "--json").stdout)
    assert grant["dataset_id"] == DATASET and grant["subject"] == RESEARCHER
    listing = run("applications", "--node", url).stdout
    assert f"{application_id:>5}  approved" in listing
    out = tmp_path / "slice.vcf.gz"
    fetched = run(
        "fetch",
        *("--server", url, "--dataset", DATASET, "--region", "1:1-20000"),
        *("--out", str(out)),
    )
    assert "Wrote" in fetched.stdout
    with pysam.VariantFile(str(out)) as vcf:
        assert len(list(vcf)) > 0

    # The access token expires: the next command refreshes it, and keeps it.
    document = json.loads(store.path.read_text())
    entry = document["brokers"][server["broker"]]
    entry["access_token"] = "expired-and-useless"
    entry["expires_at"] = 1.0
    store.path.write_text(json.dumps(document))
    (grant,) = json.loads(run("grants", "--node", url, "--json").stdout)
    assert grant["dataset_id"] == DATASET
    refreshed = store.get()
    assert refreshed.access_token.reveal() not in ("expired-and-useless", token)
    assert refreshed.expires_at > 1.0
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600

    assert "Signed out" in run("logout").stdout
    gone = run("grants", "--node", url, expect=1)
    assert "not signed in" in gone.stderr


def test_an_ended_sign_in_says_to_sign_in_again(server):
    login = _login(server["broker"], "visitor@demo.genomenode")
    assert login.returncode == 0, login.stderr
    store = TokenStore()
    document = json.loads(store.path.read_text())
    entry = document["brokers"][server["broker"]]
    entry["expires_at"] = 1.0
    entry["refresh_token"] = "a.forged.token"
    store.path.write_text(json.dumps(document))
    refused = run("applications", "--node", server["url"], expect=1)
    assert "genomenode login --broker" in refused.stderr
    assert "a.forged.token" not in refused.stderr


def test_researcher_commands_refuse_a_directory_for_a_node(server, tmp_path):
    assert _login(server["broker"], RESEARCHER).returncode == 0
    wrong = run("grants", "--node", str(tmp_path), expect=1)
    assert "is not a node URL" in wrong.stderr
    refused = run(
        "apply",
        *("--node", server["url"], "--dataset", "nope", "--purpose", "DUO:0000042"),
        *("--title", "t"),
        expect=1,
    )
    assert "nope" in refused.stderr
