"""Hardening benchmark (issue 10): fast count queries beside slow per-person scans.

The network of ``make demo`` (:mod:`genomenode.demo`: FI PUBLIC, IT REGISTERED and
PT CONTROLLED nodes from simulated cohorts, the FI node running the development
identity provider), with longer genomes (``--length``, default 20 Mb) so that a
per-person query is really slow; cohorts and nodes are cached in bench/cache/.
Each node is a real ``genomenode serve`` process and the network a real
``genomenode network serve`` process, on loopback, as the demo starts them. The
demo's researcher applies for the PT dataset and the DAC approves, as in the demo.

- *fast*: the demo's count query, ``GET /api/g_variants?referenceName=1&start=0&
  end=100000&requestedGranularity=count`` (a binary search and cached numbers),
  anonymous: the PUBLIC FI node answers it (with a boolean, all anonymous callers
  get), the others have nothing to show and say so. With ``--fast-passport`` it
  carries the researcher's passport, and every node answers with a count;
- *slow*: the variants one person carries, ``GET /api/individuals/{id}/g_variants?
  requestedGranularity=record`` with the researcher's passport, cycling through
  PT's individuals: a scan of that person's whole ``call_genotype`` column, the
  slowest query a caller with records can ask. Only PT answers it (it names one
  person: the other nodes give this caller less than records and leave it out).

Method. wrk's latency statistics do not say which request a latency belongs to,
and leave out the requests still unanswered when a run stops (those a slow query
starves the longest), so ``hardening.lua`` times each request itself, with one
connection per wrk thread (``-tN -cN``); a request unanswered at the end counts
with its age so far, a lower bound (marked "≥" when such requests reach the p99).
The mix is two wrk processes at once: the fast one with ``--connections`` (50),
whose latencies and requests/s are the ones reported, and the slow one with a
tenth as many connections (5), each pausing before every request (wrk's ``delay``
hook) so that slow requests are at most 1/9 of the fast rate the same target
reached alone: at most one request in ten is slow. When the scans are slower than
that pause allows, fewer are sent; the table gives the share reached. Runs, each
``--seconds`` (30) long after a 3 s warm-up, in this order (after a mixed run the
benchmark waits, up to 30 s, for the scans the servers are still running):

1. PT node, fast only;  2. PT node, fast + slow;
3. network, fast only;  4. network, fast + slow;
5. network with the IT node SIGSTOPped (its port still accepts connections, it
   never answers), after a warm-up of the network's ``timeout_seconds`` + 5 s so
   that a circuit breaker would have opened, fast only.

Disclosure control (issue 12) stays on, with budgets no run can spend (wrk is
one address asking thousands of times: the defaults would answer 429 after 200
lookups), so every request takes its whole path, the budget's upsert included.

Targets (issue 10): fast p99 with slow ÷ without ≤ 2; network ÷ node requests/s
≥ 0.25; stopped ÷ healthy network requests/s ≥ 0.90. Prints markdown tables.
Every process started is continued (SIGCONT) and stopped at the end, also on
Ctrl-C, SIGTERM or an error.

With ``--profile DIR``, py-spy records every process during the network's
fast-only run (one collapsed-stack file each in DIR; ``pip install py-spy``).

Usage: python bench/hardening.py [--seconds 30] [--connections 50] [--quick]
                                 [--fast-passport] [--length 20000000]
                                 [--profile DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence

import httpx2
import yaml
from rich.console import Console

from genomenode.demo import (
    DEMO_RESEARCHER,
    DemoNode,
    _free_port,
    _nodes,
    _prepare,
    _processes,
    _show,
    _token,
    _wait_ready,
    _write_network,
)

HERE = pathlib.Path(__file__).resolve().parent
CACHE = HERE / "cache"
SCRIPT = HERE / "hardening.lua"
WRK = "/usr/bin/wrk"
FAST_PATH = (
    "/api/g_variants?referenceName=1&start=0&end=100000&requestedGranularity=count"
)
SLOW_PATH = "/api/individuals/{}/g_variants?requestedGranularity=record"
#: One request in ten is slow: the slow wrk gets a tenth of the connections and
#: at most a ninth of the fast requests' rate.
SLOW_SHARE = 10
WARM_UP_SECONDS = 3
WRK_TIMEOUT = "60s"
RESULT_MARK = "hardening-result "


@dataclasses.dataclass(frozen=True)
class Load:
    """What one wrk process measured."""

    requests: int  # answered
    unanswered: int  # still waiting when the run stopped
    seconds: float
    p50_ms: float  # over the answered and the unanswered (their age so far)
    p99_ms: float
    errors: int  # HTTP status > 399 and socket errors

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclasses.dataclass(frozen=True)
class Run:
    """One measured run: the fast requests, and the slow ones beside them."""

    name: str
    fast: Load
    slow: Load | None = None


def _interrupt(_signal: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _start_wrk(
    base_url: str,
    paths: Sequence[str],
    token: str,
    *,
    connections: int,
    seconds: float,
    delay_ms: float = 0.0,
) -> subprocess.Popen[str]:
    environment = {
        **os.environ,
        "HARDENING_PATHS": "\n".join(paths),
        "HARDENING_TOKEN": token,
        "HARDENING_DELAY_MS": f"{delay_ms:.0f}",
    }
    command = [
        WRK,
        # One connection per thread: the script then knows which request is
        # still unanswered when the run stops (hardening.lua).
        f"-t{connections}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        WRK_TIMEOUT,
        "-s",
        str(SCRIPT),
        base_url,
    ]
    return subprocess.Popen(
        command,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _result(process: subprocess.Popen[str]) -> Load:
    output, error = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed ({process.returncode}): {error}{output}")
    line = next(
        (line for line in output.splitlines() if line.startswith(RESULT_MARK)), None
    )
    if line is None:
        raise RuntimeError(f"no result from wrk:\n{output}{error}")
    found = json.loads(line.removeprefix(RESULT_MARK))
    answered = found["answered_us"]
    # A request starved until the end counts with its age so far (a lower bound
    # of its latency): leaving it out would make starvation look fast.
    every = sorted(answered + found["unanswered_us"])
    return Load(
        requests=len(answered),
        unanswered=len(found["unanswered_us"]),
        seconds=found["duration_us"] / 1e6,
        p50_ms=_percentile(every, 0.50) / 1000,
        p99_ms=_percentile(every, 0.99) / 1000,
        errors=sum(
            found[name]
            for name in (
                "status_errors",
                "connect_errors",
                "read_errors",
                "write_errors",
            )
        ),
    )


def _percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest rank; 0 for no values."""
    if not ordered:
        return 0.0
    return float(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))])


