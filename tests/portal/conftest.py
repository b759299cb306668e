"""The portal's browser tests: one real network (three nodes and the network as
processes, :mod:`tests.portal.network`) and Debian's Chromium under Playwright,
both for the whole module.

Screenshots of every page go to the test's temporary directory; with
``GENOMENODE_PORTAL_SCREENSHOTS=docs/images`` the main ones are also written
there (how docs/images/portal-*.png were made).
"""

from __future__ import annotations

import os
import pathlib
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import sync_playwright

from .network import PortalNetwork, portal_network


@pytest.fixture(scope="module")
def network(tmp_path_factory) -> Iterator[PortalNetwork]:
    with portal_network(tmp_path_factory.mktemp("portal")) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is needed (apt-get install chromium)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-background-networking"],
        )
        try:
            yield launched
        finally:
            launched.close()


#: The pages docs/portal.md shows (the rest stay test artefacts).
PUBLISHED = frozenset(
    {
        "search",
        "search-granted",
        "search-partial",
        "datasets",
        "dataset",
        "apply",
        "dac-inbox",
        "application",
        "my-access",
        "network-status",
        "analyses",
    }
)


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> pathlib.Path:
    return tmp_path_factory.mktemp("screenshots")


def save_screenshot(page, directory: pathlib.Path, name: str) -> None:
    """A full-page screenshot in the test's directory (and in docs/images when
    asked, for the pages the docs show)."""
    page.screenshot(path=str(directory / f"portal-{name}.png"), full_page=True)
    published = os.environ.get("GENOMENODE_PORTAL_SCREENSHOTS")
    if published and name in PUBLISHED:
        page.screenshot(
            path=str(pathlib.Path(published) / f"portal-{name}.png"), full_page=True
        )
