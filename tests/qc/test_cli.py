"""``genomenode qc run|report`` round trip; the HTML report is self-contained; the
QC declaration is in the dataset's DCAT-AP record."""

from __future__ import annotations

import html.parser
import json

from rdflib import Literal, URIRef
from rdflib.namespace import RDF, XSD

from genomenode.catalogue.dcat import DQV, catalogue_graph, dataset_iri
from tests.cli.conftest import invoke, invoke_json


class _Resources(html.parser.HTMLParser):
    """Every URL the page would load or link to, and its tags."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        for name, value in attrs:
            if name in ("src", "href", "srcset", "data", "poster", "action"):
                self.urls.append(value or "")


def test_run_then_report_as_html_and_json(planted, tmp_path):
    dataset, cohort = planted
    node_dir = dataset.node.config.node_dir
    summary = invoke_json("qc", "run", "--node", node_dir, dataset.dataset_id)
    assert summary["summary"]["num_samples"] == len(cohort.sample_ids)
    text = invoke("qc", "run", "--node", node_dir, dataset.dataset_id).stdout
    assert "1+MG-ready: yes" in text

    out = tmp_path / "qc.html"
    invoke("qc", "report", "--node", node_dir, dataset.dataset_id, "--out", out)
    page = out.read_text()
    parser = _Resources()
    parser.feed(page)
    assert parser.urls and all(
        url.startswith("data:image/png;base64,") for url in parser.urls
    )
    assert not {"script", "link", "iframe", "object"} & parser.tags
    assert "http://" not in page and "https://" not in page
    assert "1+MG-ready: yes" in page
    assert cohort.low_quality in page  # the table of failing samples
    assert len(parser.urls) >= 6  # distributions, sex check, PCA, kinship, variants

    report = json.loads(
        invoke("qc", "report", "--node", node_dir, dataset.dataset_id, "--json").stdout
    )
    assert report["summary"] == summary["summary"]
    assert [sample["id"] for sample in report["samples"]] == cohort.sample_ids


def test_report_before_run_and_bad_names_are_clear_errors(planted, chr22):
    node_dir = planted[0].node.config.node_dir
    result = invoke("qc", "report", "--node", node_dir, chr22.dataset_id, "--json",
                    expect=1)  # fmt: skip
    assert "no QC results" in result.stderr and "qc run" in result.stderr
    result = invoke("qc", "run", "--node", node_dir, "no-such", expect=1)
    assert "not published" in result.stderr
    result = invoke("qc", "report", "--node", node_dir, chr22.dataset_id, expect=2)
    assert "--out" in result.stderr


def test_the_declaration_is_in_the_dcat_record(planted, chr22):
    dataset, _cohort = planted
    invoke("qc", "run", "--node", dataset.node.config.node_dir, dataset.dataset_id)
    base = "https://node.example.org"
    graph = catalogue_graph(dataset.node, base_url=base)
    subject = dataset_iri(base, dataset.dataset_id)
    certificate = URIRef(f"{subject}#qc")
    assert (subject, DQV.hasQualityAnnotation, certificate) in graph
    assert (certificate, RDF.type, DQV.QualityCertificate) in graph
    ready = URIRef(f"{subject}#qc-one-plus-mg-ready")
    assert (ready, DQV.value, Literal("true", datatype=XSD.boolean)) in graph
    passed = graph.value(URIRef(f"{subject}#qc-samples-passed"), DQV.value)
    assert 100 < int(passed) < 160
    # a dataset QC never ran on declares nothing
    other = dataset_iri(base, chr22.dataset_id)
    assert (other, DQV.hasQualityAnnotation, None) not in graph
