"""The documentation (``docs/*.md``) from an installed package: ``genomenode docs``.

A wheel installs the documents as data files under
``<prefix>/share/genomenode/docs`` (``[tool.setuptools.data-files]`` in
pyproject.toml); a source checkout or an editable install reads them from the
checkout's ``docs/``. Topics are the file names without ``.md``.
"""

from __future__ import annotations

import dataclasses
import pathlib
import sys
import sysconfig

from .errors import NotFoundError, did_you_mean

__all__ = ["Topic", "docs_directory", "find_topic", "topics"]


@dataclasses.dataclass(frozen=True)
class Topic:
    """One document: its name (``dataset-yaml``), title and file."""

    name: str
    title: str
    path: pathlib.Path


def _candidates() -> list[pathlib.Path]:
    installed = [
        pathlib.Path(sysconfig.get_path("data")) / "share" / "genomenode" / "docs",
        pathlib.Path(sys.prefix) / "share" / "genomenode" / "docs",
    ]
    checkout = pathlib.Path(__file__).resolve().parents[2] / "docs"
    return [*installed, checkout]


def docs_directory() -> pathlib.Path:
    """Where the documents are (installed data files, else the checkout's docs/).

    Raises
    ------
    NotFoundError
        Neither place has them (an installation without its data files).
    """
    for candidate in _candidates():
        if any(candidate.glob("*.md")):
            return candidate
    raise NotFoundError(
        "the documentation is not installed with this genomenode (looked in "
        + ", ".join(str(path) for path in _candidates())
        + "); read it at the project's docs/ directory"
    )


def topics() -> list[Topic]:
    """Every document, by name."""
    found = []
    for path in sorted(docs_directory().glob("*.md")):
        with open(path, encoding="utf-8") as handle:
            first = handle.readline().strip()
        found.append(Topic(path.stem, first.lstrip("# ") or path.stem, path))
    return found


def find_topic(name: str) -> Topic:
    """The document called ``name`` (with or without ``.md``).

    Raises
    ------
    NotFoundError
        No such document (naming the closest ones).
    """
    wanted = name.removesuffix(".md").lower()
    available = topics()
    for topic in available:
        if topic.name.lower() == wanted:
            return topic
    names = [topic.name for topic in available]
    raise NotFoundError(
        f"no document {name!r}{did_you_mean(wanted, names)} "
        f"(documents: {', '.join(names)})"
    )
