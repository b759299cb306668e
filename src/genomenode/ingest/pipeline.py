"""The ingest pipeline: validate → index → convert → count → encrypt → load → publish.

Every step writes under ``store/staging/<id>/`` and records its completion in
``ingest.json``; a step is redone only if it had not finished, and each is idempotent,
so a run killed at any point (even SIGKILL) resumes with the next invocation and ends
in the same store as an uninterrupted run. Nothing is visible before ``publish``:
the dataset directory appears in ``store/datasets/`` by one rename and its database
rows by one committed UPDATE; readers require both.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import json
import logging
import pathlib
import shutil
import threading
import time
from collections.abc import Callable
from typing import Any

import zarr

from ..dataset import DatasetDescription, read_dataset_description
from ..errors import IngestError, InputError, Stopped, StoreError
from ..store.compute import dask_client
from ..store.genotypes import contig_ranges
from ..store.locks import dataset_lock
from ..store.models import (
    STATUS_PUBLISHED,
    STATUS_REMOVING,
    STATUS_STAGING,
    STATUS_UNPUBLISHED,
    Dataset,
)
from ..store.node import Node
from ..store.objects import (
    remove_interrupted_writes,
    write_json_atomic,
)
from ..store.private import private_files
from ..store.site_counts import site_fields, write_site_counts
from . import convert, vcf
from .alignments import ensure_alignment_index
from .check import check_clinical, check_inputs, read_genotypes_header
from .clinical import ClinicalRecord, read_clinical, read_records
from .metadata import load_metadata
from .originals import encrypt
from .publish import publish
from .run import IngestRun, fingerprint
from .vcz import VCZ_FORMAT, import_vcz, rechunk_sites
from .workers import Reporter, checkpoint, run_tasks, warm_cluster, worker_pool

__all__ = ["STEPS", "IngestResult", "discard", "ingest"]

logger = logging.getLogger(__name__)

STAGING_FORMAT_VERSION = 1
#: Where the reference FASTA of each CRAM lies in a dataset directory.
STEPS = (
    "validate",
    "index",
    "index_alignments",
    "explode",
    "encode",
    "check_records",
    "statistics",
    "clinical",
    "encrypt",
    "metadata",
    "publish",
)


@dataclasses.dataclass(frozen=True)
class IngestResult:
    """What an ingest did."""

    dataset_id: str
    status: str  # "published" or "unchanged"
    num_individuals: int
    num_samples: int
    num_variants: int
    seconds: float
    resumed_steps: tuple[str, ...] = ()

    def asdict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _lock(node: Node, dataset_id: str) -> contextlib.AbstractContextManager[None]:
    """Hold the dataset's lock; another ingest or change of the id waits, then fails."""
    return dataset_lock(node.staging_dir, dataset_id)


# Staging, VCF Zarr, Crypt4GH files, indexes: 0600 files, 0700 directories (worker
# processes inherit the umask).
@private_files()
def ingest(
    node: Node,
    dataset_yaml: str | pathlib.Path,
    *,
    show_progress: bool = False,
    dask_scheduler: str | None = None,
) -> IngestResult:
    """Ingest the dataset described by ``dataset_yaml`` into ``node``, or resume it.

    Partitions (explode, encode, statistics) run on the Dask cluster at
    ``dask_scheduler`` (else the node's ``dask_scheduler`` setting), or in this
    process and its worker processes when neither is set.

    Returns
    -------
    IngestResult
        ``status`` is ``"unchanged"`` when the same inputs were already published.

    Raises
    ------
    InputError
        A subclass naming the file, line and field of the first problem found;
        nothing is published.
    IngestError
        The id is already published with different content, or locked.
    """
    started = time.monotonic()
    description = read_dataset_description(dataset_yaml)
    # The workers import the conversion code while this process fingerprints
    # the inputs (each ~1 s at 20,000 Phenopackets), not after.
    with worker_pool(_early_workers(node, description.id, dask_scheduler)):
        content = fingerprint(description)
        with _lock(node, description.id):
            return _ingest_locked(
                node,
                description,
                content,
                started=started,
                show_progress=show_progress,
                dask_scheduler=dask_scheduler,
            )


