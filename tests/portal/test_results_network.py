"""The reference and QC pages on the network's portal, over the real network
of :mod:`tests.portal.network` (three node processes and the network): the
reference page shows the network's union (each country, pooled, each node's
status), the QC page fetches the report from the dataset's own node."""

from __future__ import annotations

import html
import pathlib
import re
import time
from collections.abc import Iterator

import httpx2
import pytest

from genomenode.portal.session import COOKIE_NAME, Session
from genomenode.portal.site import sealer_for

from .network import (
    COHORTS,
    PLANTED,
    RESEARCHER,
    PortalNetwork,
    portal_network,
    stop_node,
)
from .results import assert_row_shows, population_rows

HTML = {"Accept": "text/html"}
BY_COUNTRY = {cohort.country: cohort for cohort in COHORTS}


@pytest.fixture(scope="module")
def network(tmp_path_factory) -> Iterator[PortalNetwork]:
    with portal_network(tmp_path_factory.mktemp("results"), results=True) as running:
        yield running


def test_the_networks_reference_page_is_its_union(network):
    api = httpx2.get(f"{network.url}/reference/variants/{PLANTED}", timeout=30).json()
    page = httpx2.get(f"{network.url}/variants/{PLANTED}", headers=HTML, timeout=30)
    assert page.status_code == 200, page.text
    text = page.text
    countries = [item["country"] for item in api["countries"]]
    # The CONTROLLED EE reference is not released: FI and SE only.
    assert countries == ["FI", "SE"]
    for item in api["countries"]:
        shown = population_rows(text, f"country-{item['country']}")
        assert set(shown) == {row["population"] for row in item["populations"]}
        for row in item["populations"]:
            assert_row_shows(shown[row["population"]], row, frequency=False)
    pooled = population_rows(text, "pooled")
    assert set(pooled) == {row["population"] for row in api["pooled"]}
    for row in api["pooled"]:
        assert_row_shows(pooled[row["population"]], row, frequency=False)
    # The bars: each country's frequency as the network published it (over
    # the people who passed QC, so not the cohort's raw frequency).
    for item in api["countries"]:
        country = item["country"]
        (whole,) = [r for r in item["populations"] if r["population"] == country]
        assert whole["alleleNumber"] <= 2 * BY_COUNTRY[country].num_samples
        bar = re.search(rf'data-country="{country}" data-frequency="([0-9.]+)"', text)
        assert bar, country
        assert float(bar.group(1)) == pytest.approx(whole["alleleFrequency"], abs=1e-6)
    for node in api["nodes"]:
        assert f'data-node="{node["id"]}" data-status="{node["status"]}"' in text


def test_the_networks_qc_page_is_the_datasets_nodes_report(network):
    cohort = BY_COUNTRY["FI"]
    api = httpx2.get(
        f"{network.node_urls[cohort.node_id]}/qc/{cohort.dataset_id}",
        params={"format": "json"},
        timeout=30,
    ).json()
    page = httpx2.get(
        f"{network.url}/datasets/{cohort.node_id}/{cohort.dataset_id}/qc",
        headers=HTML,
        timeout=30,
    )
    assert page.status_code == 200, page.text
    summary = api["summary"]
    for key in ("num_samples", "num_samples_passed", "num_variants_passed"):
        assert f'data-field="{key}" data-value="{summary[key]}"' in page.text
    ready = "yes" if api["declaration"]["one_plus_mg_ready"] else "no"
    assert f'data-ready="{ready}"' in page.text
    controlled = BY_COUNTRY["EE"]
    refused = httpx2.get(
        f"{network.url}/datasets/{controlled.node_id}/{controlled.dataset_id}/qc",
        headers=HTML,
        timeout=30,
    )
    assert refused.status_code == 403 and "data-field" not in refused.text


