"""cli/fetch.py: ``genomenode fetch`` (the slices: tests/transfer/test_client.py)."""

from __future__ import annotations

import socket

from .conftest import invoke


def test_an_unreachable_node_is_one_line_and_the_token_is_not_shown(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens once it is closed
    failed = invoke(
        *("fetch", "--server", f"http://127.0.0.1:{port}", "--dataset", "d1"),
        *("--region", "1:1-100", "--out", tmp_path / "slice.vcf.gz"),
        *("--token", "secret-passport-token"),
        expect=1,
    )
    assert failed.stderr.startswith(f"error: http://127.0.0.1:{port}/")
    assert failed.stderr.count("\n") == 1
    assert "secret-passport-token" not in failed.stdout + failed.stderr
    assert not (tmp_path / "slice.vcf.gz").exists()


def test_a_bad_region_names_the_field(tmp_path):
    failed = invoke(
        *("fetch", "--server", "http://127.0.0.1:9", "--dataset", "d1"),
        *("--region", "1:0-100", "--out", tmp_path / "slice.vcf.gz", "--token", "t"),
        expect=1,
    )
    assert failed.stderr == "error: field 'region': region starts at 1 (1-based)\n"
