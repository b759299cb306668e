"""A first dataset.yaml for an existing VCF: ``genomenode datasets scaffold``.

It reads the VCF's header (samples, contigs, the assembly if a meta line names
it) and writes a commented dataset.yaml with safe defaults: ``CONTROLLED``, the
default Beacon granularities, one DUO permission to review. What genomenode
cannot know (the country, the contact) is written as ``TODO`` unless given, and
the ingest refuses ``TODO`` until it is filled in. Without clinical records it
also writes a ``clinical.csv`` with one row per genotyped sample, to be
completed. Nothing is ever overwritten.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import json
import os
import pathlib
import re
from typing import Any

from ..dataset import CSV_COLUMNS, SECURITY_LEVELS
from ..errors import InputError
from . import vcf

__all__ = ["Scaffold", "scaffold_dataset"]

TODO = "TODO"
_ID_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")
_ASSEMBLIES = (
    (re.compile(r"GRCh38|hg38|hs38", re.IGNORECASE), "GRCh38"),
    (re.compile(r"GRCh37|hg19|b37|hs37", re.IGNORECASE), "GRCh37"),
)


@dataclasses.dataclass(frozen=True)
class Scaffold:
    """What :func:`scaffold_dataset` wrote."""

    dataset_yaml: pathlib.Path
    clinical_template: pathlib.Path | None
    dataset_id: str
    num_samples: int
    contigs: tuple[str, ...]
    assembly: str
    #: Fields written as ``TODO``: the ingest refuses them until filled in.
    to_fill: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset_yaml": str(self.dataset_yaml),
            "clinical_template": (
                str(self.clinical_template) if self.clinical_template else None
            ),
            "dataset_id": self.dataset_id,
            "num_samples": self.num_samples,
            "contigs": list(self.contigs),
            "assembly": self.assembly,
            "to_fill": list(self.to_fill),
        }


def scaffold_dataset(
    vcf_path: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    dataset_id: str | None = None,
    country: str | None = None,
    security_level: str = "CONTROLLED",
    clinical: str | os.PathLike[str] | None = None,
    contact_name: str | None = None,
    contact_email: str | None = None,
) -> Scaffold:
    """Write a dataset.yaml (default: ``dataset.yaml`` beside the VCF) for a VCF.

    Parameters
    ----------
    vcf_path
        A BGZF-compressed VCF; its header is read and checked as ingest does.
    out
        Where to write the dataset.yaml; paths in it are relative to its directory.
    dataset_id
        Default: the VCF's file name without ``.vcf.gz``.
    country, contact_name, contact_email
        Written as given, else as ``TODO`` (the ingest refuses it).
    security_level
        ``PUBLIC``, ``REGISTERED`` or ``CONTROLLED`` (the default).
    clinical
        The clinical records (a directory of phenopackets, a ``.json``/``.jsonl``
        file of phenopackets or Beacon individuals, or a ``.csv``). Without it a
        ``clinical.csv`` listing the VCF's samples is written beside ``out``.

    Raises
    ------
    InputError
        The VCF is not a readable BGZF VCF (naming the line), a file to write
        exists already, or a value is invalid (naming the field).
    """
    source = pathlib.Path(vcf_path).resolve()
    vcf.check_bgzf(source)
    header = vcf.read_header(source)
    target = pathlib.Path(out).resolve() if out else source.parent / "dataset.yaml"
    if security_level not in SECURITY_LEVELS:
        raise InputError(
            f"{security_level!r}: use one of {', '.join(SECURITY_LEVELS)}",
            field="security_level",
        )
    identifier = dataset_id or _id_from(source)
    template = None
    if header.sites_only and clinical is None:
        # An aggregate-only dataset: no individuals, so no clinical records.
        clinical_yaml = ""
    elif clinical is None:
        template = target.parent / "clinical.csv"
        clinical_yaml = _clinical_csv_block(_relative(template, target), CSV_COLUMNS)
    else:
        clinical_yaml = _clinical_block(pathlib.Path(clinical).resolve(), target)
    for path in (target, template):
        if path is not None and path.exists():
            raise InputError("already exists; a scaffold never overwrites", path=path)
    assembly, assembly_note = _assembly(source)
    to_fill = [
        name
        for name, value in (
            ("country", country),
            ("contact.name", contact_name),
            ("contact.email", contact_email),
        )
        if not value
    ]
    text = _TEMPLATE.format(
        vcf_name=source.name,
        num_samples=len(header.samples),
        num_contigs=len(header.contigs),
        id=identifier,
        name=json.dumps(f"{identifier} cohort"),
        description=json.dumps(
            f"{len(header.samples)} genotyped samples ({source.name})."
        ),
        country=country or TODO,
        contact_name=json.dumps(contact_name or TODO),
        contact_email=json.dumps(contact_email or TODO),
        security_level=security_level,
        assembly=assembly,
        assembly_note=assembly_note,
        genotypes=json.dumps(_relative(source, target)),
        clinical=(
            f"clinical:\n{clinical_yaml}\n{_MISSING_CLINICAL}\n"
            if clinical_yaml
            else _SITES_ONLY
        ),
        contigs=", ".join(header.contigs[:10])
        + (f" and {len(header.contigs) - 10} more" if len(header.contigs) > 10 else "")
        or "none declared",
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    if template is not None:
        _write_clinical_template(template, header.samples)
    with open(target, "x") as handle:
        handle.write(text)
    return Scaffold(
        dataset_yaml=target,
        clinical_template=template,
        dataset_id=identifier,
        num_samples=len(header.samples),
        contigs=header.contigs,
        assembly=assembly,
        to_fill=tuple(to_fill),
    )


def _id_from(path: pathlib.Path) -> str:
    name = path.name
    for suffix in (".gz", ".bgz", ".vcf"):
        name = name.removesuffix(suffix)
    return (_ID_CHARACTERS.sub("-", name).strip("-._") or "dataset")[:64]


def _relative(path: pathlib.Path, dataset_yaml: pathlib.Path) -> str:
    return os.path.relpath(path, dataset_yaml.parent)


def _assembly(source: pathlib.Path) -> tuple[str, str]:
    """The assembly a ``##reference``/``##assembly``/contig line names, and a note."""
    with gzip.open(source, "rt", encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if not line.startswith("##"):
                break
            if line.startswith(("##reference", "##assembly", "##contig")):
                for pattern, name in _ASSEMBLIES:
                    if pattern.search(line):
                        return name, f"from the VCF header: {line.strip()[:60]}"
    return "GRCh38", "CHECK: the VCF header does not name its assembly"


def _clinical_block(path: pathlib.Path, target: pathlib.Path) -> str:
    relative = json.dumps(_relative(path, target))
    if path.is_dir():
        return f"  format: phenopackets   # a directory of *.json\n  path: {relative}"
    if path.suffix.lower() == ".csv":
        with open(path, newline="") as handle:
            columns = next(csv.reader(handle), [])
        return _clinical_csv_block(_relative(path, target), columns)
    if path.suffix.lower() in (".json", ".jsonl"):
        return (
            f"  format: {_json_format(path)}"
            "   # phenopackets | beacon-individuals: check\n"
            f"  path: {relative}"
        )
    raise InputError(
        "not a directory, .json, .jsonl or .csv: give clinical records as "
        "phenopackets, Beacon individuals or a CSV (docs/dataset-yaml.md)",
        path=path,
    )


def _json_format(path: pathlib.Path) -> str:
    """Phenopackets have a ``subject``; Beacon individuals are the subject."""
    with open(path, errors="replace") as handle:
        start = handle.read(4096)
    return "phenopackets" if '"subject"' in start else "beacon-individuals"


def _clinical_csv_block(relative: str, header: tuple[str, ...] | list[str]) -> str:
    by_name = {column.strip().lower(): column.strip() for column in header}
    mapping = {field: by_name[field] for field in CSV_COLUMNS if field in by_name}
    if "id" not in mapping and header:
        mapping["id"] = str(header[0]).strip()
    columns = "".join(
        f"\n    {field}: {json.dumps(column)}" for field, column in mapping.items()
    )
    return (
        "  format: csv\n"
        f"  path: {json.dumps(relative)}\n"
        f"  columns:   # genomenode field: your column{columns}\n"
        '  list_separator: ";"   # between terms, e.g. HP:0001627;HP:0002155'
    )


def _write_clinical_template(path: pathlib.Path, samples: tuple[str, ...]) -> None:
    with open(path, "x", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for sample in samples:
            writer.writerow([sample, "unknown", *[""] * (len(CSV_COLUMNS) - 2)])


_MISSING_CLINICAL = (
    "missing_clinical: error   # every genotyped sample needs a record (or: allow)"
)
_SITES_ONLY = (
    "# no clinical: a sites-only VCF is an aggregate-only dataset (counts from INFO:\n"
    "# docs/ingest.md, accepted inputs)\n"
)
_TEMPLATE = """\
# dataset.yaml for {vcf_name} ({num_samples} samples, {num_contigs} contigs),
# written by `genomenode datasets scaffold`. Every field: docs/dataset-yaml.md
# (`genomenode docs dataset-yaml`). Fill in each TODO, review the rest, then
# check it without writing anything:
#   genomenode ingest --dry-run --node NODE_DIR THIS_FILE
format_version: 1
id: {id}   # unique on the node; a new version needs a new id
name: {name}
description: {description}
country: {country}   # ISO 3166-1 alpha-2 of the data holder, e.g. FI
contact:
  name: {contact_name}
  email: {contact_email}
security_level: {security_level}   # PUBLIC | REGISTERED | CONTROLLED (safest)
assembly: {assembly}   # {assembly_note}
data_use:   # DUO: exactly one permission and any modifiers; review it
  - id: DUO:0000006   # health/medical/biomedical research (HMB)
genotypes:
  - path: {genotypes}   # contigs: {contigs}
{clinical}beacon:   # the defaults: the most each kind of caller learns
  anonymous: boolean
  registered: count
  granted: record
# dac:
#   members: [dac-chair@example.org]   # passport subjects deciding applications
"""
