"""The README runs as written: its command blocks, run in order against real
processes, print what the README shows.

Which blocks run, and how, is said in the Markdown itself:

- A fenced block right after the line ``<!-- readme-test: run -->`` runs; every
  other block is only read. The blocks that run share one ``bash`` session, in
  document order, in a scratch directory with its own ``$HOME``; ``genomenode``
  there is this checkout's package, run by the test's Python.
- In a block that runs, a line ``$ COMMAND`` is a command (a line ending in ``\\``
  continues it on the next). A comment starts at two spaces and a ``#``; a line
  that starts with ``#`` and a space is a comment too (``##fileformat`` is
  output). Comments are not checked, except that ``(exit N)`` in a command's
  comment says the command exits with status ``N`` (otherwise it must exit 0).
- Every other line of the block is output the command above it prints (stdout and
  stderr together): each must match one line of what it printed, in the order
  shown, whitespace runs counting as one space; ``...`` stands for any text.
- A command ending in ``&`` is a server started in the background: the test waits
  until the output shown under it has been printed and its ``--port`` accepts
  connections. Background processes still running at the end are stopped.
- ``<!-- readme-test: run; browser SUBJECT -->``: while a command of the block
  waits for a sign-in, the test opens the verification URL it printed and signs in
  as ``SUBJECT``, as the user would in a browser.
- Port 8080 in a block that runs is replaced by a free port (other servers may hold
  8080 on the machine running the tests).

So a README edit that breaks a command, its output or the order fails here;
:func:`test_a_drifted_readme_fails` shows the checker catching a wrong output.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx2
import pytest

import genomenode

from .conftest import free_port

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
_MARKER = re.compile(r"<!--\s*readme-test:\s*run\s*(?:;\s*browser\s+(\S+)\s*)?-->")
_FENCE = re.compile(r"^(```|~~~)")
_COMMENT = re.compile(r"\s{2,}#.*$")
_COMMENT_LINE = re.compile(r"\s*#(\s|$)")
_EXIT = re.compile(r"\(exit (\d+)\)")
_PORT = re.compile(r"--port\s+(\d+)")
_VERIFICATION_URL = re.compile(r"(https?://\S+/device)\?user_code=([A-Z0-9-]+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_DONE = "__readme_test_done__"
_COMMAND_TIMEOUT = 300.0
_SERVER_TIMEOUT = 120.0


@dataclasses.dataclass
class Command:
    """One ``$`` command of a README block and the output shown under it."""

    text: str
    line: int
    expected: list[str] = dataclasses.field(default_factory=list)
    exit_status: int = 0
    background: bool = False


@dataclasses.dataclass
class Block:
    """A block that runs: its commands, and who signs in where it asks."""

    line: int
    commands: list[Command]
    browser: str | None = None


def parse(markdown: str) -> list[Block]:
    """The blocks of ``markdown`` marked to run, in order."""
    lines = markdown.splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        marker = _MARKER.fullmatch(lines[index].strip())
        index += 1
        if marker is None:
            continue
        while index < len(lines) and not lines[index].strip():
            index += 1
        assert index < len(lines) and _FENCE.match(lines[index]), (
            f"README line {index}: a readme-test marker must precede a fenced block"
        )
        fence = _FENCE.match(lines[index]).group(1)  # type: ignore[union-attr]
        start = index + 1
        index = start
        while index < len(lines) and not lines[index].startswith(fence):
            index += 1
        block = Block(start + 1, _commands(lines[start:index], start + 1))
        block.browser = marker.group(1)
        blocks.append(block)
        index += 1
    return blocks


def _commands(lines: list[str], first_line: int) -> list[Command]:
    commands: list[Command] = []
    continued: Command | None = None
    for number, line in enumerate(lines, first_line):
        if continued is not None:
            continued.text += "\n" + line
            if not line.endswith("\\"):
                _finish(continued)
                continued = None
            continue
        if line.startswith("$ "):
            commands.append(Command(line[2:], number))
            if line.endswith("\\"):
                continued = commands[-1]
            else:
                _finish(commands[-1])
        elif line.strip() and not _COMMENT_LINE.match(line):
            assert commands, f"README line {number}: output before any command"
            commands[-1].expected.append(line)
    return commands


def _finish(command: Command) -> None:
    """Read a whole command's comment (its exit status) and its ``&``."""
    code_lines, comments = [], []
    for line in command.text.split("\n"):
        comment = _COMMENT.search(line)
        if comment:
            comments.append(comment.group())
            line = line[: comment.start()]
        code_lines.append(line.rstrip())
    code = "\n".join(code_lines)
    status = _EXIT.search(" ".join(comments))
    command.exit_status = int(status.group(1)) if status else 0
    command.background = code.endswith("&") and not code.endswith("&&")
    command.text = code[:-1].rstrip() if command.background else code


