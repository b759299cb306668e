"""Portal benchmark: what the search result page adds to the API answer behind it.

A real network of three node processes and ``genomenode network serve``
(``tests/portal/network.py``: the planted variant ``1-1000123-A-G`` in every
dataset). For ``--queries`` rounds, alternately:

- *API*: the network's ``POST /api/g_variants`` for the variant (the very body the
  portal sends, record granularity, every result set), as a client sees it;
- *page*: Debian's Chromium (Playwright) opening ``/search?q=1-1000123-A-G`` on the
  network's portal, timed from navigation start to the first contentful paint
  (the browser's ``first-contentful-paint`` entry): the portal's own request to
  the API, shaping, the SVG chart, the HTML, and the browser's parse and paint.

Prints p50 and p90 of each, the page's time as a ratio of the API's, and the
difference, whose target is ≤ 100 ms.

Usage: python bench/portal.py [--queries 40] [--quick]
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import statistics
import sys
import tempfile
import time

import httpx2

REPOSITORY = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from tests.portal.network import PLANTED, portal_network  # noqa: E402

from genomenode.portal.search import beacon_request, parse_query  # noqa: E402

TARGET_MS = 100.0


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run(queries: int) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    _kind, parameters = parse_query(PLANTED)
    body = beacon_request(parameters)
    api_ms: list[float] = []
    page_ms: list[float] = []
    served_ms: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-portal-") as directory,
        portal_network(pathlib.Path(directory)) as network,
        sync_playwright() as p,
    ):
        browser = p.chromium.launch(
            executable_path=shutil.which("chromium"),
            args=["--no-sandbox", "--disable-background-networking"],
        )
        # The pages forbid eval (CSP); the timing probe below needs it.
        page = browser.new_context(base_url=network.url, bypass_csp=True).new_page()
        with httpx2.Client(base_url=network.url, timeout=30) as client:
            # Warm both paths (connections, caches, the stylesheet).
            for _ in range(3):
                client.post("/api/g_variants", json=body).raise_for_status()
                page.goto(f"/search?q={PLANTED}")
            for _ in range(queries):
                started = time.perf_counter()
                answer = client.post("/api/g_variants", json=body)
                api_ms.append(1000 * (time.perf_counter() - started))
                assert answer.json()["responseSummary"]["exists"]
                page.goto(f"/search?q={PLANTED}", wait_until="load")
                paint = page.wait_for_function(
                    "performance.getEntriesByName('first-contentful-paint')"
                    ".map(e => e.startTime)[0]",
                    timeout=10_000,
                ).json_value()
                assert paint is not None, "no first-contentful-paint entry"
                assert page.locator("svg.chart rect.bar-country").count() == 2
                page_ms.append(float(paint))
                served_ms.append(
                    float(
                        page.evaluate(
                            "performance.getEntriesByType('navigation')[0].responseEnd"
                        )
                    )
                )
        browser.close()
    return {
        "api_p50": statistics.median(api_ms),
        "api_p90": _percentile(api_ms, 0.9),
        "page_p50": statistics.median(page_ms),
        "page_p90": _percentile(page_ms, 0.9),
        "served_p50": statistics.median(served_ms),
        "served_p90": _percentile(served_ms, 0.9),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="10 rounds only")
    arguments = parser.parse_args()
    result = run(10 if arguments.quick else arguments.queries)
    added = result["page_p50"] - result["api_p50"]
    ratio = result["page_p50"] / result["api_p50"]
    print("| search for 1-1000123-A-G, 3 nodes | p50 ms | p90 ms |")
    print("|---|---:|---:|")
    print(
        f"| API (POST /api/g_variants) | {result['api_p50']:.1f} | "
        f"{result['api_p90']:.1f} |"
    )
    print(
        f"| page, last byte received (Chromium) | {result['served_p50']:.1f} | "
        f"{result['served_p90']:.1f} |"
    )
    print(
        f"| page, first contentful paint (Chromium) | {result['page_p50']:.1f} | "
        f"{result['page_p90']:.1f} |"
    )
    print(
        f"\npage / API (p50): {ratio:.2f}x; the page adds {added:.1f} ms "
        f"(target ≤ {TARGET_MS:.0f} ms): {'OK' if added <= TARGET_MS else 'OVER'}"
    )


if __name__ == "__main__":
    main()
