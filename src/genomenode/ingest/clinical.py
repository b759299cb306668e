"""Clinical records: Phenopackets v2, Beacon v2 individuals or CSV, read into one shape.

Each reader yields :class:`ClinicalRecord` objects and raises
:class:`~genomenode.errors.ClinicalDataError` naming the file, the record (line or
index) and the field. ``record`` keeps the individual in the Beacon v2 default-model
shape, which the Beacon API returns at record granularity.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import pathlib
import re
from collections.abc import Callable, Iterator
from typing import Any

from google.protobuf import json_format
from phenopackets import Phenopacket

from ..dataset import ClinicalSource
from ..errors import ClinicalDataError, InputError

__all__ = [
    "KNOWN_PREFIXES",
    "ClinicalRecord",
    "read_clinical",
    "read_records",
    "write_records",
]

# Ontologies and code systems whose terms genomenode accepts in clinical data.
KNOWN_PREFIXES = frozenset(
    {
        "DOID", "ECO", "EFO", "GAZ", "GENO", "HANCESTRO", "HP", "ICD10", "ICD10CM",
        "LOINC", "MONDO", "NCIT", "OBI", "OMIM", "OPCS4", "ORPHA", "SNOMEDCT",
        "UBERON", "UCUM",
    }
)  # fmt: skip
_TERM = re.compile(r"^([A-Za-z][A-Za-z0-9_]*):(\S+)$")
_ISO_AGE = re.compile(
    r"^P(?:(\d+(?:\.\d+)?)Y)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+)W)?(?:(\d+)D)?$"
)

SEX_TERMS = {
    "male": ("NCIT:C20197", "male"),
    "female": ("NCIT:C16576", "female"),
    "other": ("NCIT:C45908", "intersex"),
    "unknown": ("NCIT:C17998", "unknown"),
}
_PHENOPACKET_SEX = {
    "MALE": "male",
    "FEMALE": "female",
    "OTHER_SEX": "other",
    "UNKNOWN_SEX": "unknown",
}
# The subject's sex enum by number, as the names above.
_SEX_NAMES = {
    value.number: value.name
    for value in Phenopacket.DESCRIPTOR.fields_by_name["subject"]
    .message_type.fields_by_name["sex"]
    .enum_type.values
}
_SEX_WORDS = {
    "m": "male", "male": "male", "ncit:c20197": "male",
    "f": "female", "female": "female", "ncit:c16576": "female",
    "other": "other", "intersex": "other", "ncit:c45908": "other",
    "": "unknown", "u": "unknown", "unknown": "unknown", "ncit:c17998": "unknown",
}  # fmt: skip


@dataclasses.dataclass
class ClinicalRecord:
    """One individual's clinical data, whatever format it came in."""

    id: str
    sex_id: str
    sex_label: str
    age_years: float | None = None
    country_of_birth: str | None = None
    ethnicity: tuple[str, str] | None = None
    geographic_origin: tuple[str, str] | None = None
    # (term id, label, excluded)
    phenotypic_features: list[tuple[str, str, bool]] = dataclasses.field(
        default_factory=list
    )
    diseases: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    # (assay id, assay label, value, unit id, unit label)
    measures: list[tuple[str, str, float | None, str | None, str | None]] = (
        dataclasses.field(default_factory=list)
    )
    record: dict[str, Any] = dataclasses.field(default_factory=dict)


#: ``map_chunks(function, [(args, ...), ...])``: ``function`` applied to each
#: tuple, maybe in worker processes, the results in order (workers.run_tasks).
MapChunks = Callable[[Callable[..., Any], list[tuple[Any, ...]]], list[Any]]

# Phenopacket files a task parses when a directory is parsed in workers: ~0.4 ms
# a packet, so ~0.2 s a task, and 20,000 packets make 40 tasks to balance.
_FILES_PER_TASK = 500


