"""The portal in a real browser over a real network (docs/portal.md).

Chromium (Debian's, through Playwright) drives the network's portal while three
node processes answer behind it: the chart of a planted variant, the whole
access story (apply → the DAC approves → records → revoke → gone), a node
stopped, keyboard-only search, axe-core on every page, and CSRF refusals. The
tests run in file order: the last stops a node.
"""

from __future__ import annotations

import os
import re
import signal

import pytest
from axe_playwright_python.sync_playwright import Axe

from .conftest import save_screenshot
from .network import COHORTS, DAC_MEMBER, PLANTED, RESEARCHER

BY_COUNTRY = {cohort.country: cohort for cohort in COHORTS}
PUBLIC_COUNTRIES = {c.country for c in COHORTS if c.security_level == "PUBLIC"}
CONTROLLED = next(c for c in COHORTS if c.security_level == "CONTROLLED")


@pytest.fixture
def page(browser, network):
    context = browser.new_context(base_url=network.url)
    opened = context.new_page()
    yield opened
    context.close()


def sign_in(page, subject: str) -> None:
    """The OIDC sign-in through the development identity provider's page."""
    page.goto("/")
    page.get_by_role("link", name="Sign in").click()
    page.wait_for_url(re.compile(r"/dev-idp/authorize"))
    page.fill("#subject", subject)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"^http://127\.0\.0\.1:\d+/$"))
    assert subject in page.inner_text("header")


def bars(page) -> dict[str, float]:
    """Country → frequency, as the chart draws it."""
    found = {}
    for bar in page.locator("svg.chart rect.bar-country").all():
        found[bar.get_attribute("data-country")] = float(
            bar.get_attribute("data-frequency")
        )
    return found


def sex_bars(page) -> dict[tuple[str, str], float]:
    return {
        (bar.get_attribute("data-country"), bar.get_attribute("data-sex")): float(
            bar.get_attribute("data-frequency")
        )
        for bar in page.locator("svg.chart rect.bar-sex").all()
    }


def search(page, text: str) -> None:
    page.goto("/")
    page.fill("#q", text)
    page.get_by_role("button", name="Search").click()
    page.wait_for_selector("#completeness")


def test_planted_variant_one_bar_per_country(page, screenshots):
    search(page, PLANTED)
    drawn = bars(page)
    assert set(drawn) == PUBLIC_COUNTRIES  # the controlled country answers yes/no
    for country, frequency in drawn.items():
        assert frequency == pytest.approx(BY_COUNTRY[country].frequency(), abs=1e-6)
    for (country, sex), frequency in sex_bars(page).items():
        assert frequency == pytest.approx(BY_COUNTRY[country].frequency(sex), abs=1e-6)
    assert "All 3 nodes answered" in page.inner_text("#completeness")
    save_screenshot(page, screenshots, "search")


def test_other_query_forms_reach_the_same_variant(page):
    search(page, "NC_000001.10:g.1000123A>G")
    assert set(bars(page)) == PUBLIC_COUNTRIES
    search(page, "1:1000100-1000150")
    assert set(bars(page)) == PUBLIC_COUNTRIES
    page.fill("#q", "not a variant!")
    page.get_by_role("button", name="Search").click()
    assert "is not a variant" in page.inner_text("#q-error")


