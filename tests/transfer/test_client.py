"""``genomenode fetch`` and ``genomenode keys generate`` against a real server."""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import sys

import httpx2
import pysam
import pytest

from genomenode.ingest.pipeline import ingest
from genomenode.store.node import init_node
from genomenode.transfer.client import parse_region

from ..conftest import (
    free_port,
    grant_access,
    in_process_workers,
    wait_until_up,
    write_dataset_yaml,
    write_small_cohort,
)

DATASET = "fetch-controlled"
RESEARCHER = "researcher@demo.genomenode"
BIN = pathlib.Path(sys.executable).parent


def _genomenode(*arguments: str, **environment: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "genomenode", *arguments],
        capture_output=True,
        text=True,
        env={**os.environ, **environment},
        timeout=120,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("fetch")
    with in_process_workers():
        write_small_cohort(root / "cohort", dataset_id=DATASET, num_variants=2000)
        description = write_dataset_yaml(
            root / "cohort", id=DATASET, security_level="CONTROLLED"
        )
        node = init_node(root / "node", node_id="n", country="FI")
        ingest(node, description)
        grant_access(node, DATASET, RESEARCHER)
        node.close()
    indexed = root / "indexed.vcf.gz"
    shutil.copy(root / "cohort" / "cohort.vcf.gz", indexed)
    pysam.tabix_index(str(indexed), preset="vcf", force=True)
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
    token = httpx2.post(f"{url}/dev-idp/token", json={"subject": RESEARCHER}).json()
    yield {"url": url, "token": token["access_token"], "vcf": indexed}
    os.killpg(process.pid, signal.SIGTERM)
    process.communicate(timeout=30)


def _records(path: pathlib.Path) -> list[str]:
    with pysam.VariantFile(str(path)) as vcf:
        return [str(record) for record in vcf]


def test_parse_region_is_one_based_inclusive():
    assert parse_region("1:1-100") == {"referenceName": "1", "start": 0, "end": 100}
    assert parse_region("chrX") == {"referenceName": "chrX"}
    assert parse_region("2:1,000-2,000")["start"] == 999


def test_fetch_writes_exactly_the_region(server, tmp_path):
    out = tmp_path / "slice.vcf.gz"
    result = _genomenode(
        "fetch",
        "--server",
        server["url"],
        "--dataset",
        DATASET,
        "--region",
        "1:5001-20000",
        "--out",
        str(out),
        GENOMENODE_TOKEN=server["token"],
    )
    assert result.returncode == 0, result.stderr
    assert server["token"] not in result.stdout + result.stderr
    with pysam.VariantFile(str(server["vcf"])) as vcf:
        expected = [str(record) for record in vcf.fetch("1", 5000, 20000)]
    assert _records(out) == expected and expected


def test_fetch_encrypted_to_my_key_decrypts_with_the_crypt4gh_cli(server, tmp_path):
    keys = _genomenode("keys", "generate", str(tmp_path / "me"))
    assert keys.returncode == 0, keys.stderr
    plain, sealed = tmp_path / "plain.vcf.gz", tmp_path / "sealed.vcf.gz.c4gh"
    for out, extra in (
        (plain, []),
        (sealed, ["--encrypt-to", str(tmp_path / "me.pub")]),
    ):
        result = _genomenode(
            "fetch",
            "--server",
            server["url"],
            "--dataset",
            DATASET,
            "--region",
            "2",
            "--out",
            str(out),
            *extra,
            GENOMENODE_TOKEN=server["token"],
        )
        assert result.returncode == 0, result.stderr
    with sealed.open("rb") as stdin:
        decrypted = subprocess.run(
            [str(BIN / "crypt4gh"), "decrypt", "--sk", str(tmp_path / "me.sec")],
            stdin=stdin,
            capture_output=True,
            timeout=60,
        )
    assert decrypted.returncode == 0, decrypted.stderr
    assert decrypted.stdout == plain.read_bytes()
    assert b"#CHROM" not in sealed.read_bytes()


def test_fetch_without_a_grant_fails_and_leaves_nothing(server, tmp_path):
    out = tmp_path / "denied.vcf.gz"
    result = _genomenode(
        "fetch", "--server", server["url"], "--dataset", DATASET, "--out", str(out)
    )
    assert result.returncode == 1
    assert "403" in result.stderr + result.stdout
    assert not out.exists() and not out.with_name(out.name + ".part").exists()