def read_clinical(
    source: ClinicalSource, *, map_chunks: MapChunks | None = None
) -> Iterator[ClinicalRecord]:
    """Every clinical record of ``source``, validated, in file order.

    With ``map_chunks``, a directory of Phenopackets is parsed in chunks of files
    through it (the ingest's worker processes): protobuf's JSON parser is most of
    an ingest's serial time at 20,000 individuals. The records and the first
    error are the same either way.
    """
    if source.format == "phenopackets":
        if map_chunks is not None and source.path.is_dir():
            yield from _read_phenopacket_directory(source.path, map_chunks)
        else:
            yield from _read_phenopackets(source.path)
    elif source.format == "beacon-individuals":
        yield from _read_beacon_individuals(source.path)
    else:
        yield from _read_csv(source)


_TUPLE_FIELDS = ("ethnicity", "geographic_origin")
_TUPLE_LIST_FIELDS = ("phenotypic_features", "diseases", "measures")


def write_records(
    records: Iterator[ClinicalRecord], path: pathlib.Path
) -> Iterator[ClinicalRecord]:
    """Pass ``records`` through, writing each as a JSON line to ``path``.

    The file appears (by a rename) only once every record was read and
    validated; :func:`read_records` reads it back. Parsing Phenopackets is the
    costly part of reading clinical data (protobuf's JSON parser, ~0.5 ms per
    packet), and an ingest needs the records twice: to validate, and to load.
    """
    partial = path.with_name(path.name + ".part")
    with open(partial, "w") as out:
        for record in records:
            # The same JSON as dataclasses.asdict gives (fields in order, tuples
            # as lists), without its deep copy of every record: a quarter of the
            # clinical step's CPU at 20,000 Phenopackets.
            out.write(json.dumps(_fields(record)) + "\n")
            yield record
    partial.replace(path)


def _fields(record: ClinicalRecord) -> dict[str, Any]:
    return {
        field.name: getattr(record, field.name) for field in dataclasses.fields(record)
    }


def read_records(path: pathlib.Path) -> Iterator[ClinicalRecord]:
    """The records :func:`write_records` wrote, as they were."""
    with open(path) as lines:
        for line in lines:
            fields = json.loads(line)
            for name in _TUPLE_FIELDS:
                if fields[name] is not None:
                    fields[name] = tuple(fields[name])
            for name in _TUPLE_LIST_FIELDS:
                fields[name] = [tuple(item) for item in fields[name]]
            yield ClinicalRecord(**fields)