def _ingest_locked(
    node: Node,
    description: DatasetDescription,
    content: str,
    *,
    started: float,
    show_progress: bool,
    dask_scheduler: str | None,
) -> IngestResult:
    """The ingest, once its inputs are fingerprinted and its lock held."""
    published = _published_row(node, description.id)
    if published is not None:
        if published.fingerprint == content:
            # A run killed after publishing may have left its staging area.
            shutil.rmtree(node.staging_dir / description.id, ignore_errors=True)
            return IngestResult(
                dataset_id=description.id,
                status="unchanged",
                num_individuals=published.num_individuals,
                num_samples=published.num_samples,
                num_variants=published.num_variants,
                seconds=time.monotonic() - started,
            )
        raise IngestError(
            f"dataset {description.id!r} is already published with different "
            "content; give the new version another id (e.g. "
            f"{description.id}-v2) or remove the published one first "
            "(`genomenode datasets remove`); to change only its security level, "
            "Beacon granularities or DUO terms, use `genomenode datasets "
            "set-access`"
        )
    run = _open_run(node, description, content, show_progress)
    resumed = tuple(step for step in STEPS if run.done(step))
    if resumed:
        logger.info(
            "resuming ingest of %s after: %s", description.id, ", ".join(resumed)
        )
    with (
        dask_client(node.config, dask_scheduler) as cluster,
        worker_pool(0 if cluster is not None else _local_workers(run)),
    ):
        if cluster is not None:
            run.cluster = cluster
            warm_cluster(cluster)
            run.reporter.note(f"Dask dashboard: {cluster.dashboard_link}")
            logger.info("ingest partitions run on %s", cluster.scheduler.address)
        _run_steps(run)
    shutil.rmtree(run.work)
    summary = run.state["done"]["metadata"]
    return IngestResult(
        dataset_id=description.id,
        status="published",
        num_individuals=summary["num_individuals"],
        num_samples=summary["num_samples"],
        num_variants=summary["num_variants"],
        seconds=time.monotonic() - started,
        resumed_steps=resumed,
    )


#: Steps run in a thread of their own, in this order, while the conversion's
#: partitions (explode to statistics) keep the workers busy and this process
#: idle. Reading the clinical records (their Phenopackets' tasks queue with the
#: partitions in the same workers) and encrypting the originals need only the
#: validated inputs; loading the metadata waits for the records check
#: (:func:`_metadata`). Run in turn they were ~12 s of a 35 s ingest of 20,000
#: samples, with one core idle for most of it (docs/benchmarks.md).
BESIDE_CONVERSION = ("clinical", "encrypt", "metadata")
_CONVERSION = ("explode", "encode", "check_records", "statistics")


def _run_steps(run: IngestRun) -> None:
    """Every step not done: in order, except those beside the conversion."""
    conversion = [step for step in STEPS if step in _CONVERSION]
    before = STEPS[: STEPS.index(conversion[0])]
    after = [step for step in STEPS[len(before) :] if step not in _CONVERSION]
    beside = [step for step in after if step in BESIDE_CONVERSION]
    for step in before:
        if not run.done(step):
            _run_step(run, step)
    with _Beside(run, [step for step in beside if not run.done(step)]):
        for step in conversion:
            if not run.done(step):
                run.check_stopping()
                _run_step(run, step)
    for step in after:
        if step not in beside and not run.done(step):
            _run_step(run, step)


