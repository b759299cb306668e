"""Network benchmark: what the aggregator adds on top of its slowest node.

Fake fast nodes (``tests/network/fake_node.py``, each its own uvicorn process,
answering a fixed valid ``beaconCountResponse``) behind a real
``genomenode network serve`` process, for 3 and for 10 nodes. For each of
``--queries`` count queries (``GET /api/individuals?requestedGranularity=count``):

- *network*: the network's latency, as a client sees it;
- *slowest node*: right after, the same query sent straight to every node at once
  (one pooled client, as the network does), the slowest of them;
- *overhead*: network minus slowest node, per query pair (p50, p99);
- *internal*: network minus the slowest ``latencyMs`` the network itself
  reports in ``info.nodes`` (parsing, validation, merging, serialising);

and requests/s with 32 concurrent clients for ``--seconds``, with the network
process's CPU time per request in that phase (user + system, from ``/proc``; on
a shared machine it moves far less than requests/s does). Target: overhead
p50 ≤ 10 ms. Prints a markdown table.

Usage: python bench/network.py [--queries 300] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pathlib
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import httpx2
import yaml

REPOSITORY = pathlib.Path(__file__).resolve().parents[1]
QUERY = {"requestedGranularity": "count"}
CONCURRENCY = 32


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(arguments: list[str], environment: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *arguments],
        env={**os.environ, **environment},
        cwd=REPOSITORY,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait(url: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx2.get(url, timeout=2)
            return
        except httpx2.TransportError:
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} did not start") from None
            time.sleep(0.1)


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux), else None."""
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2]
    except OSError:
        return None
    user, system = fields.split()[11:13]
    return (int(user) + int(system)) / os.sysconf("SC_CLK_TCK")


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def _measure(
    network_url: str,
    node_urls: list[str],
    queries: int,
    seconds: float,
    network_pid: int,
) -> dict[str, float]:
    limits = httpx2.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx2.AsyncClient(limits=limits, timeout=10) as client:
        network_ms: list[float] = []
        slowest_ms: list[float] = []
        internal_ms: list[float] = []
        for index in range(queries + 20):
            started = time.perf_counter()
            response = await client.get(f"{network_url}/api/individuals", params=QUERY)
            network = (time.perf_counter() - started) * 1000
            document = response.json()
            assert response.status_code == 200, response.text
            assert document["responseSummary"]["numTotalResults"] == 7 * len(node_urls)

            async def direct(url: str) -> float:
                began = time.perf_counter()
                answer = await client.get(f"{url}/api/individuals", params=QUERY)
                answer.raise_for_status()
                return (time.perf_counter() - began) * 1000

            slowest = max(await asyncio.gather(*(direct(url) for url in node_urls)))
            if index < 20:
                continue  # warm-up: connections, caches
            network_ms.append(network)
            slowest_ms.append(slowest)
            reported = max(node["latencyMs"] for node in document["info"]["nodes"])
            internal_ms.append(network - reported)
        overhead = [
            net - slow for net, slow in zip(network_ms, slowest_ms, strict=True)
        ]

        done = 0
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                answer = await client.get(
                    f"{network_url}/api/individuals", params=QUERY
                )
                answer.raise_for_status()
                done += 1

        began = time.perf_counter()
        cpu_before = _cpu_seconds(network_pid)
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - began
        cpu_after = _cpu_seconds(network_pid)
    cpu_ms = (
        (cpu_after - cpu_before) * 1000 / done
        if cpu_before is not None and cpu_after is not None and done
        else float("nan")
    )
    return {
        "cpu_ms_per_request": cpu_ms,
        "network_p50": statistics.median(network_ms),
        "slowest_p50": statistics.median(slowest_ms),
        "overhead_p50": statistics.median(overhead),
        "overhead_p99": _percentile(overhead, 0.99),
        "internal_p50": statistics.median(internal_ms),
        "internal_p99": _percentile(internal_ms, 0.99),
        "requests_per_second": done / elapsed,
    }


def run(num_nodes: int, queries: int, seconds: float) -> dict[str, float]:
    processes: list[subprocess.Popen] = []
    try:
        node_urls = []
        for index in range(num_nodes):
            port = _free_port()
            node_urls.append(f"http://127.0.0.1:{port}")
            processes.append(
                _start(
                    [
                        "-m",
                        "uvicorn",
                        "tests.network.fake_node:app",
                        "--port",
                        str(port),
                        "--log-level",
                        "warning",
                        "--http",
                        "httptools",
                    ],
                    {"FAKE_NODE_MODE": "count", "FAKE_NODE_ID": f"node{index}"},
                )
            )
        port = _free_port()
        network_url = f"http://127.0.0.1:{port}"
        with tempfile.TemporaryDirectory() as directory:
            network_yaml = pathlib.Path(directory) / "NETWORK.yaml"
            network_yaml.write_text(
                yaml.safe_dump(
                    {
                        "format_version": 1,
                        "network_id": "bench",
                        "public_url": network_url,
                        "timeout_seconds": 5,
                        "nodes": [
                            {"id": f"node{index}", "country": "FI", "url": url}
                            for index, url in enumerate(node_urls)
                        ],
                    }
                )
            )
            processes.append(
                _start(
                    [
                        "-m",
                        "genomenode",
                        "network",
                        "serve",
                        str(network_yaml),
                        "--port",
                        str(port),
                    ],
                    {},
                )
            )
            for url in node_urls:
                _wait(f"{url}/api")
            _wait(f"{network_url}/network/status")
            return asyncio.run(
                _measure(network_url, node_urls, queries, seconds, processes[-1].pid)
            )
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=5.0)
    arguments = parser.parse_args()
    rows = [
        (count, run(count, arguments.queries, arguments.seconds)) for count in (3, 10)
    ]
    print(
        "| nodes | network p50 (ms) | slowest node p50 (ms) | overhead p50 (ms) "
        "| overhead p99 (ms) | internal p50 (ms) | internal p99 (ms) | requests/s "
        "| network CPU ms/request |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for count, result in rows:
        print(
            f"| {count} | {result['network_p50']:.1f} | {result['slowest_p50']:.1f} "
            f"| {result['overhead_p50']:.1f} | {result['overhead_p99']:.1f} "
            f"| {result['internal_p50']:.1f} | {result['internal_p99']:.1f} "
            f"| {result['requests_per_second']:.0f} "
            f"| {result['cpu_ms_per_request']:.2f} |"
        )
    print(
        f"\nTarget: overhead p50 ≤ 10 ms ({CONCURRENCY} concurrent clients for "
        "requests/s; fake nodes answer a fixed count response)."
    )


if __name__ == "__main__":
    main()