def _normal(line: str) -> str:
    return " ".join(_ANSI.sub("", line).split())


def unmatched(expected: list[str], output: str) -> str | None:
    """The first line of ``expected`` not found, in order, in ``output``; None if
    all are. ``...`` matches any text; whitespace runs count as one space."""
    actual = [_normal(line) for line in output.splitlines()]
    position = 0
    for line in expected:
        parts = re.split(r"\s*\.\.\.\s*", _normal(line))
        pattern = re.compile(".*".join(re.escape(part) for part in parts))
        while position < len(actual) and not pattern.fullmatch(actual[position]):
            position += 1
        if position == len(actual):
            return line
        position += 1
    return None


class Session:
    """One ``bash`` that runs the README's commands, in ``directory``."""

    def __init__(self, directory: pathlib.Path, port: int) -> None:
        self.directory = directory
        self.port = port
        self.outputs = directory / ".readme-test"
        self.outputs.mkdir()
        self.count = 0
        self.background: list[int] = []
        home = directory / "home"
        home.mkdir()
        bin_dir = directory / ".bin"
        bin_dir.mkdir()
        shim = bin_dir / "genomenode"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m genomenode "$@"\n')
        shim.chmod(0o755)
        environment = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("GENOMENODE_", "C4GH_", "XDG_", "PYTHON"))
        }
        environment.update(
            HOME=str(home),
            PATH=os.pathsep.join(
                [
                    str(bin_dir),
                    str(pathlib.Path(sys.executable).parent),
                    "/usr/bin",
                    "/bin",
                ]
            ),
            PYTHONPATH=str(pathlib.Path(genomenode.__file__).resolve().parents[1]),
            PYTHONUNBUFFERED="1",
            COLUMNS="80",
        )
        self.bash = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=directory,
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def run(self, command: Command, browser: str | None) -> str:
        """Run ``command``; its output (stdout and stderr together)."""
        self.count += 1
        out = self.outputs / f"{self.count}.out"
        if command.background:
            self._send(f"{command.text} > {out} 2>&1 &\necho {_DONE} $!\n")
            pid = int(self._wait_done(command, out, browser=None))
            self.background.append(pid)
            self._wait_server(command, out, pid)
            return out.read_text()
        self._send(f"{{ {command.text}\n}} > {out} 2>&1\necho {_DONE} $?\n")
        status = int(self._wait_done(command, out, browser))
        printed = out.read_text()
        assert status == command.exit_status, (
            f"README line {command.line}: `{command.text}` exited {status}, "
            f"not {command.exit_status}:\n{printed}"
        )
        return printed

    def _send(self, text: str) -> None:
        assert self.bash.stdin is not None
        self.bash.stdin.write(text)
        self.bash.stdin.flush()

    def _wait_done(
        self, command: Command, out: pathlib.Path, browser: str | None
    ) -> str:
        assert self.bash.stdout is not None
        deadline = time.monotonic() + _COMMAND_TIMEOUT
        signed_in = False
        while True:
            ready, _, _ = select.select([self.bash.stdout], [], [], 0.2)
            if ready:
                line = self.bash.stdout.readline()
                assert line, f"README line {command.line}: the shell exited"
                if line.startswith(_DONE):
                    return line.split()[1]
                continue
            if browser and not signed_in and out.exists():
                signed_in = _sign_in(out.read_text(), browser)
            assert time.monotonic() < deadline, (
                f"README line {command.line}: `{command.text}` did not finish:\n"
                + (out.read_text() if out.exists() else "")
            )

    def _wait_server(self, command: Command, out: pathlib.Path, pid: int) -> None:
        port = _PORT.search(command.text)
        deadline = time.monotonic() + _SERVER_TIMEOUT
        while True:
            printed = out.read_text() if out.exists() else ""
            if unmatched(command.expected, printed) is None and (
                port is None or _accepts(int(port.group(1)))
            ):
                return
            assert _alive(pid), (
                f"README line {command.line}: the server exited:\n{printed}"
            )
            assert time.monotonic() < deadline, (
                f"README line {command.line}: the server did not start:\n{printed}"
            )
            time.sleep(0.2)

    def close(self) -> None:
        for pid in self.background:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in self.background:
            deadline = time.monotonic() + 20
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.bash.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.bash.stdin.close()
        try:
            self.bash.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.bash.kill()
            self.bash.wait()
        if self.bash.stdout is not None:
            self.bash.stdout.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by the shell) is not alive.
    with contextlib.suppress(OSError):
        return pathlib.Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    return True


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1.0)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _sign_in(printed: str, subject: str) -> bool:
    """Approve the sign-in whose verification URL ``printed`` shows, as a browser
    would; False while none is shown."""
    found = _VERIFICATION_URL.search(printed)
    if found is None:
        return False
    page, user_code = found.groups()
    answer = httpx2.post(
        page, data={"user_code": user_code, "subject": subject, "action": "approve"}
    )
    assert answer.status_code == 200, answer.text
    return True


