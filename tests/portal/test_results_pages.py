"""The reference and QC pages over a node's real app, in-process: a published
cohort, its reference built and its QC run, and the numbers on each page
checked against what the node's own API answers the same visitor."""

from __future__ import annotations

import html

import pysam
import pytest
from fastapi.testclient import TestClient

from genomenode.app import create_app
from genomenode.ingest.pipeline import ingest
from genomenode.portal.results import reference_answer
from genomenode.qc.run import run_qc
from genomenode.reference.build import build_reference

from ..conftest import write_dataset_yaml, write_small_cohort
from .results import assert_row_shows, population_rows

HTML = {"Accept": "text/html"}
NODE = "test-node"


@pytest.fixture
def node_app(tmp_path, sqlite_node):
    """Two datasets: ``open`` (PUBLIC, records for anyone) and ``closed``
    (CONTROLLED, no release), reference built, QC run on both."""
    for dataset_id, fields in (
        ("open", {"security_level": "PUBLIC", "beacon": {"anonymous": "record"}}),
        ("closed", {}),
    ):
        directory = tmp_path / dataset_id
        write_small_cohort(directory, dataset_id=dataset_id, num_samples=40)
        ingest(sqlite_node, write_dataset_yaml(directory, id=dataset_id, **fields))
        run_qc(sqlite_node, dataset_id)
    build_reference(sqlite_node)
    app = create_app(sqlite_node, base_url="http://testserver")
    with TestClient(app) as client:
        yield client, tmp_path / "open" / "cohort.vcf.gz"


def _first_variant(vcf) -> str:
    with pysam.VariantFile(str(vcf)) as reading:
        record = next(iter(reading))
        return f"{record.chrom}-{record.pos}-{record.ref}-{record.alts[0]}"


def test_the_reference_page_shows_the_apis_numbers(node_app):
    client, vcf = node_app
    variant = _first_variant(vcf)
    api = client.get(f"/reference/variants/{variant}").json()
    assert api["exists"] and api["populations"]
    page = client.get(f"/variants/{variant}", headers=HTML)
    assert page.status_code == 200, page.text
    text = page.text
    shown = population_rows(text, "country-FI") | population_rows(text, "pooled")
    assert set(shown) == {item["population"] for item in api["populations"]}
    for item in api["populations"]:
        assert_row_shows(shown[item["population"]], item, frequency=True)
    # The chart's bars are the country's and its sexes' frequencies.
    by_name = {item["population"]: item for item in api["populations"]}
    for name, sex in (("FI", None), ("FI_F", "F"), ("FI_M", "M")):
        pattern = 'data-country="FI" ' + (f'data-sex="{sex}" ' if sex else "")
        expected = by_name[name]["alleleFrequency"]
        assert f'{pattern}data-frequency="{expected:.6f}"' in text, name
    # The CONTROLLED dataset is named as withheld, with the node's reason.
    assert api["datasetsWithheld"]["closed"]
    assert 'data-dataset="closed"' in text
    assert html.escape(api["datasetsWithheld"]["closed"]) in text
    assert 'data-node="test-node" data-status="ok"' in text
    assert '<html lang="en">' in text and "<caption>" in text


def test_a_variant_search_links_to_its_reference_page(node_app):
    client, vcf = node_app
    variant = _first_variant(vcf)
    page = client.get("/search", params={"q": variant}, headers=HTML)
    assert page.status_code == 200
    assert f'id="reference-link" href="/variants/{variant}"' in page.text
    assert f'class="reference-link" href="/variants/{variant}"' in page.text


def test_an_absent_variant_and_bad_ids_are_pages(node_app):
    client, _vcf = node_app
    absent = client.get("/variants/1-5-A-C", headers=HTML)
    assert absent.status_code == 200 and 'id="absent"' in absent.text
    for bad in ("1-x-A-C", "nonsense", "1-5-A-" + "C" * 300):
        answer = client.get(f"/variants/{bad}", headers=HTML)
        assert answer.status_code == 400, (bad, answer.status_code)


def test_the_qc_page_shows_the_apis_summary_and_declaration(node_app):
    client, _vcf = node_app
    api = client.get("/qc/open", params={"format": "json"}).json()
    page = client.get(f"/datasets/{NODE}/open/qc", headers=HTML)
    assert page.status_code == 200, page.text
    text = page.text
    ready = "yes" if api["declaration"]["one_plus_mg_ready"] else "no"
    assert f'id="declaration" data-ready="{ready}"' in text
    summary = api["summary"]
    for key in ("num_samples", "num_samples_passed", "num_variants"):
        assert f'data-field="{key}" data-value="{summary[key]}"' in text, key
    for reason, count in summary["variant_reasons"].items():
        assert f'data-reason="{reason}" data-value="{count}"' in text
    failing = [sample["id"] for sample in api["samples"] if sample["reasons"]]
    for sample_id in failing:
        assert f'data-sample="{sample_id}"' in text
    dataset_page = client.get(f"/datasets/{NODE}/open", headers=HTML)
    assert f'href="/datasets/{NODE}/open/qc"' in dataset_page.text


def test_the_qc_page_shows_nothing_the_api_refuses(node_app):
    client, _vcf = node_app
    assert client.get("/qc/closed", params={"format": "json"}).status_code == 403
    page = client.get(f"/datasets/{NODE}/closed/qc", headers=HTML)
    assert page.status_code == 403
    assert "data-field" not in page.text and "declaration" not in page.text
    assert client.get(f"/datasets/{NODE}/nope/qc", headers=HTML).status_code == 404
    assert client.get("/datasets/other/open/qc", headers=HTML).status_code == 404


def test_a_networks_answer_is_shaped_per_country_with_every_nodes_status():
    """The network's answer (the shape network/reference.py sends): each
    country's rows, the pooled rows and a failed node are all kept."""

    def row(name, ac, an, adjusted=False):
        return {
            "population": name,
            "alleleCount": ac,
            "alleleNumber": an,
            "alleleFrequency": ac / an,
            "alleleCountHomozygous": 0,
            "alleleCountHeterozygous": ac,
            "alleleCountHemizygous": 0,
            "nhomalt": 0,
            "faf95": 0.01,
            "adjusted": adjusted,
        }

    answer = reference_answer(
        {
            "variantId": "1-10-A-G",
            "exists": True,
            "countries": [
                {"country": "FI", "nodes": ["fi"], "populations": [row("FI", 2, 10)]},
                {
                    "country": "IT",
                    "nodes": ["it"],
                    "populations": [row("IT", 3, 30, True), row("IT_F", 1, 12)],
                },
            ],
            "pooled": [row("total", 5, 40)],
            "pooledIncomplete": ["M"],
            "nodes": [
                {"id": "fi", "country": "FI", "status": "ok"},
                {"id": "it", "country": "IT", "status": "ok"},
                {"id": "pt", "country": "PT", "status": "timeout"},
            ],
        },
        kind="network",
    )
    assert [country for country, _rows in answer.countries] == ["FI", "IT"]
    assert not answer.complete and answer.pooled_incomplete == ("M",)
    bars = answer.chart_countries()
    assert [(b.country, b.allele_count, b.female) for b in bars] == [
        ("FI", 2, None),
        ("IT", 3, (1, 12)),
    ]
    assert answer.countries[1][1][0].adjusted
    assert reference_answer("junk", kind="network").countries == ()
