"""The throwaway PostgreSQL server that the tests start when none is configured.

These run on every machine, CI included (which names a server of its own), so the
path a fresh clone takes is tested where it is not the one in use.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest
import sqlalchemy

from tests.postgres_server import PostgresStartError, throwaway_postgres

pytestmark = pytest.mark.postgres

ROOT = pathlib.Path(__file__).parent.parent


def _directory(url: str) -> pathlib.Path:
    return pathlib.Path(sqlalchemy.make_url(url).query["host"])


def _postmaster(directory: pathlib.Path) -> int:
    return int((directory / "data" / "postmaster.pid").read_text().split()[0])


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (an exited one awaiting its parent is not)."""
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_the_server_serves_an_empty_database_and_is_gone_after_the_block():
    with throwaway_postgres() as url:
        directory = _directory(url)
        pid = _postmaster(directory)
        engine = sqlalchemy.create_engine(url)
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text("CREATE TABLE t (x int)"))
            connection.execute(sqlalchemy.text("INSERT INTO t VALUES (1), (2)"))
            total = connection.execute(sqlalchemy.text("SELECT sum(x) FROM t"))
            assert total.scalar_one() == 3
            tables = connection.execute(
                sqlalchemy.text(
                    "SELECT count(*) FROM information_schema.tables "
                    "WHERE table_schema = 'public'"
                )
            )
            assert tables.scalar_one() == 1
        engine.dispose()
        assert _running(pid)
        # PostgreSQL refuses root: under root the server runs as another user.
        assert os.stat(f"/proc/{pid}").st_uid != 0
    assert not _running(pid)
    assert not directory.exists()


def test_the_server_stops_when_the_process_that_started_it_is_killed():
    program = (
        "import time\n"
        "from tests.postgres_server import throwaway_postgres\n"
        "with throwaway_postgres() as url:\n"
        "    print(url, flush=True)\n"
        "    time.sleep(120)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", program],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = parent.stdout.readline().strip()
        assert url, parent.stderr.read()
        directory = _directory(url)
        pid = _postmaster(directory)
        assert _running(pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 30
        while _running(pid):
            assert time.monotonic() < deadline, f"server {pid} outlived its parent"
            time.sleep(0.1)
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()
        parent.stderr.close()
    # Nobody was left to delete the directory: that is the test's job here.
    shutil.rmtree(directory)


def test_a_server_that_cannot_start_fails_with_its_log(monkeypatch):
    made = []
    real_mkdtemp = tempfile.mkdtemp

    def recording_mkdtemp(**arguments):
        made.append(pathlib.Path(real_mkdtemp(**arguments)))
        return str(made[-1])

    monkeypatch.setattr(tempfile, "mkdtemp", recording_mkdtemp)
    with (
        pytest.raises(PostgresStartError, match='parameter "shared_buffers"'),
        throwaway_postgres(settings={"shared_buffers": "plenty"}),
    ):
        pass
    assert len(made) == 1
    assert not made[0].exists()
