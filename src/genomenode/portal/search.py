"""What the search box understands, and the Beacon answer shaped for the page.

:func:`parse_query` turns the visitor's text into Beacon v2 request parameters:
a variant (``1-1000123-A-G``, ``chr1:1000123:A:G``, ``1 1000123 A G``), a genomic
HGVS expression (``NC_000001.10:g.1000123A>G``), a region (``1:1000000-1001000``)
or a gene symbol (``BRCA2``). :func:`shape_answer` turns the (network's or node's)
answer into what the page shows: each node's status, each dataset's result, and
the allele frequencies per country and sex, pooled over a country's datasets.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import InputError

__all__ = [
    "MAX_QUERY_CHARACTERS",
    "CountryFrequency",
    "DatasetResult",
    "NodeStatus",
    "SearchAnswer",
    "VariantFrequencies",
    "beacon_request",
    "mapping",
    "parse_query",
    "shape_answer",
]

#: The longest search text accepted.
MAX_QUERY_CHARACTERS = 200
#: Records shown per dataset (the Beacon's own page size limits it too).
MAX_RECORDS = 50

_CONTIG = r"(?:chr)?([0-9]{1,2}|X|Y|MT|M)"
_VARIANT = re.compile(
    rf"^{_CONTIG}[-:_\s]+([0-9]{{1,10}})[-:_\s]+([ACGTN]{{1,100}})[-:_>\s]+([ACGTN]{{1,100}})$",
    re.IGNORECASE,
)
_REGION = re.compile(
    rf"^{_CONTIG}:([0-9][0-9,]{{0,12}})-([0-9][0-9,]{{0,12}})$", re.IGNORECASE
)
_HGVS = re.compile(r"^[A-Za-z0-9_.]{1,30}:g\.[0-9]{1,10}[ACGTN]{1,100}>[ACGTN]{1,100}$")
_GENE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,29}$")


def _contig(name: str) -> str:
    name = name.upper()
    return "MT" if name == "M" else name


def parse_query(text: str) -> tuple[str, dict[str, Any]]:
    """``(kind, requestParameters)`` of a search text.

    ``kind`` is ``variant``, ``hgvs``, ``region`` or ``gene``.

    Raises
    ------
    InputError
        The text is empty, too long, or none of the forms (``field="q"``).
    """
    text = text.strip()
    if not text:
        raise InputError("type a variant, region, HGVS expression or gene", field="q")
    if len(text) > MAX_QUERY_CHARACTERS:
        raise InputError(
            f"the search is longer than {MAX_QUERY_CHARACTERS} characters", field="q"
        )
    if match := _VARIANT.match(text):
        contig, position, reference, alternate = match.groups()
        return "variant", {
            "referenceName": _contig(contig),
            "start": [int(position) - 1],
            "referenceBases": reference.upper(),
            "alternateBases": alternate.upper(),
        }
    if _HGVS.match(text):
        return "hgvs", {"genomicAlleleShortForm": text}
    if match := _REGION.match(text):
        contig, start, end = match.groups()
        first, last = int(start.replace(",", "")), int(end.replace(",", ""))
        if first < 1 or last < first:
            raise InputError(
                f"the region's end ({last}) is before its start ({first})", field="q"
            )
        return "region", {
            "referenceName": _contig(contig),
            "start": [first - 1],
            "end": [last],
        }
    if _GENE.match(text):
        return "gene", {"geneId": text.upper()}
    raise InputError(
        f"{text[:60]!r} is not a variant (1-1000123-A-G), HGVS g. expression "
        "(NC_000001.10:g.1000123A>G), region (1:1000000-1001000) or gene (BRCA2)",
        field="q",
    )


def beacon_request(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The Beacon v2 POST body asking for records (each node answers at most what
    it allows the caller) and every dataset's result set."""
    return {
        "meta": {"apiVersion": "2.0"},
        "query": {
            "requestParameters": dict(parameters),
            "requestedGranularity": "record",
            "includeResultsetResponses": "ALL",
            "pagination": {"skip": 0, "limit": MAX_RECORDS},
        },
    }


@dataclasses.dataclass(frozen=True)
class NodeStatus:
    """How one node answered: ``ok``, ``timeout``, ``error``, ``invalid``..."""

    node_id: str
    country: str
    status: str
    latency_ms: float | None
    granularity: str | None
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclasses.dataclass(frozen=True)
class DatasetResult:
    """One dataset's answer."""

    dataset_id: str
    node_id: str
    country: str
    exists: bool | None
    count: int | None
    records: tuple[dict[str, Any], ...]


@dataclasses.dataclass(frozen=True)
class CountryFrequency:
    """A country's (or a country × sex's) allele frequency, pooled over datasets."""

    country: str
    allele_count: int
    allele_number: int
    female: tuple[int, int] | None
    male: tuple[int, int] | None

    @property
    def frequency(self) -> float:
        return self.allele_count / self.allele_number if self.allele_number else 0.0

    @staticmethod
    def of(counts: tuple[int, int] | None) -> float | None:
        if counts is None or not counts[1]:
            return None
        return counts[0] / counts[1]

    @property
    def female_frequency(self) -> float | None:
        return self.of(self.female)

    @property
    def male_frequency(self) -> float | None:
        return self.of(self.male)


