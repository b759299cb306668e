"""``genomenode serve``: the real server process answers Beacon requests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx2

from genomenode.beacon.schemas import validate

from ..conftest import free_port, wait_until_up


def test_serve_answers_over_http(beacon_node):
    port = free_port()
    environment = {**os.environ, "GENOMENODE_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "genomenode",
            "serve",
            "--node",
            str(beacon_node.config.node_dir),
            "--port",
            str(port),
        ],
        env=environment,
        start_new_session=True,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}/api"
    try:
        wait_until_up(server, f"{base}/info")
        info = httpx2.get(f"{base}/info")
        validate(info.json(), "beaconInfoResponse")
        beacon_map = httpx2.get(f"{base}/map").json()
        root = beacon_map["response"]["endpointSets"]["individual"]["rootUrl"]
        assert root == f"{base}/individuals"
        answer = httpx2.get(
            f"{base}/g_variants",
            params={
                "referenceName": "chr1",
                "start": "10176",
                "referenceBases": "A",
                "alternateBases": "AC",
                "requestedGranularity": "count",
            },
        ).json()
        validate(answer, "beaconCountResponse")
        assert answer["responseSummary"] == {"exists": True, "numTotalResults": 1}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.communicate(timeout=30)
