"""dataset.yaml: what a node operator says about a cohort, validated.

The format is documented in ``docs/dataset-yaml.md``. Every error names the file and
the field at fault.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
import zlib
from collections.abc import Mapping
from typing import Any

import yaml

from .errors import DatasetDescriptionError
from .vocab.duo import duo_terms

__all__ = [
    "ALIGNMENT_INDEX_SUFFIXES",
    "BEACON_ACCESS_LEVELS",
    "BEACON_GRANULARITIES",
    "CLINICAL_FORMATS",
    "DEFAULT_BEACON_GRANULARITY",
    "FORMAT_VERSION",
    "SECURITY_LEVELS",
    "AlignmentSource",
    "ClinicalSource",
    "DataUseTerm",
    "DatasetDescription",
    "check_beacon_granularity",
    "check_data_use",
    "read_dataset_description",
]

FORMAT_VERSION = 1
SECURITY_LEVELS = ("PUBLIC", "REGISTERED", "CONTROLLED")
CLINICAL_FORMATS = ("phenopackets", "beacon-individuals", "csv")
MISSING_CLINICAL_POLICIES = ("error", "allow")
CSV_COLUMNS = (
    "id",
    "sex",
    "age",
    "country_of_birth",
    "phenotypes",
    "diseases",
    "ethnicity",
)
#: Beacon response granularities, least to most revealing.
BEACON_GRANULARITIES = ("boolean", "count", "record")
#: Who asks a Beacon query: no token, a registered researcher, a granted one.
BEACON_ACCESS_LEVELS = ("anonymous", "registered", "granted")
#: The ``beacon:`` block of a dataset.yaml that does not give one.
DEFAULT_BEACON_GRANULARITY: Mapping[str, str] = {
    "anonymous": "boolean",
    "registered": "count",
    "granted": "record",
}
_DATASET_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DISEASE_TERM = re.compile(r"^(ICD10|ICD10CM|MONDO|OMIM|ORPHA|DOID|NCIT):\S+$")
#: Where an alignment file's index may lie beside it, by format, in order of
#: preference (``{name}`` is the file's name, ``{stem}`` the name less its suffix).
ALIGNMENT_INDEX_SUFFIXES: Mapping[str, tuple[str, ...]] = {
    "BAM": ("{name}.bai", "{stem}.bai", "{name}.csi"),
    "CRAM": ("{name}.crai", "{stem}.crai"),
}
_ALIGNMENT_KEYS = frozenset({"path", "sample", "reference"})


@dataclasses.dataclass(frozen=True)
class DataUseTerm:
    """One DUO term of a dataset's data-use conditions."""

    id: str
    label: str
    kind: str
    disease: str | None = None


@dataclasses.dataclass(frozen=True)
class ClinicalSource:
    """Where the clinical records are and how to read them."""

    format: str
    path: pathlib.Path
    columns: Mapping[str, str] = dataclasses.field(default_factory=dict)
    list_separator: str = ";"


@dataclasses.dataclass(frozen=True)
class AlignmentSource:
    """One aligned-reads file of the dataset (``alignments:`` in dataset.yaml).

    ``index`` is the index found beside the file, if any; ``sample`` the VCF sample
    the reads are of, if given (else the ingest takes the read groups' SM tag);
    ``reference`` the FASTA a CRAM was compressed against, if given.
    """

    path: pathlib.Path
    format: str  # "BAM" or "CRAM"
    index: pathlib.Path | None = None
    sample: str | None = None
    reference: pathlib.Path | None = None