def _passport(network: PortalNetwork, subject: str) -> str:
    answer = httpx2.post(
        f"{network.broker}/token", json={"subject": subject}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def _signed_in(network: PortalNetwork, subject: str) -> dict[str, str]:
    """The network portal's session cookie of ``subject`` (sealed with the
    portal's key beside NETWORK.yaml, as the sign-in callback seals it)."""
    session = Session()
    session.sign_in(subject, _passport(network, subject), 3600)
    sealer = sealer_for(network.root / "portal-keys")
    return {COOKIE_NAME: sealer.seal(session)}


def test_the_job_page_shows_the_owners_job(network):
    body = {
        "analysis": "frequencies",
        "datasets": [BY_COUNTRY["FI"].dataset_id, BY_COUNTRY["SE"].dataset_id],
    }
    owner = {"Authorization": f"Bearer {_passport(network, RESEARCHER)}"}
    submitted = httpx2.post(
        f"{network.url}/analysis/jobs", json=body, headers=owner, timeout=30
    )
    assert submitted.status_code == 201, submitted.text
    job_id = submitted.json()["id"]
    deadline = time.monotonic() + 90
    while True:
        api = httpx2.get(
            f"{network.url}/analysis/jobs/{job_id}", headers=owner, timeout=30
        ).json()
        if api["state"] not in ("QUEUED", "INITIALIZING", "RUNNING"):
            break
        assert time.monotonic() < deadline, api
        time.sleep(0.5)
    assert api["state"] == "COMPLETE", api
    # Anonymous visitors are sent to sign in; the API wants a passport.
    anonymous = httpx2.get(f"{network.url}/jobs/{job_id}", headers=HTML, timeout=30)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == f"/sign-in?next=/jobs/{job_id}"
    assert httpx2.get(f"{network.url}/jobs", headers=HTML).status_code == 303
    assert httpx2.get(f"{network.url}/analysis/jobs/{job_id}").status_code == 401

    cookies = _signed_in(network, RESEARCHER)
    with httpx2.Client(base_url=network.url, cookies=cookies, timeout=30) as client:
        form = client.get("/jobs", params={"id": job_id}, headers=HTML)
        assert form.status_code == 303 and form.headers["location"] == f"/jobs/{job_id}"
        page = client.get(f"/jobs/{job_id}", headers=HTML)
        assert page.status_code == 200, page.text
        assert f'id="job" data-state="{api["state"]}"' in page.text
        for dataset, task in api["tasks"].items():
            assert f'data-dataset="{dataset}" data-state="{task["state"]}"' in page.text
        result = client.get(f"/analysis/jobs/{job_id}/results", headers=owner).json()[
            "result"
        ]
        tables = re.findall(r'data-table="([^"]+)"', page.text)
        assert tables == [
            key
            for key, value in result.items()
            if isinstance(value, list) and value and isinstance(value[0], dict)
        ]
        for name in tables:
            table = page.text.split(f'data-table="{name}"')[1].split("</table>")[0]
            shown = table.split("<tbody>")[1].count("<tr>")
            assert shown == min(len(result[name]), 500), name
        # Not a GWAS: no plots.
        assert 'id="plot-manhattan"' not in page.text
        assert client.get(f"/jobs/{job_id}/plots/qq.png").status_code == 404
        tsv = client.get(f"/jobs/{job_id}/results.tsv")
        assert tsv.status_code == 200
        assert tsv.headers["content-type"].startswith("text/tab-separated-values")
        lines = tsv.text.splitlines()
        assert len(lines) == 1 + len(result["rows"])
        assert lines[0].split("\t")[:2] == ["contig", "position"]
        assert client.get(f"/jobs/{job_id}/results.json").json() == result
        assert client.get("/jobs/no-such-job", headers=HTML).status_code == 404
        # The submit form: its CSRF token first, then what is wrong, said on it.
        csrf = re.search(
            r'name="csrf_token" value="([^"]+)"', client.get("/jobs", headers=HTML).text
        ).group(1)
        fi = f"dataset:{BY_COUNTRY['FI'].dataset_id}"
        for form, status, words in (
            ({"analysis": "gwas", fi: "on"}, 403, "security token"),
            ({"csrf_token": csrf, "analysis": "gwas"}, 400, "at least one dataset"),
            (
                {"csrf_token": csrf, "analysis": "gwas", fi: "on", "region": "1:x"},
                400,
                "CHROMOSOME:START-END",
            ),
            # The network's own check: a GWAS needs its phenotype.
            (
                {"csrf_token": csrf, "analysis": "gwas", fi: "on", "phenotype": ""},
                400,
                "The network refused the job",
            ),
        ):
            refused = client.post("/jobs", data=form, headers=HTML)
            assert refused.status_code == status, (form, refused.text)
            assert words in html.unescape(refused.text), form
    # Another researcher's session sees no such job.
    other = _signed_in(network, "someone-else@demo.genomenode")
    with httpx2.Client(base_url=network.url, cookies=other, timeout=30) as client:
        for path in (f"/jobs/{job_id}", f"/jobs/{job_id}/results.tsv"):
            assert client.get(path, headers=HTML).status_code == 404, path
    node_portal = httpx2.get(
        f"{network.node_urls['fi-node']}/jobs/{job_id}", headers=HTML, timeout=30
    )
    assert node_portal.status_code == 404


def test_a_researcher_runs_a_gwas_from_the_portal(network, browser, screenshots):
    """Sign in, submit a GWAS over the real nodes from the form, follow it to
    COMPLETE, see both plots load, download the TSV; axe on both pages."""
    from .conftest import save_screenshot
    from .test_browser import _serious, sign_in

    context = browser.new_context(base_url=network.url, accept_downloads=True)
    page = context.new_page()
    try:
        sign_in(page, RESEARCHER)
        page.get_by_role("link", name="Analyses").click()
        page.wait_for_url(re.compile(r"/jobs$"))
        assert _serious(page) == []
        page.check("#analysis-gwas")
        for country in ("FI", "SE"):
            page.check(f"#dataset-{BY_COUNTRY[country].dataset_id}")
        page.fill("#phenotype", "sex")
        page.check("#model-logistic")
        save_screenshot(page, screenshots, "analyses")
        page.get_by_role("button", name="Submit the analysis").click()
        page.wait_for_url(re.compile(r"/jobs/[0-9a-f]{32}$"))
        deadline = time.monotonic() + 120
        while (state := page.get_attribute("#job", "data-state")) in (
            "QUEUED",
            "INITIALIZING",
            "RUNNING",
        ):
            assert time.monotonic() < deadline
            time.sleep(0.5)
            page.reload()
        assert state == "COMPLETE", page.inner_text("main")
        for plot in ("#plot-manhattan", "#plot-qq"):
            image = page.locator(plot)
            image.scroll_into_view_if_needed()
            page.wait_for_function(
                "image => image.complete && image.naturalWidth > 0",
                arg=image.element_handle(),
                timeout=30_000,
            )
        assert _serious(page) == []
        save_screenshot(page, screenshots, "job")
        with page.expect_download() as download:
            page.click("#download-tsv")
        rows = pathlib.Path(download.value.path()).read_text().splitlines()
        assert rows[0].split("\t")[:2] == ["contig", "position"] and len(rows) > 1
    finally:
        context.close()


def test_no_serious_accessibility_violations(network, browser):
    """axe-core on the new pages (the other pages: test_browser.py; the
    analysis pages: the GWAS test above)."""
    from .test_browser import _serious

    context = browser.new_context(base_url=network.url)
    page = context.new_page()
    try:
        found = {}
        for path in (
            f"/variants/{PLANTED}",
            f"/datasets/fi-node/{BY_COUNTRY['FI'].dataset_id}/qc",
        ):
            page.goto(path)
            assert page.locator("h1").count() == 1, path
            found[path] = _serious(page)
        assert {path: v for path, v in found.items() if v} == {}
    finally:
        context.close()


def test_a_stopped_node_makes_the_reference_page_partial(network):
    stop_node(network, "se-node")
    page = httpx2.get(f"{network.url}/variants/{PLANTED}", headers=HTML, timeout=30)
    assert page.status_code == 200
    assert "Partial answer" in page.text and "se-node" in page.text
    assert 'id="country-SE"' not in page.text
    qc = httpx2.get(
        f"{network.url}/datasets/se-node/{BY_COUNTRY['SE'].dataset_id}/qc",
        headers=HTML,
        timeout=30,
    )
    assert qc.status_code in (502, 504)