@dataclasses.dataclass(frozen=True)
class VariantFrequencies:
    """One variant and its frequency in each country that has it."""

    variant_id: str
    hgvs: str | None
    countries: tuple[CountryFrequency, ...]


@dataclasses.dataclass(frozen=True)
class SearchAnswer:
    """What the result page shows."""

    exists: bool | None
    nodes: tuple[NodeStatus, ...]
    datasets: tuple[DatasetResult, ...]
    variants: tuple[VariantFrequencies, ...]

    @property
    def complete(self) -> bool:
        """Whether every node answered (else the answer is partial, and says so)."""
        return all(node.ok for node in self.nodes)

    @property
    def failed(self) -> tuple[NodeStatus, ...]:
        return tuple(node for node in self.nodes if not node.ok)


def mapping(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (answers are untrusted)."""
    return value if isinstance(value, dict) else {}


def _integer(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def shape_answer(
    document: Mapping[str, Any], nodes: Sequence[NodeStatus]
) -> SearchAnswer:
    """The page's view of a Beacon answer; ``nodes``: each node's status (the
    network's ``info.nodes``, or the node's own)."""
    countries_of = {node.node_id: node.country for node in nodes}
    response = document.get("response")
    result_sets = response.get("resultSets") if isinstance(response, dict) else None
    datasets: list[DatasetResult] = []
    # variant id → country → [ac, an, f_ac, f_an, m_ac, m_an]
    pooled: dict[str, dict[str, list[int]]] = {}
    hgvs: dict[str, str | None] = {}
    for item in result_sets if isinstance(result_sets, list) else []:
        if not isinstance(item, dict):
            continue
        info = mapping(item.get("info"))
        node_id = str(info.get("node") or item.get("beaconId") or "")
        country = str(info.get("country") or countries_of.get(node_id, ""))
        results = item.get("results")
        records = tuple(
            record
            for record in (results if isinstance(results, list) else [])
            if isinstance(record, dict)
        )[:MAX_RECORDS]
        count = item.get("resultsCount")
        datasets.append(
            DatasetResult(
                dataset_id=str(item.get("id", "")),
                node_id=node_id,
                country=country,
                exists=item.get("exists")
                if isinstance(item.get("exists"), bool)
                else None,
                count=count if isinstance(count, int) else None,
                records=records,
            )
        )
        for record in records:
            _pool(record, pooled, hgvs)
    variants = tuple(
        VariantFrequencies(
            variant_id=variant_id,
            hgvs=hgvs.get(variant_id),
            countries=tuple(
                CountryFrequency(
                    country=country,
                    allele_count=counts[0],
                    allele_number=counts[1],
                    female=(counts[2], counts[3]) if counts[3] else None,
                    male=(counts[4], counts[5]) if counts[5] else None,
                )
                for country, counts in sorted(by_country.items())
            ),
        )
        for variant_id, by_country in pooled.items()
    )
    summary = document.get("responseSummary")
    exists = summary.get("exists") if isinstance(summary, dict) else None
    return SearchAnswer(
        exists=exists if isinstance(exists, bool) else None,
        nodes=tuple(nodes),
        datasets=tuple(datasets),
        variants=variants,
    )


def _pool(
    record: Mapping[str, Any],
    pooled: dict[str, dict[str, list[int]]],
    hgvs: dict[str, str | None],
) -> None:
    """Adds a record's per-country (and per-sex) counts to ``pooled``."""
    variant_id = record.get("variantInternalId")
    if not isinstance(variant_id, str):
        return
    identifiers = record.get("identifiers")
    if isinstance(identifiers, dict):
        hgvs.setdefault(variant_id, identifiers.get("genomicHGVSId"))
    by_country = pooled.setdefault(variant_id, {})
    sources = record.get("frequencyInPopulations")
    for source in sources if isinstance(sources, list) else []:
        frequencies = source.get("frequencies") if isinstance(source, dict) else None
        for row in frequencies if isinstance(frequencies, list) else []:
            if not isinstance(row, dict):
                continue
            population = str(row.get("population", ""))
            count, number = (
                _integer(row.get("alleleCount")),
                _integer(row.get("alleleNumber")),
            )
            country, _, sex = population.partition("_")
            if len(country) != 2 or not country.isalpha() or sex not in ("", "M", "F"):
                continue  # "M" and "F" alone are the sexes over all countries
            totals = by_country.setdefault(country, [0, 0, 0, 0, 0, 0])
            offset = {"": 0, "F": 2, "M": 4}[sex]
            totals[offset] += count
            totals[offset + 1] += number
