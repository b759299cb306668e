"""Publish: the staged dataset becomes visible, all of it or nothing.

On a local directory the staged ``publish/`` directory is renamed into
``store/datasets/`` (sealed first when ``encrypt_at_rest``); in an object store,
where nothing renames, it is uploaded under its own prefix, verified, and its
``dataset.json`` written last. Either way the committed database row is the
second thing readers require, and it is written after.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from typing import Any

from sqlalchemy import select

from ..errors import IngestError, StoreError
from ..store.genes import GeneTable
from ..store.models import STATUS_PUBLISHED, Dataset
from ..store.node import DATASET_FORMAT_VERSION
from ..store.objects import LocalStorage, upload_tree, write_json_atomic
from ..store.sealed import MARKER, seal_tree
from ..store.site_counts import FORMAT_VERSION as SITE_COUNTS_FORMAT_VERSION
from .metadata import mark_published
from .run import IngestRun, file_sha256
from .workers import checkpoint

__all__ = ["GENES_FILENAME", "publish"]

GENES_FILENAME = "genes.tsv"


def _manifest(run: IngestRun) -> dict[str, Any]:
    done = run.state["done"]
    return {
        "format_version": DATASET_FORMAT_VERSION,
        "id": run.description.id,
        "fingerprint": run.state["fingerprint"],
        "genotypes": {
            "path": "genotypes.vcz",
            "num_samples": done["metadata"]["num_samples"],
            "num_variants": done["metadata"]["num_variants"],
            "contigs": done["statistics"]["contigs"],
            "assembly": run.description.assembly,
        },
        "files": [done["encrypt_files"][name] for name in done["encrypt"]],
        "alignments": done.get("encrypt_alignments", []),
        "genes": _stage_genes(run),
        "site_counts": _site_counts_manifest(run),
        "published": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def _seal_in_place(run: IngestRun) -> None:
    """Replace the staged VCF Zarr by its sealed copy (``encrypt_at_rest``).

    Resumable: the sealed copy is complete once its marker is written (last);
    the plaintext goes only after that, and a copy that holds the marker is
    the sealed one.
    """
    vcz = run.vcz
    sealed = vcz.with_name(vcz.name + ".sealed")
    if (vcz / MARKER).exists():
        return
    if vcz.exists():
        shutil.rmtree(sealed, ignore_errors=True)
        seal_tree(vcz, LocalStorage(sealed.parent), sealed.name, run.node.node_secret)
        checkpoint("publish:sealed")
        shutil.rmtree(vcz)
    os.rename(sealed, vcz)


def _publish_locally(run: IngestRun) -> None:
    dataset_id = run.description.id
    target = run.node.datasets_dir / dataset_id
    if run.publish_dir.exists():
        write_json_atomic(run.publish_dir / "dataset.json", _manifest(run))
        if run.node.config.encrypt_at_rest:
            _seal_in_place(run)
        if target.exists():
            # Left by a failed earlier publish of different content that was never
            # made visible in the database.
            shutil.rmtree(target)
        os.rename(run.publish_dir, target)
    elif not target.exists():
        raise StoreError(
            f"ingest of {dataset_id!r} cannot resume: neither {run.publish_dir} nor "
            f"{target} exists; run `genomenode discard --node ... {dataset_id}` and "
            "ingest again"
        )


def _publish_to_object_store(run: IngestRun) -> None:
    """Upload the staged dataset under its own prefix, verify, then its manifest.

    Nothing is renamed in an object store: the dataset's prefix is its id and
    fingerprint (store/node.py), readers need ``dataset.json`` there *and* the
    committed database row, and ``dataset.json`` is written only once every
    other object is listed with its size. A run killed midway leaves objects
    nobody reads; the next run deletes and writes them again.
    """
    node, dataset_id = run.node, run.description.id
    prefix = node.dataset_prefix(dataset_id, run.state["fingerprint"])
    if not run.publish_dir.exists():
        if node.has_manifest(dataset_id, run.state["fingerprint"]):
            return
        raise StoreError(
            f"ingest of {dataset_id!r} cannot resume: {run.publish_dir} is gone "
            f"and {node.objects.url}/{prefix} has no dataset.json; run "
            f"`genomenode discard --node ... {dataset_id}` and ingest again"
        )
    manifest = _manifest(run)
    node.objects.delete_prefix(prefix)
    sealing = bool(node.config.encrypt_at_rest)
    vcz = run.vcz.relative_to(run.publish_dir).as_posix()
    expected = upload_tree(
        node.objects,
        run.publish_dir,
        prefix,
        skip=lambda name: (
            name == "dataset.json" or (sealing and name.startswith(vcz + "/"))
        ),
    )
    checkpoint("publish:uploading")
    if sealing:
        expected |= seal_tree(
            run.vcz, node.objects, f"{prefix}/{vcz}", node.node_secret
        )
    checkpoint("publish:uploaded")
    listed = node.objects.listing(prefix)
    wrong = sorted(key for key, size in expected.items() if listed.get(key) != size)
    if wrong:
        raise StoreError(
            f"{node.objects.url}/{prefix}: {len(wrong)} uploaded objects are missing "
            f"or of the wrong size (first: {wrong[0]}); run the ingest again"
        )
    node.objects.write(
        f"{prefix}/dataset.json",
        json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n",
    )


def publish(run: IngestRun) -> None:
    dataset_id = run.description.id
    if run.node.remote:
        _publish_to_object_store(run)
    else:
        _publish_locally(run)
    checkpoint("publish:moved")
    with run.node.session() as session:
        mark_published(session, dataset_id)
        row = session.scalar(select(Dataset).where(Dataset.id == dataset_id))
    if row is None or row.status != STATUS_PUBLISHED:
        raise StoreError(
            f"dataset {dataset_id!r}: staging rows vanished before publish"
        )
    run.finish("publish")


def _site_counts_manifest(run: IngestRun) -> dict[str, Any] | None:
    """A sites-only dataset's populations (the whole dataset is ``""``)."""
    if not run.sites_only:
        return None
    return {
        "format_version": SITE_COUNTS_FORMAT_VERSION,
        "populations": run.state["done"]["statistics"]["populations"],
    }


def _stage_genes(run: IngestRun) -> dict[str, Any] | None:
    """Copy the gene table into the dataset being published, as ``genes.tsv``.

    The copy must be the file that was fingerprinted and encrypted: compared with
    the plaintext hash recorded by the encrypt step.
    """
    if run.description.genes is None:
        return None
    done = run.state["done"]
    encrypted = [
        done["encrypt_files"][name]
        for name in done["encrypt"]
        if done["encrypt_files"][name]["role"] == "genes"
    ]
    target = run.publish_dir / GENES_FILENAME
    partial = target.with_name(target.name + ".part")
    shutil.copyfile(run.description.genes, partial)
    digest = file_sha256(partial)
    if not encrypted or encrypted[0]["sha256_plain"] != digest:
        partial.unlink()
        raise IngestError(
            f"{run.description.genes} changed during the ingest of "
            f"{run.description.id!r}; run the ingest again"
        )
    os.replace(partial, target)
    return {
        "path": GENES_FILENAME,
        "sha256": digest,
        "num_genes": len(GeneTable.read(target)),
    }
