"""``make demo``: a live three-country network on this machine.

Simulates three national cohorts (FI, IT, PT: different sizes) from one shared
European history (``simulate_countries``: the same variants at country-specific
frequencies), one PUBLIC, one REGISTERED and one CONTROLLED, so that each kind
of caller sees something different; initialises and ingests three nodes and
builds their allele-frequency references; starts the nodes and the network
aggregator as separate processes on localhost; then shows, as real HTTP
requests, what an anonymous, a registered and a granted caller get from the
network, a catalogue search, the access workflow (apply → the DAC approves →
record-level answers across the network), and the network's reference of a
common variant (every country's numbers and the pooled ones). The network's web
portal is at its URL (``/``), signing visitors in at the FI node's identity
provider. Ctrl-C stops
everything.

The FI node runs the development identity provider (demo only, never on by
default); the other nodes trust it as their broker, so one demo passport works on
the whole network. **That provider gives anyone a passport for any subject, the DAC
member's included: anyone who reaches the demo can approve their own application.**
It binds 127.0.0.1 only; never expose it. Run again, it reuses the nodes and cohorts
it made.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx2
import yaml
from rich.console import Console

from .ingest import ingest
from .reference.build import build_reference
from .simulate import simulate_countries
from .store.node import init_node, open_node
from .store.private import private_files

__all__ = ["DEMO_DAC", "DEMO_RESEARCHER", "DemoNode", "run_demo"]

DEMO_RESEARCHER = "researcher@demo.genomenode"
DEMO_DAC = "dac@demo.genomenode"
_READY_SECONDS = 60


@dataclasses.dataclass(frozen=True)
class DemoNode:
    """One national node of the demo."""

    country: str
    security_level: str
    samples: int
    seed: int
    port: int

    @property
    def node_id(self) -> str:
        return f"{self.country.lower()}-node"

    @property
    def dataset_id(self) -> str:
        return f"{self.country.lower()}-cohort"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _free_port(preferred: int | None) -> int:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", preferred or 0))
        except OSError:
            probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _nodes(scale: float, ports: Sequence[int | None]) -> list[DemoNode]:
    plan = [
        ("FI", "PUBLIC", 600, 11),
        ("IT", "REGISTERED", 400, 12),
        ("PT", "CONTROLLED", 300, 13),
    ]
    return [
        DemoNode(country, level, max(20, int(samples * scale)), seed, _free_port(port))
        for (country, level, samples, seed), port in zip(plan, ports, strict=True)
    ]


def _prepare(
    console: Console,
    directory: pathlib.Path,
    node: DemoNode,
    *,
    length: int,
    broker: str,
    network: str,
) -> None:
    """Simulate, initialise and ingest one node (each step reused when done)."""
    node_dir = directory / node.node_id
    cohort_dir = directory / f"{node.country.lower()}-cohort"
    dataset_yaml = cohort_dir / "dataset.yaml"
    started = time.monotonic()
    if not dataset_yaml.exists():
        # Alone (run_demo simulates the three together first): its own history.
        _simulate(directory, [node], length=length)
    if not (node_dir / "genomenode.yaml").exists():
        init_node(node_dir, node_id=node.node_id, country=node.country).close()
    # Settings change with the ports chosen for this run.
    config_path = node_dir / "genomenode.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["public_url"] = node.url
    trusted = {
        "issuer": broker,
        "jku": f"{broker}/.well-known/jwks.json",
        "userinfo": f"{broker}/userinfo",
    }
    # Requests through the network carry its signed assertion; the node checks
    # it and names the network in its audit log (docs/network-trust.md).
    config["trusted_networks"] = [
        {"issuer": network, "jku": f"{network}/.well-known/jwks.json"}
    ]
    if node.country == "FI":
        config["dev_identity_provider"] = True
        config.pop("trusted_brokers", None)
        config.pop("trusted_visa_issuers", None)
    else:
        config["trusted_brokers"] = [trusted]
        config["trusted_visa_issuers"] = [{"issuer": broker, "jku": trusted["jku"]}]
    config_path.write_text(
        "# genomenode node settings; see docs/settings.md\n"
        + yaml.safe_dump(config, sort_keys=False)
    )
    with open_node(node_dir) as opened:
        result = ingest(opened, dataset_yaml, show_progress=False)
        # The allele-frequency reference (docs/reference.md), built once.
        if not (opened.datasets_dir / node.dataset_id / "reference.zarr").exists():
            build_reference(opened)
    what = f"{node.dataset_id} ({node.security_level}, {result.num_samples} samples)"
    if result.status == "unchanged":
        console.print(f"{node.node_id}: {what} already published by an earlier run")
    else:
        console.print(
            f"{node.node_id}: {what} simulated and published in "
            f"{time.monotonic() - started:.0f} s"
        )


def _simulate(
    directory: pathlib.Path, nodes: Sequence[DemoNode], *, length: int
) -> None:
    """The three cohorts from one joint simulation, each in ``<country>-cohort``
    (kept from an earlier run when all are there)."""
    if all((directory / node.dataset_id / "dataset.yaml").exists() for node in nodes):
        return
    staging = directory / ".cohorts"
    shutil.rmtree(staging, ignore_errors=True)
    results = simulate_countries(
        staging,
        countries=[node.country for node in nodes],
        samples=[node.samples for node in nodes],
        seed=nodes[0].seed,
        length=length,
        security_levels=[node.security_level for node in nodes],
        dataset_ids=[node.dataset_id for node in nodes],
    )
    for node, result in zip(nodes, results, strict=True):
        document = yaml.safe_load(result.dataset_yaml.read_text())
        document["dac"] = {"members": [DEMO_DAC]}
        result.dataset_yaml.write_text(yaml.safe_dump(document, sort_keys=False))
        target = directory / node.dataset_id
        shutil.rmtree(target, ignore_errors=True)
        result.dataset_yaml.parent.rename(target)
    shutil.rmtree(staging, ignore_errors=True)


def _write_network(
    directory: pathlib.Path, nodes: Sequence[DemoNode], port: int, broker: str
) -> pathlib.Path:
    path = directory / "NETWORK.yaml"
    document = {
        "format_version": 1,
        "network_id": "demo",
        "public_url": f"http://127.0.0.1:{port}",
        "timeout_seconds": 5,
        # The portal signs visitors in at the demo's broker; analysis jobs
        # belong to the subjects of its passports.
        "trusted_brokers": [
            {"issuer": broker, "jku": f"{broker}/.well-known/jwks.json"}
        ],
        "nodes": [
            {"id": node.node_id, "country": node.country, "url": node.url}
            for node in nodes
        ],
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@contextlib.contextmanager
def _processes(
    commands: Sequence[tuple[list[str], dict[str, str], pathlib.Path]],
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start each command in its own session (Ctrl-C reaches only the demo, which
    stops them), its output going to its log file (a pipe could fill and block it)."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        for command, environment, log in commands:
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "wb") as output:
                started.append(
                    subprocess.Popen(
                        command,
                        env={**os.environ, **environment},
                        start_new_session=True,
                        stdout=output,
                        stderr=subprocess.STDOUT,
                    )
                )
        yield started
    finally:
        # A second Ctrl-C (or SIGTERM) during the clean-up must not leave
        # servers behind.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        previous_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for process in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        # One deadline for all: a loaded machine must not wait 20 s per server.
        deadline = time.monotonic() + 20
        for process in started:
            try:
                process.communicate(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)


def _interrupt(_signal: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: pathlib.Path) -> None:
    deadline = time.monotonic() + _READY_SECONDS
    while True:
        try:
            httpx2.get(url, timeout=2)
            return
        except httpx2.TransportError:
            if process.poll() is not None:
                error = log.read_text(errors="replace")[-4000:]
                raise RuntimeError(f"{url} did not start ({log}):\n{error}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{url} did not start in {_READY_SECONDS} s"
                ) from None
            time.sleep(0.2)


def _count_query(network: str, headers: dict[str, str]) -> dict[str, Any]:
    body = {
        "meta": {"apiVersion": "2.0"},
        "query": {
            "requestParameters": {"referenceName": "1", "start": [0], "end": [100_000]},
            "requestedGranularity": "count",
            "includeResultsetResponses": "ALL",
        },
    }
    response = httpx2.post(
        f"{network}/api/g_variants", json=body, headers=headers, timeout=30
    )
    document: dict[str, Any] = response.json()
    return document


def _summary(document: dict[str, Any]) -> str:
    sets = document.get("response", {}).get("resultSets", [])
    seen = ", ".join(
        f"{item.get('id')}: {item.get('resultsCount', 0)}" for item in sets
    )
    statuses = ", ".join(
        f"{item.get('id')} {item.get('status')}"
        for item in (document.get("info") or {}).get("nodes", [])
    )
    granularity = document.get("meta", {}).get("returnedGranularity")
    # Parentheses, not brackets: rich would read "[...]" as markup.
    return f"{granularity}; datasets ({seen or 'none listed'}); nodes ({statuses})"


def _token(broker: str, subject: str) -> dict[str, str]:
    response = httpx2.post(f"{broker}/token", json={"subject": subject}, timeout=10)
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _show(
    console: Console,
    directory: pathlib.Path,
    nodes: Sequence[DemoNode],
    network: str,
    broker: str,
) -> dict[str, Any]:
    """The examples the demo prints, each a real request; their answers."""
    shown: dict[str, Any] = {}
    controlled = next(node for node in nodes if node.security_level == "CONTROLLED")
    researcher = _token(broker, DEMO_RESEARCHER)
    dac = _token(broker, DEMO_DAC)
    earlier = httpx2.get(
        f"{controlled.url}/access/grants", headers=researcher, timeout=10
    ).json()["grants"]
    for grant in earlier:
        # An earlier run's grant would show the CONTROLLED data from step 2 on:
        # the committee revokes it, so that this run tells the whole story again.
        revoked = httpx2.post(
            f"{controlled.url}/access/applications/{grant['application_id']}/revoke",
            headers=dac,
            json={"comment": "the demo starts its story again"},
            timeout=10,
        )
        revoked.raise_for_status()
        console.print(
            f"An earlier run granted {DEMO_RESEARCHER} {grant['dataset_id']} "
            f"(application {grant['application_id']}): the DAC revokes it, so the "
            "story starts over (the audit log keeps both runs)."
        )
    shown["revoked_earlier"] = [grant["application_id"] for grant in earlier]
    anonymous = shown["anonymous"] = _count_query(network, {})
    console.print(f"\n[bold]1. Network Beacon, anonymous[/]: {_summary(anonymous)}")
    registered = shown["registered"] = _count_query(network, researcher)
    console.print(f"[bold]2. ... as a registered researcher[/]: {_summary(registered)}")
    httpx2.post(f"{network}/catalogue/harvest", timeout=30)  # now, not in 5 minutes
    search = httpx2.get(
        f"{network}/catalogue/datasets", params={"q": "cohort"}, timeout=30
    )
    if search.status_code == 200:
        found = search.json()
        items = found if isinstance(found, list) else found.get("datasets", [])
        shown["search"] = items
        console.print(
            "[bold]3. Catalogue search 'cohort'[/]: "
            + ", ".join(f"{item.get('id')} ({item.get('country')})" for item in items)
        )
    applied = httpx2.post(
        f"{controlled.url}/access/applications",
        headers=researcher,
        json={
            "dataset": controlled.dataset_id,
            "project_title": "Rare variants in coronary artery disease",
            "purpose": {
                "term": "DUO:0000007",
                "disease": "ICD10:I25.1",
                "accepted": ["DUO:0000019"],
            },
            "submit": True,
        },
        timeout=10,
    ).json()
    console.print(
        f"[bold]4. Apply[/] to {controlled.dataset_id} on {controlled.node_id}: "
        f"application {applied['id']}, DUO match "
        f"{applied['recommendation']['outcome']}"
    )
    approved = httpx2.post(
        f"{controlled.url}/access/applications/{applied['id']}/approve",
        headers=dac,
        json={
            "ends_at": time.strftime("%Y-%m-%d", time.gmtime(time.time() + 30 * 86400))
        },
        timeout=10,
    ).json()
    console.print(f"   the DAC ({DEMO_DAC}) approves: {approved['state']}")
    shown["application"] = approved
    granted = shown["granted"] = _count_query(network, researcher)
    console.print(f"[bold]5. ... the same researcher, granted[/]: {_summary(granted)}")
    # Records: a variant of the PT cohort only (the cohorts share their common
    # variants), so that no node answering at count granularity lowers the
    # network's answer.
    variant = _private_variant(directory, nodes, controlled)
    if variant:
        body = {
            "meta": {"apiVersion": "2.0"},
            "query": {
                "requestParameters": {
                    "referenceName": variant["contig"],
                    "start": [variant["position"] - 1],
                    "referenceBases": variant["ref"],
                    "alternateBases": variant["alt"],
                },
                "requestedGranularity": "record",
            },
        }
        records = shown["records"] = httpx2.post(
            f"{network}/api/g_variants", json=body, headers=researcher, timeout=30
        ).json()
        found = [
            f"{item.get('id')} ({len(item.get('results', []))} record(s))"
            for item in records.get("response", {}).get("resultSets", [])
        ]
        console.print(
            f"[bold]6. Records across the network[/] for "
            f"{variant['contig']}:{variant['position']} {variant['ref']}>"
            f"{variant['alt']}: {records.get('meta', {}).get('returnedGranularity')}; "
            + (", ".join(found) or "none")
        )
    common = _common_variant(directory, nodes)
    if common:
        reference = shown["reference"] = httpx2.get(
            f"{network}/reference/variants/{common}", timeout=30
        ).json()
        countries = ", ".join(
            f"{item['country']} AF {item['populations'][0]['alleleFrequency']:.3f}"
            for item in reference.get("countries", [])
        )
        pooled = {row["population"]: row for row in reference.get("pooled", [])}
        total = pooled.get("total", {})
        console.print(
            f"[bold]7. The network's allele-frequency reference[/] of {common}: "
            f"{countries}; pooled AF {total.get('alleleFrequency', 0):.3f} "
            f"(AC {total.get('alleleCount')}, AN {total.get('alleleNumber')}); "
            "the CONTROLLED cohort's consent (disease-specific) keeps it out"
        )
    return shown


def _vcf_sites(path: pathlib.Path) -> dict[tuple[int, str, str], int]:
    import pysam

    sites: dict[tuple[int, str, str], int] = {}
    with pysam.VariantFile(str(path)) as vcf:
        for record in vcf:
            sites[(record.pos, str(record.ref), str((record.alts or ("",))[0]))] = int(
                record.info["AC"][0]
            )
    return sites


def _private_variant(
    directory: pathlib.Path, nodes: Sequence[DemoNode], owner: DemoNode
) -> dict[str, Any] | None:
    """A variant carried by two or more people of ``owner``'s cohort only."""
    sites = {
        node.dataset_id: _vcf_sites(
            directory / node.dataset_id / f"{node.dataset_id}.vcf.gz"
        )
        for node in nodes
    }
    others = set().union(
        *(found for name, found in sites.items() if name != owner.dataset_id)
    )
    for (position, reference, alternate), count in sorted(
        sites[owner.dataset_id].items()
    ):
        if count >= 2 and (position, reference, alternate) not in others:
            return {
                "contig": "1",
                "position": position,
                "ref": reference,
                "alt": alternate,
            }
    return None


