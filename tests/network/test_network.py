"""The network end to end, as real processes on loopback: three genomenode nodes
(``genomenode serve``), four fake nodes that misbehave (``fake_node.py`` under
uvicorn: slow, not JSON, 500, schema-invalid) and the network itself
(``genomenode network serve``).

The network's count is the sum of what each node answers when asked directly; a
slow node costs the timeout and no more, and its request is cancelled (the fake
node sees the client go away), also as soon as the network's own caller goes
away; a node killed mid-run is reported, not fatal. A second, small network shows
the circuit breaker on a node that hangs (SIGSTOP).
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import httpx2
import pytest
import yaml

from genomenode.beacon.schemas import validate
from genomenode.ingest.pipeline import ingest
from genomenode.store.node import init_node

from ..conftest import (
    free_port,
    in_process_workers,
    wait_until_up,
    write_dataset_yaml,
    write_small_cohort,
)

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
TIMEOUT_SECONDS = 1.5
#: Start-up of the network's answer beyond the slowest node's timeout.
MARGIN_SECONDS = 0.75
REAL = {"fi-node": ("FI", 40, 1), "se-node": ("SE", 30, 2), "ee-node": ("EE", 24, 3)}
FAKES = {
    "slow-node": "slow",
    "html-node": "not-json",
    "broken-node": "error-500",
    "liar-node": "schema-invalid",
}
COUNT_QUERY = {"requestedGranularity": "count"}
VARIANT_QUERY = {
    "meta": {"apiVersion": "2.0"},
    "query": {
        "requestParameters": {"referenceName": "1", "start": [999], "end": [1000]},
        "requestedGranularity": "count",
        "includeResultsetResponses": "ALL",
    },
}


def _start(arguments: list[str], environment: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *arguments],
        env={**os.environ, **environment},
        cwd=REPOSITORY,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _stop(process: subprocess.Popen, timeout: float = 15) -> bool:
    """SIGTERM the process group, SIGKILL it after ``timeout`` seconds; whether
    it stopped on SIGTERM."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return False
    return True


def _serve_node(
    node_dir: pathlib.Path, port: int, environment: dict[str, str]
) -> subprocess.Popen:
    """``genomenode serve`` of ``node_dir`` on ``port``."""
    return _start(
        ["-m", "genomenode", "serve", "--node", str(node_dir), "--port", str(port)],
        environment,
    )