class _Beside(contextlib.AbstractContextManager["_Beside"]):
    """Runs ``steps`` in order in a thread while the ``with`` block runs; on
    leaving it, waits for them. Whichever side fails first sets
    :attr:`IngestRun.stopping`: the other stops at its next partition or
    block (raising Stopped), and the first error is the one raised."""

    def __init__(self, run: IngestRun, steps: list[str]) -> None:
        self.run = run
        self.steps = steps
        self.error: BaseException | None = None
        # In this thread's context: the worker pool is a context variable.
        context = contextvars.copy_context()
        self.thread = threading.Thread(
            target=context.run,
            args=(self._work,),
            name=f"ingest {run.description.id}: beside",
        )

    def _work(self) -> None:
        try:
            for step in self.steps:
                _run_step(self.run, step)
        except BaseException as error:  # handed to the main thread
            self.error = error
            self.run.stopping.set()

    def __enter__(self) -> _Beside:
        if self.steps:
            self.thread.start()
        return self

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> None:
        if not self.steps:
            return
        if value is not None:
            self.run.stopping.set()
        self.thread.join()
        error = self.error
        if value is None or isinstance(value, Stopped):
            if error is not None:
                raise error
            return
        if error is not None and not isinstance(error, Stopped):
            logger.warning("%s also failed: %s", ", ".join(self.steps), error)


def _early_workers(node: Node, dataset_id: str, dask_scheduler: str | None) -> int:
    """Worker processes to start before the inputs are fingerprinted: none when
    partitions run on a Dask cluster or the id is published (the ingest most
    likely ends as unchanged, or refused)."""
    if dask_scheduler or node.config.dask_scheduler:
        return 0
    if _published_row_or_none(node, dataset_id) is not None:
        return 0
    return int(node.config.worker_processes)


def _local_workers(run: IngestRun) -> int:
    """Worker processes to start for this run: none if its partitioned steps
    are done (a resumed run past them)."""
    if all(run.done(step) for step in ("clinical", "explode", "encode", "statistics")):
        return 0
    return int(run.node.config.worker_processes)


def _run_step(run: IngestRun, step: str) -> None:
    step_started = time.monotonic()
    try:
        _STEP_FUNCTIONS[step](run)
    except InputError as error:
        error.message += _after_bad_input(run)
        raise
    logger.info(
        "%s: %s done in %.1f s",
        run.description.id,
        step,
        time.monotonic() - step_started,
    )


def discard(node: Node, dataset_id: str) -> bool:
    """Remove the staging area and staging rows of an unpublished ingest.

    Returns whether there was anything to discard. A published or unpublished
    dataset is not touched (``genomenode datasets remove`` deletes those).
    """
    with _lock(node, dataset_id):
        found = False
        work = node.staging_dir / dataset_id
        if work.exists():
            if node.remote:
                _discard_uploaded(node, dataset_id, work / "ingest.json")
            shutil.rmtree(work)
            found = True
        with node.session() as session, session.begin():
            row = session.get(Dataset, dataset_id)
            if row is not None and row.status == STATUS_STAGING:
                session.delete(row)
                found = True
        return found


def _discard_uploaded(node: Node, dataset_id: str, state_path: pathlib.Path) -> None:
    """Delete what a killed upload left in the object store (never a published
    content: that one has its row and is not staged)."""
    try:
        fingerprint = json.loads(state_path.read_text())["fingerprint"]
    except (OSError, ValueError, KeyError):
        return
    published = _published_row_or_none(node, dataset_id)
    if published is not None and published.fingerprint == fingerprint:
        return
    node.objects.delete_prefix(node.dataset_prefix(dataset_id, fingerprint))


def _published_row_or_none(node: Node, dataset_id: str) -> Dataset | None:
    with node.session() as session:
        row = session.get(Dataset, dataset_id)
    return row if row is not None and row.status != STATUS_STAGING else None


def _after_bad_input(run: IngestRun) -> str:
    """What an operator can do once a step stopped on bad input. True to the
    store: a fixed input changes the fingerprint, so the next run starts over."""
    advice = " — nothing was published. Fix the input and run the same command again"
    done = [step for step in STEPS if run.done(step)]
    if not done:
        return advice + "."
    node_dir, dataset_id = run.node.config.node_dir, run.description.id
    return (
        f"{advice}. The steps done so far ({', '.join(done)}) wait in {run.work}; "
        f"`genomenode discard --node {node_dir} {dataset_id}` removes them if you "
        "abandon this dataset."
    )