def _common_variant(directory: pathlib.Path, nodes: Sequence[DemoNode]) -> str | None:
    """The id of a variant common (AF 20-80 %) in every cohort."""
    sites = [
        _vcf_sites(directory / node.dataset_id / f"{node.dataset_id}.vcf.gz")
        for node in nodes
    ]
    numbers = [2 * node.samples for node in nodes]
    for key in sorted(sites[0]):
        if all(
            key in found and 0.2 <= found[key] / number <= 0.8
            for found, number in zip(sites, numbers, strict=True)
        ):
            return f"1-{key[0]}-{key[1]}-{key[2]}"
    return None


def _try_commands(network: str, broker: str) -> list[str]:
    """Shell commands to try against the running demo, one per line."""
    token = (
        f"TOKEN=$(curl -s {broker}/token -H 'content-type: application/json' "
        f'-d \'{{"subject": "{DEMO_RESEARCHER}"}}\' | '
        "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')"
    )
    return [
        f"curl '{network}/api/g_variants?referenceName=1&start=0&end=100000"
        "&requestedGranularity=count'",
        f"curl '{network}/catalogue/datasets?q=cohort'",
        token,
        f'curl -H "Authorization: Bearer $TOKEN" \'{network}/api/g_variants?'
        "referenceName=1&start=0&end=100000&requestedGranularity=record'",
    ]


