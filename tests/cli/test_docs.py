"""cli/docs.py and docs.py: the documentation from the installed package."""

from __future__ import annotations

import pathlib

from .conftest import invoke, invoke_json

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs"


def test_docs_lists_every_document():
    listed = invoke_json("docs")
    names = {item["name"] for item in listed}
    assert names == {path.stem for path in DOCS.glob("*.md")}
    assert any(item["title"] == "dataset.yaml" for item in listed)
    assert "dataset-yaml" in invoke("docs").stdout


def test_docs_prints_one_or_its_path():
    text = invoke("docs", "dataset-yaml").stdout
    assert text == (DOCS / "dataset-yaml.md").read_text()
    path = invoke("docs", "ingest.md", "--path").stdout.strip()
    assert pathlib.Path(path).read_text() == (DOCS / "ingest.md").read_text()


def test_an_unknown_topic_suggests_the_closest():
    missing = invoke("docs", "dataset-yml", expect=1)
    assert "no document 'dataset-yml'; did you mean 'dataset-yaml'" in missing.stderr
