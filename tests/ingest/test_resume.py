"""SIGKILL the ingest anywhere: nothing is visible, and a rerun ends identical."""

from __future__ import annotations

import os
import pathlib
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import zarr
from sqlalchemy import select

from genomenode.errors import NotFoundError
from genomenode.ingest import ingest
from genomenode.store import models
from genomenode.store.node import init_node, open_node

from ..conftest import write_small_cohort

CHECKPOINTS = [
    "after:validate",
    "after:clinical",
    "after:index",
    "explode:partition",
    "after:explode",
    "encode:partition",
    "encode:finalise-array",  # some arrays in place, others not (was a crash)
    "after:encode",
    "after:check_records",
    "after:statistics",
    "encrypt:file",
    "after:encrypt",
    "metadata:before-commit",
    "after:metadata",
    "publish:moved",
    "after:publish",
]


def _run_ingest(node_dir, dataset_yaml, *, kill_at=None, workers="0"):
    environment = dict(os.environ, GENOMENODE_WORKER_PROCESSES=workers)
    environment.pop("GENOMENODE_TEST_KILL_AT", None)
    if kill_at:
        environment["GENOMENODE_TEST_KILL_AT"] = kill_at
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "genomenode",
            "ingest",
            "--node",
            str(node_dir),
            str(dataset_yaml),
        ],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _snapshot(node_dir: pathlib.Path, dataset_id: str) -> dict:
    """Everything a user of the dataset can see, minus timestamps and ciphertext."""
    with open_node(node_dir) as node:
        return _snapshot_of(node, dataset_id)


def _snapshot_of(node, dataset_id: str) -> dict:
    manifest = node.dataset_manifest(dataset_id)
    root = zarr.open_group(node.datasets_dir / dataset_id / "genotypes.vcz", mode="r")
    arrays = {name: root[name][:] for name in sorted(root.array_keys())}
    files = sorted(
        (file["stored_path"], file["role"], file["sha256_plain"], file["size_plain"])
        for file in manifest["files"]
    )
    tables = {}
    with node.session() as session:
        for model in (
            models.Individual,
            models.Biosample,
            models.PhenotypicFeature,
            models.Disease,
            models.Measure,
            models.DataUseTerm,
        ):
            rows = session.scalars(select(model)).all()
            tables[model.__tablename__] = sorted(
                tuple(
                    (column, getattr(row, column))
                    for column in sorted(model.__table__.columns.keys())
                    if column != "id" or model in (models.Individual, models.Biosample)
                )
                for row in rows
            )
        dataset = session.get(models.Dataset, dataset_id)
        tables["datasets"] = (
            dataset.status,
            dataset.fingerprint,
            dataset.num_individuals,
            dataset.num_samples,
            dataset.num_variants,
        )
    listing = sorted(
        str(path.relative_to(node.datasets_dir))
        for path in node.datasets_dir.rglob("*")
        if "files" not in path.parts  # encrypted names are the same; bytes differ
    )
    manifest_stable = {
        k: v for k, v in manifest.items() if k not in ("published", "files")
    }
    return {
        "arrays": arrays,
        "files": files,
        "tables": tables,
        "listing": listing,
        "manifest": manifest_stable,
    }


def _assert_same(snapshot, reference):
    assert snapshot["arrays"].keys() == reference["arrays"].keys()
    for name, values in reference["arrays"].items():
        np.testing.assert_array_equal(snapshot["arrays"][name], values, err_msg=name)
    for key in ("files", "tables", "listing", "manifest"):
        assert snapshot[key] == reference[key], key