def _description(
    directory: pathlib.Path,
    nodes: Sequence[DemoNode],
    network: str,
    broker: str,
    registry: pathlib.Path,
) -> dict[str, Any]:
    """What the running demo serves (``genomenode demo --json`` prints it)."""
    return {
        "network": {"url": network, "registry": str(registry)},
        "portal": f"{network}/",
        "nodes": [
            {
                "node_id": node.node_id,
                "url": node.url,
                "dataset_id": node.dataset_id,
                "security_level": node.security_level,
            }
            for node in nodes
        ],
        "identity_provider": f"{broker}/token",
        "identities": {"researcher": DEMO_RESEARCHER, "dac_member": DEMO_DAC},
        "logs": str(directory / "logs"),
        "warnings": [
            "NOT SECURE: the development identity provider gives anyone a passport "
            "for any subject, the DAC member's included; demo only, never expose it"
        ],
        "try": _try_commands(network, broker),
    }


# Cohorts, nodes, logs, and the servers it starts (which inherit the umask).
@private_files()
def run_demo(
    directory: pathlib.Path,
    *,
    scale: float = 1.0,
    length: int = 1_000_000,
    wait: bool = True,
    ports: Sequence[int | None] = (8081, 8082, 8083),
    network_port: int | None = 9000,
    console: Console | None = None,
    on_ready: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Set up (or reuse) the demo network in ``directory``, start it, show it.

    With ``wait`` it runs until Ctrl-C; without, it stops after the examples.
    ``console`` receives the story (default: stdout); ``on_ready`` is called with
    what is served (:func:`_description`) once every server answers. Returns
    the examples' answers (for tests).
    """
    console = console or Console()
    directory.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    nodes = _nodes(scale, ports)
    broker = f"{nodes[0].url}/dev-idp"
    port = _free_port(network_port)
    network = f"http://127.0.0.1:{port}"
    _simulate(directory, nodes, length=length)
    for node in nodes:
        _prepare(
            console, directory, node, length=length, broker=broker, network=network
        )
    registry = _write_network(directory, nodes, port, broker)
    executable = [sys.executable, "-m", "genomenode"]
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
            directory / "logs" / f"{node.node_id}.log",
        )
        for node in nodes
    ]
    commands.append(
        (
            [*executable, "network", "serve", str(registry), "--port", str(port)],
            {},
            directory / "logs" / "network.log",
        )
    )
    urls = [f"{node.url}/api/service-info" for node in nodes]
    urls.append(f"{network}/api/service-info")
    with _processes(commands) as processes:
        for url, process, (_, _, log) in zip(urls, processes, commands, strict=True):
            _wait_ready(url, process, log)
        if on_ready is not None:
            on_ready(_description(directory, nodes, network, broker, registry))
        console.print(f"\nNetwork ready in {time.monotonic() - started:.0f} s:")
        for node in nodes:
            console.print(
                f"  {node.node_id:8} {node.url}   "
                f"({node.dataset_id}, {node.security_level})"
            )
        console.print(f"  network  {network}   (registry {registry})")
        console.print(
            f"  portal   {network}/   (open it in a browser: search, datasets, "
            "sign in, apply, the DAC inbox; each node serves its own at its URL)"
        )
        console.print(f"  logs in {directory / 'logs'}")
        console.print(
            f"  identities: {DEMO_RESEARCHER} (researcher), {DEMO_DAC} (DAC member); "
            f"passports from POST {broker}/token"
        )
        console.print(
            "  [bold red]NOT SECURE:[/] the development identity provider gives "
            "anyone a passport for any subject, the DAC member's included; demo "
            "only, never expose it"
        )
        shown = _show(console, directory, nodes, network, broker)
        console.print("\nTry (each command is one line, to copy whole):")
        for line in _try_commands(network, broker):
            # Never wrapped (a URL broken across lines does not paste), no markup.
            console.print(f"  {line}", soft_wrap=True, markup=False, highlight=False)
        if wait:
            console.print("\nRunning; Ctrl-C stops the nodes and the network.")
            # SIGTERM (a service manager, `kill`) stops it as cleanly as Ctrl-C;
            # and Ctrl-C does even when the demo was started with SIGINT ignored
            # (a background job of a script inherits that, and Python keeps it).
            signal.signal(signal.SIGTERM, _interrupt)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            with contextlib.suppress(KeyboardInterrupt):
                while all(process.poll() is None for process in processes):
                    time.sleep(0.5)
    console.print("Stopped.")
    return shown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=pathlib.Path, default=pathlib.Path("demo"))
    parser.add_argument("--scale", type=float, default=1.0, help="Cohort size factor.")
    parser.add_argument(
        "--no-wait", action="store_true", help="Stop after the examples."
    )
    arguments = parser.parse_args()
    run_demo(arguments.dir, scale=arguments.scale, wait=not arguments.no_wait)


if __name__ == "__main__":
    main()
