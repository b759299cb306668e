"""cli/options.py: shared options, the one error wrapper, whole help texts."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from genomenode.cli import cli
from genomenode.cli.options import command, errors_to_exit, node_option
from genomenode.errors import NotFoundError

from .conftest import invoke


def _commands(group: click.Group, prefix: str = ""):
    for name, item in group.commands.items():
        yield f"{prefix}{name}", item
        if isinstance(item, click.Group):
            yield from _commands(item, f"{prefix}{name} ")


def test_every_command_has_a_whole_one_line_summary():
    for name, item in _commands(cli):
        summary = item.get_short_help_str(limit=20)
        assert summary, name
        assert not summary.endswith("..."), (name, summary)
        assert summary.endswith((".", ")")), (name, summary)
        assert summary == " ".join(item.help.split("\n\n")[0].split()), name


def test_help_lists_every_summary_uncut_on_a_narrow_terminal():
    shown = invoke("--help", terminal_width=60).stdout
    flat = " ".join(shown.split())
    for name, item in cli.commands.items():
        assert item.get_short_help_str() in flat, name
    commands = shown.partition("Commands:")[2]
    assert commands and "..." not in commands


def test_a_missing_node_names_the_environment_variable():
    missing = invoke("datasets", expect=2)
    assert "--node" in missing.stderr and "$GENOMENODE_NODE" in missing.stderr
    missing = invoke("access", "applications", expect=2)
    assert "$GENOMENODE_NODE" in missing.stderr


def test_the_node_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GENOMENODE_NODE", str(tmp_path / "nowhere"))
    result = invoke("datasets", expect=1)
    # Found the option, then the library said the directory is no node.
    assert result.stderr.startswith("error: ") and "nowhere" in result.stderr


def test_library_and_os_errors_are_one_line_without_traceback(tmp_path):
    @command()
    @node_option
    @click.option("--fail", type=click.Choice(["library", "os"]))
    @errors_to_exit
    def probe(node_dir, fail):
        """Fail as told."""
        if fail == "library":
            raise NotFoundError("dataset 'x' is not published")
        open(node_dir / "missing" / "file")  # noqa: SIM115

    runner = CliRunner()
    library = runner.invoke(probe, ["--node", str(tmp_path), "--fail", "library"])
    assert (library.exit_code, library.stderr) == (
        1,
        "error: dataset 'x' is not published\n",
    )
    system = runner.invoke(probe, ["--node", str(tmp_path), "--fail", "os"])
    assert system.exit_code == 1
    assert system.stderr == (
        f"error: {tmp_path / 'missing' / 'file'}: No such file or directory\n"
    )
    assert "Traceback" not in system.stderr + system.stdout


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_flags(flag):
    assert "Usage: genomenode" in invoke(flag).stdout
