"""A node's published datasets as DCAT-AP 3 / HealthDCAT-AP RDF.

One ``dcat:Catalog`` per node lists one ``dcat:Dataset`` per published dataset,
at ``<base_url>/catalogue/datasets/<id>``. docs/catalogue.md lists every property
and why it was chosen; the vocabularies that need a mapping are here:

- the dataset's country becomes an EU Publications Office country IRI
  (:data:`COUNTRY_ISO3`, EU and EEA countries plus the UK and Switzerland);
- the security level becomes a DCAT-AP access right (:data:`ACCESS_RIGHTS`);
- DUO terms become their OBO IRIs, and the disease of a disease-specific term its
  ontology IRI where one is known (:data:`DISEASE_IRI_PREFIXES`), else its CURIE.

Only metadata leaves the node: titles, contacts, data-use conditions, the number
of individuals and where the services are. Never genotypes, never counts below
the dataset.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, cast
from urllib.parse import quote

from rdflib import Graph, Namespace, URIRef
from rdflib import Literal as RdfLiteral
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, RDFS, SKOS, XSD
from rdflib.plugins.parsers.jsonld import to_rdf
from sqlalchemy import Select, select

from ..disclosure.control import DisclosureControl
from ..disclosure.settings import DisclosureSettings
from ..errors import GenomenodeError, NotFoundError, did_you_mean
from ..qc.flags import load_summary
from ..store.models import Dataset, DataUseTerm, StoredFile, published_datasets
from ..store.node import Node
from ..vocab.duo import PERMISSIONS

__all__ = [
    "ACCESS_RIGHTS",
    "COUNTRY_ISO3",
    "DISEASE_IRI_PREFIXES",
    "DPV",
    "DQV",
    "HEALTHDCATAP",
    "JSONLD_CONTEXT",
    "SERVICE_SPECIFICATIONS",
    "SerialisationFormat",
    "catalogue_graph",
    "country_iri",
    "dataset_iri",
    "disease_term",
    "duo_iri",
    "parse_jsonld",
    "serialise",
]

#: HealthDCAT-AP's namespace (the draft's; not ratified yet).
HEALTHDCATAP = Namespace("http://healthdataportal.eu/ns/health#")
#: The W3C Data Privacy Vocabulary, which HealthDCAT-AP uses for purposes.
DPV = Namespace("https://w3id.org/dpv#")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
OBO = Namespace("http://purl.obolibrary.org/obo/")
EU_COUNTRY = Namespace("http://publications.europa.eu/resource/authority/country/")
EU_ACCESS_RIGHT = Namespace(
    "http://publications.europa.eu/resource/authority/access-right/"
)
EU_DATA_THEME = Namespace(
    "http://publications.europa.eu/resource/authority/data-theme/"
)
#: W3C Data Quality Vocabulary (DCAT-AP's quality properties) and Web Annotation.
DQV = Namespace("http://www.w3.org/ns/dqv#")
OA = Namespace("http://www.w3.org/ns/oa#")

#: ISO 3166-1 alpha-2 → alpha-3, which the EU country authority table is keyed by.
COUNTRY_ISO3: Mapping[str, str] = {
    "AT": "AUT",
    "BE": "BEL",
    "BG": "BGR",
    "CH": "CHE",
    "CY": "CYP",
    "CZ": "CZE",
    "DE": "DEU",
    "DK": "DNK",
    "EE": "EST",
    "ES": "ESP",
    "FI": "FIN",
    "FR": "FRA",
    "GB": "GBR",
    "GR": "GRC",
    "HR": "HRV",
    "HU": "HUN",
    "IE": "IRL",
    "IS": "ISL",
    "IT": "ITA",
    "LI": "LIE",
    "LT": "LTU",
    "LU": "LUX",
    "LV": "LVA",
    "MT": "MLT",
    "NL": "NLD",
    "NO": "NOR",
    "PL": "POL",
    "PT": "PRT",
    "RO": "ROU",
    "SE": "SWE",
    "SI": "SVN",
    "SK": "SVK",
}

#: Security level → DCAT-AP access right. REGISTERED data is available to any
#: researcher who identifies themself (a condition: RESTRICTED); CONTROLLED data
#: only after a data access committee decides (NON_PUBLIC, as HealthDCAT-AP
#: describes sensitive health data reached through an access body).
ACCESS_RIGHTS: Mapping[str, URIRef] = {
    "PUBLIC": EU_ACCESS_RIGHT.PUBLIC,
    "REGISTERED": EU_ACCESS_RIGHT.RESTRICTED,
    "CONTROLLED": EU_ACCESS_RIGHT.NON_PUBLIC,
}

#: Disease CURIE prefix → the IRI its local id is appended to.
DISEASE_IRI_PREFIXES: Mapping[str, str] = {
    "MONDO": "http://purl.obolibrary.org/obo/MONDO_",
    "DOID": "http://purl.obolibrary.org/obo/DOID_",
    "NCIT": "http://purl.obolibrary.org/obo/NCIT_",
    "ORPHA": "http://www.orpha.net/ORDO/Orphanet_",
    "OMIM": "https://omim.org/entry/",
    "ICD10": "http://purl.bioontology.org/ontology/ICD10/",
    "ICD10CM": "http://purl.bioontology.org/ontology/ICD10CM/",
}

#: The specification each distribution's service conforms to, by service name.
SERVICE_SPECIFICATIONS: Mapping[str, URIRef] = {
    "beacon": URIRef("https://github.com/ga4gh-beacon/beacon-v2"),
    "htsget": URIRef("http://samtools.github.io/hts-specs/htsget.html"),
    "drs": URIRef("https://ga4gh.github.io/data-repository-service-schemas/"),
}

# EDAM "Genomics" topic: the theme every genomenode dataset has.
_GENOMICS_THEME = URIRef("http://edamontology.org/topic_0622")

#: The JSON-LD context the node publishes with (prefixes only: the graph is the
#: same with or without it).
JSONLD_CONTEXT: Mapping[str, str] = {
    "dcat": str(DCAT),
    "dct": str(DCTERMS),
    "foaf": str(FOAF),
    "vcard": str(VCARD),
    "xsd": str(XSD),
    "rdfs": str(RDFS),
    "skos": str(SKOS),
    "healthdcatap": str(HEALTHDCATAP),
    "dpv": str(DPV),
    "dqv": str(DQV),
    "oa": str(OA),
}

SerialisationFormat = Literal["json-ld", "turtle"]


def dataset_iri(base_url: str, dataset_id: str) -> URIRef:
    """The IRI of a dataset in the catalogue of the node at ``base_url``."""
    return URIRef(f"{base_url.rstrip('/')}/catalogue/datasets/{dataset_id}")


def country_iri(iso2: str) -> URIRef:
    """The EU authority-table IRI of an ISO 3166-1 alpha-2 country code.

    Raises
    ------
    KeyError
        If the country is not in :data:`COUNTRY_ISO3`.
    """
    return EU_COUNTRY[COUNTRY_ISO3[iso2.upper()]]


def duo_iri(curie: str) -> URIRef:
    """``DUO:0000042`` → ``http://purl.obolibrary.org/obo/DUO_0000042``."""
    return OBO[curie.replace(":", "_", 1)]


