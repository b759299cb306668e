"""Beacon answers for an aggregate-only dataset (a sites-only VCF): existence,
counts and ``frequencyInPopulations`` from its INFO fields, over HTTP."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from genomenode.app import create_app
from genomenode.beacon.schemas import validate
from genomenode.ingest.pipeline import ingest
from genomenode.store.node import init_node

from ..conftest import in_process_workers, write_dataset_yaml
from ..ingest.test_sites_only import write_sites_vcf


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    directory = tmp_path_factory.mktemp("sites-beacon")
    vcf = write_sites_vcf(directory / "sites.vcf.gz")
    dataset_yaml = write_dataset_yaml(
        directory,
        id="sites",
        genotypes=[{"path": vcf.name}],
        clinical=None,
        security_level="PUBLIC",
        beacon={"anonymous": "record"},
    )
    with in_process_workers():
        node = init_node(directory / "node", node_id="fi-node", country="FI")
        ingest(node, dataset_yaml)
    with TestClient(create_app(node)) as test_client:
        yield test_client
    node.close()


def _query(client, granularity, **parameters):
    response = client.post(
        "/api/g_variants",
        json={
            "query": {
                "requestedGranularity": granularity,
                "requestParameters": parameters,
            }
        },
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_existence_and_count(client):
    present = _query(
        client,
        "count",
        referenceName="1",
        start=[199],
        referenceBases="C",
        alternateBases="A",
    )
    absent = _query(
        client,
        "boolean",
        referenceName="1",
        start=[199],
        referenceBases="C",
        alternateBases="G",
    )
    in_range = _query(client, "count", referenceName="1", start=[0], end=[1000])

    assert present["responseSummary"] == {"exists": True, "numTotalResults": 1}
    assert absent["responseSummary"]["exists"] is False
    # Three ALT alleles on contig 1 (one at 100, two at 200).
    assert in_range["responseSummary"]["numTotalResults"] == 3


def test_frequencies_come_from_the_info_fields(client):
    document = _query(
        client,
        "record",
        referenceName="1",
        start=[199],
        referenceBases="C",
        alternateBases="A",
    )
    validate(document, "beaconResultsetsResponse")
    (result_set,) = document["response"]["resultSets"]
    (record,) = result_set["results"]
    validate(record, "genomicVariations")
    (source,) = record["frequencyInPopulations"]
    frequencies = {item["population"]: item for item in source["frequencies"]}

    # The whole dataset is named by its country; AC=5,2 AN=98 nhomalt=0,1.
    assert frequencies["FI"] == {
        "population": "FI",
        "alleleFrequency": pytest.approx(2 / 98),
        "alleleCount": 2,
        "alleleNumber": 98,
        "alleleCountHomozygous": 2,
        "alleleCountHeterozygous": 0,
    }
    assert (frequencies["nfe"]["alleleCount"], frequencies["nfe"]["alleleNumber"]) == (
        1,
        58,
    )
    assert frequencies["nfe"]["alleleCountHomozygous"] == 0
    assert (frequencies["fin"]["alleleCount"], frequencies["fin"]["alleleNumber"]) == (
        1,
        40,
    )
    assert "caseLevelData" not in record


def test_a_population_without_an_is_left_out(client):
    document = _query(
        client,
        "record",
        referenceName="2",
        start=[49],
        referenceBases="G",
        alternateBases="GA",
    )
    (record,) = document["response"]["resultSets"][0]["results"]
    populations = {
        item["population"]
        for item in record["frequencyInPopulations"][0]["frequencies"]
    }
    assert populations == {"FI", "nfe"}


def test_no_individuals(client):
    everyone = client.post(
        "/api/individuals", json={"query": {"requestedGranularity": "count"}}
    )
    carriers = client.post(
        "/api/individuals",
        json={
            "query": {
                "requestedGranularity": "count",
                "requestParameters": {
                    "referenceName": "1",
                    "start": [99],
                    "referenceBases": "A",
                    "alternateBases": "G",
                },
            }
        },
    )

    assert everyone.status_code == carriers.status_code == 200
    assert everyone.json()["responseSummary"]["numTotalResults"] == 0
    assert carriers.json()["responseSummary"]["numTotalResults"] == 0
