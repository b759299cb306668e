"""A node whose datasets live in an S3 bucket (a real ``moto.server`` process on
loopback, authentication on), sealed at rest, answers Beacon, htsget and DRS
exactly as a node on a local directory does; an ingest killed mid-upload shows
nothing and resumes; a wrong secret is refused naming the setting.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import urllib.parse

import numpy as np
import pytest

from genomenode.errors import NotFoundError, StoreError
from genomenode.store import crypt
from genomenode.store.node import open_node
from genomenode.store.objects import S3Storage, StoredPath, open_binary
from genomenode.store.published import PublishedDatasets
from genomenode.transfer.crypt4gh import Crypt4GHReader

from ..conftest import write_small_cohort
from .moto_server import (
    BUCKET,
    bearer,
    node_pair,
    pair_clients,
    s3_in_environment,
)

BASE = "http://testserver"
DATASET = "small"
RESEARCHER = "researcher@demo.genomenode"
REPOSITORY_SRC = os.path.join(os.path.dirname(__file__), "..", "..", "src")


@pytest.fixture(scope="module")
def s3():
    with s3_in_environment() as service:
        yield service


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    directory = tmp_path_factory.mktemp("s3-cohort")
    return write_small_cohort(directory, num_samples=40, num_variants=300, seed=7)


@pytest.fixture(scope="module")
def nodes(tmp_path_factory, cohort, s3):
    pair = node_pair(
        tmp_path_factory.mktemp("nodes"),
        [cohort],
        s3=s3,
        prefix="fi-node",
        granted=[DATASET],
        researcher=RESEARCHER,
    )
    yield pair
    for node in pair.values():
        node.close()


@pytest.fixture(scope="module")
def clients(nodes):
    with pair_clients(nodes) as clients:
        yield clients


def _bearer(client) -> dict[str, str]:
    return bearer(client, RESEARCHER)


def test_the_datasets_are_in_the_bucket_not_on_disk(nodes, s3):
    remote = nodes["s3"]
    assert remote.objects.url == f"s3://{BUCKET}/fi-node"
    assert not (remote.datasets_dir / DATASET).exists()
    listing = remote.objects.listing(f"datasets/{DATASET}")
    names = {key.rsplit("/", 1)[-1] for key in listing}
    assert {"dataset.json", "genomenode-at-rest.json", ".zarray"} <= names
    assert any(key.endswith(".c4gh") for key in listing)


BEACON_QUERIES = [
    {"referenceName": "1", "start": [999], "end": [1000]},
    {"referenceName": "1", "start": [1000], "end": [6000]},
    {"referenceName": "2", "start": [6000], "end": [12000]},
]


@pytest.mark.parametrize("parameters", BEACON_QUERIES)
@pytest.mark.parametrize("granularity", ["count", "record"])
def test_beacon_answers_are_identical(clients, parameters, granularity):
    answers = []
    for name in ("local", "s3"):
        client = clients[name]
        response = client.post(
            "/api/g_variants",
            json={
                "meta": {"apiVersion": "2.0"},
                "query": {
                    "requestParameters": parameters,
                    "requestedGranularity": granularity,
                    "includeResultsetResponses": "ALL",
                },
            },
            headers=_bearer(client),
        )
        assert response.status_code == 200, response.text
        document = response.json()
        answers.append((document["responseSummary"], document.get("response")))
    assert answers[0] == answers[1]
    assert answers[0][0]["numTotalResults"] > 0


def test_individuals_and_carriers_are_identical(clients):
    answers = []
    for name in ("local", "s3"):
        client = clients[name]
        response = client.get(
            "/api/individuals/S003/g_variants",
            params={"requestedGranularity": "record"},
            headers=_bearer(client),
        )
        assert response.status_code == 200, response.text
        document = response.json()
        answers.append((document["responseSummary"], document.get("response")))
    assert answers[0] == answers[1]
    assert answers[0][0]["numTotalResults"] > 0, answers[0]


def _follow(client, ticket: dict) -> bytes:
    parts = []
    for item in ticket["htsget"]["urls"]:
        url = item["url"]
        if url.startswith("data:"):
            parts.append(base64.b64decode(url.partition(",")[2]))
            continue
        response = client.get(url[len(BASE) :], headers=item.get("headers") or {})
        assert response.status_code == 200, response.text
        parts.append(response.content)
    return b"".join(parts)


@pytest.mark.parametrize(
    "region",
    [
        {},
        {"referenceName": "1", "start": 2000, "end": 4000},
        {"referenceName": "2", "start": 7000, "end": 7100},
    ],
)
def test_htsget_slices_are_byte_identical(clients, region):
    slices = []
    for name in ("local", "s3"):
        client = clients[name]
        response = client.get(
            f"/htsget/variants/{DATASET}", params=region, headers=_bearer(client)
        )
        assert response.status_code == 200, response.text
        slices.append(_follow(client, response.json()))
    assert slices[0] == slices[1] and len(slices[0]) > 100


@pytest.fixture(scope="module")
def researcher_keys(tmp_path_factory):
    directory = tmp_path_factory.mktemp("researcher")
    crypt.generate_keypair(directory / "r.sec", directory / "r.pub")
    key_line = next(
        line
        for line in (directory / "r.pub").read_text().splitlines()
        if line and not line.startswith("-----")
    )
    return directory, key_line


def test_drs_downloads_decrypt_to_the_same_original(
    clients, nodes, cohort, researcher_keys, tmp_path
):
    directory, key_line = researcher_keys
    secret = crypt.read_private_key(directory / "r.sec")
    (vcf,) = [
        entry
        for entry in nodes["local"].dataset_manifest(DATASET)["files"]
        if entry["role"] == "genotypes"
    ]
    plaintexts, ranges = [], []
    for name in ("local", "s3"):
        client = clients[name]
        headers = {**_bearer(client), "Crypt4GH-Public-Key": key_line}
        path = f"/ga4gh/drs/v1/download/{urllib.parse.quote(vcf['id'], safe='')}"
        response = client.get(path, headers=headers)
        assert response.status_code == 200, response.text
        downloaded = tmp_path / f"{name}.c4gh"
        downloaded.write_bytes(response.content)
        reader = Crypt4GHReader(downloaded, secret)
        plaintexts.append(reader.read(0, reader.plaintext_size))
        partial = client.get(path, headers={**headers, "Range": "bytes=200-999"})
        assert partial.status_code == 206
        ranges.append(len(partial.content))
    assert (
        plaintexts[0] == plaintexts[1] == (cohort.parent / "cohort.vcf.gz").read_bytes()
    )
    assert ranges == [800, 800]


def test_stored_files_are_read_by_ranges(nodes):
    """A read of a few bytes of a stored object fetches about that many, not the
    object (what htsget and DRS do through Crypt4GHReader)."""
    storage = nodes["s3"].objects
    assert isinstance(storage, S3Storage)
    key = "scratch/large.bin"
    storage.write(key, bytes(range(256)) * 40_000)  # 10 MB
    fetched: list[int] = []
    original = storage.read_range

    def counting(key: str, start: int, stop: int) -> bytes:
        fetched.append(stop - start)
        return original(key, start, stop)

    storage.read_range = counting  # type: ignore[method-assign]
    try:
        with open_binary(StoredPath(storage, key)) as stream:
            stream.seek(5_000_000)
            assert stream.read(10) == (bytes(range(256)) * 40_000)[5_000_000:5_000_010]
    finally:
        del storage.read_range
        storage.delete_prefix("scratch")
    assert sum(fetched) <= 1 << 20


def _cli(arguments, environment) -> subprocess.CompletedProcess:
    env = dict(os.environ, **environment)
    env["PYTHONPATH"] = os.path.abspath(REPOSITORY_SRC)
    env["GENOMENODE_WORKER_PROCESSES"] = "0"
    return subprocess.run(
        [sys.executable, "-m", "genomenode", *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("kill_at", ["publish:uploading", "publish:uploaded"])
def test_an_ingest_killed_while_uploading_shows_nothing_and_resumes(
    tmp_path, cohort, s3, nodes, kill_at
):
    node_dir = tmp_path / "node"
    storage = f"s3://{BUCKET}/killed-{kill_at.replace(':', '-')}"
    created = _cli(
        [
            "init",
            str(node_dir),
            "--node-id",
            "fi-node",
            "--country",
            "FI",
            "--storage",
            storage,
            "--storage-endpoint",
            s3.endpoint,
        ],
        {},
    )
    assert created.returncode == 0, created.stderr
    sealed = {"GENOMENODE_ENCRYPT_AT_REST": "true"}
    killed = _cli(
        ["ingest", "--node", str(node_dir), str(cohort)],
        {**sealed, "GENOMENODE_TEST_KILL_AT": kill_at},
    )
    assert killed.returncode == -9, killed.stderr
    with open_node(node_dir) as node:
        assert node.published() == []
        assert PublishedDatasets(node).datasets() == []
        with pytest.raises(NotFoundError):
            node.dataset_manifest(DATASET)
        keys = node.objects.listing(f"datasets/{DATASET}")
        assert not any(key.endswith("/dataset.json") for key in keys)
    resumed = _cli(["ingest", "--node", str(node_dir), str(cohort)], sealed)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed after" in resumed.stdout
    with open_node(node_dir) as node:
        (handle,) = PublishedDatasets(node).datasets()
        reference = PublishedDatasets(nodes["local"]).get(DATASET)
        assert reference is not None
        for row in range(handle.facts.num_variants):
            np.testing.assert_array_equal(
                handle.store.genotypes(row), reference.store.genotypes(row)
            )
            assert handle.store.counts(row) == reference.store.counts(row)


def test_a_wrong_secret_is_refused_naming_the_setting(tmp_path, s3):
    failed = _cli(
        [
            "init",
            str(tmp_path / "node"),
            "--node-id",
            "n",
            "--country",
            "FI",
            "--storage",
            f"s3://{BUCKET}/other",
            "--storage-endpoint",
            s3.endpoint,
        ],
        s3.environment(secret="not-the-secret"),
    )
    assert failed.returncode == 1
    assert "AWS_SECRET_ACCESS_KEY" in failed.stderr
    assert s3.secret_access_key not in failed.stderr + failed.stdout
    assert "Traceback" not in failed.stderr
    assert not (tmp_path / "node").exists()
    with pytest.raises(StoreError, match="AWS_ACCESS_KEY_ID"):
        _read_with_wrong_secret(s3)


def _read_with_wrong_secret(s3) -> None:
    saved = os.environ["AWS_SECRET_ACCESS_KEY"]
    os.environ["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
    try:
        S3Storage(f"s3://{BUCKET}/fi-node", endpoint=s3.endpoint).read("store.json")
    finally:
        os.environ["AWS_SECRET_ACCESS_KEY"] = saved


def test_discard_deletes_what_a_killed_upload_left(tmp_path, cohort, s3):
    node_dir = tmp_path / "node"
    created = _cli(
        [
            "init",
            str(node_dir),
            "--node-id",
            "fi-node",
            "--country",
            "FI",
            "--storage",
            f"s3://{BUCKET}/discarded",
            "--storage-endpoint",
            s3.endpoint,
        ],
        {},
    )
    assert created.returncode == 0, created.stderr
    killed = _cli(
        ["ingest", "--node", str(node_dir), str(cohort)],
        {"GENOMENODE_TEST_KILL_AT": "publish:uploaded"},
    )
    assert killed.returncode == -9, killed.stderr
    with open_node(node_dir) as node:
        assert node.objects.listing("datasets")
    discarded = _cli(["discard", "--node", str(node_dir), DATASET], {})
    assert discarded.returncode == 0, discarded.stderr
    with open_node(node_dir) as node:
        assert node.objects.listing("datasets") == {}
        assert node.objects.exists("store.json")