def disease_term(curie: str) -> URIRef | RdfLiteral:
    """A disease CURIE as its ontology IRI, or as a literal if none is known."""
    prefix, _, local = curie.partition(":")
    base = DISEASE_IRI_PREFIXES.get(prefix)
    return URIRef(base + local) if base and local else RdfLiteral(curie)


# The one gate to what users see, typed here (models.py leaves it unannotated).
_published_datasets = cast("Callable[[], Select[Dataset]]", published_datasets)


def _timestamp(moment: dt.datetime) -> RdfLiteral:
    # SQLite drops the zone genomenode stored, which is UTC.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return RdfLiteral(moment.isoformat(timespec="seconds"), datatype=XSD.dateTime)


def _count(value: int) -> RdfLiteral:
    return RdfLiteral(str(value), datatype=XSD.nonNegativeInteger)


def _new_graph() -> Graph:
    graph = Graph()
    for prefix, namespace in JSONLD_CONTEXT.items():
        graph.bind(prefix, namespace)
    return graph


class _CatalogueBuilder:
    """Adds a node's catalogue to a graph; one per request."""

    def __init__(
        self,
        node: Node,
        base_url: str,
        graph: Graph,
        disclosure: DisclosureControl | None = None,
    ) -> None:
        self.node = node
        self.base_url = base_url.rstrip("/")
        self.graph = graph
        self.publisher = URIRef(f"{self.base_url}/catalogue#publisher")
        # The counts published here pass the one disclosure layer too (totals:
        # no budget, no noise, the small-count floor): the serving app's layer,
        # else one from the node's settings.
        self.disclosure = disclosure or DisclosureControl(
            DisclosureSettings.from_values(node.config.values),
            None,
            node.config.node_dir / "keys",
        )

    def add_publisher(self) -> None:
        add = self.graph.add
        config = self.node.config
        add((self.publisher, RDF.type, FOAF.Agent))
        add(
            (self.publisher, FOAF.name, RdfLiteral(f"genomenode node {config.node_id}"))
        )
        add((self.publisher, DCTERMS.identifier, RdfLiteral(config.node_id)))
        add((self.publisher, FOAF.homepage, URIRef(self.base_url)))
        if config.country.upper() in COUNTRY_ISO3:
            add((self.publisher, DCTERMS.spatial, country_iri(config.country)))

    def add_catalog(self, dataset_ids: Sequence[str]) -> None:
        add = self.graph.add
        catalog = URIRef(f"{self.base_url}/catalogue/datasets")
        add((catalog, RDF.type, DCAT.Catalog))
        title = f"Genomic datasets of genomenode node {self.node.config.node_id}"
        add((catalog, DCTERMS.title, RdfLiteral(title, lang="en")))
        description = (
            "The published datasets of this node: what they hold, the conditions "
            "of their use and the GA4GH services that give access to them."
        )
        add((catalog, DCTERMS.description, RdfLiteral(description, lang="en")))
        add((catalog, DCTERMS.publisher, self.publisher))
        add((catalog, FOAF.homepage, URIRef(self.base_url)))
        for dataset_id in dataset_ids:
            add((catalog, DCAT.dataset, dataset_iri(self.base_url, dataset_id)))

    def add_dataset(
        self,
        row: Dataset,
        terms: Sequence[DataUseTerm],
        files: Sequence[StoredFile],
    ) -> None:
        add = self.graph.add
        subject = dataset_iri(self.base_url, row.id)
        add((subject, RDF.type, DCAT.Dataset))
        add((subject, DCTERMS.identifier, RdfLiteral(row.id)))
        add((subject, DCTERMS.title, RdfLiteral(row.name)))
        add((subject, DCTERMS.description, RdfLiteral(row.description)))
        add((subject, DCTERMS.publisher, self.publisher))
        add((subject, DCAT.theme, EU_DATA_THEME.HEAL))
        add((subject, DCAT.theme, _GENOMICS_THEME))
        add((subject, DCAT.keyword, RdfLiteral("genomics", lang="en")))
        if row.country.upper() in COUNTRY_ISO3:
            add((subject, DCTERMS.spatial, country_iri(row.country)))
        issued = row.published_at or row.created_at
        add((subject, DCTERMS.issued, _timestamp(issued)))
        add((subject, DCTERMS.modified, _timestamp(issued)))
        access_rights = ACCESS_RIGHTS.get(row.security_level)
        if access_rights is not None:
            add((subject, DCTERMS.accessRights, access_rights))
        add((subject, DCAT.landingPage, URIRef(f"{self.base_url}/access/catalogue")))
        self._add_contact_point(subject, row)
        self._add_health_properties(subject, row, terms)
        self._add_quality(subject, row)
        self._add_distributions(subject, row, files)

    def _add_quality(self, subject: URIRef, row: Dataset) -> None:
        """The dataset's QC declaration (genomenode qc run), as DQV: a quality
        certificate saying whether it is 1+MG-ready, and measurements of the
        whole dataset (the passing samples through the disclosure layer, as
        every count of people here). Nothing when QC never ran."""
        try:
            report = load_summary(self.node, row.id)
        except GenomenodeError:
            return  # results of other data, or unreadable: declare nothing
        if report is None:
            return
        add = self.graph.add
        summary = report["summary"]
        declaration = report["declaration"]
        certificate = URIRef(f"{subject}#qc")
        add((subject, DQV.hasQualityAnnotation, certificate))
        add((certificate, RDF.type, DQV.QualityCertificate))
        add((certificate, OA.hasTarget, subject))
        add((certificate, OA.motivatedBy, DQV.qualityAssessment))
        ready = declaration["one_plus_mg_ready"]
        label = "1+MG-ready" if ready else "not 1+MG-ready"
        add((certificate, RDFS.label, RdfLiteral(label, lang="en")))
        add(
            (certificate, RDFS.comment, RdfLiteral(declaration["statement"], lang="en"))
        )
        add(
            (
                certificate,
                DCTERMS.issued,
                RdfLiteral(report["created"], datatype=XSD.dateTime),
            )
        )
        passed = self.disclosure.release_total(summary["num_samples_passed"]).value
        measurements: list[tuple[str, str, Any, URIRef]] = [
            ("one-plus-mg-ready", "Quality measured and declared (1+MG-ready)",
             ready, XSD.boolean),
            ("variants-passed", "Variants passing variant QC",
             summary["num_variants_passed"], XSD.nonNegativeInteger),
            ("median-call-rate", "Median call rate of the samples",
             summary["median_call_rate"], XSD.double),
            ("median-ti-tv", "Median transition/transversion ratio of the samples",
             summary["median_ti_tv"], XSD.double),
        ]  # fmt: skip
        if passed is not None:
            measurements.append(
                ("samples-passed", "Samples passing sample QC", int(passed),
                 XSD.nonNegativeInteger)
            )  # fmt: skip
        for name, definition, value, datatype in measurements:
            if value is None:
                continue
            metric = URIRef(f"{self.base_url}/catalogue#qc-metric-{name}")
            add((metric, RDF.type, DQV.Metric))
            add((metric, SKOS.definition, RdfLiteral(definition, lang="en")))
            measurement = URIRef(f"{subject}#qc-{name}")
            add((subject, DQV.hasQualityMeasurement, measurement))
            add((measurement, RDF.type, DQV.QualityMeasurement))
            add((measurement, DQV.computedOn, subject))
            add((measurement, DQV.isMeasurementOf, metric))
            text = str(value).lower() if isinstance(value, bool) else str(value)
            add((measurement, DQV.value, RdfLiteral(text, datatype=datatype)))

    def _add_contact_point(self, subject: URIRef, row: Dataset) -> None:
        add = self.graph.add
        contact = URIRef(f"{subject}#contact")
        add((subject, DCAT.contactPoint, contact))
        add((contact, RDF.type, VCARD.Kind))
        add((contact, VCARD.fn, RdfLiteral(row.contact_name)))
        add((contact, VCARD.hasEmail, URIRef(f"mailto:{row.contact_email}")))

    def _add_health_properties(
        self, subject: URIRef, row: Dataset, terms: Sequence[DataUseTerm]
    ) -> None:
        add = self.graph.add
        # A genomenode record is one individual: both counts are num_individuals.
        released = self.disclosure.release_total(row.num_individuals).value
        if released is not None:  # withheld: no count at all, never the true one
            individuals = int(released)
            add((subject, HEALTHDCATAP.numberOfRecords, _count(individuals)))
            add((subject, HEALTHDCATAP.numberOfUniqueIndividuals, _count(individuals)))
        for term in terms:
            iri = duo_iri(term.term_id)
            # Every data-use condition, permission or modifier, is a rule the
            # use of the dataset conforms to.
            add((subject, DCTERMS.conformsTo, iri))
            add((iri, RDFS.label, RdfLiteral(term.label, lang="en")))
            add((iri, SKOS.notation, RdfLiteral(term.term_id)))
            if term.term_id in PERMISSIONS:
                add((subject, DPV.hasPurpose, iri))
            if term.disease_id:
                # A disease-specific dataset is about its disease: HealthDCAT-AP's
                # health theme.
                add((subject, HEALTHDCATAP.healthTheme, disease_term(term.disease_id)))

    def _add_distributions(
        self, subject: URIRef, row: Dataset, files: Sequence[StoredFile]
    ) -> None:
        services = [
            ("beacon", "Beacon v2 discovery", f"{self.base_url}/api"),
            ("htsget", "htsget variants", f"{self.base_url}/htsget/variants/{row.id}"),
            (
                "drs",
                "DRS bundle of the dataset's files",
                f"{self.base_url}/ga4gh/drs/v1/objects/{row.id}",
            ),
        ]
        for name, title, url in services:
            self._add_distribution(subject, name, title, url)
        for stored in files:
            self._add_distribution(
                subject,
                "drs",
                f"{stored.original_name} ({stored.file_format}, Crypt4GH)",
                f"{self.base_url}/ga4gh/drs/v1/objects/{quote(stored.id, safe='')}",
                byte_size=stored.size_encrypted,
            )

    def _add_distribution(
        self,
        subject: URIRef,
        service_name: str,
        title: str,
        url: str,
        *,
        byte_size: int | None = None,
    ) -> None:
        add = self.graph.add
        distribution = URIRef(f"{subject}#distribution-{_fragment(url)}")
        service = URIRef(f"{self.base_url}/catalogue#service-{service_name}")
        add((subject, DCAT.distribution, distribution))
        add((distribution, RDF.type, DCAT.Distribution))
        add((distribution, DCTERMS.title, RdfLiteral(title, lang="en")))
        add((distribution, DCAT.accessURL, URIRef(url)))
        add((distribution, DCAT.accessService, service))
        if byte_size is not None:
            add((distribution, DCAT.byteSize, _count(byte_size)))
        endpoint = {
            "beacon": f"{self.base_url}/api",
            "htsget": f"{self.base_url}/htsget",
            "drs": f"{self.base_url}/ga4gh/drs/v1",
        }[service_name]
        add((service, RDF.type, DCAT.DataService))
        add((service, DCTERMS.title, RdfLiteral(service_name, lang="en")))
        add((service, DCAT.endpointURL, URIRef(endpoint)))
        add((service, DCTERMS.conformsTo, SERVICE_SPECIFICATIONS[service_name]))
        add((service, DCAT.servesDataset, subject))