class _Where:
    """The place of a record, for error messages."""

    def __init__(self, path: pathlib.Path, line: int | None = None, record: str = ""):
        self.path = path
        self.line = line
        self.record = record

    def fail(self, field: str, message: str) -> ClinicalDataError:
        return ClinicalDataError(
            f"{self.record}: {message}" if self.record else message,
            path=self.path,
            line=self.line,
            field=field,
        )

    def objects(
        self, document: dict[str, Any], key: str
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """(index, item) of a list of JSON objects under ``key`` (may be absent)."""
        items = document.get(key, [])
        if not isinstance(items, list):
            raise self.fail(key, "expected a list")
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise self.fail(f"{key}[{index}]", "expected an object")
            yield index, item

    def term(self, value: Any, field: str) -> tuple[str, str]:
        """An ontology term {id, label} with a known prefix."""
        if not isinstance(value, dict) or not isinstance(value.get("id"), str):
            raise self.fail(field, "expected an ontology term {id: PREFIX:CODE, label}")
        term_id = value["id"].strip()
        match = _TERM.match(term_id)
        if match is None:
            raise self.fail(field + ".id", f"{term_id!r} is not a PREFIX:CODE term")
        if match.group(1) not in KNOWN_PREFIXES:
            raise self.fail(
                field + ".id",
                f"unknown ontology prefix {match.group(1)!r} in {term_id!r} "
                f"(known: {', '.join(sorted(KNOWN_PREFIXES))})",
            )
        label = value.get("label")
        return term_id, str(label) if label is not None else term_id


def _directory_files(path: pathlib.Path) -> list[pathlib.Path]:
    files = sorted(path.glob("*.json"))
    if not files:
        raise ClinicalDataError("no *.json files in the directory", path=path)
    return files


def _json_files(path: pathlib.Path) -> Iterator[tuple[pathlib.Path, int | None, str]]:
    """(file, line, text) of each JSON document in a directory or JSONL file."""
    if path.is_dir():
        for file in _directory_files(path):
            yield file, None, file.read_text()
    else:
        with open(path) as lines:
            for number, line in enumerate(lines, 1):
                if line.strip():
                    yield path, number, line


def _term_of(message: Any, field: str) -> dict[str, str] | None:
    """A set ontology-class field as the mapping :meth:`_Where.term` checks
    (empty strings left out, as in the packet's JSON); None when unset."""
    if not message.HasField(field):
        return None
    term = getattr(message, field)
    return {
        key: value for key, value in (("id", term.id), ("label", term.label)) if value
    }


def _read_phenopackets(path: pathlib.Path) -> Iterator[ClinicalRecord]:
    for file, line, text in _json_files(path):
        yield _phenopacket_record(file, line, text)


def parse_phenopacket_files(
    files: list[str],
) -> tuple[list[ClinicalRecord], tuple[Any, ...] | None]:
    """The records of these Phenopacket files, in order, and the first problem
    as ``(error class, message, path, line, field)`` instead of raising it (an
    error pickled back from a worker keeps only its text)."""
    records = []
    for name in files:
        file = pathlib.Path(name)
        try:
            records.append(_phenopacket_record(file, None, file.read_text()))
        except InputError as error:
            problem = (type(error), error.message, error.path, error.line, error.field)
            return records, problem
    return records, None


def _read_phenopacket_directory(
    path: pathlib.Path, map_chunks: MapChunks
) -> Iterator[ClinicalRecord]:
    files = [str(file) for file in _directory_files(path)]
    if len(files) < 2 * _FILES_PER_TASK:
        # Too few to gain from workers: parsed here, from the same listing.
        results = [parse_phenopacket_files(files)]
    else:
        chunks = [
            (files[start : start + _FILES_PER_TASK],)
            for start in range(0, len(files), _FILES_PER_TASK)
        ]
        results = map_chunks(parse_phenopacket_files, chunks)
    for records, problem in results:
        yield from records
        if problem is not None:
            kind, message, where, line, field = problem
            raise kind(message, path=where, line=line, field=field)


def _phenopacket_record(
    file: pathlib.Path, line: int | None, text: str
) -> ClinicalRecord:
    # Fields are read from the parsed message: turning it back into a dict
    # (json_format.MessageToDict) cost 40 % more than parsing it.
    where = _Where(file, line)
    try:
        packet = json_format.Parse(text, Phenopacket())
    except json_format.ParseError as error:
        raise ClinicalDataError(
            f"not a valid Phenopacket v2: {error}", path=file, line=line
        ) from None
    subject = packet.subject
    if not subject.id:
        raise where.fail("subject.id", "a phenopacket needs a subject with an id")
    where.record = f"subject {subject.id}"
    sex = _PHENOPACKET_SEX[_SEX_NAMES[subject.sex]]
    age = None
    duration = subject.time_at_last_encounter.age.iso8601duration
    if duration:
        age = _iso_age_years(duration, where)
    features = []
    for index, feature in enumerate(packet.phenotypic_features):
        term = where.term(
            _term_of(feature, "type"), f"phenotypicFeatures[{index}].type"
        )
        features.append((*term, bool(feature.excluded)))
    diseases = []
    for index, disease in enumerate(packet.diseases):
        if disease.excluded:
            continue
        diseases.append(
            where.term(_term_of(disease, "term"), f"diseases[{index}].term")
        )
    measures = []
    for index, measurement in enumerate(packet.measurements):
        field = f"measurements[{index}]"
        assay = where.term(_term_of(measurement, "assay"), field + ".assay")
        value = unit = None
        if measurement.HasField("value") and measurement.value.HasField("quantity"):
            quantity = measurement.value.quantity
            value = float(quantity.value)
            unit = where.term(
                _term_of(quantity, "unit"), field + ".value.quantity.unit"
            )
        measures.append((*assay, value, *(unit or (None, None))))
    return _record(
        str(subject.id),
        sex,
        age_years=age,
        phenotypic_features=features,
        diseases=diseases,
        measures=measures,
    )


def _read_beacon_individuals(path: pathlib.Path) -> Iterator[ClinicalRecord]:
    if path.is_dir() or path.suffix == ".jsonl":
        documents = (
            (_Where(file, line), _load_json(text, file, line))
            for file, line, text in _json_files(path)
        )
    else:
        loaded = _load_json(path.read_text(), path, None)
        if not isinstance(loaded, list):
            raise ClinicalDataError("expected a JSON list of individuals", path=path)
        documents = (
            (_Where(path, None, f"record [{index}]"), item)
            for index, item in enumerate(loaded)
        )
    for where, individual in documents:
        if not isinstance(individual, dict) or not individual.get("id"):
            raise where.fail("id", "an individual needs an id")
        where.record = f"{where.record} (individual {individual['id']})".strip()
        sex_id, _ = where.term(individual.get("sex"), "sex")
        sex = _SEX_WORDS.get(sex_id.lower())
        if sex is None:
            raise where.fail("sex.id", f"{sex_id!r} is not a sex term genomenode knows")
        features = []
        for index, feature in where.objects(individual, "phenotypicFeatures"):
            term = where.term(
                feature.get("featureType"), f"phenotypicFeatures[{index}].featureType"
            )
            features.append((*term, bool(feature.get("excluded", False))))
        diseases = [
            where.term(disease.get("diseaseCode"), f"diseases[{index}].diseaseCode")
            for index, disease in where.objects(individual, "diseases")
        ]
        measures = []
        for index, measure in where.objects(individual, "measures"):
            field = f"measures[{index}]"
            assay = where.term(measure.get("assayCode"), field + ".assayCode")
            quantity = measure.get("measurementValue", {})
            value = quantity.get("value") if isinstance(quantity, dict) else None
            if value is not None and not isinstance(value, int | float):
                raise where.fail(field + ".measurementValue.value", "must be a number")
            unit = None
            if isinstance(quantity, dict) and "unit" in quantity:
                unit = where.term(quantity["unit"], field + ".measurementValue.unit")
            measures.append(
                (
                    *assay,
                    None if value is None else float(value),
                    *(unit or (None, None)),
                )
            )
        record = _record(
            str(individual["id"]),
            sex,
            phenotypic_features=features,
            diseases=diseases,
            measures=measures,
        )
        for key in ("ethnicity", "geographicOrigin"):
            if key in individual:
                term = where.term(individual[key], key)
                record.record[key] = {"id": term[0], "label": term[1]}
        record.ethnicity = _pair(record.record.get("ethnicity"))
        record.geographic_origin = _pair(record.record.get("geographicOrigin"))
        for key in ("interventionsOrProcedures", "treatments", "exposures"):
            if key in individual:
                record.record[key] = individual[key]
        yield record


def _read_csv(source: ClinicalSource) -> Iterator[ClinicalRecord]:
    columns = source.columns
    with open(source.path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [
            column
            for column in columns.values()
            if column not in (reader.fieldnames or [])
        ]
        if missing:
            raise ClinicalDataError(
                f"columns {missing} named in dataset.yaml are not in the header",
                path=source.path,
                line=1,
            )
        for row in reader:
            where = _Where(source.path, reader.line_num)
            if None in row or None in row.values():
                # DictReader files surplus cells under None, missing ones as None.
                raise ClinicalDataError(
                    "the row has a different number of cells than the header "
                    f"({len(reader.fieldnames or [])})",
                    path=source.path,
                    line=reader.line_num,
                )
            sample_id = row[columns["id"]].strip()
            if not sample_id:
                raise where.fail(columns["id"], "empty id")
            sex_text = row[columns["sex"]].strip() if "sex" in columns else ""
            sex = _SEX_WORDS.get(sex_text.lower())
            if sex is None:
                raise where.fail(columns["sex"], f"unknown sex {sex_text!r}")
            age = None
            if row.get(columns.get("age", ""), "").strip():
                try:
                    age = float(row[columns["age"]])
                except ValueError:
                    raise where.fail(columns["age"], "age must be a number") from None
            country = None
            if row.get(columns.get("country_of_birth", ""), "").strip():
                country = row[columns["country_of_birth"]].strip()
                if len(country) != 2 or not country.isalpha():
                    raise where.fail(
                        columns["country_of_birth"], "use ISO 3166-1 alpha-2"
                    )
                country = country.upper()

            def terms(
                key: str, row: dict[str, str] = row, where: _Where = where
            ) -> list[tuple[str, str]]:
                text = row.get(columns.get(key, ""), "") or ""
                return [
                    where.term({"id": item.strip()}, columns[key])
                    for item in text.split(source.list_separator)
                    if item.strip()
                ]

            ethnicity = terms("ethnicity")
            record = _record(
                sample_id,
                sex,
                age_years=age,
                country_of_birth=country,
                phenotypic_features=[(*term, False) for term in terms("phenotypes")],
                diseases=terms("diseases"),
            )
            if ethnicity:
                record.ethnicity = ethnicity[0]
                record.record["ethnicity"] = {
                    "id": ethnicity[0][0],
                    "label": ethnicity[0][1],
                }
            yield record


def _load_json(text: str, path: pathlib.Path, line: int | None) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ClinicalDataError(
            f"not valid JSON: {error.msg} (column {error.colno})",
            path=path,
            line=line if line is not None else error.lineno,
        ) from None


def _iso_age_years(text: str, where: _Where) -> float:
    match = _ISO_AGE.match(text)
    if match is None or not any(match.groups()):
        raise where.fail(
            "subject.timeAtLastEncounter.age.iso8601duration",
            f"{text!r} is not an ISO 8601 duration such as P45Y",
        )
    years, months, weeks, days = (float(group or 0) for group in match.groups())
    return round(years + months / 12 + weeks * 7 / 365.25 + days / 365.25, 4)


def _pair(term: dict[str, str] | None) -> tuple[str, str] | None:
    return None if term is None else (term["id"], term["label"])


def _record(
    individual_id: str,
    sex: str,
    *,
    age_years: float | None = None,
    country_of_birth: str | None = None,
    phenotypic_features: list[tuple[str, str, bool]],
    diseases: list[tuple[str, str]],
    measures: list[tuple[str, str, float | None, str | None, str | None]] | None = None,
) -> ClinicalRecord:
    """A record plus its Beacon v2 individual document."""
    sex_id, sex_label = SEX_TERMS[sex]
    measures = measures or []
    document: dict[str, Any] = {
        "id": individual_id,
        "sex": {"id": sex_id, "label": sex_label},
    }
    if phenotypic_features:
        document["phenotypicFeatures"] = [
            {
                "featureType": {"id": term, "label": label},
                **({"excluded": True} if excluded else {}),
            }
            for term, label, excluded in phenotypic_features
        ]
    if diseases:
        document["diseases"] = [
            {"diseaseCode": {"id": term, "label": label}} for term, label in diseases
        ]
    if measures:
        document["measures"] = [
            {
                "assayCode": {"id": assay, "label": assay_label},
                "measurementValue": {
                    "value": value,
                    **({"unit": {"id": unit, "label": unit_label}} if unit else {}),
                },
            }
            for assay, assay_label, value, unit, unit_label in measures
            if value is not None
        ]
    return ClinicalRecord(
        id=individual_id,
        sex_id=sex_id,
        sex_label=sex_label,
        age_years=age_years,
        country_of_birth=country_of_birth,
        phenotypic_features=phenotypic_features,
        diseases=diseases,
        measures=measures,
        record=document,
    )