def _published_row(node: Node, dataset_id: str) -> Dataset | None:
    with node.session() as session:
        row = session.get(Dataset, dataset_id)
    if row is not None and row.status == STATUS_UNPUBLISHED:
        raise IngestError(
            f"dataset {dataset_id!r} is unpublished; publish it again "
            "(`genomenode datasets publish`) or remove it (`genomenode datasets "
            "remove`) before ingesting new content under its id"
        )
    if row is not None and row.status == STATUS_REMOVING:
        raise IngestError(
            f"the removal of dataset {dataset_id!r} did not finish; run "
            "`genomenode datasets remove` again"
        )
    if row is None or row.status != STATUS_PUBLISHED:
        return None
    if not node.has_manifest(dataset_id, row.fingerprint):
        where = f"{node.objects.url}/{node.dataset_prefix(dataset_id, row.fingerprint)}"
        raise StoreError(
            f"dataset {dataset_id!r} is published in the database but its directory "
            f"{where} is missing"
        )
    return row


def _open_run(
    node: Node, description: DatasetDescription, content: str, show_progress: bool
) -> IngestRun:
    work = node.staging_dir / description.id
    settings = {
        "variants_chunk_size": node.config.variants_chunk_size,
        "samples_chunk_size": node.config.samples_chunk_size,
    }
    state_path = work / "ingest.json"
    if state_path.exists():
        state = json.loads(state_path.read_text())
        same = (
            state.get("format_version") == STAGING_FORMAT_VERSION
            and state.get("fingerprint") == content
            and state.get("settings") == settings
        )
        if same:
            # The killed run may have died between a write and its rename.
            for path in remove_interrupted_writes(work):
                logger.info("removed %s, left by the interrupted run", path)
            return IngestRun(node, description, work, state, Reporter(show_progress))
        logger.warning(
            "inputs or settings changed since the interrupted ingest of %s; "
            "starting it again",
            description.id,
        )
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    state = {
        "format_version": STAGING_FORMAT_VERSION,
        "dataset_id": description.id,
        "fingerprint": content,
        "settings": settings,
        "done": {},
    }
    write_json_atomic(state_path, state)
    return IngestRun(node, description, work, state, Reporter(show_progress))


#: The clinical records as the clinical step read them (staging, plaintext).
CLINICAL_RECORDS = "clinical-records.jsonl"


def _read_records(run: IngestRun) -> list[ClinicalRecord]:
    if run.description.clinical is None:
        return []
    if run.clinical_records is not None:
        return run.clinical_records
    # The inputs are those validated (the fingerprint is checked on resume):
    # their records are loaded as the clinical step kept them, not parsed again.
    kept = run.work / CLINICAL_RECORDS
    if kept.exists():
        return list(read_records(kept))
    return list(read_clinical(run.description.clinical))


def _validate(run: IngestRun) -> None:
    # The clinical records are read beside the conversion (_clinical).
    checked = check_inputs(run.description, clinical=False)
    run.finish("validate", checked.staging_state())


def _clinical(run: IngestRun) -> None:
    def map_chunks(function: Callable[..., Any], arguments: list[tuple]) -> list:
        # The worker processes (or the cluster) the partitioned steps use:
        # the Phenopackets' tasks queue with the conversion's partitions.
        return run_tasks(
            function,
            arguments,
            worker_processes=run.node.config.worker_processes,
            advance=run.check_stopping,
            cluster=run.cluster,
        )

    # Kept for the metadata step after it in the same thread: reading them
    # back from the file cost ~1.7 s of CPU at 20,000 records.
    records: list[ClinicalRecord] = []
    check_clinical(
        run.description,
        read_genotypes_header(run.description),
        keep_records=run.work / CLINICAL_RECORDS,
        map_chunks=map_chunks,
        collect=records,
    )
    run.clinical_records = records
    run.finish("clinical")