@dataclasses.dataclass(frozen=True)
class DatasetDescription:
    """A validated dataset.yaml; paths are absolute.

    ``beacon_granularity`` maps each of :data:`BEACON_ACCESS_LEVELS` to the highest
    granularity a caller at that level gets, defaults filled in; ``document`` is the
    YAML document with that filled mapping under ``beacon`` (what the database keeps
    as ``Dataset.description_document``). ``dac_members`` are the subjects of the
    optional ``dac: {members: [...]}`` block, kept in ``document`` as ``dac``.
    ``alignments`` are the optional BAM and CRAM files, in file order.
    ``clinical`` is ``None`` for a genotypes-only dataset (no ``clinical:`` block):
    every sample is then an individual without clinical data.
    """

    source: pathlib.Path
    id: str
    name: str
    description: str
    country: str
    contact_name: str
    contact_email: str
    security_level: str
    assembly: str
    data_use: tuple[DataUseTerm, ...]
    genotypes: tuple[pathlib.Path, ...]
    clinical: ClinicalSource | None
    missing_clinical: str
    genes: pathlib.Path | None
    document: Mapping[str, Any]
    beacon_granularity: Mapping[str, str] = dataclasses.field(
        default_factory=lambda: dict(DEFAULT_BEACON_GRANULARITY)
    )
    dac_members: tuple[str, ...] = ()
    alignments: tuple[AlignmentSource, ...] = ()


class _Reader:
    """Field access on the YAML mapping with errors that name file and field."""

    def __init__(self, path: pathlib.Path | None) -> None:
        self.path = path  # None: a value given elsewhere (the command line)

    def fail(self, field: str, message: str) -> DatasetDescriptionError:
        return DatasetDescriptionError(message, path=self.path, field=field)

    def text(self, mapping: Mapping[str, Any], key: str, prefix: str = "") -> str:
        field = prefix + key
        if key not in mapping or mapping[key] in (None, ""):
            raise self.fail(field, "is required")
        value = mapping[key]
        if not isinstance(value, str | int | float):
            raise self.fail(field, f"must be text, not {type(value).__name__}")
        return str(value).strip()

    def file(self, value: Any, field: str, *, directory: bool = False) -> pathlib.Path:
        assert self.path is not None, "files are relative to a dataset.yaml"
        if not isinstance(value, str) or not value:
            raise self.fail(field, "must be a path relative to dataset.yaml")
        path = (self.path.parent / value).resolve()
        if not path.exists():
            raise self.fail(field, f"{value!r} does not exist ({path})")
        if directory is False and path.is_dir():
            raise self.fail(field, f"{value!r} is a directory, expected a file")
        return path


