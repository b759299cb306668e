"""CLI benchmark: how fast ``genomenode`` starts, next to ``bcftools --help``.

Three measures, each over ``--repeats`` runs:

- ``genomenode --help``: the start-up of the command itself (importing the
  package and the CLI; the target is under 0.3 s);
- ``genomenode datasets --json --node N``: a command that opens a node (its
  configuration and database) and lists one published dataset;
- ``genomenode serve`` time-to-ready: from starting the process until
  ``/api/service-info`` answers 200.

The first two run under hyperfine when it is on PATH (``--shell=none``, three
warm-up runs), else under this script's own repeats; ``serve`` always uses its
own. ``bcftools --help`` (Debian's bcftools) is the reference for a snappy CLI:
the table prints each mean as a multiple of it, and the CPU time (user + system)
per run beside the wall time, which moves less on a shared machine.

``--src DIR`` measures another checkout's source tree (e.g. ``/work/main/src``
for a "before" figure): every ``genomenode`` process runs with
``PYTHONPATH=DIR``.

Usage: python bench/cli.py [--repeats 20] [--src DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

REPOSITORY = pathlib.Path(__file__).resolve().parents[1]
_READY_SECONDS = 120


def _genomenode() -> list[str]:
    """The installed ``genomenode`` script beside this Python, else ``-m``."""
    script = pathlib.Path(sys.executable).parent / "genomenode"
    return [str(script)] if script.exists() else [sys.executable, "-m", "genomenode"]


def _environment(source: pathlib.Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(source), "COLUMNS": "100"}


def _run(command: list[str], environment: dict[str, str]) -> str:
    done = subprocess.run(
        command, env=environment, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return done.stdout


def _make_node(directory: pathlib.Path, environment: dict[str, str]) -> pathlib.Path:
    """A node with one small simulated dataset, made with the CLI under test."""
    genomenode = _genomenode()
    node = directory / "node"
    cohort = directory / "cohort"
    _run(
        [*genomenode, "init", str(node), "--node-id", "bench", "--country", "FI"],
        environment,
    )
    _run(
        [*genomenode, "simulate", str(cohort), "--samples", "20", "--length", "30000"],
        environment,
    )
    _run(
        [*genomenode, "ingest", "--node", str(node), str(cohort / "dataset.yaml")],
        environment,
    )
    return node


Timing = tuple[list[float], float | None]  # wall seconds per run; mean CPU seconds


def _hyperfine(command: list[str], environment: dict[str, str], repeats: int) -> Timing:
    with tempfile.NamedTemporaryFile(suffix=".json") as exported:
        subprocess.run(
            [
                "hyperfine",
                "--shell=none",
                "--warmup",
                "3",
                "--runs",
                str(repeats),
                "--style",
                "none",
                "--export-json",
                exported.name,
                " ".join(command),
            ],
            env=environment,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        result = json.loads(pathlib.Path(exported.name).read_text())["results"][0]
    return list(result["times"]), result["user"] + result["system"]


def _own_repeats(
    command: list[str], environment: dict[str, str], repeats: int
) -> Timing:
    times = []
    cpu = 0.0
    for run in range(repeats + 3):  # three warm-up runs, as with hyperfine
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(command, env=environment, check=True, stdout=subprocess.DEVNULL)
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if run >= 3:
            times.append(elapsed)
            cpu += (after.ru_utime - before.ru_utime) + (
                after.ru_stime - before.ru_stime
            )
    return times, cpu / repeats


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _serve_ready(
    node: pathlib.Path, environment: dict[str, str], repeats: int
) -> Timing:
    """Seconds from starting ``genomenode serve`` until service-info answers."""
    times = []
    for _ in range(repeats):
        port = _free_port()
        url = f"http://127.0.0.1:{port}/api/service-info"
        started = time.perf_counter()
        process = subprocess.Popen(
            [*_genomenode(), "serve", "--node", str(node), "--port", str(port)],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            while not _answers(url):
                if process.poll() is not None:
                    raise SystemExit(f"genomenode serve exited ({process.returncode})")
                if time.perf_counter() - started > _READY_SECONDS:
                    raise SystemExit(f"{url} did not answer in {_READY_SECONDS} s")
                time.sleep(0.01)
            times.append(time.perf_counter() - started)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 15)
            process.wait(timeout=30)
    return times, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(
        "--serve-repeats", type=int, default=5, help="Runs of serve time-to-ready."
    )
    parser.add_argument(
        "--src",
        type=pathlib.Path,
        default=REPOSITORY / "src",
        help="The source tree to measure (default: this checkout's).",
    )
    arguments = parser.parse_args()
    environment = _environment(arguments.src.resolve())
    timer = _hyperfine if shutil.which("hyperfine") else _own_repeats
    rows: list[tuple[str, Timing]] = []
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as scratch:
        node = _make_node(pathlib.Path(scratch), environment)
        if shutil.which("bcftools"):
            rows.append(
                (
                    "bcftools --help",
                    timer(["bcftools", "--help"], environment, arguments.repeats),
                )
            )
        genomenode = _genomenode()
        rows.append(
            (
                "genomenode --help",
                timer([*genomenode, "--help"], environment, arguments.repeats),
            )
        )
        rows.append(
            (
                "genomenode datasets --json --node N",
                timer(
                    [*genomenode, "datasets", "--json", "--node", str(node)],
                    environment,
                    arguments.repeats,
                ),
            )
        )
        rows.append(
            (
                "genomenode serve, until service-info answers",
                _serve_ready(node, environment, arguments.serve_repeats),
            )
        )
    reference = (
        statistics.mean(rows[0][1][0]) if rows[0][0].startswith("bcftools") else None
    )
    print(
        f"source: {arguments.src}; timer: "
        f"{'hyperfine' if timer is _hyperfine else 'own repeats'}; "
        f"{arguments.repeats} runs ({arguments.serve_repeats} for serve); "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n"
    )
    print("| command | mean ms | ± sd ms | min ms | CPU ms | × bcftools --help |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, (times, cpu) in rows:
        mean = statistics.mean(times)
        spread = statistics.stdev(times) if len(times) > 1 else 0.0
        ratio = f"{mean / reference:.1f}" if reference else "—"
        cpu_text = f"{cpu * 1000:.1f}" if cpu is not None else "—"
        print(
            f"| {name} | {mean * 1000:.1f} | {spread * 1000:.1f} | "
            f"{min(times) * 1000:.1f} | {cpu_text} | {ratio} |"
        )


if __name__ == "__main__":
    main()
