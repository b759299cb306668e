"""Beacon v2 default-model records built from the node's store.

Each builder takes a dataset and one page of keys (from :mod:`.engine`) and returns
the records, in key order, exactly as the entity schemas under
``genomenode/beacon/schemas/models`` define them.

What the node does not know it does not invent: a joint-called VCF carries no
sequencing run date, so runs and analyses carry the date the dataset was ingested
and say so in ``info``; biosamples carry "Unknown" status (NCIT:C17998) unless the
clinical source said more.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy import select

from ..access import Caller, caller_kind
from ..store.models import Individual
from ..store.published import PublishedDataset
from ..vocab.contigs import refseq_accession
from .engine import parse_variant_id, per_biosample_id, variant_id

__all__ = ["DUO_VERSION", "build_records"]

DUO_VERSION = "genomenode data/duo.csv"
_UNKNOWN = {"id": "NCIT:C17998", "label": "Unknown"}
_SPECIMEN = {"id": "OBI:0001479", "label": "specimen from organism"}
_ZYGOSITY = {
    "heterozygous": {"id": "GENO:0000135", "label": "heterozygous"},
    "homozygous": {"id": "GENO:0000136", "label": "homozygous"},
    "hemizygous": {"id": "GENO:0000134", "label": "hemizygous"},
}
_GENOME_OF_EUROPE = "https://genomeofeurope.eu/"


def _date(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    return dt.date.today().isoformat()


def _datetime(value: Any) -> str:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.isoformat(timespec="seconds")
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _individuals(
    handle: PublishedDataset, keys: Sequence[object]
) -> list[dict[str, Any]]:
    wanted = [str(key) for key in keys]
    with handle.node.session() as session:
        rows = session.execute(
            select(Individual.id, Individual.record).where(
                Individual.dataset_id == handle.id, Individual.id.in_(wanted)
            )
        ).all()
    by_id = {row[0]: dict(row[1]) for row in rows}
    return [by_id[key] for key in wanted if key in by_id]


def _biosample(handle: PublishedDataset, key: str) -> dict[str, Any]:
    return {
        "id": key,
        "individualId": key,
        "biosampleStatus": dict(_UNKNOWN),
        "sampleOriginType": dict(_SPECIMEN),
    }


def _run(handle: PublishedDataset, key: str) -> dict[str, Any]:
    return {
        "id": per_biosample_id("runs", key),
        "biosampleId": key,
        "individualId": key,
        "runDate": _date(handle.facts.created_at),
        "info": {"runDate": "date the dataset was ingested; the run date is unknown"},
    }


def _analysis(handle: PublishedDataset, key: str) -> dict[str, Any]:
    return {
        "id": per_biosample_id("analyses", key),
        "runId": per_biosample_id("runs", key),
        "biosampleId": key,
        "individualId": key,
        "analysisDate": _date(handle.facts.created_at),
        "pipelineName": f"joint-called genotypes of dataset {handle.id}",
        "info": {
            "analysisDate": "date the dataset was ingested; the calling date is unknown"
        },
    }


def _dataset(handle: PublishedDataset) -> dict[str, Any]:
    facts = handle.facts
    duo = []
    for term in handle.data_use:
        item: dict[str, Any] = {
            "id": term["id"],
            "label": term["label"],
            "version": DUO_VERSION,
        }
        if term["disease"]:
            item["modifiers"] = [{"id": term["disease"]}]
        duo.append(item)
    document: dict[str, Any] = {
        "id": facts.id,
        "name": facts.name,
        "description": facts.description,
        "createDateTime": _datetime(facts.created_at),
        "updateDateTime": _datetime(facts.published_at or facts.created_at),
        "info": {
            "securityLevel": facts.security_level,
            "country": facts.country,
            "assemblyId": facts.assembly,
        },
    }
    if duo:
        document["dataUseConditions"] = {"duoDataUse": duo}
    return document


def _cohort(handle: PublishedDataset) -> dict[str, Any]:
    facts = handle.facts
    return {
        "id": facts.id,
        "name": facts.name,
        "cohortType": "study-defined",
        "cohortSize": facts.num_individuals,
        "cohortDataTypes": [
            {"id": "OGMS:0000015", "label": "clinical history"},
            {"id": "OBI:0000070", "label": "genotyping assay"},
        ],
        "info": {"datasetId": facts.id, "country": facts.country},
    }


def _frequencies(
    handle: PublishedDataset, row: int, allele: int
) -> list[dict[str, Any]]:
    # A sex other than male or female (``FI_U``) counts towards its country only.
    groups, names = handle.population_groups
    counts = handle.store.population_counts(row, allele, groups, len(names))
    totals: dict[str, np.ndarray] = {}

    def add(population: str, index: int) -> None:
        values = np.array(
            [
                counts.allele_count[index],
                counts.allele_total[index],
                counts.allele_count_hom[index],
                counts.allele_count_het[index],
                counts.allele_count_hemi[index],
            ],
            dtype=np.int64,
        )
        totals[population] = totals.get(population, 0) + values

    for index, name in enumerate(names):
        country, sex = name.split("_")
        add(country, index)
        if sex in ("M", "F"):
            add(name, index)
            add(sex, index)
    frequencies = []
    for population in sorted(totals, key=lambda name: (len(name) == 1, name)):
        count, number, hom, het, hemi = (int(value) for value in totals[population])
        frequencies.append(
            {
                "population": population,
                "alleleFrequency": count / number if number else 0.0,
                "alleleCount": count,
                "alleleNumber": number,
                "alleleCountHomozygous": hom,
                "alleleCountHeterozygous": het,
                "alleleCountHemizygous": hemi,
            }
        )
    return frequencies


def _site_frequencies(
    handle: PublishedDataset, row: int, allele: int
) -> list[dict[str, Any]]:
    """A sites-only dataset's frequencies, as its INFO fields gave them; the whole
    dataset is named by its country, as for a cohort."""
    assert handle.site_counts is not None
    frequencies = []
    for counts in handle.site_counts.frequencies(row, allele):
        frequency: dict[str, Any] = {
            "population": counts.population or handle.facts.country,
            "alleleFrequency": counts.count / counts.total if counts.total else 0.0,
            "alleleCount": counts.count,
            "alleleNumber": counts.total,
        }
        for key, value in (
            ("alleleCountHomozygous", counts.hom),
            ("alleleCountHeterozygous", counts.het),
            ("alleleCountHemizygous", counts.hemi),
        ):
            if value is not None:
                frequency[key] = value
        frequencies.append(frequency)
    return frequencies


def _sequence_id(handle: PublishedDataset, contig: str) -> str:
    """A CURIE for the reference sequence of ``contig`` (RefSeq when known)."""
    accession = refseq_accession(handle.facts.assembly, contig)
    if accession is not None:
        return f"refseq:{accession}"
    return f"{handle.facts.assembly}:{contig}"


def _hgvs_id(
    handle: PublishedDataset, contig: str, position: int, reference: str, alternate: str
) -> str | None:
    """Genomic HGVS of a simple substitution on a RefSeq chromosome, else None."""
    accession = refseq_accession(handle.facts.assembly, contig)
    if accession is None or len(reference) != 1 or len(alternate) != 1:
        return None
    return f"{accession}:g.{position}{reference}>{alternate}"


def _variation(
    handle: PublishedDataset, contig: str, position: int, reference: str, alternate: str
) -> dict[str, Any]:
    sequence = _sequence_id(handle, contig)
    return {
        "type": "Allele",
        "location": {
            "type": "SequenceLocation",
            "sequence_id": sequence,
            "interval": {
                "type": "SequenceInterval",
                "start": {"type": "Number", "value": position - 1},
                "end": {"type": "Number", "value": position - 1 + len(reference)},
            },
        },
        "state": {"type": "LiteralSequenceExpression", "sequence": alternate},
    }


def _variant(
    handle: PublishedDataset, key: tuple[int, int], caller: Caller
) -> dict[str, Any]:
    row, allele = key
    identifier = variant_id(handle, row, allele)
    contig, position, reference, alternate = parse_variant_id(identifier)
    record: dict[str, Any] = {
        "variantInternalId": identifier,
        "variation": _variation(handle, contig, position, reference, alternate),
        "identifiers": {"variantAlternativeIds": [{"id": f"gnomad:{identifier}"}]},
        "frequencyInPopulations": [
            {
                "source": f"genomenode dataset {handle.id}",
                "sourceReference": _GENOME_OF_EUROPE,
                "version": _date(handle.facts.published_at or handle.facts.created_at),
                "frequencies": (
                    _frequencies(handle, row, allele)
                    if handle.site_counts is None
                    else _site_frequencies(handle, row, allele)
                ),
            }
        ],
    }
    hgvs = _hgvs_id(handle, contig, position, reference, alternate)
    if hgvs is not None:
        record["identifiers"]["genomicHGVSId"] = hgvs
    if caller_kind(caller, handle.id) == "granted" and handle.site_counts is None:
        record["caseLevelData"] = _case_level(handle, row, allele)
    return record


def _case_level(
    handle: PublishedDataset, row: int, allele: int
) -> list[dict[str, Any]]:
    calls = handle.store.carrier_calls(row, allele)
    names = handle.sample_individuals
    cases = []
    for sample, zygosity in zip(calls.samples, calls.zygosity(), strict=True):
        name = str(names[sample])
        case: dict[str, Any] = {
            "biosampleId": name,
            "individualId": name,
            "runId": per_biosample_id("runs", name),
            "analysisId": per_biosample_id("analyses", name),
        }
        if zygosity in _ZYGOSITY:
            case["zygosity"] = dict(_ZYGOSITY[zygosity])
        cases.append(case)
    return cases


def build_records(
    entry_type: str,
    handle: PublishedDataset,
    keys: Sequence[object],
    caller: Caller,
) -> list[dict[str, Any]]:
    """The records of one page of keys of one dataset."""
    if entry_type == "individuals":
        return _individuals(handle, keys)
    if entry_type == "g_variants":
        return [_variant(handle, key, caller) for key in keys]  # type: ignore[arg-type]
    builders: Mapping[str, Any] = {
        "biosamples": _biosample,
        "runs": _run,
        "analyses": _analysis,
    }
    if entry_type in builders:
        return [builders[entry_type](handle, str(key)) for key in keys]
    if entry_type == "datasets":
        return [_dataset(handle)]
    if entry_type == "cohorts":
        return [_cohort(handle)]
    raise ValueError(f"unknown entry type {entry_type!r}")
