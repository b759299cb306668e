"""The network's catalogue: harvest the registered nodes' DCAT catalogues, search them.

A :class:`Harvester` fetches ``<node>/catalogue/datasets`` (JSON-LD) from every
registered node at once, each with its own timeout, and keeps one graph per node.
A node may describe only its own datasets: a ``dcat:Dataset`` whose IRI is not
under the node's registered base URL is dropped, and of the rest only what is
reachable from them through blank nodes or IRIs under that base URL is kept, so a
node can neither add datasets to another's catalogue nor say things about them. A
harvest that fails keeps the node's previous graph.

An on-demand harvest (``POST /catalogue/harvest``, :mod:`genomenode.catalogue.http`)
makes the network fetch and parse every node's catalogue, so not anyone may ask for
it at will: with an operator token configured only a caller presenting it
(``Authorization: Bearer <token>``, compared in constant time) may; without one,
anyone may, at most once per ``UNAUTHENTICATED_HARVEST_INTERVAL_SECONDS`` (per
process).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal
from urllib.parse import quote

import httpx2
from rdflib import BNode, Graph, URIRef
from rdflib import Literal as RdfLiteral
from rdflib.namespace import DCAT, DCTERMS, RDF
from rdflib.term import Node as RdfNode

from .dcat import (
    COUNTRY_ISO3,
    DISEASE_IRI_PREFIXES,
    DPV,
    EU_COUNTRY,
    HEALTHDCATAP,
    JSONLD_CONTEXT,
    OBO,
    SERVICE_SPECIFICATIONS,
    parse_jsonld,
)

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "UNAUTHENTICATED_HARVEST_INTERVAL_SECONDS",
    "CatalogueSource",
    "HarvestOutcome",
    "HarvestStatus",
    "Harvester",
]

_log = logging.getLogger(__name__)

#: A catalogue larger than this is refused (``invalid``) rather than parsed.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
#: Without an operator token, on-demand harvests are this far apart at least.
UNAUTHENTICATED_HARVEST_INTERVAL_SECONDS = 60.0

HarvestOutcome = Literal["ok", "timeout", "error", "invalid"]

_ISO2_OF_COUNTRY_IRI = {
    str(EU_COUNTRY[iso3]): iso2 for iso2, iso3 in COUNTRY_ISO3.items()
}
_SERVICE_OF_SPECIFICATION = {
    str(iri): name for name, iri in SERVICE_SPECIFICATIONS.items()
}
_DUO_IRI_PREFIX = str(OBO) + "DUO_"


@dataclasses.dataclass(frozen=True)
class CatalogueSource:
    """A registered node whose catalogue the network harvests.

    Parameters
    ----------
    node_id
        The node's identifier in the network registry.
    country
        The node's ISO 3166-1 alpha-2 country code.
    url
        The node's base URL (its catalogue is at ``<url>/catalogue/datasets``);
        only datasets under it are accepted from the node.
    """

    node_id: str
    country: str
    url: str

    @property
    def catalogue_url(self) -> str:
        return f"{self.url.rstrip('/')}/catalogue/datasets"

    @property
    def iri_prefix(self) -> str:
        # With the slash: https://a.example must not own https://a.example.evil.
        return self.url.rstrip("/") + "/"


@dataclasses.dataclass(frozen=True)
class HarvestStatus:
    """How the last harvest of one node went.

    ``num_datasets`` counts the datasets now held for the node (the previous ones
    if this harvest failed); ``num_rejected`` those of the last document refused
    for being outside the node's base URL.
    """

    node_id: str
    status: HarvestOutcome
    reason: str
    num_datasets: int
    num_rejected: int
    attempted_at: dt.datetime
    succeeded_at: dt.datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "status": self.status,
            "reason": self.reason,
            "num_datasets": self.num_datasets,
            "num_rejected": self.num_rejected,
            "attempted_at": self.attempted_at.isoformat(timespec="seconds"),
            "succeeded_at": (
                self.succeeded_at.isoformat(timespec="seconds")
                if self.succeeded_at
                else None
            ),
        }


class _HarvestFailure(Exception):
    def __init__(self, status: HarvestOutcome, reason: str) -> None:
        super().__init__(reason)
        self.status: HarvestOutcome = status
        self.reason = reason


def _remote_context(document: Any) -> bool:
    """Whether a JSON-LD document names a context by URL anywhere in it.

    rdflib would fetch it: a harvested node must not make the network fetch URLs.
    """
    if isinstance(document, list):
        return any(_remote_context(item) for item in document)
    if not isinstance(document, dict):
        return False
    for key, value in document.items():
        if key == "@context":
            contexts = value if isinstance(value, list) else [value]
            for context in contexts:
                if isinstance(context, str):
                    return True
                if isinstance(context, dict) and "@import" in context:
                    return True
        if _remote_context(value):
            return True
    return False


def _parse_catalogue(text: str, base_url: str) -> Graph:
    try:
        document = json.loads(text)
    except ValueError as error:
        raise _HarvestFailure("invalid", f"not JSON: {error}") from None
    if not isinstance(document, dict | list):
        raise _HarvestFailure("invalid", "not a JSON-LD document (object or array)")
    if _remote_context(document):
        raise _HarvestFailure(
            "invalid", "the document refers to a remote @context; inline it"
        )
    try:
        return parse_jsonld(document, base_url)
    except Exception as error:  # rdflib raises many kinds on bad JSON-LD
        raise _HarvestFailure("invalid", f"not valid JSON-LD: {error}") from None


def own_datasets(graph: Graph, source: CatalogueSource) -> tuple[Graph, int]:
    """The part of a node's document the node may say: its datasets and what they
    reach through blank nodes or IRIs under the node's base URL.

    Returns
    -------
    (rdflib.Graph, int)
        The kept graph, and the number of ``dcat:Dataset`` resources refused.
    """
    prefix = source.iri_prefix
    datasets = set(graph.subjects(RDF.type, DCAT.Dataset))
    accepted = [
        subject
        for subject in datasets
        if isinstance(subject, URIRef) and str(subject).startswith(prefix)
    ]
    kept = Graph()
    for name, namespace in JSONLD_CONTEXT.items():
        kept.bind(name, namespace)
    seen: set[RdfNode] = set()
    pending: list[RdfNode] = list(accepted)
    while pending:
        subject = pending.pop()
        if subject in seen:
            continue
        seen.add(subject)
        for _, predicate, value in graph.triples((subject, None, None)):
            kept.add((subject, predicate, value))
            if isinstance(value, BNode) or (
                isinstance(value, URIRef) and str(value).startswith(prefix)
            ):
                pending.append(value)
    return kept, len(datasets) - len(accepted)


def _curie_of_duo(value: RdfNode) -> str | None:
    text = str(value)
    if isinstance(value, URIRef) and text.startswith(_DUO_IRI_PREFIX):
        return "DUO:" + text[len(_DUO_IRI_PREFIX) :]
    return None


def _normalise_duo(term: str) -> str:
    """``DUO:0000042``, ``DUO_0000042`` or the OBO IRI → ``DUO:0000042``."""
    term = term.strip()
    if term.startswith(_DUO_IRI_PREFIX):
        return "DUO:" + term[len(_DUO_IRI_PREFIX) :]
    return term.upper().replace("_", ":", 1)


def _curie_of_disease(value: RdfNode) -> str:
    text = str(value)
    if isinstance(value, URIRef):
        # Longest base first: ICD10CM's IRI is not a prefix of ICD10's, but be sure.
        for prefix, base in sorted(
            DISEASE_IRI_PREFIXES.items(), key=lambda item: -len(item[1])
        ):
            if text.startswith(base):
                return f"{prefix}:{text[len(base) :]}"
    return text


def _text(graph: Graph, subject: RdfNode, predicate: URIRef) -> str | None:
    value = graph.value(subject, predicate)
    return str(value) if value is not None else None


def _describe(graph: Graph, subject: URIRef, source: CatalogueSource) -> dict[str, Any]:
    """One harvested dataset as a plain JSON mapping."""
    identifier = _text(graph, subject, DCTERMS.identifier) or str(subject)
    spatial = graph.value(subject, DCTERMS.spatial)
    country = _ISO2_OF_COUNTRY_IRI.get(str(spatial)) if spatial is not None else None
    access_rights = graph.value(subject, DCTERMS.accessRights)
    individuals = graph.value(subject, HEALTHDCATAP.numberOfUniqueIndividuals)
    num_individuals = None
    if isinstance(individuals, RdfLiteral):
        try:
            num_individuals = int(str(individuals))
        except ValueError:
            num_individuals = None
    duo = sorted(
        {
            curie
            for predicate in (DCTERMS.conformsTo, DPV.hasPurpose)
            for value in graph.objects(subject, predicate)
            if (curie := _curie_of_duo(value)) is not None
        }
    )
    diseases = sorted(
        _curie_of_disease(value)
        for value in graph.objects(subject, HEALTHDCATAP.healthTheme)
    )
    urls: dict[str, str] = {"catalogue": str(subject)}
    landing_page = graph.value(subject, DCAT.landingPage)
    if landing_page is not None:
        urls["access"] = str(landing_page)
    bundle_suffix = "/objects/" + quote(identifier, safe="")
    for distribution in graph.objects(subject, DCAT.distribution):
        access_url = graph.value(distribution, DCAT.accessURL)
        service = graph.value(distribution, DCAT.accessService)
        specification = graph.value(service, DCTERMS.conformsTo) if service else None
        name = _SERVICE_OF_SPECIFICATION.get(str(specification))
        if access_url is None or name is None:
            continue
        # The DRS distributions are the dataset's bundle and each of its files;
        # the bundle is the one to list.
        if name == "drs" and not str(access_url).endswith(bundle_suffix):
            continue
        urls[name] = str(access_url)
    return {
        "id": identifier,
        "title": _text(graph, subject, DCTERMS.title),
        "description": _text(graph, subject, DCTERMS.description),
        "node": source.node_id,
        "country": country or source.country.upper(),
        "access_rights": (
            str(access_rights).rsplit("/", 1)[-1] if access_rights is not None else None
        ),
        "num_individuals": num_individuals,
        "duo": duo,
        "diseases": diseases,
        "urls": urls,
    }


class Harvester:
    """Harvests the catalogues of the registered nodes and searches their union.

    Parameters
    ----------
    sources
        The registered nodes.
    timeout_seconds
        How long one node's harvest may take, all of it (connect, read, parse).
    client
        The HTTP client to use (the caller closes it); by default one per harvest.
    max_document_bytes
        A larger catalogue is refused as ``invalid``.
    """

    def __init__(
        self,
        sources: Sequence[CatalogueSource],
        *,
        timeout_seconds: float = 5.0,
        client: httpx2.AsyncClient | None = None,
        max_document_bytes: int = MAX_DOCUMENT_BYTES,
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self.max_document_bytes = max_document_bytes
        self._client = client
        self._sources: dict[str, CatalogueSource] = {}
        self._graphs: dict[str, Graph] = {}
        self._statuses: dict[str, HarvestStatus] = {}
        # One harvest at a time: a second request waits for the running one.
        self._lock = asyncio.Lock()
        self.set_sources(sources)

    @property
    def sources(self) -> Mapping[str, CatalogueSource]:
        """The registered nodes, by node id."""
        return dict(self._sources)

    def set_sources(self, sources: Sequence[CatalogueSource]) -> None:
        """Replace the registered nodes; a node no longer listed is forgotten."""
        by_id = {source.node_id: source for source in sources}
        for node_id in set(self._graphs) - set(by_id):
            del self._graphs[node_id]
        for node_id, source in by_id.items():
            previous = self._sources.get(node_id)
            # A node that moved keeps nothing published under its old URL.
            if previous is not None and previous.url != source.url:
                self._graphs.pop(node_id, None)
        self._statuses = {
            node_id: status
            for node_id, status in self._statuses.items()
            if node_id in by_id
        }
        self._sources = by_id

    def statuses(self) -> dict[str, HarvestStatus]:
        """How the last harvest of each node went (absent: not harvested yet)."""
        return dict(self._statuses)

    async def harvest(self) -> dict[str, HarvestStatus]:
        """Harvest every registered node now, at once.

        Returns
        -------
        dict of str to HarvestStatus
            Per node id: ``ok``, or ``timeout``, ``error`` (unreachable, or an
            HTTP error status) or ``invalid`` (not JSON-LD, too large) with the
            reason. A failed node keeps its previous datasets.
        """
        async with self._lock:
            sources = list(self._sources.values())
            if self._client is not None:
                outcomes = await self._harvest_all(self._client, sources)
            else:
                async with httpx2.AsyncClient(
                    timeout=self.timeout_seconds, follow_redirects=False
                ) as client:
                    outcomes = await self._harvest_all(client, sources)
            return {status.node_id: status for status in outcomes}

    async def _harvest_all(
        self, client: httpx2.AsyncClient, sources: Sequence[CatalogueSource]
    ) -> list[HarvestStatus]:
        return list(
            await asyncio.gather(
                *(self._harvest_one(client, source) for source in sources)
            )
        )

    async def _harvest_one(
        self, client: httpx2.AsyncClient, source: CatalogueSource
    ) -> HarvestStatus:
        attempted_at = dt.datetime.now(dt.UTC)
        previous = self._statuses.get(source.node_id)
        try:
            async with asyncio.timeout(self.timeout_seconds):
                text = await self._fetch(client, source)
                document = await asyncio.to_thread(
                    _parse_catalogue, text, source.catalogue_url
                )
            kept, num_rejected = own_datasets(document, source)
        except TimeoutError:
            failure = _HarvestFailure(
                "timeout", f"no catalogue within {self.timeout_seconds:g} s"
            )
        except httpx2.TimeoutException as error:
            failure = _HarvestFailure("timeout", f"timed out: {error!r}")
        except httpx2.HTTPError as error:
            failure = _HarvestFailure("error", f"cannot fetch: {error!r}")
        except _HarvestFailure as error:
            failure = error
        else:
            self._graphs[source.node_id] = kept
            num_datasets = len(set(kept.subjects(RDF.type, DCAT.Dataset)))
            reason = (
                f"{num_rejected} dataset(s) outside {source.iri_prefix} refused"
                if num_rejected
                else ""
            )
            status = HarvestStatus(
                source.node_id,
                "ok",
                reason,
                num_datasets,
                num_rejected,
                attempted_at,
                attempted_at,
            )
            self._statuses[source.node_id] = status
            return status
        _log.warning(
            "catalogue harvest of %s (%s): %s: %s",
            source.node_id,
            source.catalogue_url,
            failure.status,
            failure.reason,
        )
        kept_graph = self._graphs.get(source.node_id)
        status = HarvestStatus(
            source.node_id,
            failure.status,
            failure.reason,
            len(set(kept_graph.subjects(RDF.type, DCAT.Dataset))) if kept_graph else 0,
            0,
            attempted_at,
            previous.succeeded_at if previous else None,
        )
        self._statuses[source.node_id] = status
        return status

    async def _fetch(self, client: httpx2.AsyncClient, source: CatalogueSource) -> str:
        async with client.stream(
            "GET",
            source.catalogue_url,
            headers={"Accept": "application/ld+json"},
            timeout=self.timeout_seconds,
        ) as response:
            if response.status_code != 200:
                raise _HarvestFailure("error", f"HTTP {response.status_code}")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.max_document_bytes:
                    raise _HarvestFailure(
                        "invalid",
                        f"catalogue larger than {self.max_document_bytes} bytes",
                    )
                chunks.append(chunk)
        try:
            return b"".join(chunks).decode("utf-8")
        except UnicodeDecodeError as error:
            raise _HarvestFailure("invalid", f"not UTF-8: {error}") from None

    async def run_periodically(self, interval_seconds: float) -> None:
        """Harvest now and then every ``interval_seconds``, until cancelled."""
        while True:
            try:
                await self.harvest()
            except Exception:
                # One bad round must not end the network's harvesting.
                _log.exception("catalogue harvest failed")
            await asyncio.sleep(interval_seconds)

    def union_graph(self) -> Graph:
        """Every node's kept graph in one."""
        union = Graph()
        for name, namespace in JSONLD_CONTEXT.items():
            union.bind(name, namespace)
        for graph in self._graphs.values():
            union += graph
        return union

    def _datasets(self) -> Iterator[dict[str, Any]]:
        for node_id, graph in sorted(self._graphs.items()):
            source = self._sources[node_id]
            subjects = {
                subject
                for subject in graph.subjects(RDF.type, DCAT.Dataset)
                if isinstance(subject, URIRef)
            }
            for subject in sorted(subjects, key=str):
                yield _describe(graph, subject, source)

    def search(
        self,
        *,
        q: str | None = None,
        country: str | None = None,
        duo: str | None = None,
        disease: str | None = None,
    ) -> list[dict[str, Any]]:
        """The harvested datasets matching every filter given.

        Parameters
        ----------
        q
            Words that must each appear (case-insensitively) in the title,
            description or identifier.
        country
            ISO 3166-1 alpha-2 code of the dataset's country.
        duo
            A DUO term the dataset carries, as ``DUO:0000042`` or its OBO IRI.
        disease
            Part of a disease CURIE of the dataset (``ICD10:I25``), any case.

        Returns
        -------
        list of dict
            ``id``, ``title``, ``description``, ``node``, ``country``,
            ``access_rights`` (``PUBLIC``, ``RESTRICTED`` or ``NON_PUBLIC``),
            ``num_individuals``, ``duo``, ``diseases`` and ``urls`` (catalogue,
            access, beacon, htsget, drs), by node then id.
        """
        words = q.lower().split() if q else []
        wanted_duo = _normalise_duo(duo) if duo else None
        wanted_disease = disease.strip().lower() if disease else None
        results = []
        for record in self._datasets():
            text = " ".join(
                str(record[key] or "") for key in ("id", "title", "description")
            ).lower()
            if any(word not in text for word in words):
                continue
            if country and record["country"] != country.strip().upper():
                continue
            if wanted_duo and wanted_duo not in record["duo"]:
                continue
            if wanted_disease and not any(
                wanted_disease in item.lower() for item in record["diseases"]
            ):
                continue
            results.append(record)
        return results