def test_keyboard_only_search(page):
    page.goto("/")
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "q":
            break
    else:
        pytest.fail("the search box cannot be reached with Tab")
    page.keyboard.type(PLANTED)
    page.keyboard.press("Enter")
    page.wait_for_selector("#completeness")
    assert set(bars(page)) == PUBLIC_COUNTRIES
    # The skip link is the first stop and leads to the content.
    page.goto("/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"


def test_controlled_dataset_shows_nothing_to_anonymous(page, screenshots):
    page.goto(f"/datasets/{CONTROLLED.node_id}/{CONTROLLED.dataset_id}")
    text = page.inner_text("main")
    assert "controlled" in text.lower()
    assert "Disease specific research" in text or "disease specific" in text.lower()
    assert "Sign in to apply" in text
    assert f"{CONTROLLED.country}000" not in page.content()  # no sample ids
    assert str(CONTROLLED.num_samples) not in text  # size only as a range
    save_screenshot(page, screenshots, "dataset")
    search(page, PLANTED)
    assert CONTROLLED.country not in bars(page)
    assert f"{CONTROLLED.country}000" not in page.content()
    assert (
        page.locator(f"details.records[data-dataset='{CONTROLLED.dataset_id}']").count()
        == 0
    )


def test_catalogue_facets(page, screenshots):
    page.goto("/datasets")
    assert page.locator("li.card").count() == len(COHORTS)
    page.get_by_label(re.compile(r"^Controlled")).check()
    page.get_by_role("button", name="Filter").click()
    cards = page.locator("li.card")
    assert cards.count() == 1
    assert cards.first.get_attribute("data-dataset") == CONTROLLED.dataset_id
    page.goto("/datasets?country=SE")
    assert page.locator("li.card").count() == 1
    page.goto("/datasets")
    save_screenshot(page, screenshots, "datasets")


def _downloaded_slice(page, grant, directory) -> list[str]:
    """Download the planted variant's region through the form, encrypted to a
    key made here; decrypt it with the private key; the VCF records' first
    five columns."""
    import gzip

    from crypt4gh.lib import decrypt

    from genomenode.store.crypt import read_private_key
    from genomenode.transfer.crypt4gh import generate_user_keypair

    secret, public = directory / "me.sec", directory / "me.pub"
    generate_user_keypair(secret, public, None)
    grant.locator("input[name=region]").fill("1:1000123-1000123")
    grant.locator("textarea[name=public_key]").fill(public.read_text())
    with page.expect_download() as started:
        grant.get_by_role("button", name=re.compile("Download")).click()
    encrypted = directory / "slice.vcf.gz.c4gh"
    started.value.save_as(encrypted)
    assert encrypted.read_bytes()[:8] == b"crypt4gh"
    plain = directory / "slice.vcf.gz"
    with open(encrypted, "rb") as source, open(plain, "wb") as target:
        decrypt([(0, read_private_key(secret), None)], source, target)
    text = gzip.decompress(plain.read_bytes()).decode()
    return [
        "\t".join(line.split("\t")[:5])
        for line in text.splitlines()
        if line and not line.startswith("#")
    ]


def test_apply_approve_records_revoke(browser, network, screenshots, tmp_path):
    researcher = browser.new_context(base_url=network.url).new_page()
    dac = browser.new_context(base_url=network.url).new_page()
    try:
        sign_in(researcher, RESEARCHER)
        researcher.goto(f"/datasets/{CONTROLLED.node_id}/{CONTROLLED.dataset_id}")
        researcher.get_by_role("link", name="Apply for access").click()
        researcher.fill("#project_title", "Coronary artery disease variants")
        researcher.get_by_label(re.compile(r"^Disease specific research")).check()
        researcher.fill("#disease", "ICD10:I25.1")
        researcher.fill("#purpose_text", "Association of rare variants with CAD.")
        save_screenshot(researcher, screenshots, "apply")
        researcher.get_by_role("button", name="Submit application").click()
        assert researcher.inner_text("#state") == "submitted"
        application_url = researcher.url
        researcher.goto("/applications")
        assert researcher.locator("tr[data-state='submitted']").count() == 1

        sign_in(dac, DAC_MEMBER)
        dac.goto("/dac")
        save_screenshot(dac, screenshots, "dac-inbox")
        dac.locator("tr[data-state='submitted'] a").first.click()
        assert "approve" in dac.inner_text("main").lower()
        assert "DUO match" in dac.inner_text("main")
        save_screenshot(dac, screenshots, "application")
        dac.get_by_role("button", name="Approve").click()
        assert dac.inner_text("#state") == "approved"

        search(researcher, PLANTED)
        drawn = bars(researcher)
        assert set(drawn) == PUBLIC_COUNTRIES | {CONTROLLED.country}
        assert drawn[CONTROLLED.country] == pytest.approx(CONTROLLED.frequency())
        records = researcher.locator(
            f"details.records[data-dataset='{CONTROLLED.dataset_id}']"
        )
        assert records.count() == 1
        assert "case-level" in records.text_content()
        save_screenshot(researcher, screenshots, "search-granted")
        researcher.goto("/my-access")
        grant = researcher.locator(
            f"section.grant[data-dataset='{CONTROLLED.dataset_id}']"
        )
        assert grant.count() == 1
        assert "genomenode fetch --server" in grant.inner_text()
        save_screenshot(researcher, screenshots, "my-access")
        # The region holds the planted variant only, decrypted with the key
        # the download was encrypted to.
        assert _downloaded_slice(researcher, grant, tmp_path) == ["1\t1000123\t.\tA\tG"]

        dac.goto(application_url)
        dac.get_by_role("button", name="Revoke access").click()
        assert dac.inner_text("#state") == "revoked"
        search(researcher, PLANTED)
        assert set(bars(researcher)) == PUBLIC_COUNTRIES
        assert (
            researcher.locator(
                f"details.records[data-dataset='{CONTROLLED.dataset_id}']"
            ).count()
            == 0
        )
    finally:
        researcher.context.close()
        dac.context.close()


def test_dac_steps_are_for_members_only(browser, network):
    visitor = browser.new_context(base_url=network.url).new_page()
    try:
        sign_in(visitor, "visitor@demo.genomenode")
        visitor.goto("/dac")
        assert visitor.locator("tr[data-state]").count() == 0
        token = visitor.locator("input[name=csrf_token]").first.get_attribute("value")
        answer = visitor.request.post(
            f"/applications/{CONTROLLED.node_id}/1/act",
            form={"csrf_token": token, "action": "approve", "ends_at": "2030-01-01"},
        )
        assert answer.status in (403, 404)
    finally:
        visitor.context.close()


def test_forms_without_their_csrf_token_are_refused(browser, network):
    researcher = browser.new_context(base_url=network.url).new_page()
    try:
        sign_in(researcher, RESEARCHER)
        for path, form in (
            (
                f"/apply/{CONTROLLED.node_id}/{CONTROLLED.dataset_id}",
                {"project_title": "x", "purpose": "DUO:0000042"},
            ),
            (f"/applications/{CONTROLLED.node_id}/1/act", {"action": "submit"}),
            ("/sign-out", {}),
            ("/my-access/download", {"node": CONTROLLED.node_id}),
        ):
            for token in (None, "forged"):
                posted = dict(form, **({"csrf_token": token} if token else {}))
                answer = researcher.request.post(path, form=posted)
                assert answer.status == 403, (path, token, answer.status)
        # Still signed in: the refused sign-out did nothing.
        researcher.goto("/applications")
        assert RESEARCHER in researcher.inner_text("header")
    finally:
        researcher.context.close()


def _serious(page) -> list[str]:
    results = Axe().run(page)
    return [
        f"{violation['id']}: {violation['help']}"
        for violation in results.response["violations"]
        if violation.get("impact") in ("serious", "critical")
    ]


def test_no_serious_accessibility_violations(browser, network, screenshots):
    context = browser.new_context(base_url=network.url)
    page = context.new_page()
    try:
        pages = {
            "home": "/",
            "search-page": f"/search?q={PLANTED}",
            "search-error": "/search?q=nonsense!",
            "datasets-page": "/datasets",
            "dataset-page": f"/datasets/{CONTROLLED.node_id}/{CONTROLLED.dataset_id}",
            "status": "/status",
        }
        found = {}
        for name, path in pages.items():
            page.goto(path)
            found[path] = _serious(page)
            save_screenshot(page, screenshots, name)
        sign_in(page, RESEARCHER)
        for name, path in {
            "apply-page": f"/apply/{CONTROLLED.node_id}/{CONTROLLED.dataset_id}",
            "applications": "/applications",
            "my-access-page": "/my-access",
            "dac": "/dac",
        }.items():
            page.goto(path)
            found[path] = _serious(page)
            save_screenshot(page, screenshots, name)
        page.goto(f"{network.node_urls[CONTROLLED.node_id]}/status")
        found["node status"] = _serious(page)
        save_screenshot(page, screenshots, "node-status")
        assert {path: v for path, v in found.items() if v} == {}
        # axe does find what it should (a field without a label), so the
        # empty result above means something.
        page.set_content("<html><body><input type=text></body></html>")
        assert _serious(page)
    finally:
        context.close()


def test_node_portal_serves_the_same_pages(page, network):
    node_url = network.node_urls["fi-node"]
    page.goto(f"{node_url}/search?q={PLANTED}")
    assert set(bars(page)) == {"FI"}
    assert bars(page)["FI"] == pytest.approx(BY_COUNTRY["FI"].frequency())
    page.goto(f"{node_url}/status")
    assert page.locator("dl.facts[data-status='ok']").count() == 1


def test_node_portal_signs_in_at_its_broker(page, network):
    # ee-node's portal signs visitors in at the broker it trusts (fi-node's
    # development identity provider) and asks its own access API in-process.
    node_url = network.node_urls[CONTROLLED.node_id]
    page.goto(f"{node_url}/applications")
    page.wait_for_url(re.compile(r"/dev-idp/authorize"))
    page.fill("#subject", RESEARCHER)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{node_url}/applications")
    assert RESEARCHER in page.inner_text("header")
    assert page.locator("tr[data-state]").count() >= 1  # the earlier application
    page.goto(f"{node_url}/datasets")
    assert [
        card.get_attribute("data-dataset") for card in page.locator("li.card").all()
    ] == [CONTROLLED.dataset_id]


def test_hung_node_times_out(page, network):
    process = network.processes[CONTROLLED.node_id]
    os.killpg(process.pid, signal.SIGSTOP)
    try:
        search(page, PLANTED)
    finally:
        os.killpg(process.pid, signal.SIGCONT)
    notice = page.inner_text("#completeness")
    assert "Partial answer" in notice and f"{CONTROLLED.node_id}" in notice
    assert "timed out" in notice
    row = page.locator(f"tr[data-node='{CONTROLLED.node_id}']")
    assert row.get_attribute("data-status") == "timeout"
    assert set(bars(page)) == PUBLIC_COUNTRIES


def test_stopped_node_is_reported(page, network, screenshots):
    from .network import stop_node

    stop_node(network, "se-node")
    search(page, PLANTED)
    notice = page.inner_text("#completeness")
    assert "Partial answer" in notice and "se-node" in notice
    row = page.locator("tr[data-node='se-node']")
    assert row.get_attribute("data-status") in ("timeout", "error", "unavailable")
    assert "SE" not in bars(page)
    save_screenshot(page, screenshots, "search-partial")
    page.goto("/status")
    assert page.locator("tr[data-node='se-node']").get_attribute("data-status") != "ok"
    save_screenshot(page, screenshots, "network-status")