@contextlib.contextmanager
def _stopped_at_exit(
    processes: list[subprocess.Popen[str]],
) -> Iterator[list[subprocess.Popen[str]]]:
    """wrk processes, terminated if still running when the block ends."""
    try:
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.communicate(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.communicate()


def _load(
    name: str,
    base_url: str,
    *,
    fast_token: str,
    connections: int,
    seconds: float,
    slow_paths: Sequence[str] = (),
    slow_token: str = "",
    slow_rate: float = 0.0,
) -> Run:
    """Fast requests for ``seconds``; with ``slow_paths``, slow ones beside them.

    A token is a passport sent with the requests ("": anonymous).
    """
    with _stopped_at_exit([]) as started:
        if slow_paths:
            slow_connections = max(1, connections // SLOW_SHARE)
            started.append(
                _start_wrk(
                    base_url,
                    slow_paths,
                    slow_token,
                    connections=slow_connections,
                    seconds=seconds,
                    delay_ms=1000 * slow_connections / max(slow_rate, 0.1),
                )
            )
        started.append(
            _start_wrk(
                base_url,
                [FAST_PATH],
                fast_token,
                connections=connections,
                seconds=seconds,
            )
        )
        results = [_result(process) for process in started]
    run = Run(name, fast=results[-1], slow=results[0] if slow_paths else None)
    print(f"{name}: {run}", file=sys.stderr, flush=True)
    return run


def _sequential_ms(
    client: httpx2.Client, url: str, number: int, headers: dict[str, str]
) -> float:
    """Median latency of ``number`` requests one after the other."""
    seconds = []
    for _ in range(number):
        started = time.perf_counter()
        response = client.get(url, headers=headers)
        seconds.append(time.perf_counter() - started)
        response.raise_for_status()
    return statistics.median(seconds) * 1000


def _settle(url: str, token: str, quiet_ms: float, *, limit: float = 30.0) -> None:
    """Wait (at most ``limit`` s) for the scans still running when wrk left.

    The servers finish a request whose client went away; the next run must not
    start beside them. Settled: three answers in a row within 3 × ``quiet_ms``.
    """
    deadline = time.monotonic() + limit
    in_a_row = 0
    with httpx2.Client(headers=_authorization(token)) as client:
        while in_a_row < 3 and time.monotonic() < deadline:
            started = time.perf_counter()
            client.get(url, timeout=limit).raise_for_status()
            fast = (time.perf_counter() - started) * 1000 < 3 * quiet_ms
            in_a_row = in_a_row + 1 if fast else 0
            time.sleep(0.2)


def _authorization(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _individuals(
    client: httpx2.Client, node: DemoNode, headers: dict[str, str]
) -> list[str]:
    """The ids of every individual of the node's dataset (records, granted)."""
    response = client.get(
        f"{node.url}/api/individuals",
        params={"requestedGranularity": "record", "limit": 0},
        headers=headers,
    )
    response.raise_for_status()
    sets = response.json()["response"]["resultSets"]
    return [record["id"] for entry in sets for record in entry.get("results", [])]


def _check(
    client: httpx2.Client,
    network: str,
    node: DemoNode,
    person: str,
    fast_headers: dict[str, str],
    slow_headers: dict[str, str],
) -> None:
    """Both queries answer as the benchmark assumes, before it measures them."""
    fast = client.get(f"{network}{FAST_PATH}", headers=fast_headers).json()
    statuses = {item["id"]: item["status"] for item in fast["info"]["nodes"]}
    # Anonymous callers get booleans from the PUBLIC node, nothing from the others.
    expected = "count" if fast_headers else "boolean"
    if (
        set(statuses.values()) != {"ok"}
        or fast["meta"]["returnedGranularity"] != expected
    ):
        raise RuntimeError(f"the network's count query is not answered: {statuses}")
    for base in (node.url, network):
        slow = client.get(
            f"{base}{SLOW_PATH.format(person)}", headers=slow_headers
        ).json()
        sets = slow["response"]["resultSets"]
        if not any(
            entry["id"] == node.dataset_id and entry["results"] for entry in sets
        ):
            raise RuntimeError(f"{base}: no records for {person}'s variants")


def _measure(
    nodes: Sequence[DemoNode],
    network: str,
    broker: str,
    processes: Sequence[subprocess.Popen[bytes]],
    *,
    connections: int,
    seconds: float,
    timeout_seconds: float,
    fast_passport: bool,
    profile: pathlib.Path | None = None,
) -> tuple[list[Run], dict[str, float]]:
    controlled = next(node for node in nodes if node.security_level == "CONTROLLED")
    stopped_node = next(node for node in nodes if node.security_level == "REGISTERED")
    slow_token = _token(broker, DEMO_RESEARCHER)["Authorization"].removeprefix(
        "Bearer "
    )
    fast_token = slow_token if fast_passport else ""
    fast_headers = _authorization(fast_token)
    slow_headers = _authorization(slow_token)
    # Headers per request: a client's default headers would be merged into them.
    with httpx2.Client(timeout=120) as client:
        people = _individuals(client, controlled, slow_headers)
        _check(client, network, controlled, people[0], fast_headers, slow_headers)
        slow_paths = [SLOW_PATH.format(person) for person in people]
        facts = {
            "individuals": float(len(people)),
            "slow alone, node": _sequential_ms(
                client, f"{controlled.url}{slow_paths[1]}", 5, slow_headers
            ),
            "fast alone, node": _sequential_ms(
                client, f"{controlled.url}{FAST_PATH}", 50, fast_headers
            ),
            "fast alone, network": _sequential_ms(
                client, f"{network}{FAST_PATH}", 50, fast_headers
            ),
        }
    runs: list[Run] = []
    groups = {
        **{
            node.node_id: process.pid
            for node, process in zip(nodes, processes[:-1], strict=True)
        },
        "network": processes[-1].pid,
    }
    for name, base_url, quiet_ms in (
        ("PT node", controlled.url, facts["fast alone, node"]),
        ("network", network, facts["fast alone, network"]),
    ):
        _load(
            f"{name}, warm-up",
            base_url,
            fast_token=fast_token,
            connections=connections,
            seconds=WARM_UP_SECONDS,
        )
        before = {label: _cpu_seconds(group) for label, group in groups.items()}
        with _profiled(profile if name == "network" else None, groups, seconds):
            alone = _load(
                f"{name}, fast only",
                base_url,
                fast_token=fast_token,
                connections=connections,
                seconds=seconds,
            )
        for label, used in _cpu_per_request(
            groups, before, alone.fast.requests
        ).items():
            facts[f"cpu ms, {name}: {label}"] = used
        runs.append(alone)
        mixed = _load(
            f"{name}, fast + slow",
            base_url,
            fast_token=fast_token,
            connections=connections,
            seconds=seconds,
            slow_paths=slow_paths,
            slow_token=slow_token,
            slow_rate=alone.fast.per_second / (SLOW_SHARE - 1),
        )
        runs.append(mixed)
        _settle(f"{base_url}{FAST_PATH}", fast_token, quiet_ms)
    group = processes[nodes.index(stopped_node)].pid
    name = f"network, {stopped_node.node_id} SIGSTOPped"
    os.killpg(group, signal.SIGSTOP)
    try:
        _load(
            f"{name}, warm-up",
            network,
            fast_token=fast_token,
            connections=connections,
            seconds=timeout_seconds + 5,
        )
        runs.append(
            _load(
                f"{name}, fast only",
                network,
                fast_token=fast_token,
                connections=connections,
                seconds=seconds,
            )
        )
    finally:
        os.killpg(group, signal.SIGCONT)
    return runs, facts


@contextlib.contextmanager
def _profiled(
    directory: pathlib.Path | None, groups: dict[str, int], seconds: float
) -> Iterator[None]:
    """py-spy on every process while the block runs (``--profile``): one
    collapsed-stack file per process in ``directory``, for flame graphs or a
    sum by function. Only the thread holding the GIL is sampled (``--gil``), so
    the stacks are where each process spends its interpreter's time, not where
    its idle threads wait. py-spy is not a dependency: ``pip install py-spy``."""
    if directory is None:
        yield
        return
    directory.mkdir(parents=True, exist_ok=True)
    spies = [
        subprocess.Popen(
            [
                str(pathlib.Path(sys.executable).with_name("py-spy")),
                "record",
                "--pid",
                str(pid),
                "--subprocesses",
                "--gil",
                "--format",
                "raw",
                "--duration",
                str(max(1, round(seconds))),
                "--output",
                str(directory / f"{label}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for label, pid in groups.items()
    ]
    try:
        yield
    finally:
        for spy in spies:
            spy.wait(timeout=seconds + 30)


def _unlimited_budgets(config_path: pathlib.Path) -> None:
    """Budgets no run can spend: wrk is one address asking thousands of times,
    which the defaults answer with 429 after 200 lookups. Disclosure control stays
    on, so every request still takes its whole path (the budget's upsert too)."""
    config = yaml.safe_load(config_path.read_text())
    config["disclosure_epsilon_budget"] = 1e12
    config["disclosure_anonymous_epsilon_budget"] = 1e12
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))


def _cpu_seconds(group: int) -> float:
    """CPU time (user + system) used so far by the processes of ``group``."""
    total = 0
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # After the command's ")": state, ppid, pgrp ... utime, stime (stat(5)).
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == group:
                total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _cpu_per_request(
    groups: dict[str, int], before: dict[str, float], requests: int
) -> dict[str, float]:
    """Milliseconds of CPU per answered request, by process, since ``before``."""
    return {
        name: 1000 * (_cpu_seconds(group) - before[name]) / max(1, requests)
        for name, group in groups.items()
    }


def _ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}" if denominator else "—"


def _bounded(load: Load) -> bool:
    """True when requests unanswered at the end reach the p99 (a lower bound)."""
    return load.unanswered > 0.01 * (load.requests + load.unanswered)


def _p99_ratio(mixed: Run, alone: Run) -> str:
    ratio = _ratio(mixed.fast.p99_ms, alone.fast.p99_ms)
    return f"≥ {ratio}" if _bounded(mixed.fast) else ratio


def _ms(load: Load, value: float, digits: int = 1) -> str:
    """A latency; "≥" when it counts requests still unanswered at the end."""
    if not load.requests + load.unanswered:
        return "—"
    return f"{'≥ ' if _bounded(load) else ''}{value:.{digits}f}"


def _report(runs: Sequence[Run], facts: dict[str, float]) -> None:
    print(
        "\n| run | fast p50 ms | fast p99 ms | fast req/s | fast unanswered at the end "
        "| slow answered (share) | slow p50 ms | slow req/s | errors fast / slow |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for run in runs:
        fast, slow = run.fast, run.slow
        if slow is None:
            slow_cells = f"— | — | — | {fast.errors} / —"
        else:
            share = slow.requests / max(1, slow.requests + fast.requests)
            slow_cells = (
                f"{slow.requests:,} ({share:.1%}) | {_ms(slow, slow.p50_ms, 0)} "
                f"| {slow.per_second:.1f} | {fast.errors} / {slow.errors}"
            )
        print(
            f"| {run.name} | {_ms(fast, fast.p50_ms)} | {_ms(fast, fast.p99_ms)} "
            f"| {fast.per_second:.1f} | {fast.unanswered} | {slow_cells} |"
        )
    node_alone, node_mixed, network_alone, network_mixed, stopped = runs
    print("\n| ratio | value | target |")
    print("|---|---:|---:|")
    print(
        "| fast p99 with slow ÷ without, PT node "
        f"| {_p99_ratio(node_mixed, node_alone)} | ≤ 2 |"
    )
    print(
        "| fast p99 with slow ÷ without, network "
        f"| {_p99_ratio(network_mixed, network_alone)} | ≤ 2 |"
    )
    print(
        "| network req/s ÷ PT node req/s, fast only "
        f"| {_ratio(network_alone.fast.per_second, node_alone.fast.per_second)} "
        "| ≥ 0.25 |"
    )
    print(
        "| network req/s, one node stopped ÷ healthy "
        f"| {_ratio(stopped.fast.per_second, network_alone.fast.per_second)} "
        "| ≥ 0.90 |"
    )
    print(
        f"\nSequential (one client, median): fast {facts['fast alone, node']:.1f} ms "
        f"on the PT node, {facts['fast alone, network']:.1f} ms through the network; "
        f"slow {facts['slow alone, node']:.0f} ms on the PT node "
        f"({facts['individuals']:.0f} individuals)."
    )
    print(
        "\nCPU per answered fast request, by process (ms; independent of the "
        "machine's other load, unlike requests/s):"
    )
    for name in ("PT node", "network"):
        used = {
            key.rsplit(": ", 1)[1]: value
            for key, value in facts.items()
            if key.startswith(f"cpu ms, {name}: ")
        }
        print(
            f"- {name} fast only: "
            + ", ".join(f"{label} {value:.2f}" for label, value in used.items())
            + f"; total {sum(used.values()):.2f}"
        )


def _processor() -> str:
    with contextlib.suppress(OSError):
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown processor"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="Per run.")
    parser.add_argument("--connections", type=int, default=50, help="Fast wrk's.")
    parser.add_argument(
        "--quick", action="store_true", help="5 s runs, to try the benchmark."
    )
    parser.add_argument(
        "--length", type=int, default=20_000_000, help="Bases per simulated genome."
    )
    parser.add_argument("--scale", type=float, default=1.0, help="Cohort size factor.")
    parser.add_argument(
        "--fast-passport",
        action="store_true",
        help="Send the researcher's passport with the fast queries too.",
    )
    parser.add_argument(
        "--profile",
        type=pathlib.Path,
        default=None,
        help="py-spy every process during the network's fast-only run, into DIR.",
    )
    arguments = parser.parse_args()
    seconds = 5.0 if arguments.quick else arguments.seconds
    if not pathlib.Path(WRK).exists():
        raise SystemExit(f"{WRK} not found: install Debian's wrk")
    signal.signal(signal.SIGTERM, _interrupt)

    directory = (
        CACHE / f"hardening-{arguments.scale:g}x{arguments.length // 1_000_000}Mb"
    )
    directory.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True)
    nodes = _nodes(arguments.scale, (None, None, None))
    network_port = _free_port(None)
    network = f"http://127.0.0.1:{network_port}"
    broker = f"{nodes[0].url}/dev-idp"
    for node in nodes:
        _prepare(
            console,
            directory,
            node,
            length=arguments.length,
            broker=broker,
            network=network,
        )
        _unlimited_budgets(directory / node.node_id / "genomenode.yaml")
    registry = _write_network(directory, nodes, network_port, broker)
    timeout_seconds = float(yaml.safe_load(registry.read_text())["timeout_seconds"])
    executable = [sys.executable, "-m", "genomenode"]
    logs = directory / "logs"
    commands = [
        (
            [
                *executable,
                "serve",
                "--node",
                str(directory / node.node_id),
                "--port",
                str(node.port),
            ],
            {"GENOMENODE_WORKER_PROCESSES": "0"},
            logs / f"{node.node_id}.log",
        )
        for node in nodes
    ]
    commands.append(
        (
            [
                *executable,
                "network",
                "serve",
                str(registry),
                "--port",
                str(network_port),
            ],
            {},
            logs / "network.log",
        )
    )
    load_before = os.getloadavg()
    with _processes(commands) as processes:
        try:
            ready = [f"{node.url}/api/service-info" for node in nodes]
            ready.append(f"{network}/api/service-info")
            for url, process, (_, _, log) in zip(
                ready, processes, commands, strict=True
            ):
                _wait_ready(url, process, log)
            # The demo's examples: the researcher applies for the PT dataset and
            # the DAC approves (once; the grant is kept in the cached node).
            _show(Console(quiet=True), directory, nodes, network, broker)
            runs, facts = _measure(
                nodes,
                network,
                broker,
                processes,
                connections=arguments.connections,
                seconds=seconds,
                timeout_seconds=timeout_seconds,
                fast_passport=arguments.fast_passport,
                profile=arguments.profile,
            )
        finally:
            for process in processes:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGCONT)
    print(
        f"{_processor()}, {os.cpu_count()} cores, load average "
        f"{load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after; "
        f"cohorts FI/IT/PT {', '.join(str(node.samples) for node in nodes)} samples × "
        f"{arguments.length:,} bp; wrk, one thread per connection: "
        f"{arguments.connections} fast (+ {max(1, arguments.connections // SLOW_SHARE)}"
        f" slow), {seconds:g} s per run; fast queries "
        f"{'with the passport' if arguments.fast_passport else 'anonymous'}"
    )
    _report(runs, facts)


if __name__ == "__main__":
    main()
