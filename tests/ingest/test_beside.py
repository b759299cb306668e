"""Steps beside the conversion (ingest/pipeline.py ``BESIDE_CONVERSION``): encrypt
and metadata run in a thread of their own while explode, encode and the counts
run; an error on either side fails the ingest with nothing visible, and the side
that did not fail is stopped or waited for, never left running."""

from __future__ import annotations

import threading
import time

import pytest
from crypt4gh import sodium

from genomenode.errors import (
    ClinicalDataError,
    NotFoundError,
    Stopped,
    StoreError,
    VcfError,
)
from genomenode.ingest import ingest, originals, pipeline
from genomenode.ingest.workers import Reporter
from genomenode.store import crypt

from ..conftest import write_small_cohort


@pytest.fixture
def cohort(tmp_path):
    return write_small_cohort(tmp_path / "cohort", dataset_id="beside")


def _beside_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if "beside" in thread.name]


def _assert_nothing_visible(node) -> None:
    assert node.published() == []
    with pytest.raises(NotFoundError):
        node.dataset_manifest("beside")


def _public_key() -> bytes:
    return bytes(sodium.derive_pk(bytes(range(32))))


def test_an_encryption_asked_to_stop_leaves_nothing(tmp_path):
    source = tmp_path / "plain"
    source.write_bytes(b"x" * 100_000)
    target = tmp_path / "plain.c4gh"
    stop = threading.Event()
    stop.set()
    with pytest.raises(Stopped):
        crypt.encrypt_file(source, target, [_public_key()], stop=stop)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["plain"]


def test_a_failing_conversion_stops_the_encryption(sqlite_node, cohort, monkeypatch):
    started = threading.Event()
    stopped = []

    def encrypt_until_stopped(source, target, keys, *, stop):
        # An encryption far longer than the conversion: it ends only when the
        # failing conversion sets the run's stop event.
        started.set()
        assert stop.wait(timeout=60), "the encryption was never asked to stop"
        stopped.append(source)
        raise Stopped("stopped")

    def failing_encode(run):
        assert started.wait(timeout=60)
        raise VcfError("a record htslib cannot parse", path=cohort, line=7)

    monkeypatch.setattr(originals.crypt, "encrypt_file", encrypt_until_stopped)
    monkeypatch.setitem(pipeline._STEP_FUNCTIONS, "encode", failing_encode)
    with pytest.raises(VcfError, match="htslib cannot parse"):
        ingest(sqlite_node, cohort)
    assert stopped and _beside_threads() == []
    _assert_nothing_visible(sqlite_node)


def test_a_bad_clinical_record_stops_the_conversion(sqlite_node, cohort, monkeypatch):
    steps_run = []
    original_explode = pipeline._STEP_FUNCTIONS["explode"]

    def bad_clinical(run):
        raise ClinicalDataError("sex is not an NCIT term", path=cohort, field="sex")

    def explode(run):
        # Starts only once the clinical step has failed: its partitions must
        # then stop at the first one finished.
        assert run.stopping.wait(timeout=60)
        original_explode(run)

    def traced(step):
        original = pipeline._STEP_FUNCTIONS[step]

        def run_step(run):
            steps_run.append(step)
            original(run)

        return run_step

    monkeypatch.setitem(pipeline._STEP_FUNCTIONS, "clinical", bad_clinical)
    monkeypatch.setitem(pipeline._STEP_FUNCTIONS, "explode", explode)
    for step in ("encode", "statistics", "encrypt", "metadata"):
        monkeypatch.setitem(pipeline._STEP_FUNCTIONS, step, traced(step))
    with pytest.raises(ClinicalDataError, match="NCIT") as raised:
        ingest(sqlite_node, cohort)
    assert "nothing was published" in str(raised.value)
    assert steps_run == [] and _beside_threads() == []
    _assert_nothing_visible(sqlite_node)


def test_a_failing_encryption_fails_the_ingest_and_a_rerun_resumes(
    sqlite_node, cohort, monkeypatch
):
    def full_disk(source, target, keys, *, stop):
        raise StoreError(f"{target}: No space left on device")

    monkeypatch.setattr(originals.crypt, "encrypt_file", full_disk)
    with pytest.raises(StoreError, match="No space left"):
        ingest(sqlite_node, cohort)
    assert _beside_threads() == []
    _assert_nothing_visible(sqlite_node)
    monkeypatch.undo()
    result = ingest(sqlite_node, cohort)
    assert result.status == "published"
    assert {"validate", "clinical"} <= set(result.resumed_steps)
    assert "encrypt" not in result.resumed_steps


def test_metadata_waits_for_the_records_check(sqlite_node, cohort, monkeypatch):
    order = []
    for step in ("check_records", "metadata"):
        original = pipeline._STEP_FUNCTIONS[step]

        def traced(run, step=step, original=original):
            if step == "check_records":
                time.sleep(0.5)  # a slow check: metadata must still wait
            original(run)
            order.append(step)

        monkeypatch.setitem(pipeline._STEP_FUNCTIONS, step, traced)
    assert ingest(sqlite_node, cohort).status == "published"
    assert order == ["check_records", "metadata"]


def test_progress_bars_of_two_steps_at_once(capsys):
    reporter = Reporter(True)
    inside = threading.Barrier(2, timeout=10)
    errors = []

    def step(name):
        try:
            with reporter.step(name, 3) as advance:
                inside.wait()  # both bars live at once
                for _ in range(3):
                    advance()
                inside.wait()
        except Exception as error:  # rich's LiveError, if two displays clash
            errors.append(error)

    threads = [threading.Thread(target=step, args=(name,)) for name in "AB"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert reporter._progress is None  # the display ended with the last step
    with reporter.step("C", 1) as advance:  # and a later step opens a new one
        advance()
