"""The network's harvest of node catalogues, against in-process node apps.

Two real nodes (FI with two datasets, SE with one) served by their own apps over
``httpx2.ASGITransport``, and scripted nodes for the failures and for a node that
claims another's dataset.
"""

from __future__ import annotations

import asyncio
import json

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCAT, DCTERMS, RDF

from genomenode.app import create_app
from genomenode.catalogue.dcat import parse_jsonld, serialise
from genomenode.catalogue.harvest import CatalogueSource, Harvester
from genomenode.catalogue.http import HarvestGate, network_router
from genomenode.config import Secret
from genomenode.ingest.pipeline import ingest
from genomenode.store.node import init_node
from genomenode.web.responses import install_error_handlers

from ..conftest import in_process_workers, write_dataset_yaml, write_small_cohort

FI = "http://fi.node.test"
SE = "http://se.node.test"
EVIL = "http://evil.node.test"


def _ingested_node(root, node_id, country, datasets):
    fresh = init_node(root / node_id, node_id=node_id, country=country)
    for index, (dataset_id, fields) in enumerate(datasets):
        directory = root / f"{node_id}-{dataset_id}"
        write_small_cohort(directory, dataset_id=dataset_id, seed=index + 1)
        ingest(
            fresh,
            write_dataset_yaml(directory, id=dataset_id, country=country, **fields),
        )
    return fresh


@pytest.fixture(scope="module")
def node_apps(tmp_path_factory):
    root = tmp_path_factory.mktemp("harvest")
    with in_process_workers():
        finland = _ingested_node(
            root,
            "fi-node",
            "FI",
            [
                (
                    "fi-heart",
                    {
                        "name": "Finnish coronary cohort",
                        "description": "Atherosclerosis cases",
                        "data_use": [
                            {"id": "DUO:0000007", "disease": "ICD10:I25.1"},
                            {"id": "DUO:0000019"},
                        ],
                    },
                ),
                (
                    "fi-general",
                    {"name": "Finnish reference panel", "security_level": "PUBLIC"},
                ),
            ],
        )
        sweden = _ingested_node(
            root,
            "se-node",
            "SE",
            [
                (
                    "se-health",
                    {
                        "name": "Swedish biobank",
                        "data_use": [{"id": "DUO:0000006"}],
                        "security_level": "REGISTERED",
                    },
                )
            ],
        )
    yield {
        "fi.node.test": create_app(finland, base_url=FI),
        "se.node.test": create_app(sweden, base_url=SE),
    }
    finland.close()
    sweden.close()


class Network(httpx2.AsyncBaseTransport):
    """Routes each host to its node app, or to a scripted misbehaviour."""

    def __init__(self, apps):
        self.transports = {
            host: httpx2.ASGITransport(app=app) for host, app in apps.items()
        }
        self.behaviour: dict[str, str] = {}
        self.documents: dict[str, str] = {}

    async def handle_async_request(self, request):
        host = request.url.host
        behaviour = self.behaviour.get(host)
        if behaviour == "500":
            return httpx2.Response(500, text="internal error")
        if behaviour == "invalid-json":
            return httpx2.Response(200, text="{not json")
        if behaviour == "timeout":
            await asyncio.sleep(30)
        if host in self.documents:
            return httpx2.Response(200, text=self.documents[host])
        if host not in self.transports:
            raise httpx2.ConnectError("no such host", request=request)
        return await self.transports[host].handle_async_request(request)


SOURCES = [
    CatalogueSource("fi-node", "FI", FI),
    CatalogueSource("se-node", "SE", SE),
]


@pytest.fixture
def network(node_apps):
    return Network(node_apps)


def _harvest(harvester):
    return asyncio.run(harvester.harvest())


def _harvester(network, sources=SOURCES, timeout_seconds=5.0):
    client = httpx2.AsyncClient(transport=network)
    return Harvester(sources, timeout_seconds=timeout_seconds, client=client)


def _ids(results):
    return sorted(result["id"] for result in results)


def test_union_holds_every_nodes_datasets(network):
    harvester = _harvester(network)
    statuses = _harvest(harvester)
    assert {node: status.status for node, status in statuses.items()} == {
        "fi-node": "ok",
        "se-node": "ok",
    }
    assert statuses["fi-node"].num_datasets == 2
    union = harvester.union_graph()
    assert set(union.subjects(RDF.type, DCAT.Dataset)) == {
        URIRef(f"{FI}/catalogue/datasets/fi-heart"),
        URIRef(f"{FI}/catalogue/datasets/fi-general"),
        URIRef(f"{SE}/catalogue/datasets/se-health"),
    }
    assert _ids(harvester.search()) == ["fi-general", "fi-heart", "se-health"]


