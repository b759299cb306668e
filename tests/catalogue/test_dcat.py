"""The node's DCAT-AP catalogue over HTTP: every published dataset, nothing else.

One node with two published small cohorts (CONTROLLED with a disease-specific
DUO term, PUBLIC with general research use) and one dataset still staging.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest
from fastapi.testclient import TestClient
from rdflib import Graph, Literal, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import DCAT, DCTERMS, RDF

from genomenode.app import create_app
from genomenode.catalogue import http as catalogue_http
from genomenode.catalogue.dcat import DPV, HEALTHDCATAP, parse_jsonld
from genomenode.ingest.pipeline import ingest
from genomenode.store.models import Dataset
from genomenode.store.node import init_node

from ..conftest import in_process_workers, write_dataset_yaml, write_small_cohort
from ..handlers import stub_request

BASE = "http://fi.example.org"
CONTROLLED = "fi-controlled"
PUBLIC = "fi-public"
STAGING = "fi-staging"
ACCESS_RIGHT = "http://publications.europa.eu/resource/authority/access-right/"
FINLAND = URIRef("http://publications.europa.eu/resource/authority/country/FIN")
DUO = "http://purl.obolibrary.org/obo/DUO_"


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    root = tmp_path_factory.mktemp("catalogue")
    with in_process_workers():
        write_small_cohort(root / "controlled", dataset_id=CONTROLLED)
        controlled = write_dataset_yaml(
            root / "controlled",
            id=CONTROLLED,
            name="Coronary cohort",
            security_level="CONTROLLED",
            data_use=[
                {"id": "DUO:0000007", "disease": "ICD10:I25.1"},
                {"id": "DUO:0000019"},
            ],
        )
        write_small_cohort(root / "public", dataset_id=PUBLIC, num_samples=25, seed=2)
        public = write_dataset_yaml(
            root / "public", id=PUBLIC, name="Open cohort", security_level="PUBLIC"
        )
        fresh = init_node(root / "node", node_id="fi-node", country="FI")
        ingest(fresh, controlled)
        ingest(fresh, public)
    with fresh.session() as session, session.begin():
        session.add(
            Dataset(
                id=STAGING,
                name="Not yet",
                description="An ingest in progress",
                country="FI",
                contact_name="Test",
                contact_email="test@example.org",
                security_level="PUBLIC",
                assembly="GRCh37",
                status="staging",
                fingerprint="0" * 64,
                num_individuals=3,
                num_samples=3,
                num_variants=1,
                description_document={},
                created_at=dt.datetime.now(dt.UTC),
            )
        )
    yield fresh
    fresh.close()


@pytest.fixture(scope="module")
def client(node):
    with TestClient(create_app(node, base_url=BASE)) as test_client:
        yield test_client


def _jsonld(client, path: str) -> Graph:
    response = client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/ld+json")
    return parse_jsonld(response.json(), BASE)


def _turtle(client, path: str, **options) -> Graph:
    response = client.get(path, **options)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/turtle")
    return Graph().parse(data=response.text, format="turtle")


def _iri(dataset_id: str) -> URIRef:
    return URIRef(f"{BASE}/catalogue/datasets/{dataset_id}")


def test_every_published_dataset_is_described(client, node):
    graph = _jsonld(client, "/catalogue/datasets")
    published = {row.id: row for row in node.published()}
    assert set(published) == {CONTROLLED, PUBLIC}
    described = set(graph.subjects(RDF.type, DCAT.Dataset))
    assert described == {_iri(dataset_id) for dataset_id in published}
    catalog = URIRef(f"{BASE}/catalogue/datasets")
    assert (catalog, RDF.type, DCAT.Catalog) in graph
    assert set(graph.objects(catalog, DCAT.dataset)) == described
    for dataset_id, row in published.items():
        subject = _iri(dataset_id)
        assert graph.value(subject, DCTERMS.identifier) == Literal(dataset_id)
        assert graph.value(subject, DCTERMS.title) == Literal(row.name)
        assert graph.value(subject, DCTERMS.spatial) == FINLAND
        individuals = graph.value(subject, HEALTHDCATAP.numberOfUniqueIndividuals)
        assert individuals is not None
        assert int(individuals) == row.num_individuals
        publisher = graph.value(subject, DCTERMS.publisher)
        assert graph.value(publisher, DCTERMS.spatial) == FINLAND
        assert graph.value(subject, DCAT.contactPoint) is not None


def test_staging_dataset_is_absent(client):
    response = client.get("/catalogue/datasets")
    assert STAGING not in response.text
    assert client.get(f"/catalogue/datasets/{STAGING}").status_code == 404
    assert client.get("/catalogue/datasets/no-such-dataset").status_code == 404


def test_access_rights_follow_the_security_level(client):
    graph = _jsonld(client, "/catalogue/datasets")
    assert graph.value(_iri(CONTROLLED), DCTERMS.accessRights) == URIRef(
        ACCESS_RIGHT + "NON_PUBLIC"
    )
    assert graph.value(_iri(PUBLIC), DCTERMS.accessRights) == URIRef(
        ACCESS_RIGHT + "PUBLIC"
    )


def test_data_use_terms_and_disease(client):
    graph = _jsonld(client, "/catalogue/datasets")
    controlled = _iri(CONTROLLED)
    assert set(graph.objects(controlled, DCTERMS.conformsTo)) == {
        URIRef(DUO + "0000007"),
        URIRef(DUO + "0000019"),
    }
    # Only the permission term is a purpose; the publication modifier is not.
    assert set(graph.objects(controlled, DPV.hasPurpose)) == {URIRef(DUO + "0000007")}
    assert set(graph.objects(controlled, HEALTHDCATAP.healthTheme)) == {
        URIRef("http://purl.bioontology.org/ontology/ICD10/I25.1")
    }
    assert set(graph.objects(_iri(PUBLIC), DCTERMS.conformsTo)) == {
        URIRef(DUO + "0000042")
    }
    assert not set(graph.objects(_iri(PUBLIC), HEALTHDCATAP.healthTheme))


def test_distributions_point_at_the_services(client):
    graph = _jsonld(client, "/catalogue/datasets")
    for dataset_id in (CONTROLLED, PUBLIC):
        subject = _iri(dataset_id)
        urls = {
            str(graph.value(distribution, DCAT.accessURL))
            for distribution in graph.objects(subject, DCAT.distribution)
        }
        assert {
            f"{BASE}/api",
            f"{BASE}/htsget/variants/{dataset_id}",
            f"{BASE}/ga4gh/drs/v1/objects/{dataset_id}",
        } <= urls
        for distribution in graph.objects(subject, DCAT.distribution):
            service = graph.value(distribution, DCAT.accessService)
            assert (service, RDF.type, DCAT.DataService) in graph
            assert str(graph.value(service, DCAT.endpointURL)).startswith(BASE)
        assert graph.value(subject, DCAT.landingPage) == URIRef(
            f"{BASE}/access/catalogue"
        )


def test_the_drs_urls_of_files_resolve(client):
    graph = _jsonld(client, "/catalogue/datasets")
    prefix = f"{BASE}/ga4gh/drs/v1/objects/"
    file_urls = [
        str(url)
        for url in graph.objects(None, DCAT.accessURL)
        if str(url).startswith(prefix) and "%3A" in str(url)
    ]
    assert file_urls
    for url in file_urls:
        # Existence only: a DrsObject of a controlled file needs a grant (401/403).
        response = client.get(url.removeprefix(BASE))
        assert response.status_code in (200, 401, 403), url


@pytest.mark.parametrize(
    "options",
    [
        {"headers": {"Accept": "text/turtle"}},
        {"params": {"format": "turtle"}},
        {"headers": {"Accept": "text/turtle;q=0.9, application/ld+json;q=0.1"}},
    ],
)
def test_turtle_and_jsonld_are_the_same_graph(client, options):
    jsonld = _jsonld(client, "/catalogue/datasets")
    turtle = _turtle(client, "/catalogue/datasets", **options)
    assert len(jsonld) > 50
    assert isomorphic(jsonld, turtle)


def test_one_dataset(client):
    graph = _jsonld(client, f"/catalogue/datasets/{CONTROLLED}")
    assert set(graph.subjects(RDF.type, DCAT.Dataset)) == {_iri(CONTROLLED)}
    assert not set(graph.subjects(RDF.type, DCAT.Catalog))
    turtle = _turtle(client, f"/catalogue/datasets/{CONTROLLED}?format=ttl")
    assert isomorphic(graph, turtle)


def test_unknown_format_is_refused(client):
    response = client.get("/catalogue/datasets", params={"format": "rdfxml"})
    assert response.status_code == 400
    assert "format" in json.dumps(response.json())


def test_no_genotypes_or_sample_level_data(client, node):
    text = client.get("/catalogue/datasets", params={"format": "turtle"}).text
    # Sample ids of the cohort (S000...) and individual-level terms never appear.
    assert "S000" not in text
    assert "NCIT:C20197" not in text


def test_the_dataset_handler_answers_alone(node):
    """The handler is a module-level function over ``app.state``: given only the
    node (no access service), it names datasets under the node's public_url."""
    request = stub_request({"node": node}, headers={"Accept": "text/turtle"})
    response = asyncio.run(catalogue_http.dataset(request, PUBLIC))
    assert response.status_code == 200
    assert response.media_type == "text/turtle"
    graph = Graph().parse(data=response.body.decode(), format="turtle")
    base = node.config.public_url.rstrip("/")
    subject = URIRef(f"{base}/catalogue/datasets/{PUBLIC}")
    assert set(graph.subjects(RDF.type, DCAT.Dataset)) == {subject}


def test_a_dataset_below_the_floor_publishes_the_floor(tmp_path):
    """Catalogue counts pass the one disclosure layer: a dataset of three people
    says 5 (the small-count floor), as the Beacon says of its total."""
    with in_process_workers():
        write_small_cohort(tmp_path / "tiny", dataset_id="fi-tiny", num_samples=3)
        description = write_dataset_yaml(
            tmp_path / "tiny", id="fi-tiny", security_level="PUBLIC"
        )
        with init_node(tmp_path / "node", node_id="fi-node", country="FI") as node:
            ingest(node, description)
            with TestClient(create_app(node, base_url=BASE)) as client:
                graph = _jsonld(client, "/catalogue/datasets")
            # The serving app's layer decides: switched off there, the truth.
            off = create_app(node, base_url=BASE, disclosure_enabled=False)
            with TestClient(off) as client:
                unprotected = _jsonld(client, "/catalogue/datasets")
    subject = _iri("fi-tiny")
    assert int(graph.value(subject, HEALTHDCATAP.numberOfRecords)) == 5
    assert int(graph.value(subject, HEALTHDCATAP.numberOfUniqueIndividuals)) == 5
    assert int(unprotected.value(subject, HEALTHDCATAP.numberOfUniqueIndividuals)) == 3