def _header(run: IngestRun) -> vcf.VcfHeader:
    validated = run.state["done"]["validate"]
    return vcf.VcfHeader(
        path=run.description.genotypes[0],
        num_header_lines=validated["num_header_lines"],
        contigs=tuple(validated["contigs"]),
        samples=(),
        info_number_g=tuple(validated["info_number_g"]),
        file_format=validated.get("file_format", "VCF"),
        info_fields=tuple(validated.get("info_fields", ())),
    )


# Bytes of genotypes bio2zarr's encode may buffer per array: it holds one chunk of
# variants for *all* samples (call_genotype, call_genotype_phased, then the mask),
# so the chunk length is what keeps ingest memory independent of the cohort size.
# The direct call writer (ingest/calls.py) holds one chunk of every call array of
# its partition at once (~7 bytes a call with GT:DP:GQ, not 3): more per worker,
# still bounded by this chunk length, not by the number of samples.
_ENCODE_BUFFER_BYTES = 64 * 2**20
# Chunk lengths are rounded to this, so the by-variant copy, whose chunks divide
# them, finds a divisor near its longest chunk (50 of 64 variants up to 10,000
# samples, 5 of 6 at 100,000: store/genotypes.by_variant_chunk_length).
_CHUNK_STEP = 100


def _variants_chunk_size(run: IngestRun) -> int:
    """The ``variants_chunk_size`` setting, lowered for large cohorts so that one
    chunk of variants for all samples stays under ``_ENCODE_BUFFER_BYTES``
    (bounded memory: docs/scale.md). 2,000 samples keep 10,000 variants a chunk;
    8,000 get 2,700; 100,000 get 200."""
    configured = int(run.node.config.variants_chunk_size)
    num_samples = int(run.state["done"]["validate"]["num_samples"])
    if num_samples == 0:
        return configured
    # Diploid int8 calls plus one phased flag per sample and variant.
    fitting = _ENCODE_BUFFER_BYTES // (num_samples * 3) // _CHUNK_STEP * _CHUNK_STEP
    return min(configured, max(_CHUNK_STEP, fitting))


def _vcz_input(run: IngestRun) -> bool:
    """The genotypes are a VCF Zarr: no index, no explode; encode copies it."""
    return run.state["done"]["validate"].get("file_format") == VCZ_FORMAT


def _index(run: IngestRun) -> None:
    if _vcz_input(run):
        run.finish("index", str(run.description.genotypes[0]))
        return
    indexed = vcf.ensure_index(
        run.description.genotypes[0],
        run.work,
        run.state["done"]["validate"]["num_samples"],
    )
    vcf.check_index_contigs(_header(run), indexed)
    run.finish("index", str(indexed))


def _index_alignments(run: IngestRun) -> None:
    indexes = []
    for number, alignment in enumerate(run.description.alignments):
        index, made = ensure_alignment_index(
            alignment, number, run.work / "alignments" / f"{number:04d}"
        )
        indexes.append({"index": str(index), "made_by_node": made})
    run.finish("index_alignments", indexes)


def _explode(run: IngestRun) -> None:
    source = run.description.genotypes[0]
    if _vcz_input(run):
        run.finish("explode")
        return
    try:
        convert.explode(
            pathlib.Path(run.state["done"]["index"]),
            run.work / "icf",
            source=source,
            worker_processes=run.node.config.worker_processes,
            reporter=run.reporter,
            cluster=run.cluster,
        )
    except vcf.VcfError:
        # The converter's message rarely says where; find the line if we can.
        vcf.find_record_error(source, run.state["done"]["validate"]["num_samples"])
        raise
    run.finish("explode")