def _fragment(url: str) -> str:
    # A stable, IRI-safe fragment per distribution: its URL's path, dashed.
    path = url.split("://", 1)[-1].split("/", 1)[-1]
    return "".join(char if char.isalnum() or char in "-._" else "-" for char in path)


def catalogue_graph(
    node: Node,
    *,
    base_url: str,
    dataset_id: str | None = None,
    disclosure: DisclosureControl | None = None,
) -> Graph:
    """The DCAT catalogue of ``node``'s published datasets, or of one of them.

    Parameters
    ----------
    node
        The node whose published datasets are described.
    base_url
        The external URL of the node; every IRI of the catalogue is under it.
    dataset_id
        Describe only this dataset (and no ``dcat:Catalog``).
    disclosure
        The disclosure layer the published counts pass (the serving app's);
        default: one built from the node's settings.

    Returns
    -------
    rdflib.Graph

    Raises
    ------
    NotFoundError
        If ``dataset_id`` is not a published dataset of the node.
    """
    with node.session() as session:
        query = _published_datasets().order_by(Dataset.id)
        if dataset_id is not None:
            query = query.where(Dataset.id == dataset_id)
        rows = list(session.scalars(query))
        if dataset_id is not None and not rows:
            known = [row.id for row in session.scalars(_published_datasets())]
            raise NotFoundError(
                f"dataset {dataset_id!r} is not published on this node"
                + did_you_mean(dataset_id, known)
            )
        ids = [row.id for row in rows]
        terms = list(
            session.scalars(
                select(DataUseTerm)
                .where(DataUseTerm.dataset_id.in_(ids))
                .order_by(DataUseTerm.id)
            )
        )
        files = list(
            session.scalars(
                select(StoredFile)
                .where(StoredFile.dataset_id.in_(ids))
                .order_by(StoredFile.id)
            )
        )
    graph = _new_graph()
    builder = _CatalogueBuilder(node, base_url, graph, disclosure)
    builder.add_publisher()
    if dataset_id is None:
        builder.add_catalog(ids)
    for row in rows:
        builder.add_dataset(
            row,
            [term for term in terms if term.dataset_id == row.id],
            [stored for stored in files if stored.dataset_id == row.id],
        )
    return graph


def parse_jsonld(document: Any, base_url: str) -> Graph:
    """A JSON-LD document (already decoded from JSON) as a graph.

    rdflib's ``Graph.parse(format="json-ld")`` goes through its deprecated
    ``ConjunctiveGraph``; its JSON-LD algorithm itself does not. A context given
    by URL is fetched: refuse such documents first where that matters.
    """
    graph = _new_graph()
    to_rdf(document, graph, base=base_url)
    return graph


def serialise(graph: Graph, serialisation: SerialisationFormat) -> str:
    """``graph`` as JSON-LD (with :data:`JSONLD_CONTEXT`) or Turtle."""
    if serialisation == "turtle":
        return graph.serialize(format="turtle")
    context: dict[str, Any] = dict(JSONLD_CONTEXT)
    return graph.serialize(format="json-ld", context=context, auto_compact=True)
