"""The command starts fast: the package root and the CLI import no heavy stack.

The can-fail form of "genomenode --help in under 0.3 s" (bench/cli.py times it):
what is imported, checked in a fresh interpreter through sys.modules.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tomllib

import genomenode

SOURCE = pathlib.Path(genomenode.__file__).resolve().parents[1]
HEAVY = ("genomenode.ingest", "bio2zarr", "zarr", "numpy", "sqlalchemy", "fastapi")


def _imported_after(statement: str) -> list[str]:
    """The modules loaded by ``statement`` in a fresh interpreter."""
    probe = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(SOURCE)},
    )
    return json.loads(done.stdout.splitlines()[-1])


def _heavy(modules: list[str]) -> list[str]:
    return [
        name
        for name in modules
        if any(name == heavy or name.startswith(heavy + ".") for heavy in HEAVY)
    ]


def test_importing_the_package_loads_no_ingest_stack():
    assert _heavy(_imported_after("import genomenode")) == []


def test_the_command_line_and_its_help_load_no_library_stack():
    modules = _imported_after(
        "import sys\nfrom genomenode.cli import cli\n"
        "try:\n    cli(['--help'])\nexcept SystemExit:\n    pass"
    )
    assert _heavy(modules) == []
    assert "genomenode.cli.access" in modules


def test_the_public_names_load_on_first_use():
    modules = _imported_after(
        "import genomenode\n"
        "assert genomenode.open_node.__module__ == 'genomenode.store.node'"
    )
    assert "genomenode.store.node" in modules and "zarr" not in modules


def test_the_version_is_the_project_version():
    project = tomllib.loads((SOURCE.parent / "pyproject.toml").read_text())["project"]
    assert genomenode.__version__ == project["version"]
    assert (
        "genomenode, version " + project["version"]
        in subprocess.run(
            [sys.executable, "-m", "genomenode", "--version"],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": str(SOURCE)},
        ).stdout
    )