def _encode(run: IngestRun) -> None:
    run.publish_dir.mkdir(exist_ok=True)
    if _vcz_input(run):
        import_vcz(
            run.description.genotypes[0],
            run.vcz,
            variants_chunk_size=_variants_chunk_size(run),
            samples_chunk_size=run.node.config.samples_chunk_size,
            sites_chunk_size=int(run.node.config.variants_chunk_size),
            reporter=run.reporter,
        )
        run.finish("encode")
        return
    convert.encode(
        run.description.genotypes[0],
        run.work / "icf",
        run.vcz,
        variants_chunk_size=_variants_chunk_size(run),
        samples_chunk_size=run.node.config.samples_chunk_size,
        drop_info_fields=_header(run).info_number_g,
        worker_processes=run.node.config.worker_processes,
        reporter=run.reporter,
        sites_only=run.sites_only,
        cluster=run.cluster,
    )
    run.finish("encode")
    # The intermediate format is large and no longer needed.
    shutil.rmtree(run.work / "icf", ignore_errors=True)


def _open_vcz(path: pathlib.Path) -> Any:
    # zarr's types are exact per access; the pipeline reads them as plain arrays.
    return zarr.open_group(path, mode="r")


def _check_records(run: IngestRun) -> None:
    root = _open_vcz(run.vcz)
    if not run.sites_only and root["call_genotype"].shape[2] > 2:
        raise vcf.VcfError(
            f"ploidy {root['call_genotype'].shape[2]} is not supported (1 or 2)",
            path=run.description.genotypes[0],
            field="GT",
        )
    vcf.check_records(
        _header(run),
        [str(contig) for contig in root["contig_id"][:]],
        root["variant_contig"][:],
        root["variant_position"][:],
        root["variant_allele"][:],
    )
    run.finish(
        "check_records", {"num_variants": int(root["variant_position"].shape[0])}
    )


def _statistics(run: IngestRun) -> None:
    if run.sites_only:
        fields = site_fields(_header(run).info_fields)
        write_site_counts(run.vcz, fields)
        run.finish(
            "statistics",
            {"contigs": contig_ranges(run.vcz), "populations": fields.populations},
        )
        return
    # Per-variant arrays in the node's chunks, not the calls' (shorter for a
    # large cohort); the statistics arrays then follow variant_position's.
    rechunk_sites(run.vcz, int(run.node.config.variants_chunk_size))
    convert.statistics(
        run.vcz,
        num_variants=run.state["done"]["check_records"]["num_variants"],
        variants_chunk_size=_variants_chunk_size(run),
        worker_processes=run.node.config.worker_processes,
        reporter=run.reporter,
        cluster=run.cluster,
    )
    run.finish("statistics", {"contigs": contig_ranges(run.vcz)})


def _metadata(run: IngestRun) -> None:
    records = _read_records(run)
    # Beside the conversion: the store's samples and variants once checked.
    run.wait_for("check_records")
    root = _open_vcz(run.vcz)
    samples = [str(sample) for sample in root["sample_id"][:]]
    num_variants = run.state["done"]["check_records"]["num_variants"]
    files = [
        run.state["done"]["encrypt_files"][name]
        for name in run.state["done"]["encrypt"]
    ]
    with run.node.session() as session:
        num_individuals = load_metadata(
            session,
            run.description,
            fingerprint=run.state["fingerprint"],
            records=records,
            samples=samples,
            num_variants=num_variants,
            files=files,
            before_commit=lambda: checkpoint("metadata:before-commit"),
        )
    run.finish(
        "metadata",
        {
            "num_individuals": num_individuals,
            "num_samples": len(samples),
            "num_variants": num_variants,
        },
    )


_STEP_FUNCTIONS = {
    "validate": _validate,
    "clinical": _clinical,
    "index": _index,
    "index_alignments": _index_alignments,
    "explode": _explode,
    "encode": _encode,
    "check_records": _check_records,
    "statistics": _statistics,
    "encrypt": encrypt,
    "metadata": _metadata,
    "publish": publish,
}