def _serve_network(network_yaml: pathlib.Path, port: int) -> subprocess.Popen:
    """``genomenode network serve`` of ``network_yaml`` on ``port``."""
    return _start(
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


def _serve_fake_node(port: int, environment: dict[str, str]) -> subprocess.Popen:
    """A :mod:`tests.network.fake_node` on ``port`` (``FAKE_NODE_*`` settings)."""
    return _start(
        [
            "-m",
            "uvicorn",
            "tests.network.fake_node:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        environment,
    )


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    root = tmp_path_factory.mktemp("network")
    processes: dict[str, subprocess.Popen] = {}
    urls: dict[str, str] = {}
    slow_log = root / "slow-node.log"
    try:
        with in_process_workers():
            for node_id, (country, num_samples, seed) in REAL.items():
                cohort = root / f"{node_id}-cohort"
                write_small_cohort(
                    cohort,
                    dataset_id=f"{node_id}-cohort",
                    num_samples=num_samples,
                    num_variants=60,
                    seed=seed,
                )
                dataset_yaml = write_dataset_yaml(
                    cohort,
                    id=f"{node_id}-cohort",
                    country=country,
                    security_level="PUBLIC",
                    beacon={"anonymous": "count"},
                )
                with init_node(
                    root / node_id, node_id=node_id, country=country
                ) as node:
                    ingest(node, dataset_yaml)
        for node_id in REAL:
            port = free_port()
            urls[node_id] = f"http://127.0.0.1:{port}"
            processes[node_id] = _serve_node(
                root / node_id,
                port,
                # The sums are checked against exact answers; the defences'
                # answers through the network: tests/disclosure.
                {
                    "GENOMENODE_PUBLIC_URL": urls[node_id],
                    "GENOMENODE_DISCLOSURE_ENABLED": "false",
                },
            )
        for node_id, mode in FAKES.items():
            port = free_port()
            urls[node_id] = f"http://127.0.0.1:{port}"
            processes[node_id] = _serve_fake_node(
                port,
                {
                    "FAKE_NODE_MODE": mode,
                    "FAKE_NODE_ID": node_id,
                    "FAKE_NODE_LOG": str(slow_log),
                    "FAKE_NODE_SLEEP": "30",
                },
            )
        network_port = free_port()
        network_url = f"http://127.0.0.1:{network_port}"
        registry = {
            "format_version": 1,
            "network_id": "test-net",
            "public_url": network_url,
            "timeout_seconds": TIMEOUT_SECONDS,
            # The slow node must time out in every test here, not go unavailable;
            # the breaker has its own network below.
            "circuit_breaker": {"failure_threshold": 0},
            "nodes": [
                {
                    "id": node_id,
                    "country": REAL[node_id][0] if node_id in REAL else "DK",
                    "url": urls[node_id],
                }
                for node_id in [*REAL, *FAKES]
            ],
        }
        network_yaml = root / "NETWORK.yaml"
        network_yaml.write_text(yaml.safe_dump(registry, sort_keys=False))
        processes["network"] = _serve_network(network_yaml, network_port)
        deadline = time.monotonic() + 60
        for node_id in [*REAL, *FAKES]:
            if node_id != "slow-node":
                wait_until_up(
                    processes[node_id], f"{urls[node_id]}/api", deadline=deadline
                )
        wait_until_up(
            processes["network"], f"{network_url}/network/status", deadline=deadline
        )
        yield {
            "url": network_url,
            "urls": urls,
            "processes": processes,
            "slow_log": slow_log,
            "yaml": network_yaml,
        }
    finally:
        for process in processes.values():
            _stop(process)


def test_a_caller_going_away_cancels_the_nodes_requests(network):
    log: pathlib.Path = network["slow_log"]
    log.write_text("")
    started = time.monotonic()
    # The caller gives up long before the network's own timeout (1.5 s).
    with pytest.raises(httpx2.ReadTimeout):
        httpx2.get(f"{network['url']}/api/individuals", params=COUNT_QUERY, timeout=0.3)

    def ended() -> list[str]:
        return [
            line
            for line in log.read_text().split()
            if line in ("disconnected", "cancelled")
        ]

    while not ended():
        assert time.monotonic() - started < TIMEOUT_SECONDS, log.read_text()
        time.sleep(0.02)
    assert time.monotonic() - started < TIMEOUT_SECONDS - 0.3
    assert "answered" not in log.read_text()
    # The network goes on answering.
    validate(
        _ask(f"{network['url']}/api/individuals", params=COUNT_QUERY),
        "beaconCountResponse",
    )


BREAKER_TIMEOUT_SECONDS = 0.3
BREAKER_OPEN_SECONDS = 2.0


@pytest.fixture(scope="module")
def hung_network(tmp_path_factory):
    """Two fake nodes behind a network whose circuit opens after 2 failures."""
    root = tmp_path_factory.mktemp("hung-network")
    processes: dict[str, subprocess.Popen] = {}
    urls: dict[str, str] = {}
    try:
        for node_id in ("steady-node", "hung-node"):
            port = free_port()
            urls[node_id] = f"http://127.0.0.1:{port}"
            processes[node_id] = _serve_fake_node(
                port,
                {"FAKE_NODE_MODE": "count", "FAKE_NODE_ID": node_id},
            )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        network_yaml = root / "NETWORK.yaml"
        network_yaml.write_text(
            yaml.safe_dump(
                {
                    "format_version": 1,
                    "network_id": "hung-net",
                    "public_url": url,
                    "timeout_seconds": BREAKER_TIMEOUT_SECONDS,
                    "circuit_breaker": {
                        "failure_threshold": 2,
                        "open_seconds": BREAKER_OPEN_SECONDS,
                    },
                    "nodes": [
                        {"id": node_id, "country": "FI", "url": urls[node_id]}
                        for node_id in urls
                    ],
                }
            )
        )
        processes["network"] = _serve_network(network_yaml, port)
        deadline = time.monotonic() + 60
        for node_id in urls:
            wait_until_up(processes[node_id], f"{urls[node_id]}/api", deadline=deadline)
        wait_until_up(processes["network"], f"{url}/network/status", deadline=deadline)
        yield {"url": url, "processes": processes}
    finally:
        for process in processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGCONT)
            _stop(process)


def test_a_hung_node_costs_the_timeout_only_until_its_circuit_opens(hung_network):
    url = f"{hung_network['url']}/api/individuals"
    hung = hung_network["processes"]["hung-node"]
    os.killpg(hung.pid, signal.SIGSTOP)
    try:
        for _ in range(2):
            document, elapsed = _timed(url, params=COUNT_QUERY)
            assert elapsed >= BREAKER_TIMEOUT_SECONDS
            assert _statuses(document)["hung-node"] == "timeout"
        with httpx2.Client(timeout=10) as client:
            for _ in range(10):
                started = time.monotonic()
                response = client.get(url, params=COUNT_QUERY)
                # Nobody waits for the hung node any more.
                assert time.monotonic() - started < BREAKER_TIMEOUT_SECONDS
                document = response.json()
                validate(document, "beaconCountResponse")
                assert _statuses(document) == {
                    "steady-node": "ok",
                    "hung-node": "unavailable",
                }
                assert document["responseSummary"]["numTotalResults"] == 7
        reason = document["info"]["nodes"][1]["reason"]
        assert "circuit open after 2 consecutive failures" in reason
        status = httpx2.get(f"{hung_network['url']}/network/status", timeout=10)
        assert status.json()["nodes"][1]["circuit"] == "open"
    finally:
        os.killpg(hung.pid, signal.SIGCONT)
    # Half-open after open_seconds: one probe, which succeeds, closes the circuit.
    time.sleep(BREAKER_OPEN_SECONDS + 0.1)
    document = _ask(url, params=COUNT_QUERY)
    assert _statuses(document) == {"steady-node": "ok", "hung-node": "ok"}
    status = httpx2.get(f"{hung_network['url']}/network/status", timeout=10)
    assert status.json()["nodes"][1]["circuit"] == "closed"


def _direct_count(base_url: str, path: str, **request) -> int:
    answer = _ask(f"{base_url}/api/{path}", **request)
    return answer["responseSummary"]["numTotalResults"]


def _ask(url: str, **request) -> dict:
    response = httpx2.request(
        "POST" if "json" in request else "GET", url, timeout=30, **request
    )
    assert response.status_code == 200, response.text
    return response.json()


def _statuses(document: dict) -> dict[str, str]:
    return {node["id"]: node["status"] for node in document["info"]["nodes"]}


def _timed(url: str, **request) -> tuple[dict, float]:
    started = time.monotonic()
    document = _ask(url, **request)
    return document, time.monotonic() - started


EXPECTED_FAULTS = {
    "slow-node": "timeout",
    "html-node": "invalid",
    "broken-node": "error",
    "liar-node": "invalid",
}


@pytest.mark.parametrize(
    ("path", "request_arguments"),
    [
        ("individuals", {"params": COUNT_QUERY}),
        ("g_variants", {"json": VARIANT_QUERY}),
        ("biosamples", {"json": VARIANT_QUERY}),
    ],
)
def test_count_is_the_sum_of_the_nodes(network, path, request_arguments):
    expected = {
        node_id: _direct_count(network["urls"][node_id], path, **request_arguments)
        for node_id in REAL
    }
    assert all(expected.values())
    document, elapsed = _timed(f"{network['url']}/api/{path}", **request_arguments)
    validate(document, "beaconCountResponse")
    assert document["meta"]["beaconId"] == "org.genomenode.network.test-net"
    assert document["meta"]["returnedGranularity"] == "count"
    assert document["responseSummary"]["numTotalResults"] == sum(expected.values())
    by_node: dict[str, int] = {}
    for item in document["response"]["resultSets"]:
        assert item["id"] == f"{item['beaconId']}-cohort"
        by_node[item["info"]["node"]] = (
            by_node.get(item["info"]["node"], 0) + (item["resultsCount"])
        )
    assert by_node == expected
    assert _statuses(document) == {**dict.fromkeys(REAL, "ok"), **EXPECTED_FAULTS}
    assert elapsed < TIMEOUT_SECONDS + MARGIN_SECONDS


def test_the_slow_request_is_cancelled(network):
    log: pathlib.Path = network["slow_log"]
    log.write_text("")
    _, elapsed = _timed(f"{network['url']}/api/individuals", params=COUNT_QUERY)
    assert TIMEOUT_SECONDS <= elapsed < TIMEOUT_SECONDS + MARGIN_SECONDS

    def lines() -> list[str]:
        return log.read_text().split()

    # Every request the slow node started, it saw abandoned (earlier tests'
    # requests may still be reporting theirs just after the truncation). Soon:
    # the client's own backstop timeout would close it a second later.
    deadline = time.monotonic() + 0.5
    while lines().count("started") < 1 or lines().count("started") > (
        lines().count("disconnected") + lines().count("cancelled")
    ):
        assert time.monotonic() < deadline, f"slow node log: {lines()}"
        time.sleep(0.05)
    assert "answered" not in lines()


def test_framework_endpoints_validate(network):
    base = f"{network['url']}/api"
    info = _ask(f"{base}/info")
    validate(info, "beaconInfoResponse")
    datasets = {
        (item["id"], item["info"]["node"]) for item in info["response"]["datasets"]
    }
    assert {(f"{node}-cohort", node) for node in REAL} <= datasets
    assert info["response"]["info"]["isBeaconNetwork"] is True
    for path, schema in [
        ("", "beaconInfoResponse"),
        ("service-info", "ga4gh-service-info-1-0-0-schema"),
        ("configuration", "beaconConfigurationResponse"),
        ("map", "beaconMapResponse"),
        ("entry_types", "beaconEntryTypesResponse"),
        ("filtering_terms", "beaconFilteringTermsResponse"),
        ("individuals/filtering_terms", "beaconFilteringTermsResponse"),
    ]:
        validate(_ask(f"{base}/{path}"), schema)
    beacon_map = _ask(f"{base}/map")
    root = beacon_map["response"]["endpointSets"]["individual"]["rootUrl"]
    assert root == f"{base}/individuals"
    # The harvested DCAT catalogue of the nodes is mounted beside the Beacon.
    assert httpx2.get(f"{network['url']}/catalogue/harvest").status_code == 200
    terms = _ask(f"{base}/filtering_terms")["response"]["filteringTerms"]
    identifiers = [term["id"] for term in terms]
    assert len(identifiers) == len(set(identifiers)) > 0


def test_collections_and_one_entry(network):
    base = f"{network['url']}/api"
    document = _ask(f"{base}/datasets", params={"requestedGranularity": "count"})
    validate(document, "beaconCountResponse")
    assert document["responseSummary"]["numTotalResults"] == len(REAL)
    one = _ask(f"{base}/datasets/se-node-cohort/individuals", params=COUNT_QUERY)
    validate(one, "beaconCountResponse")
    assert one["responseSummary"]["numTotalResults"] == REAL["se-node"][1]
    assert {item["info"]["node"] for item in one["response"]["resultSets"]} == {
        "se-node"
    }


def test_a_bad_request_is_refused_by_the_network(network):
    response = httpx2.get(
        f"{network['url']}/api/individuals", params={"colour": "blue"}, timeout=10
    )
    assert response.status_code == 400
    validate(response.json(), "beaconErrorResponse")


def test_status_command(network):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "genomenode",
            "network",
            "status",
            str(network["yaml"]),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    rows = {row["id"]: row for row in json.loads(result.stdout)["nodes"]}
    assert rows["fi-node"]["reachable"] and rows["fi-node"]["version"]
    assert rows["fi-node"]["datasets"] == ["fi-node-cohort"]
    assert rows["fi-node"]["lastSeen"]
    assert rows["slow-node"]["status"] == "timeout"


def test_a_node_killed_mid_run(network):
    # Last in the module: ee-node goes away for good.
    expected = {
        node_id: _direct_count(
            network["urls"][node_id], "individuals", params=COUNT_QUERY
        )
        for node_id in ("fi-node", "se-node")
    }
    _stop(network["processes"]["ee-node"])
    document, elapsed = _timed(f"{network['url']}/api/individuals", params=COUNT_QUERY)
    validate(document, "beaconCountResponse")
    assert elapsed < TIMEOUT_SECONDS + MARGIN_SECONDS
    assert document["responseSummary"]["numTotalResults"] == sum(expected.values())
    statuses = _statuses(document)
    assert statuses == {
        "fi-node": "ok",
        "se-node": "ok",
        "ee-node": "error",
        **EXPECTED_FAULTS,
    }
    reason = next(
        node["reason"] for node in document["info"]["nodes"] if node["id"] == "ee-node"
    )
    assert "Connect" in reason or "connection" in reason.lower()


def test_the_network_keeps_its_own_audit_log_of_forwarded_queries(network):
    import sqlalchemy

    from genomenode.network.audit import DATABASE_FILENAME, verify_network_audit

    marker = f"{time.time_ns()}"
    response = httpx2.get(
        f"{network['url']}/api/individuals",
        params={"requestedGranularity": "count", "skip": marker[-6:]},
        timeout=30,
    )
    assert response.status_code == 200
    directory = network["yaml"].parent
    engine = sqlalchemy.create_engine(f"sqlite:///{directory / DATABASE_FILENAME}")
    deadline = time.monotonic() + 10
    rows: list = []
    try:
        while time.monotonic() < deadline and not rows:
            with engine.connect() as connection:
                rows = connection.execute(
                    sqlalchemy.text(
                        "SELECT actor, action, outcome, details FROM audit_log "
                        "WHERE action LIKE '%individuals%'"
                    )
                ).all()
            time.sleep(0.1)
    finally:
        engine.dispose()
    assert rows, "no forwarded query in the network's audit log"
    actor, action, _outcome, details = rows[-1]
    assert actor == "anonymous"
    assert "individuals" in action
    assert set(json.loads(details)["nodes"]) >= set(REAL)
    check = verify_network_audit(directory, network_id="test-net")
    assert check.intact, check