def read_dataset_description(path: str | pathlib.Path) -> DatasetDescription:
    """Read and validate a dataset.yaml.

    Raises
    ------
    DatasetDescriptionError
        Naming the file and the field at fault.
    """
    path = pathlib.Path(path).resolve()
    reader = _Reader(path)
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as error:
        raise DatasetDescriptionError(
            f"cannot read: {error.strerror}", path=path
        ) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise DatasetDescriptionError(
            f"not valid YAML: {getattr(error, 'problem', error)}",
            path=path,
            line=mark.line + 1 if mark is not None else None,
        ) from None
    if not isinstance(document, dict):
        raise DatasetDescriptionError("expected a YAML mapping", path=path)

    version = document.get("format_version", FORMAT_VERSION)
    if type(version) is not int or version != FORMAT_VERSION:
        raise reader.fail(
            "format_version", f"{version!r} is not supported (this is {FORMAT_VERSION})"
        )
    dataset_id = reader.text(document, "id")
    if not _DATASET_ID.match(dataset_id):
        raise reader.fail(
            "id", f"{dataset_id!r}: use 1-64 letters, digits, '.', '_' or '-'"
        )
    country = reader.text(document, "country")
    if len(country) != 2 or not country.isalpha() or not country.isupper():
        raise reader.fail("country", f"{country!r} is not an ISO 3166-1 alpha-2 code")
    contact = document.get("contact")
    if not isinstance(contact, dict):
        raise reader.fail("contact", "is required: {name: ..., email: ...}")
    contact_email = reader.text(contact, "email", "contact.")
    if not _EMAIL.match(contact_email):
        raise reader.fail(
            "contact.email", f"{contact_email!r} is not an e-mail address"
        )
    security_level = reader.text(document, "security_level")
    if security_level not in SECURITY_LEVELS:
        raise reader.fail(
            "security_level",
            f"unknown security level {security_level!r}; "
            f"use one of {', '.join(SECURITY_LEVELS)}",
        )
    clinical = _clinical(reader, document.get("clinical"))
    # Without clinical records a genotypes-only dataset is what was meant, unless
    # the operator said every sample needs one.
    missing_clinical = str(
        document.get("missing_clinical", "error" if clinical else "allow")
    )
    if missing_clinical not in MISSING_CLINICAL_POLICIES:
        raise reader.fail(
            "missing_clinical",
            f"{missing_clinical!r}: use one of {', '.join(MISSING_CLINICAL_POLICIES)}",
        )
    if clinical is None and missing_clinical == "error":
        raise reader.fail(
            "clinical",
            "is required with `missing_clinical: error`: give {format: ..., "
            "path: ...}, or leave out missing_clinical for a genotypes-only dataset",
        )
    genes = document.get("genes")
    beacon_granularity = _beacon_granularity(reader, document.get("beacon"))
    document = {**document, "beacon": dict(beacon_granularity)}
    dac_members = _dac_members(reader, document.get("dac"))
    if "dac" in document:
        document["dac"] = {"members": list(dac_members)}
    return DatasetDescription(
        source=path,
        id=dataset_id,
        name=reader.text(document, "name"),
        description=reader.text(document, "description"),
        country=country,
        contact_name=reader.text(contact, "name", "contact."),
        contact_email=contact_email,
        security_level=security_level,
        assembly=reader.text(document, "assembly"),
        data_use=_data_use(reader, document.get("data_use")),
        genotypes=_genotypes(reader, document.get("genotypes")),
        clinical=clinical,
        missing_clinical=missing_clinical,
        genes=None if genes is None else reader.file(genes, "genes"),
        document=document,
        beacon_granularity=beacon_granularity,
        dac_members=dac_members,
        alignments=_alignments(reader, document.get("alignments")),
    )


def check_beacon_granularity(value: Any) -> dict[str, str]:
    """A ``beacon:`` block given outside a dataset.yaml, checked and filled in as
    ingest does.

    Raises
    ------
    DatasetDescriptionError
        Naming the field at fault (``beacon.anonymous``...).
    """
    return _beacon_granularity(_Reader(None), value)


def check_data_use(value: Any) -> tuple[DataUseTerm, ...]:
    """A ``data_use:`` list given outside a dataset.yaml, checked as ingest does.

    Raises
    ------
    DatasetDescriptionError
        Naming the field at fault (``data_use[1].id``...).
    """
    return _data_use(_Reader(None), value)


def _beacon_granularity(reader: _Reader, value: Any) -> dict[str, str]:
    """The ``beacon:`` block, each missing level filled in.

    A missing level gets its default, raised to the level below it if that is
    higher: more trust never shows less.
    """
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise reader.fail(
            "beacon",
            "must be a mapping such as {anonymous: boolean, registered: count, "
            "granted: record}",
        )
    for key in value:
        if key not in BEACON_ACCESS_LEVELS:
            raise reader.fail(
                f"beacon.{key}",
                f"unknown access level; use {', '.join(BEACON_ACCESS_LEVELS)}",
            )
    filled: dict[str, str] = {}
    below: str | None = None
    for level in BEACON_ACCESS_LEVELS:
        given = value.get(level)
        if given is None:
            chosen = DEFAULT_BEACON_GRANULARITY[level]
            if below is not None and _rank(below) > _rank(chosen):
                chosen = below
        elif not isinstance(given, str) or given not in BEACON_GRANULARITIES:
            raise reader.fail(
                f"beacon.{level}",
                f"{given!r}: use one of {', '.join(BEACON_GRANULARITIES)}",
            )
        else:
            chosen = given
            if below is not None and _rank(below) > _rank(chosen):
                raise reader.fail(
                    f"beacon.{level}",
                    f"{chosen!r} is less than {below!r} for the level below it; "
                    "a more trusted caller must not see less",
                )
        filled[level] = chosen
        below = chosen
    return filled