def _assert_nothing_visible(node_dir, dataset_id):
    with open_node(node_dir) as node:
        assert node.published() == []
        with pytest.raises(NotFoundError):
            node.dataset_manifest(dataset_id)
    listed = subprocess.run(
        [
            sys.executable,
            "-m",
            "genomenode",
            "datasets",
            "--node",
            str(node_dir),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert listed.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cohort")
    return write_small_cohort(directory, dataset_id="resume")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cohort):
    node_dir = tmp_path_factory.mktemp("reference") / "node"
    os.environ["GENOMENODE_WORKER_PROCESSES"] = "0"
    try:
        with init_node(node_dir, node_id="ref", country="FI") as node:
            ingest(node, cohort)
    finally:
        del os.environ["GENOMENODE_WORKER_PROCESSES"]
    return _snapshot(node_dir, "resume")


@pytest.mark.parametrize("checkpoint", CHECKPOINTS)
def test_killed_at_checkpoint_resumes_identically(
    tmp_path, cohort, reference, checkpoint
):
    node_dir = tmp_path / "node"
    init_node(node_dir, node_id="n", country="FI").close()
    killed = _run_ingest(node_dir, cohort, kill_at=checkpoint)
    killed.communicate(timeout=120)
    assert killed.returncode == -signal.SIGKILL, checkpoint
    if checkpoint != "after:publish":
        _assert_nothing_visible(node_dir, "resume")
    with open_node(node_dir) as node:
        resumed = ingest(node, cohort)
        expected = "unchanged" if checkpoint == "after:publish" else "published"
        assert resumed.status == expected
        _assert_same(_snapshot_of(node, "resume"), reference)
        assert not (node.staging_dir / "resume").exists()


def test_temporary_files_of_a_killed_write_are_not_published(
    tmp_path, cohort, reference
):
    """A SIGKILL between zarr's write of ``<name>.<uuid>.partial`` and its rename
    leaves that file in the staged VCF Zarr; the resumed run must not publish it
    (zarr would list it as a key, sealing and uploads would carry it)."""
    node_dir = tmp_path / "node"
    init_node(node_dir, node_id="n", country="FI").close()
    killed = _run_ingest(node_dir, cohort, kill_at="after:encode")
    killed.communicate(timeout=120)
    assert killed.returncode == -signal.SIGKILL
    with open_node(node_dir) as node:
        vcz = node.staging_dir / "resume" / "publish" / "genotypes.vcz"
    assert vcz.is_dir()
    planted = [
        vcz / f".zattrs.{'a' * 32}.partial",
        vcz / "call_genotype" / f"0.{'b' * 32}.partial",
        vcz.parent / "genes.tsv.part",
    ]
    for path in planted:
        path.write_bytes(b"half-written")
    with open_node(node_dir) as node:
        assert ingest(node, cohort).status == "published"
        _assert_same(_snapshot_of(node, "resume"), reference)
    stray = [
        path
        for path in node_dir.rglob("*")
        if path.name.endswith((".partial", ".part"))
    ]
    assert stray == []


@pytest.mark.parametrize("cut", ["summaries", "metadata"])
def test_an_explode_summary_cut_short_is_redone(tmp_path, cohort, reference, cut):
    """bio2zarr writes explode's partition summaries and ``explode_init``'s
    ``wip/metadata.json`` in place: a SIGKILL in that write leaves an empty file,
    which must not count as done (the second: a kill from the encrypt thread
    while explode was initialising, under pytest-xdist)."""
    node_dir = tmp_path / "node"
    init_node(node_dir, node_id="n", country="FI").close()
    killed = _run_ingest(node_dir, cohort, kill_at="explode:partition")
    killed.communicate(timeout=120)
    assert killed.returncode == -signal.SIGKILL
    with open_node(node_dir) as node:
        wip = node.staging_dir / "resume" / "icf" / "wip"
    summaries = sorted(wip.glob("p*.json"))
    assert summaries and (wip / "metadata.json").exists()
    for summary in summaries if cut == "summaries" else [wip / "metadata.json"]:
        summary.write_text("")
    with open_node(node_dir) as node:
        assert ingest(node, cohort).status == "published"
        _assert_same(_snapshot_of(node, "resume"), reference)


def _children(pid: int) -> set[int]:
    children: set[int] = set()
    for task in pathlib.Path(f"/proc/{pid}/task").glob("*"):
        try:
            text = (task / "children").read_text()
        except OSError:
            continue
        children.update(int(child) for child in text.split())
    return children


def _alive(pid: int) -> bool:
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_killed_at_random_times_with_workers(tmp_path, cohort, reference):
    """Real kills at arbitrary moments, with worker processes that must die too."""
    # Kill times are drawn within how long a whole ingest takes on this machine
    # (a fixed window would let a fast machine finish before the first kill).
    timing_dir = tmp_path / "timing"
    init_node(timing_dir, node_id="n", country="FI").close()
    started = time.monotonic()
    timed = _run_ingest(timing_dir, cohort, workers="2")
    _, errors = timed.communicate(timeout=300)
    assert timed.returncode == 0, errors
    duration = time.monotonic() - started
    node_dir = tmp_path / "node"
    init_node(node_dir, node_id="n", country="FI").close()
    generator = random.Random(20261128)
    kills = 0
    for _attempt in range(4):
        process = _run_ingest(node_dir, cohort, workers="2")
        deadline = time.monotonic() + generator.uniform(0.15, 0.85) * duration
        workers: set[int] = set()
        while time.monotonic() < deadline and process.poll() is None:
            workers |= _children(process.pid)
            time.sleep(0.05)
        if process.poll() is not None:
            process.communicate()
            break
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
        kills += 1
        time.sleep(0.5)
        orphans = [pid for pid in workers if _alive(pid)]
        assert orphans == [], "worker processes outlived the killed ingest"
        with open_node(node_dir) as node:
            published = bool(node.published())
        if published:
            # On a fast machine the kill can land after the publish commit: then
            # the whole dataset must be there, never a part of it.
            _assert_same(_snapshot(node_dir, "resume"), reference)
            break
        _assert_nothing_visible(node_dir, "resume")
    assert kills >= 1
    result = _run_ingest(node_dir, cohort, workers="2")
    _, errors = result.communicate(timeout=300)
    assert result.returncode == 0, errors
    _assert_same(_snapshot(node_dir, "resume"), reference)


def test_discard_removes_an_interrupted_ingest(tmp_path, cohort):
    node_dir = tmp_path / "node"
    init_node(node_dir, node_id="n", country="FI").close()
    killed = _run_ingest(node_dir, cohort, kill_at="after:metadata")
    killed.communicate(timeout=120)

    def discard():
        command = [sys.executable, "-m", "genomenode", "discard", "resume"]
        finished = subprocess.run(
            [*command, "--json", "--node", str(node_dir)],
            capture_output=True,
            text=True,
        )
        assert finished.returncode == 0, finished.stderr
        return finished.stdout

    assert '"discarded": true' in discard()
    with open_node(node_dir) as node:
        assert not (node.staging_dir / "resume").exists()
        with node.session() as session:
            assert session.get(models.Dataset, "resume") is None
        assert ingest(node, cohort).status == "published"
    # A published dataset is not an interrupted ingest: discard leaves it alone.
    assert '"discarded": false' in discard()
    with open_node(node_dir) as node:
        assert [row.id for row in node.published()] == ["resume"]
