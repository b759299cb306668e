"""The dataset lifecycle on a node whose datasets live in an S3 bucket (a real
``moto.server`` process on loopback, sealed at rest): ``genomenode datasets
unpublish``, ``publish``, ``set-access`` and ``remove`` run as commands against it,
the same changes on a local-directory node, and after each one both nodes answer
Beacon, htsget and DRS byte for byte alike. ``remove`` leaves no object of the
dataset behind and touches no other's; a CRAM is sliced against its reference
FASTA read from the bucket.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import urllib.parse

import boto3
import pysam
import pytest

from genomenode.access import access_change, lifecycle, removal
from genomenode.errors import StoreError

from ..conftest import (
    write_dataset_yaml,
    write_small_cohort,
)
from ..ingest.test_alignments import REFERENCES, cohort
from ..transfer.test_cram import write_reads, write_reference
from .moto_server import (
    BUCKET,
    bearer,
    node_pair,
    pair_clients,
    s3_in_environment,
)

BASE = "http://testserver"
RESEARCHER = "researcher@demo.genomenode"
OPERATOR = "operator:test"
REPOSITORY_SRC = os.path.join(os.path.dirname(__file__), "..", "..", "src")
# "small" is a prefix of "smaller": removing the first must leave the second.
DATASETS = ("small", "smaller", "cram")


@pytest.fixture(scope="module")
def s3():
    with s3_in_environment() as service:
        yield service


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("lifecycle-inputs")
    small = write_small_cohort(
        directory / "small", num_samples=30, num_variants=200, seed=3
    )
    smaller = write_small_cohort(
        directory / "smaller",
        dataset_id="smaller",
        num_samples=20,
        num_variants=120,
        seed=4,
    )
    reads = cohort(directory / "cram")
    fasta = write_reference(reads / "reference.fa", REFERENCES)
    source = write_reads(directory / "S3.bam", num_reads=800, references=REFERENCES)
    pysam.samtools.view(
        "-C",
        "-T",
        str(fasta),
        "--output-fmt-option",
        "seqs_per_slice=100",
        "-o",
        str(reads / "S3.cram"),
        str(source),
        catch_stdout=False,
    )
    cram = write_dataset_yaml(
        reads,
        id="cram",
        alignments=[{"path": "S3.cram", "reference": "reference.fa", "sample": "S3"}],
    )
    return {"small": small, "smaller": smaller, "cram": cram, "fasta": fasta}


@pytest.fixture(scope="module")
def nodes(tmp_path_factory, inputs, s3):
    pair = node_pair(
        tmp_path_factory.mktemp("lifecycle-nodes"),
        [inputs[dataset_id] for dataset_id in DATASETS],
        s3=s3,
        prefix="lifecycle",
        granted=DATASETS,
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


def _answers(client) -> dict[str, object]:
    """What a researcher (and an anonymous caller) gets from every service."""
    headers = _bearer(client)
    collections = client.get("/api/datasets", headers=headers).json()["response"]
    answers: dict[str, object] = {
        # The nodes were made a few seconds apart: every field but the times.
        "datasets": [
            {key: value for key, value in item.items() if "DateTime" not in key}
            for item in collections["collections"]
        ]
    }
    for who, given in (("granted", headers), ("anonymous", {})):
        beacon = client.post(
            "/api/g_variants",
            json={
                "meta": {"apiVersion": "2.0"},
                "query": {
                    "requestParameters": {
                        "referenceName": "1",
                        "start": [1000],
                        "end": [5000],
                    },
                    "requestedGranularity": "record",
                    "includeResultsetResponses": "ALL",
                },
            },
            headers=given,
        ).json()
        answers[f"beacon {who}"] = (
            beacon["responseSummary"],
            beacon.get("response"),
        )
    for dataset_id in ("small", "smaller"):
        ticket = client.get(
            f"/htsget/variants/{dataset_id}",
            params={"referenceName": "1", "start": 1000, "end": 4000},
            headers=headers,
        )
        answers[f"htsget {dataset_id}"] = (
            _follow(client, ticket.json())
            if ticket.status_code == 200
            else (ticket.status_code, ticket.json())
        )
        drs = client.get(f"/ga4gh/drs/v1/objects/{dataset_id}", headers=headers)
        answers[f"drs {dataset_id}"] = drs.status_code
        if drs.status_code == 200:
            answers[f"drs {dataset_id} contents"] = sorted(
                (item["name"], item["id"]) for item in drs.json()["contents"]
            )
    return answers


def _same_answers(clients) -> dict[str, object]:
    local, remote = _answers(clients["local"]), _answers(clients["s3"])
    assert local == remote
    return local


def _cli(arguments) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.abspath(REPOSITORY_SRC)
    return subprocess.run(
        [sys.executable, "-m", "genomenode", *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _datasets_command(nodes, *arguments: str) -> None:
    """``genomenode datasets ...`` against the S3 node, as an operator runs it."""
    node_dir = str(nodes["s3"].config.node_dir)
    command, dataset_id, *options = arguments
    done = _cli(["datasets", command, "--node", node_dir, dataset_id, *options])
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr


def _keys(node, dataset_id: str) -> dict[str, int]:
    return node.objects.listing(f"datasets/{dataset_id}")


def test_the_nodes_start_alike(clients):
    answers = _same_answers(clients)
    assert len(answers["datasets"]) == 3
    assert answers["drs small"] == 200


def test_cram_slices_from_the_bucket_are_byte_identical(clients, nodes, inputs):
    """htslib reads the reference FASTA by name: the S3 node copies it (with its
    .fai) from the bucket once, under NODE_DIR/cache."""
    slices = []
    for name in ("local", "s3"):
        client = clients[name]
        identifier = next(
            stored.id
            for stored in client.app.state.transfer.objects("cram", role="alignments")
            if stored.name.endswith(".cram")
        )
        ticket = client.get(
            f"/htsget/reads/{urllib.parse.quote(identifier, safe='')}",
            params={"referenceName": "1", "start": 10_000, "end": 60_000},
            headers=_bearer(client),
        )
        assert ticket.status_code == 200, ticket.text
        slices.append(_follow(client, ticket.json()))
    # A BAM by default: the CRAM's records decoded against the reference.
    assert slices[0] == slices[1] and slices[0][:4] == b"\x1f\x8b\x08\x04"
    assert len(slices[0]) > 1000
    remote = nodes["s3"]
    assert not (remote.datasets_dir / "cram").exists()
    (cached,) = remote.cache_dir.rglob("reference.fa")
    assert cached.read_bytes() == inputs["fasta"].read_bytes()
    assert cached.with_name("reference.fa.fai").is_file()


def test_unpublish_then_publish_on_the_bucket(clients, nodes):
    before = _same_answers(clients)
    stored = _keys(nodes["s3"], "small")
    lifecycle.unpublish(nodes["local"], "small", actor=OPERATOR)
    _datasets_command(nodes, "unpublish", "small")
    hidden = _same_answers(clients)
    assert [item["id"] for item in hidden["datasets"]] == ["cram", "smaller"]
    assert hidden["htsget small"][0] == 404 and hidden["drs small"] == 404
    # The data stay: the database row is the switch.
    assert _keys(nodes["s3"], "small") == stored

    lifecycle.publish(nodes["local"], "small", actor=OPERATOR)
    _datasets_command(nodes, "publish", "small")
    assert _same_answers(clients) == before


def test_publish_refuses_when_the_manifest_is_gone_from_the_bucket(nodes, s3):
    remote = nodes["s3"]
    lifecycle.unpublish(remote, "smaller", actor=OPERATOR)
    (manifest,) = [
        key for key in _keys(remote, "smaller") if key.endswith("/dataset.json")
    ]
    saved = remote.objects.read(manifest)
    client = boto3.client("s3", endpoint_url=s3.endpoint, region_name="us-east-1")
    client.delete_object(Bucket=BUCKET, Key=f"lifecycle/{manifest}")
    try:
        with pytest.raises(StoreError, match=f"s3://{BUCKET}/lifecycle/{manifest}"):
            lifecycle.publish(remote, "smaller", actor=OPERATOR)
    finally:
        remote.objects.write(manifest, saved)
    lifecycle.publish(remote, "smaller", actor=OPERATOR)
    assert "smaller" in [row.id for row in remote.published()]


def test_set_access_on_the_bucket(clients, nodes):
    access_change.set_access(
        nodes["local"],
        "small",
        actor=OPERATOR,
        security_level="PUBLIC",
        beacon={"anonymous": "count"},
        force=True,
    )
    _datasets_command(
        nodes,
        "set-access",
        "small",
        "--security-level",
        "PUBLIC",
        "--beacon",
        "anonymous=count",
        "--force",
    )
    answers = _same_answers(clients)
    summary, _ = answers["beacon anonymous"]
    assert summary["numTotalResults"] > 0


def test_remove_deletes_every_object_of_the_dataset_and_no_other(clients, nodes):
    remote = nodes["s3"]
    others = {dataset_id: _keys(remote, dataset_id) for dataset_id in DATASETS[1:]}
    assert _keys(remote, "small") and all(others.values())
    store_json = remote.objects.read("store.json")

    removal.remove(nodes["local"], "small", actor=OPERATOR, force=True)
    _datasets_command(nodes, "remove", "small", "--force", "--yes")

    assert _keys(remote, "small") == {}
    assert not any(
        key.startswith("datasets/small/") for key in remote.objects.listing("datasets")
    )
    assert {dataset_id: _keys(remote, dataset_id) for dataset_id in others} == others
    assert remote.objects.read("store.json") == store_json
    assert not (nodes["local"].datasets_dir / "small").exists()
    answers = _same_answers(clients)
    assert [item["id"] for item in answers["datasets"]] == ["cram", "smaller"]
    assert answers["drs smaller"] == 200


def test_removing_a_cram_dataset_drops_its_cached_reference(clients, nodes):
    remote = nodes["s3"]
    assert list((remote.cache_dir / "datasets" / "cram").rglob("reference.fa"))
    removal.remove(nodes["local"], "cram", actor=OPERATOR, force=True)
    removal.remove(remote, "cram", actor=OPERATOR, force=True)
    assert _keys(remote, "cram") == {}
    assert not (remote.cache_dir / "datasets" / "cram").exists()
    assert _keys(remote, "smaller")
    _same_answers(clients)