def _dac_members(reader: _Reader, value: Any) -> tuple[str, ...]:
    """The subjects of the ``dac:`` block, stripped, each once, in file order."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise reader.fail("dac", "must be a mapping such as {members: [subject, ...]}")
    for key in value:
        if key != "members":
            raise reader.fail(f"dac.{key}", "unknown key; use members")
    members = value.get("members")
    if not isinstance(members, list):
        raise reader.fail(
            "dac.members",
            "is required: a list of the committee's subjects (passport 'sub' values)",
        )
    subjects: dict[str, None] = {}
    for index, member in enumerate(members):
        if not isinstance(member, str) or not member.strip():
            raise reader.fail(
                f"dac.members[{index}]", f"{member!r} is not a non-empty subject"
            )
        subjects[member.strip()] = None
    return tuple(subjects)


def _rank(granularity: str) -> int:
    return BEACON_GRANULARITIES.index(granularity)


def _data_use(reader: _Reader, value: Any) -> tuple[DataUseTerm, ...]:
    if not isinstance(value, list) or not value:
        raise reader.fail(
            "data_use", "is required: a list of DUO terms ({id: DUO:...})"
        )
    known = duo_terms()
    terms = []
    for index, entry in enumerate(value):
        field = f"data_use[{index}]"
        if isinstance(entry, str):
            entry = {"id": entry}
        if not isinstance(entry, dict):
            raise reader.fail(field, "must be a mapping {id: DUO:..., ...}")
        term_id = reader.text(entry, "id", field + ".")
        if term_id not in known:
            raise reader.fail(
                field + ".id",
                f"invalid DUO code {term_id!r} (known codes are listed in "
                "genomenode/data/duo.csv)",
            )
        row = known[term_id]
        disease = entry.get("disease")
        if row["needs"] == "disease":
            if not isinstance(disease, str) or not _DISEASE_TERM.match(disease):
                raise reader.fail(
                    field + ".disease",
                    f"{term_id} ({row['label']}) needs a disease term such as "
                    "ICD10:I25.1 or MONDO:0005010",
                )
        elif disease is not None:
            raise reader.fail(field + ".disease", f"{term_id} takes no disease")
        unknown = set(entry) - {"id", "disease", "label"}
        if unknown:
            raise reader.fail(field, f"unknown keys {sorted(unknown)}")
        terms.append(DataUseTerm(term_id, row["label"], row["kind"], disease))
    permissions = [term.id for term in terms if term.kind == "permission"]
    if len(permissions) != 1:
        raise reader.fail(
            "data_use",
            f"needs exactly one data use permission (e.g. DUO:0000042 general "
            f"research use), found {permissions or 'none'}",
        )
    return tuple(terms)


def _genotypes(reader: _Reader, value: Any) -> tuple[pathlib.Path, ...]:
    if not isinstance(value, list) or not value:
        raise reader.fail(
            "genotypes", "is required: a list of {path: FILE.vcf.gz} (or FILE.vcz)"
        )
    paths = []
    for index, entry in enumerate(value):
        field = f"genotypes[{index}].path"
        path_value = entry.get("path") if isinstance(entry, dict) else entry
        # A VCF Zarr (bio2zarr, sgkit) is a directory named *.vcz.
        vcz = isinstance(path_value, str) and path_value.rstrip("/").endswith(".vcz")
        path = reader.file(path_value, field, directory=vcz)
        if vcz and not path.is_dir():
            raise reader.fail(field, f"{path_value!r}: a VCF Zarr is a directory")
        paths.append(path)
    if len(paths) > 1:
        # One VCF per dataset keeps sample columns and partitions simple; merge
        # per-chromosome files with `bcftools concat` first.
        raise reader.fail("genotypes", "one genotype file per dataset is supported")
    return tuple(paths)


def _clinical(reader: _Reader, value: Any) -> ClinicalSource | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise reader.fail("clinical", "must be a mapping: {format: ..., path: ...}")
    clinical_format = reader.text(value, "format", "clinical.")
    if clinical_format not in CLINICAL_FORMATS:
        raise reader.fail(
            "clinical.format",
            f"{clinical_format!r}: use one of {', '.join(CLINICAL_FORMATS)}",
        )
    path = reader.file(value.get("path"), "clinical.path", directory=True)
    columns: dict[str, str] = {}
    if clinical_format == "csv":
        raw_columns = value.get("columns")
        if not isinstance(raw_columns, dict) or "id" not in raw_columns:
            raise reader.fail(
                "clinical.columns",
                "a CSV needs a column mapping with at least 'id', e.g. "
                "{id: sample_id, sex: sex, age: age_years}",
            )
        for key, column in raw_columns.items():
            if key not in CSV_COLUMNS:
                raise reader.fail(
                    f"clinical.columns.{key}",
                    f"unknown field; use {', '.join(CSV_COLUMNS)}",
                )
            columns[key] = str(column)
    return ClinicalSource(
        format=clinical_format,
        path=path,
        columns=columns,
        list_separator=str(value.get("list_separator", ";")),
    )


def _alignments(reader: _Reader, value: Any) -> tuple[AlignmentSource, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise reader.fail(
            "alignments", "must be a list of {path: FILE.bam, sample: ...} entries"
        )
    sources: list[AlignmentSource] = []
    for number, entry in enumerate(value):
        field = f"alignments[{number}]"
        if isinstance(entry, str):
            entry = {"path": entry}
        if not isinstance(entry, dict):
            raise reader.fail(field, "must be a mapping {path: FILE.bam, ...}")
        unknown = set(entry) - _ALIGNMENT_KEYS
        if unknown:
            raise reader.fail(
                field,
                f"unknown keys {sorted(unknown)}; use path, sample, reference",
            )
        path = reader.file(entry.get("path"), field + ".path")
        if any(source.path == path for source in sources):
            raise reader.fail(field + ".path", f"{path.name!r} is listed twice")
        file_format = _alignment_format(path)
        if file_format is None:
            raise reader.fail(
                field + ".path",
                f"{path.name!r} is not a BAM or CRAM file (by its first bytes)",
            )
        sample = entry.get("sample")
        if sample is not None:
            sample = reader.text(entry, "sample", field + ".")
        reference = entry.get("reference")
        if reference is not None:
            if file_format != "CRAM":
                raise reader.fail(
                    field + ".reference", "only a CRAM file needs its reference"
                )
            reference = reader.file(reference, field + ".reference")
        sources.append(
            AlignmentSource(
                path=path,
                format=file_format,
                index=_alignment_index(path, file_format),
                sample=sample,
                reference=reference,
            )
        )
    return tuple(sources)


def _alignment_format(path: pathlib.Path) -> str | None:
    """The format, BAM or CRAM, told by the file's first bytes; ``None`` if neither."""
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    if head.startswith(b"CRAM"):
        return "CRAM"
    # A BAM is BGZF: a gzip member whose inflated bytes start with BAM\1.
    if not head.startswith(b"\x1f\x8b\x08\x04"):
        return None
    try:
        inflated = zlib.decompressobj(wbits=31).decompress(head, 4)
    except zlib.error:
        return None
    return "BAM" if inflated == b"BAM\x01" else None


def _alignment_index(path: pathlib.Path, file_format: str) -> pathlib.Path | None:
    stem = path.name.rsplit(".", 1)[0]
    for pattern in ALIGNMENT_INDEX_SUFFIXES[file_format]:
        index = path.with_name(pattern.format(name=path.name, stem=stem))
        if index.is_file():
            return index
    return None
