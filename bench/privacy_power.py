"""Privacy benchmark: the attacks' power as they spend more queries, with and
without the node's defences.

One population simulated with msprime (``genomenode simulate``) is dealt into 20
members (one PUBLIC dataset giving anonymous callers counts), 100 non-members and
a 300-person reference panel (:mod:`genomenode.privacy.cohort`). The node is served
by ``genomenode serve`` twice: with ``GENOMENODE_DISCLOSURE_ENABLED=false`` (what a
node did before disclosure control: granularity and the floor of 5) and with the
defaults. Against each, as one anonymous caller (a fresh loopback address per
point of the curve, so that every point has a budget of its own):

- the Shringarpure & Bustamante test (yes/no answers), by queries per target;
- Homer's test (counts of carriers), by queries in all.

Against the defaults the attacks also run as an attacker with many addresses
(``sybil``): SB from a fresh address for every target, Homer from a fresh address
for every 10 SNPs, each within its own budget (and all within the anonymous pool).
Every point starts with every budget unspent (a new budget window).

Power is at a 5 % false-positive rate, the threshold taken from the non-members.
Writes ``docs/privacy-power.md`` (a Markdown table for docs/privacy.md to include)
and ``docs/privacy-power.svg`` (the curves, drawn by hand), and prints the table.

Usage: python bench/privacy_power.py [--out docs] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import httpx2
import numpy as np

from genomenode.ingest.pipeline import ingest
from genomenode.privacy.cohort import read_genotypes, simulate_split_cohort
from genomenode.privacy.homer import homer_attack
from genomenode.privacy.oracle import BeaconOracle
from genomenode.privacy.sb import sb_attack
from genomenode.store.node import init_node, open_node

MEMBERS, NON_MEMBERS, REFERENCE, LENGTH = 20, 100, 300, 8_000_000
SB_QUERIES = (1, 2, 3, 5, 10, 20, 50)
HOMER_QUERIES = (100, 250, 500, 1000, 2000, 4000)
SETTINGS = {
    "off": {"GENOMENODE_DISCLOSURE_ENABLED": "false"},
    "defaults": {},
}
#: Homer's SNPs per address for the attacker with many addresses.
SNPS_PER_ADDRESS = 10


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def _serve(node_dir: pathlib.Path, environment: dict[str, str]) -> Iterator[str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "genomenode", "serve", "--node", str(node_dir)]
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        env={**os.environ, **environment, "GENOMENODE_PUBLIC_URL": url},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx2.get(f"{url}/api/info", timeout=2)
                break
            except httpx2.TransportError as error:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"serve did not start on {url}") from error
                time.sleep(0.2)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


@contextlib.contextmanager
def _fresh(node_dir: pathlib.Path, environment: dict[str, str]) -> Iterator[str]:
    """The node served with every budget unspent, as on the first day of a budget
    window: each point of a curve is an attack of its own, not the leftovers of
    the points before it (the anonymous pool is shared by every address)."""
    with open_node(node_dir) as node, node.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM disclosure_budgets")
    with _serve(node_dir, environment) as url:
        yield url


class _Addresses:
    """A fresh loopback address (so a fresh anonymous budget) per point."""

    def __init__(self) -> None:
        self.next = 0

    def client(self, stack: contextlib.ExitStack) -> httpx2.Client:
        self.next += 1
        address = f"127.0.{10 + self.next // 250}.{1 + self.next % 250}"
        transport = httpx2.HTTPTransport(local_address=address)
        return stack.enter_context(httpx2.Client(transport=transport, timeout=60))


def _curves(root: pathlib.Path, quick: bool) -> dict[str, list[tuple]]:
    split = simulate_split_cohort(
        root / "cohort",
        members=MEMBERS,
        non_members=NON_MEMBERS,
        reference=REFERENCE,
        length=LENGTH,
        beacon={"anonymous": "count"},
    )
    targets = read_genotypes(split.pool_vcf, split.all_members + split.non_members)
    reference = read_genotypes(split.pool_vcf, split.reference)
    is_member = np.array([True] * MEMBERS + [False] * NON_MEMBERS)
    os.environ["GENOMENODE_WORKER_PROCESSES"] = "0"
    with init_node(root / "node", node_id="bench", country="DE") as node:
        ingest(node, split.dataset_yamls[0])
    sb_grid = SB_QUERIES[:4] if quick else SB_QUERIES
    homer_grid = HOMER_QUERIES[:3] if quick else HOMER_QUERIES
    rows: dict[str, list[tuple]] = {"sb": [], "homer": []}
    addresses = _Addresses()
    node_dir = root / "node"
    for setting, environment in SETTINGS.items():
        for queries in sb_grid:
            with _fresh(node_dir, environment) as url, contextlib.ExitStack() as stack:
                oracle = BeaconOracle(addresses.client(stack), url, workers=4)
                result = sb_attack(
                    oracle,
                    targets,
                    is_member,
                    reference,
                    num_individuals=MEMBERS,
                    queries=queries,
                )
            rows["sb"].append((setting, queries, result))
            print(f"sb {setting} {queries}: {result.as_dict()}", file=sys.stderr)
            if setting != "defaults":
                continue
            with _fresh(node_dir, environment) as url, contextlib.ExitStack() as stack:
                many = [
                    BeaconOracle(addresses.client(stack), url, workers=4)
                    for _ in range(len(is_member))
                ]
                result = sb_attack(
                    many,
                    targets,
                    is_member,
                    reference,
                    num_individuals=MEMBERS,
                    queries=queries,
                )
            rows["sb"].append(("sybil", queries, result))
            print(f"sb sybil {queries}: {result.as_dict()}", file=sys.stderr)
        for queries in homer_grid:
            with _fresh(node_dir, environment) as url, contextlib.ExitStack() as stack:
                oracle = BeaconOracle(addresses.client(stack), url, workers=4)
                result = homer_attack(
                    oracle, targets, is_member, reference, queries=queries
                )
            rows["homer"].append((setting, queries, result))
            print(f"homer {setting} {queries}: {result.as_dict()}", file=sys.stderr)
            if setting != "defaults":
                continue
            with _fresh(node_dir, environment) as url, contextlib.ExitStack() as stack:
                many = [
                    BeaconOracle(addresses.client(stack), url, workers=4)
                    for _ in range(max(1, queries // SNPS_PER_ADDRESS))
                ]
                result = homer_attack(
                    many, targets, is_member, reference, queries=queries
                )
            rows["homer"].append(("sybil", queries, result))
            print(f"homer sybil {queries}: {result.as_dict()}", file=sys.stderr)
    return rows


def _table(rows: dict[str, list[tuple]]) -> str:
    lines = [
        "# Membership attacks: power against queries",
        "",
        f"Members: {MEMBERS} (one PUBLIC dataset, anonymous callers get counts); "
        f"non-members: {NON_MEMBERS}; reference panel: {REFERENCE}; one simulated "
        f"population, {LENGTH // 1_000_000} Mb. Power at 5 % false-positive rate; "
        "one anonymous caller per point. Written by `python bench/privacy_power.py`.",
        "",
        "| attack | queries | power (off) | power (defaults) | answered (defaults) "
        "| refused by budget (defaults) | power (defaults, many addresses) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for attack, label in (("sb", "SB, per target"), ("homer", "Homer, in all")):
        by_point: dict[int, dict[str, object]] = {}
        for setting, queries, result in rows[attack]:
            by_point.setdefault(queries, {})[setting] = result
        for queries, results in sorted(by_point.items()):
            off, on = results.get("off"), results.get("defaults")
            many = results.get("sybil")
            lines.append(
                f"| {label} | {queries} | "
                f"{off.power.power:.0%} | "  # type: ignore[union-attr]
                f"{on.power.power:.0%} | "  # type: ignore[union-attr]
                f"{on.num_queries - on.num_refused} | "  # type: ignore[union-attr]
                f"{on.num_refused + on.num_unsent} | "  # type: ignore[union-attr]
                f"{many.power.power:.0%} |"  # type: ignore[union-attr]
            )
    return "\n".join(lines) + "\n"


def _svg(rows: dict[str, list[tuple]]) -> str:
    """Two panels (SB, Homer): power against log queries, off and defaults."""
    width, height, pad = 360, 240, 40
    colours = {"off": "#c0392b", "defaults": "#2471a3", "sybil": "#7d3c98"}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * width}" '
        f'height="{height}" font-family="sans-serif" font-size="11">'
    ]
    for panel, (attack, title) in enumerate(
        (("sb", "SB: queries per target"), ("homer", "Homer: queries in all"))
    ):
        left = panel * width
        points = rows[attack]
        if not points:
            continue
        xs = [np.log10(queries) for _, queries, _ in points]
        low, high = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1

        def x(value: float, left: int = left, low: float = low, high: float = high):
            return left + pad + (value - low) / (high - low) * (width - 2 * pad)

        def y(power: float) -> float:
            return height - pad - power * (height - 2 * pad)

        parts.append(
            f'<text x="{left + width / 2}" y="16" text-anchor="middle">{title}</text>'
        )
        parts.append(
            f'<line x1="{left + pad}" y1="{y(0)}" x2="{left + width - pad}" '
            f'y2="{y(0)}" stroke="black"/>'
            f'<line x1="{left + pad}" y1="{y(0)}" x2="{left + pad}" y2="{y(1)}" '
            'stroke="black"/>'
        )
        for tick in (0, 0.5, 1):
            parts.append(
                f'<text x="{left + pad - 4}" y="{y(tick) + 4}" '
                f'text-anchor="end">{tick:.0%}</text>'
            )
        parts.append(
            f'<line x1="{left + pad}" y1="{y(0.05)}" x2="{left + width - pad}" '
            f'y2="{y(0.05)}" stroke="grey" stroke-dasharray="3,3"/>'
        )
        for _, queries, _ in points:
            parts.append(
                f'<text x="{x(np.log10(queries))}" y="{height - pad + 14}" '
                f'text-anchor="middle">{queries}</text>'
            )
        for setting, colour in colours.items():
            line = [
                (x(np.log10(queries)), y(result.power.power))
                for name, queries, result in points
                if name == setting
            ]
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in line)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" '
                'stroke-width="2"/>'
            )
            label_y = y({"off": 0.9, "defaults": 0.2, "sybil": 0.55}[setting])
            parts.append(
                f'<text x="{left + width - pad}" y="{label_y}" fill="{colour}" '
                f'text-anchor="end">{setting}</text>'
            )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("docs"))
    parser.add_argument("--quick", action="store_true", help="Fewer points.")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        rows = _curves(pathlib.Path(directory), arguments.quick)
    table = _table(rows)
    arguments.out.mkdir(parents=True, exist_ok=True)
    (arguments.out / "privacy-power.md").write_text(table)
    (arguments.out / "privacy-power.svg").write_text(_svg(rows))
    print(table)


if __name__ == "__main__":
    main()
