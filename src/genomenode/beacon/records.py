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
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select

from ..access import Caller, caller_kind
from ..disclosure.control import DisclosureControl
from ..disclosure.settings import DisclosureSettings
from ..reference.release import released_frequencies
from ..reference.service import dataset_counts
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
# The layer's default settings (enabled, the default floor), no database or key:
# the small-count rule needs neither.
_DEFAULT_DISCLOSURE = DisclosureControl(
    DisclosureSettings(), None, pathlib.Path("/nonexistent")
)


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
    handle: PublishedDataset,
    row: int,
    allele: int,
    disclosure: DisclosureControl,
    exact: bool,
) -> list[dict[str, Any]] | None:
    """The dataset's reference numbers of one allele (docs/reference.md): QC-passing
    samples, populations ``<country>``, ``<country>_M|F``, ``M``, ``F`` (and
    ``total`` over several countries), through the node's small-count rule unless
    the caller may see the records anyway. None: the variant failed QC."""
    counts = dataset_counts(handle, row, allele)
    if counts is None:
        return None
    return [
        {
            "population": item.population,
            "alleleFrequency": item.allele_frequency,
            "alleleCount": item.allele_count,
            "alleleNumber": item.allele_number,
            "alleleCountHomozygous": item.allele_count_hom,
            "alleleCountHeterozygous": item.allele_count_het,
            "alleleCountHemizygous": item.allele_count_hemi,
        }
        for item in released_frequencies(counts, disclosure, exact=exact)
    ]


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
    handle: PublishedDataset,
    key: tuple[int, int],
    caller: Caller,
    disclosure: DisclosureControl,
) -> dict[str, Any]:
    row, allele = key
    identifier = variant_id(handle, row, allele)
    contig, position, reference, alternate = parse_variant_id(identifier)
    granted = caller_kind(caller, handle.id) == "granted"
    frequencies = (
        _frequencies(handle, row, allele, disclosure, granted)
        if handle.site_counts is None
        else _site_frequencies(handle, row, allele)
    )
    record: dict[str, Any] = {
        "variantInternalId": identifier,
        "variation": _variation(handle, contig, position, reference, alternate),
        "identifiers": {"variantAlternativeIds": [{"id": f"gnomad:{identifier}"}]},
    }
    if frequencies:
        record["frequencyInPopulations"] = [
            {
                "source": (
                    f"genomenode dataset {handle.id}"
                    if handle.site_counts is not None
                    else f"Genome of Europe reference of genomenode dataset "
                    f"{handle.id} (QC-passing samples; populations: country, "
                    "country_M/_F, M, F, total)"
                ),
                "sourceReference": _GENOME_OF_EUROPE,
                "version": _date(handle.facts.published_at or handle.facts.created_at),
                "frequencies": frequencies,
            }
        ]
    hgvs = _hgvs_id(handle, contig, position, reference, alternate)
    if hgvs is not None:
        record["identifiers"]["genomicHGVSId"] = hgvs
    if granted and handle.site_counts is None:
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
    disclosure: DisclosureControl | None = None,
) -> list[dict[str, Any]]:
    """The records of one page of keys of one dataset.

    ``disclosure``: the node's layer, whose small-count rule the frequencies of
    variants pass (None: its default settings, so nothing escapes the floor).
    """
    if entry_type == "individuals":
        return _individuals(handle, keys)
    if entry_type == "g_variants":
        control = disclosure or _DEFAULT_DISCLOSURE
        return [
            _variant(handle, key, caller, control)  # type: ignore[arg-type]
            for key in keys
        ]
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