@contextlib.contextmanager
def session(directory: pathlib.Path) -> Iterator[Session]:
    shell = Session(directory, free_port())
    try:
        yield shell
    finally:
        shell.close()


def run_blocks(blocks: list[Block], shell: Session, source: str = "README") -> None:
    """Run every command of ``blocks`` in ``shell``; fail on a missing line."""
    for block in blocks:
        for command in block.commands:
            printed = shell.run(command, block.browser)
            missing = unmatched(command.expected, printed)
            assert missing is None, (
                f"{source} line {command.line}: `{command.text}` did not print\n"
                f"  {missing}\nIt printed:\n{printed}"
            )


def _with_port(markdown: str, port: int) -> str:
    return re.sub(r"\b8080\b", str(port), markdown)


def test_readme_starts_with_make_demo_and_make_test():
    text = README.read_text()
    first_block = text.split("```")[1]
    assert "make demo" in first_block
    assert "make test" in first_block


def _first(commands: list[str], prefix: str) -> int | None:
    return next((i for i, text in enumerate(commands) if text.startswith(prefix)), None)


@pytest.mark.slow
def test_the_readme_runs_as_written(tmp_path):
    with session(tmp_path) as shell:
        blocks = parse(_with_port(README.read_text(), shell.port))
        # The walkthrough and the access flow are all there, in the order users
        # follow: a marker dropped by mistake fails here, not silently.
        commands = [command.text for block in blocks for command in block.commands]
        order = [
            "genomenode init",
            "genomenode simulate",
            "genomenode ingest",
            "genomenode serve",
            "genomenode datasets set-access",
            "genomenode login",
            "genomenode apply",
            "genomenode access approve",
            "genomenode fetch",
            "genomenode access revoke",
            "genomenode audit verify",
        ]
        positions = [_first(commands, prefix) for prefix in order]
        assert None not in positions, dict(zip(order, positions, strict=True))
        assert positions == sorted(positions), dict(zip(order, positions, strict=True))
        run_blocks(blocks, shell)


SAMPLE = """\
Some prose.

<!-- readme-test: run -->
```console
$ echo hello  # says hello
hello
$ printf 'one\\ntwo  three\\n' \\
    | cat
one
two ... three
$ sh -c 'echo nope; exit 3'  # fails (exit 3)
nope
```

```console
$ this block is only read
```
"""


def test_the_extractor_reads_commands_outputs_and_exit_statuses():
    (block,) = parse(SAMPLE)
    assert [command.text for command in block.commands] == [
        "echo hello",
        "printf 'one\\ntwo  three\\n' \\\n    | cat",
        "sh -c 'echo nope; exit 3'",
    ]
    assert [command.expected for command in block.commands] == [
        ["hello"],
        ["one", "two ... three"],
        ["nope"],
    ]
    assert [command.exit_status for command in block.commands] == [0, 0, 3]
    assert unmatched(["two ... three"], "one\ntwo  and three\n") is None
    assert unmatched(["three", "one"], "one\nthree\n") == "one"  # order counts


def test_the_sample_runs(tmp_path):
    with session(tmp_path) as shell:
        run_blocks(parse(SAMPLE), shell, "sample")


@pytest.mark.parametrize(
    ("drift", "message"),
    [
        (("\nhello\n", "\ngoodbye\n"), r"did not print\s+goodbye"),
        (("(exit 3)", "(exit 0)"), "exited 3, not 0"),
    ],
)
def test_a_drifted_readme_fails(tmp_path, drift, message):
    drifted = SAMPLE.replace(*drift)
    assert drifted != SAMPLE
    with session(tmp_path) as shell, pytest.raises(AssertionError, match=message):
        run_blocks(parse(drifted), shell, "sample")
