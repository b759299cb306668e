"""cli/demo.py: ``genomenode demo --json`` prints what is served, as one line.

The demo itself runs in tests/test_demo.py (slow); here run_demo is replaced.
"""

from __future__ import annotations

import json

from genomenode import demo

from .conftest import invoke


def test_demo_json_is_one_line_and_the_story_goes_to_stderr(tmp_path, monkeypatch):
    def fake_run_demo(directory, *, scale, wait, console, on_ready):
        console.print("the story")
        if on_ready is not None:
            on_ready({"network": {"url": "http://127.0.0.1:9000"}, "nodes": []})
        return {}

    monkeypatch.setattr(demo, "run_demo", fake_run_demo)
    result = invoke("demo", "--dir", tmp_path, "--no-wait", "--json")
    assert json.loads(result.stdout) == {
        "network": {"url": "http://127.0.0.1:9000"},
        "nodes": [],
    }
    assert "the story" in result.stderr
    plain = invoke("demo", "--dir", tmp_path, "--no-wait")
    assert "the story" in plain.stdout