def test_search(network):
    harvester = _harvester(network)
    _harvest(harvester)
    assert _ids(harvester.search(q="COHORT")) == ["fi-heart"]
    assert _ids(harvester.search(q="se-health")) == ["se-health"]
    assert _ids(harvester.search(q="finnish panel")) == ["fi-general"]
    assert _ids(harvester.search(country="fi")) == ["fi-general", "fi-heart"]
    assert _ids(harvester.search(country="SE")) == ["se-health"]
    assert _ids(harvester.search(duo="DUO:0000042")) == ["fi-general"]
    assert _ids(harvester.search(duo="http://purl.obolibrary.org/obo/DUO_0000006")) == [
        "se-health"
    ]
    assert _ids(harvester.search(duo="DUO:0000019")) == ["fi-heart"]
    assert _ids(harvester.search(disease="icd10:i25")) == ["fi-heart"]
    assert _ids(harvester.search(disease="I25.1", country="SE")) == []
    [heart] = harvester.search(q="coronary")
    assert heart["node"] == "fi-node"
    assert heart["country"] == "FI"
    assert heart["access_rights"] == "NON_PUBLIC"
    assert heart["num_individuals"] == 40
    assert heart["duo"] == ["DUO:0000007", "DUO:0000019"]
    assert heart["diseases"] == ["ICD10:I25.1"]
    assert heart["urls"] == {
        "catalogue": f"{FI}/catalogue/datasets/fi-heart",
        "access": f"{FI}/access/catalogue",
        "beacon": f"{FI}/api",
        "htsget": f"{FI}/htsget/variants/fi-heart",
        "drs": f"{FI}/ga4gh/drs/v1/objects/fi-heart",
    }
    [sweden] = harvester.search(country="SE")
    assert sweden["access_rights"] == "RESTRICTED"


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [("500", "error"), ("invalid-json", "invalid"), ("timeout", "timeout")],
)
def test_failed_harvest_keeps_previous_datasets(network, behaviour, expected):
    harvester = _harvester(network)
    # The first harvest at the usual timeout: at 0.5 s a loaded machine (the
    # suite in parallel) timed it out, and there was nothing to keep.
    assert _harvest(harvester)["fi-node"].status == "ok"
    network.behaviour["fi.node.test"] = behaviour
    harvester.timeout_seconds = 0.5  # the hanging node is given up on quickly
    statuses = _harvest(harvester)
    assert statuses["fi-node"].status == expected
    assert statuses["fi-node"].reason
    assert statuses["fi-node"].num_datasets == 2
    assert statuses["fi-node"].succeeded_at is not None
    assert statuses["se-node"].status == "ok"
    assert _ids(harvester.search(country="FI")) == ["fi-general", "fi-heart"]


def test_unreachable_node_is_an_error(network):
    sources = [*SOURCES, CatalogueSource("nowhere", "DE", "http://nowhere.test")]
    statuses = _harvest(_harvester(network, sources))
    assert statuses["nowhere"].status == "error"
    assert statuses["nowhere"].num_datasets == 0
    assert statuses["fi-node"].status == "ok"


def _evil_document() -> str:
    """EVIL's catalogue: one dataset of its own, one under FI's URL, and a new
    title for a FI dataset."""
    graph = Graph()
    own = URIRef(f"{EVIL}/catalogue/datasets/evil-own")
    claimed = URIRef(f"{FI}/catalogue/datasets/evil-claimed")
    # Another host whose name merely starts with the evil one.
    lookalike = URIRef(f"{EVIL}.example/catalogue/datasets/lookalike")
    for subject, title in (
        (own, "Evil own"),
        (claimed, "Evil claimed"),
        (lookalike, "Evil lookalike"),
    ):
        graph.add((subject, RDF.type, DCAT.Dataset))
        graph.add((subject, DCTERMS.identifier, Literal(subject.rsplit("/", 1)[1])))
        graph.add((subject, DCTERMS.title, Literal(title)))
    graph.add(
        (URIRef(f"{FI}/catalogue/datasets/fi-heart"), DCTERMS.title, Literal("pwned"))
    )
    # A link from its own dataset to FI's does not carry FI's triples along.
    graph.add((own, DCTERMS.relation, URIRef(f"{FI}/catalogue/datasets/fi-heart")))
    return serialise(graph, "json-ld")


