"""The encrypt step: the originals of a dataset kept encrypted (Crypt4GH, node key).

The VCF and its index (or a VCF Zarr directory, archived as one tar), the clinical
files (a directory archived as one tar), the gene table and the alignments with
their indexes and references are encrypted into
``files/``; their plaintext and ciphertext sha256 are recorded in the manifest.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
import tarfile
from typing import Any

from ..dataset import AlignmentSource
from ..errors import StoreError
from ..store import crypt
from .alignments import stage_reference
from .run import IngestRun, input_files
from .workers import checkpoint

__all__ = ["encrypt"]

REFERENCES_DIRECTORY = "references"


def encrypt(run: IngestRun) -> None:
    files_dir = run.publish_dir / "files"
    files_dir.mkdir(parents=True, exist_ok=True)
    done = run.state["done"].get("encrypt_files", {})
    inputs = _stored_inputs(run)
    stored_ids: dict[pathlib.Path, str] = {}
    with run.reporter.step("Encrypt originals", len(inputs)) as advance:
        for number, (role, path) in enumerate(inputs):
            # Prefix keeps names unique when two inputs share a file name.
            stored_name = f"{number:04d}-{path.name}.c4gh"
            stored_ids[path] = f"{run.description.id}:{stored_name[:-5]}"
            if stored_name not in done:
                result = crypt.encrypt_file(
                    path,
                    files_dir / stored_name,
                    [run.node.public_key],
                    stop=run.stopping,
                )
                run.keep(
                    stored_name,
                    {
                        "id": f"{run.description.id}:{stored_name[:-5]}",
                        "role": role,
                        "original_name": path.name,
                        "stored_path": f"files/{stored_name}",
                        "file_format": _file_format(path),
                        **dataclasses.asdict(result),
                    },
                    within="encrypt_files",
                )
                checkpoint("encrypt:file")
            advance()
    references = _stage_references(run)
    run.keep("encrypt_alignments", _alignment_manifest(run, stored_ids, references))
    run.finish("encrypt", sorted(run.state["done"].get("encrypt_files", {})))


def _stage_references(run: IngestRun) -> dict[pathlib.Path, str]:
    """Store the reference FASTA of each CRAM, indexed, under ``references/``.

    A reference genome is public data, so it is stored as a plain file (a CRAM is
    decoded against it); it is not an input of the fingerprint, which stays that
    of the dataset's own files. Returns each FASTA's path in the dataset
    directory. Staged whole in ``references.part`` and renamed: a rerun finds it
    done.
    """
    users: dict[pathlib.Path, list[tuple[int, AlignmentSource]]] = {}
    for number, alignment in enumerate(run.description.alignments):
        if alignment.reference is not None:
            users.setdefault(alignment.reference, []).append((number, alignment))
    names: dict[pathlib.Path, str] = {}
    for fasta, sources in users.items():
        name = fasta.name
        if name in names.values():
            # Two FASTAs of one name: the later one takes its first CRAM's number.
            name = f"{sources[0][0]:04d}-{name}"
        names[fasta] = name
    target = run.publish_dir / REFERENCES_DIRECTORY
    if names and not target.exists():
        partial = target.with_name(target.name + ".part")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        for fasta, name in names.items():
            stage_reference(fasta, partial / name, users[fasta])
        os.replace(partial, target)
    return {fasta: f"{REFERENCES_DIRECTORY}/{name}" for fasta, name in names.items()}


def _alignment_manifest(
    run: IngestRun,
    stored_ids: dict[pathlib.Path, str],
    references: dict[pathlib.Path, str],
) -> list[dict[str, Any]]:
    """Each alignment file's stored file, its index's, the sample of its reads and
    (a CRAM) its reference FASTA in the dataset directory."""
    samples = run.state["done"]["validate"].get("alignment_samples", [])
    indexes = run.state["done"].get("index_alignments", [])
    return [
        {
            "file": stored_ids[alignment.path],
            "index": stored_ids[pathlib.Path(index["index"])],
            "format": alignment.format,
            "sample": sample,
            "reference": None
            if alignment.reference is None
            else references[alignment.reference],
        }
        for alignment, sample, index in zip(
            run.description.alignments, samples, indexes, strict=True
        )
    ]


def _stored_inputs(run: IngestRun) -> list[tuple[str, pathlib.Path]]:
    """Inputs as stored, with every index the node made.

    An index the node made (for a VCF or alignment file without a current one)
    is stored like the operator's, in place of a stale one beside the input; it is
    not an input, so the dataset's fingerprint does not change.
    """
    stored = _inputs_with_clinical_archive(run)
    made: list[tuple[str, pathlib.Path]] = []
    stale: set[pathlib.Path] = set()
    vcf_index = _vcf_index_made_by_node(run)
    if vcf_index is not None:
        made.append(("genotypes-index", vcf_index))
        stale |= {path for role, path in stored if role == "genotypes-index"}
    indexes = run.state["done"].get("index_alignments", [])
    for alignment, index in zip(run.description.alignments, indexes, strict=True):
        if index["made_by_node"]:
            made.append(("alignments-index", pathlib.Path(index["index"])))
            if alignment.index is not None:
                stale.add(alignment.index)
    return [(role, path) for role, path in stored if path not in stale] + made


def _vcf_index_made_by_node(run: IngestRun) -> pathlib.Path | None:
    indexed = pathlib.Path(run.state["done"]["index"])
    if indexed == run.description.genotypes[0]:
        return None
    for suffix in (".csi", ".tbi"):
        index = indexed.with_name(indexed.name + suffix)
        if index.exists():
            return index
    raise StoreError(f"ingest staging damaged: no index beside {indexed}")


def _inputs_with_clinical_archive(run: IngestRun) -> list[tuple[str, pathlib.Path]]:
    """Inputs, a clinical directory made one tar archive (not N files, and last),
    a VCF Zarr directory one tar archive in its place."""
    inputs = [
        (role, _archive(run, path, _tree(path)) if role == "genotypes-vcz" else path)
        for role, path in input_files(run.description)
    ]
    if run.description.clinical is None:
        return inputs
    clinical = run.description.clinical.path
    if not clinical.is_dir():
        return inputs
    members = [path for role, path in inputs if role == "clinical"]
    stored = [(role, path) for role, path in inputs if role != "clinical"]
    return [*stored, ("clinical", _archive(run, clinical, members))]


def _tree(directory: pathlib.Path) -> list[pathlib.Path]:
    return sorted(path for path in directory.rglob("*") if path.is_file())


def _archive(
    run: IngestRun, directory: pathlib.Path, members: list[pathlib.Path]
) -> pathlib.Path:
    """``members`` of ``directory`` as one tar in the staging area (made once)."""
    archive = run.work / f"{directory.name}.tar"
    if archive.exists():
        return archive
    partial = archive.with_name(archive.name + ".part")
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
        for member in members:
            name = member.relative_to(directory).as_posix()
            # Same content, same archive: no owners, times or modes of this host.
            # (tarfile's gettarinfo looked each file's owner and group names up:
            # half the CPU of archiving 20,000 Phenopackets. A symlinked member
            # is archived as the file it points to.)
            info = tarfile.TarInfo(f"{directory.name}/{name}")
            info.size = member.stat().st_size
            info.mode = 0o644
            with open(member, "rb") as handle:
                tar.addfile(info, handle)
    os.replace(partial, archive)
    return archive


def _file_format(path: pathlib.Path) -> str:
    name = path.name.lower()
    for suffix, kind in (
        (".vcf.gz", "VCF"),
        (".vcf.bgz", "VCF"),
        (".bcf", "BCF"),
        (".tbi", "TBI"),
        (".csi", "CSI"),
        (".bam", "BAM"),
        (".bai", "BAI"),
        (".cram", "CRAM"),
        (".crai", "CRAI"),
        (".jsonl", "JSONL"),
        (".tar", "TAR"),
        (".json", "JSON"),
        (".csv", "CSV"),
        (".tsv", "TSV"),
        (".yaml", "YAML"),
        (".yml", "YAML"),
    ):
        if name.endswith(suffix):
            return kind
    return "other"
