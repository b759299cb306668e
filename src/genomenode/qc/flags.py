"""QC results stored with the dataset, and the flags other code reads.

A QC run writes ``<storage>/datasets/<id>/qc/`` (docs/store-format.md):

``qc.json``
    ``format_version`` 1 (one line of JSON): when, by which genomenode,
    with which thresholds, the dataset's fingerprint, the summary and
    declaration, and per sample its metrics, sex check, principal components
    and reasons to fail; the related pairs and the kinship histogram.
``summary.json``
    The same without anything about individual samples (what the catalogue
    and other aggregate views read).
``variants.npz``
    Per variant row (the dataset's VCF Zarr order): ``reasons`` (bits of
    :data:`~genomenode.qc.variants.VARIANT_REASONS`), call rate, HWE p per
    population, InbreedingCoeff, raw and high-quality ALT counts.

The directory is replaced whole by one rename, so readers see the old results or
the new, never a mixture. A node whose datasets are in an object store, or
sealed (``encrypt_at_rest``), keeps the same three files as objects of its
storage instead, under ``<dataset prefix>/qc/<version>/`` and published by
writing ``qc/current.json`` last, sealed on a sealed node
(:mod:`genomenode.store.derived`): per-sample metrics are personal data.

Nothing is deleted from the dataset: failing samples and variants are flagged,
and :func:`load_flags` is how the reference and the analyses learn which.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pathlib
import shutil
from typing import Any

import numpy as np

from ..errors import StoreError
from ..store.derived import current_objects, publish_objects, writes_objects
from ..store.node import Node, parse_versioned_json
from ..store.objects import write_json_atomic
from ..store.private import private_files

__all__ = [
    "QC_DIRECTORY",
    "QC_FORMAT_VERSION",
    "QcFlags",
    "load_flags",
    "load_report",
    "load_summary",
    "load_variant_arrays",
    "qc_directory",
    "results_version",
    "store_results",
    "summary_of",
    "write_results",
]

QC_FORMAT_VERSION = 1
QC_DIRECTORY = "qc"


@dataclasses.dataclass(frozen=True)
class QcFlags:
    """Which samples and variants passed QC.

    Attributes
    ----------
    sample_pass
        bool, one per sample, in the dataset's VCF Zarr sample order.
    variant_pass
        bool, one per variant row of the dataset's VCF Zarr.
    sample_reasons
        Per sample, why it fails (empty: it passes).
    variant_reasons
        uint8 bit set per variant row over
        :data:`~genomenode.qc.variants.VARIANT_REASONS`.
    thresholds
        The ``qc_*`` settings the run used.
    created
        When the run finished (ISO 8601, UTC).
    """

    sample_pass: np.ndarray
    variant_pass: np.ndarray
    sample_reasons: tuple[tuple[str, ...], ...] = ()
    variant_reasons: np.ndarray = dataclasses.field(
        default_factory=lambda: np.empty(0, dtype=np.uint8)
    )
    thresholds: dict[str, Any] = dataclasses.field(default_factory=dict)
    created: str = ""


def qc_directory(node: Node, dataset_id: str) -> pathlib.Path:
    """Where a dataset's QC results are (whether or not QC ran)."""
    return node.datasets_dir / dataset_id / QC_DIRECTORY


def write_results(
    directory: pathlib.Path, report: dict[str, Any], variants: dict[str, np.ndarray]
) -> None:
    """Replace ``directory`` by a new one holding ``report`` and ``variants``."""
    partial = directory.with_name(directory.name + ".part")
    shutil.rmtree(partial, ignore_errors=True)
    directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial.mkdir(mode=0o700)
    with open(partial / "variants.npz", "wb") as out:
        np.savez_compressed(out, **variants)  # type: ignore[arg-type]
        out.flush()
        os.fsync(out.fileno())
    with open(partial / "qc.json", "wb") as out:
        out.write(_report_bytes(report))
        out.flush()
        os.fsync(out.fileno())
    write_json_atomic(partial / "summary.json", summary_of(report))
    previous = directory.with_name(directory.name + ".old")
    shutil.rmtree(previous, ignore_errors=True)
    if directory.exists():
        os.replace(directory, previous)
    os.replace(partial, directory)
    shutil.rmtree(previous, ignore_errors=True)


def _report_bytes(report: dict[str, Any]) -> bytes:
    # One line of JSON: the C encoder (indented JSON goes through Python's, which
    # took longer than measuring the samples did).
    return (json.dumps(report, sort_keys=True, separators=(",", ":")) + "\n").encode()


def store_results(
    node: Node,
    dataset_id: str,
    fingerprint: str,
    report: dict[str, Any],
    variants: dict[str, np.ndarray],
) -> str:
    """Publish a QC run's results where the node keeps them; returns where.

    A plain local node: the ``qc/`` directory, replaced by one rename
    (:func:`write_results`). An object store or a sealed node: objects, sealed
    on a sealed node, made current by one small object
    (:func:`genomenode.store.derived.publish_objects`).
    """
    if not writes_objects(node):
        directory = qc_directory(node, dataset_id)
        write_results(directory, report, variants)
        return str(directory)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **variants)  # type: ignore[arg-type]
    summary = json.dumps(summary_of(report), indent=2, sort_keys=True) + "\n"
    content = {
        "variants.npz": buffer.getvalue(),
        "qc.json": _report_bytes(report),
        "summary.json": summary.encode(),
    }
    # Owner-only files and directories on a local (sealed) store, as ever.
    with private_files():
        return publish_objects(node, dataset_id, fingerprint, QC_DIRECTORY, content)