def test_a_node_cannot_inject_datasets_of_another(network):
    sources = [*SOURCES, CatalogueSource("evil-node", "DE", EVIL)]
    network.documents["evil.node.test"] = _evil_document()
    harvester = _harvester(network, sources)
    statuses = _harvest(harvester)
    assert statuses["evil-node"].status == "ok"
    assert statuses["evil-node"].num_datasets == 1
    assert statuses["evil-node"].num_rejected == 2
    assert _ids(harvester.search(q="evil")) == ["evil-own"]
    [heart] = [item for item in harvester.search() if item["id"] == "fi-heart"]
    assert heart["title"] == "Finnish coronary cohort"
    union = harvester.union_graph()
    assert (None, None, Literal("pwned")) not in union
    assert (None, None, Literal("Evil claimed")) not in union


def test_remote_context_is_refused(network):
    sources = [*SOURCES, CatalogueSource("evil-node", "DE", EVIL)]
    network.documents["evil.node.test"] = json.dumps(
        {"@context": "http://evil.node.test/context.jsonld", "@id": f"{EVIL}/x"}
    )
    statuses = _harvest(_harvester(network, sources))
    assert statuses["evil-node"].status == "invalid"
    assert "@context" in statuses["evil-node"].reason


def test_network_routes(network):
    harvester = _harvester(network)
    app = FastAPI()
    app.state.harvester = harvester
    app.state.harvest_gate = HarvestGate()
    app.include_router(network_router, prefix="/catalogue")
    with TestClient(app) as client:
        assert client.get("/catalogue/datasets").json() == []
        response = client.post("/catalogue/harvest")
        assert response.status_code == 200
        assert {node: item["status"] for node, item in response.json().items()} == {
            "fi-node": "ok",
            "se-node": "ok",
        }
        found = client.get("/catalogue/datasets", params={"duo": "DUO:0000007"})
        assert [item["id"] for item in found.json()] == ["fi-heart"]
        turtle = client.get("/catalogue/datasets", params={"format": "turtle"})
        assert turtle.headers["content-type"].startswith("text/turtle")
        jsonld = client.get("/catalogue/datasets", params={"format": "jsonld"})
        graph = parse_jsonld(jsonld.json(), "http://network.test")
        assert len(set(graph.subjects(RDF.type, DCAT.Dataset))) == 3
        assert client.get("/catalogue/harvest").json().keys() == {
            "fi-node",
            "se-node",
        }


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _harvest_client(network, **options):
    app = FastAPI()
    app.state.harvester = _harvester(network)
    app.state.harvest_gate = HarvestGate(**options)
    app.include_router(network_router, prefix="/catalogue")
    install_error_handlers(app)
    return TestClient(app)


def test_without_a_token_on_demand_harvests_are_a_minute_apart(network):
    clock = _Clock()
    with _harvest_client(network, clock=clock) as client:
        assert client.post("/catalogue/harvest").status_code == 200
        clock.now += 59
        refused = client.post("/catalogue/harvest")
        assert refused.status_code == 429
        assert "retry in 1 s" in refused.json()["detail"]
        # Reading the last harvest's statuses is never limited.
        assert client.get("/catalogue/harvest").status_code == 200
        clock.now += 1
        assert client.post("/catalogue/harvest").status_code == 200


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (None, 401),
        ("Basic b3BlcmF0b3I6c2VjcmV0", 401),
        ("Bearer ", 401),
        ("Bearer the-operator-token-but-wrong", 403),
        ("Bearer the-operator-token", 403),
        ("Bearer the-operator-token-of-this-network", 200),
        ("bearer  the-operator-token-of-this-network ", 200),
    ],
)
def test_with_a_token_only_its_holder_may_harvest(network, authorization, status):
    token = Secret("the-operator-token-of-this-network")
    with _harvest_client(network, operator_token=token) as client:
        headers = {"Authorization": authorization} if authorization else {}
        response = client.post("/catalogue/harvest", headers=headers)
        assert response.status_code == status
        assert token.reveal() not in response.text
        if status == 200:
            assert response.json().keys() == {"fi-node", "se-node"}


def test_run_periodically_harvests_until_cancelled(network):
    harvester = _harvester(network)

    async def run() -> None:
        task = asyncio.create_task(harvester.run_periodically(0.01))
        for _ in range(500):
            await asyncio.sleep(0.01)
            if len(harvester.search()) == 3:
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    assert len(harvester.search()) == 3