def _read_result(
    node: Node, dataset_id: str, fingerprint: str, name: str
) -> tuple[bytes | None, str]:
    """One file of a dataset's QC results (None: QC never ran), and where."""
    objects = current_objects(node, dataset_id, fingerprint, QC_DIRECTORY)
    if objects is not None:
        where = f"{objects.where}/{name}"
        try:
            return objects.read(name), where
        except FileNotFoundError:
            return None, where
    path = qc_directory(node, dataset_id) / name
    try:
        return path.read_bytes(), str(path)
    except FileNotFoundError:
        return None, str(path)
    except OSError as error:
        raise StoreError(f"{path}: cannot read: {error}") from None


def summary_of(report: dict[str, Any]) -> dict[str, Any]:
    """What a report says without individual-level data: no sample ids, metrics
    or components; only the summary, the declaration and the thresholds."""
    kept = (
        "format_version",
        "dataset",
        "fingerprint",
        "created",
        "genomenode_version",
        "thresholds",
        "summary",
        "declaration",
    )
    return {key: report[key] for key in kept if key in report}


def load_summary(node: Node, dataset_id: str) -> dict[str, Any] | None:
    """``summary.json`` of a published dataset (small: what the catalogue and
    aggregate views read); None if QC never ran on it."""
    return load_report(node, dataset_id, name="summary.json")


def load_report(
    node: Node, dataset_id: str, *, name: str = "qc.json"
) -> dict[str, Any] | None:
    """``qc.json`` of a published dataset; None if QC never ran on it.

    Raises
    ------
    NotFoundError
        The dataset is not published.
    StoreError
        The results are of other data than the dataset's (another fingerprint).
    """
    manifest = node.dataset_manifest(dataset_id)
    text, where = _read_result(node, dataset_id, manifest["fingerprint"], name)
    if text is None:
        return None
    report: dict[str, Any] = parse_versioned_json(text, where, QC_FORMAT_VERSION)
    if report.get("fingerprint") != manifest.get("fingerprint"):
        raise StoreError(
            f"{where}: QC results of other data than dataset {dataset_id!r}; "
            "run genomenode qc run again"
        )
    return report


def results_version(
    node: Node, dataset_id: str, fingerprint: str | None = None
) -> str | None:
    """What names the dataset's current QC results, cheaply (a stat, or one small
    object): another QC run gives another value. None if QC never ran on it.

    Readers that keep what they derived from the flags key it by this;
    ``fingerprint``: the published content's, if the caller has it at hand.
    """
    if fingerprint is None:
        fingerprint = str(node.dataset_manifest(dataset_id)["fingerprint"])
    objects = current_objects(node, dataset_id, fingerprint, QC_DIRECTORY)
    if objects is not None:
        return objects.version
    try:
        # write_results replaces the directory by a rename: a new inode.
        status = qc_directory(node, dataset_id).stat()
    except FileNotFoundError:
        return None
    return f"{status.st_ino}:{status.st_mtime_ns}"


def load_flags(node: Node, dataset_id: str) -> QcFlags | None:
    """The QC flags of a published dataset; None if QC never ran on it."""
    report = load_report(node, dataset_id)
    if report is None:
        return None
    # load_report checked that the results are of the published content.
    arrays = _variant_file(node, dataset_id, report["fingerprint"], ("reasons",))
    reasons = np.asarray(arrays["reasons"], dtype=np.uint8)
    samples = report["samples"]
    return QcFlags(
        sample_pass=np.array([not sample["reasons"] for sample in samples], bool),
        variant_pass=reasons == 0,
        sample_reasons=tuple(tuple(sample["reasons"]) for sample in samples),
        variant_reasons=reasons,
        thresholds=dict(report["thresholds"]),
        created=str(report["created"]),
    )


def load_variant_arrays(node: Node, dataset_id: str) -> dict[str, np.ndarray]:
    """Every per-variant array of a dataset's QC (``variants.npz``)."""
    manifest = node.dataset_manifest(dataset_id)
    return _variant_file(node, dataset_id, manifest["fingerprint"])


def _variant_file(
    node: Node,
    dataset_id: str,
    fingerprint: str,
    names: tuple[str, ...] | None = None,
) -> dict[str, np.ndarray]:
    data, where = _read_result(node, dataset_id, fingerprint, "variants.npz")
    if data is None:
        raise StoreError(f"{where}: cannot read: no such file")
    try:
        with np.load(io.BytesIO(data)) as arrays:
            wanted = arrays.files if names is None else names
            return {name: np.asarray(arrays[name]) for name in wanted}
    except (OSError, KeyError, ValueError) as error:
        raise StoreError(f"{where}: cannot read: {error}") from None
