"""The network's analysis jobs, kept in its own database so that they outlive it.

A job is one federated analysis over named datasets; each dataset is a *task*
on the node that holds it. Job and task states are GA4GH TES 1.1's::

    QUEUED → INITIALIZING → RUNNING → COMPLETE
                                   ↘ EXECUTOR_ERROR  (a node refused: its reason)
                                   ↘ SYSTEM_ERROR    (a node unreachable)
    any state before the end → CANCELED
    a runner gone mid-job (a restart) → QUEUED, waiting for its owner

Each job belongs to the caller who submitted it, its :class:`Owner` (the
verified ``sub`` and ``iss`` of their passport): :meth:`JobStore.get` with an
owner answers only that owner's jobs, and NotFoundError for the others', so a
job id reveals nothing to anyone else.

The database is SQLite beside NETWORK.yaml (``network-analysis.db``) or the URL
in ``$GENOMENODE_NETWORK_JOBS_DB_URL``. Several worker processes share it: the
process running a job writes its pid, a cancel is a row update every runner
reads between rounds.

A job whose runner is gone (the network restarted mid-job) cannot go on by
itself: its rounds need the owner's passport, which lives only in the runner's
memory and is never written here. :meth:`JobStore.recover` puts it back in
QUEUED, *waiting for its owner*; the owner's next request, with a fresh passport,
claims it (:meth:`JobStore.claim`, one process wins) and runs it again from its
start (the nodes keep no state between rounds; each answers, and audits, again).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import pathlib
import secrets
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from ..errors import ConflictError, NotFoundError
from ..store.db import create_engine

__all__ = [
    "DATABASE_FILENAME",
    "FINAL_STATES",
    "JOBS_DB_URL_ENVIRONMENT_VARIABLE",
    "STATES",
    "WAITING_FOR_OWNER",
    "Job",
    "JobStore",
    "Owner",
    "open_job_store",
]

DATABASE_FILENAME = "network-analysis.db"
JOBS_DB_URL_ENVIRONMENT_VARIABLE = "GENOMENODE_NETWORK_JOBS_DB_URL"
STATES = (
    "QUEUED",
    "INITIALIZING",
    "RUNNING",
    "COMPLETE",
    "EXECUTOR_ERROR",
    "SYSTEM_ERROR",
    "CANCELED",
)
FINAL_STATES = frozenset({"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED"})
#: The reason of a job whose runner stopped, until its owner's next request.
WAITING_FOR_OWNER = (
    "the network restarted while the job ran; it starts again at its owner's "
    "next request (the network keeps no passport)"
)

_metadata = sa.MetaData()
_jobs = sa.Table(
    "analysis_jobs",
    _metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("analysis", sa.String(32), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("request", sa.JSON, nullable=False),
    sa.Column("tasks", sa.JSON, nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("result", sa.JSON, nullable=True),
    sa.Column("submitter", sa.String(256), nullable=False),
    sa.Column("owner_subject", sa.String(1024), nullable=True),
    sa.Column("owner_issuer", sa.String(1024), nullable=True),
    sa.Column("runner_pid", sa.Integer, nullable=True),
    sa.Column("round_trips", sa.Integer, nullable=False, default=0),
    sa.Column("created", sa.String(40), nullable=False),
    sa.Column("updated", sa.String(40), nullable=False),
)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


@dataclasses.dataclass(frozen=True)
class Owner:
    """Who a job belongs to: the verified subject and issuer of a passport."""

    subject: str
    issuer: str


@dataclasses.dataclass(frozen=True)
class Job:
    """One job as stored."""

    id: str
    analysis: str
    state: str
    request: dict[str, Any]
    tasks: dict[str, dict[str, Any]]
    reason: str | None
    submitter: str
    round_trips: int
    created: str
    updated: str
    result: dict[str, Any] | None = None
    owner: Owner | None = None
    runner_pid: int | None = None

    def status(self) -> dict[str, Any]:
        """What ``GET /analysis/jobs/{id}`` answers (no result)."""
        return {
            "id": self.id,
            "analysis": self.analysis,
            "state": self.state,
            "reason": self.reason,
            "request": self.request,
            "tasks": self.tasks,
            "round_trips": self.round_trips,
            "created": self.created,
            "updated": self.updated,
        }


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class JobStore:
    """The jobs table (blocking calls: run them off the event loop)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        _metadata.create_all(engine)
        self._add_owner_columns()

    def _add_owner_columns(self) -> None:
        """A database of an older network gains the owner columns (its jobs,
        without an owner, can then be read by no one)."""
        present = {c["name"] for c in sa.inspect(self.engine).get_columns(_jobs.name)}
        with self.engine.begin() as connection:
            for name in ("owner_subject", "owner_issuer"):
                if name not in present:
                    connection.execute(
                        sa.text(f"ALTER TABLE {_jobs.name} ADD COLUMN {name} TEXT")
                    )

    def create(
        self,
        analysis: str,
        request: Mapping[str, Any],
        tasks: Mapping[str, Any],
        *,
        owner: Owner,
    ) -> Job:
        job_id = secrets.token_hex(16)
        moment = _now()
        with self.engine.begin() as connection:
            connection.execute(
                _jobs.insert().values(
                    id=job_id,
                    analysis=analysis,
                    state="QUEUED",
                    request=dict(request),
                    tasks=dict(tasks),
                    submitter=owner.subject[:256],
                    owner_subject=owner.subject,
                    owner_issuer=owner.issuer,
                    runner_pid=os.getpid(),
                    round_trips=0,
                    created=moment,
                    updated=moment,
                )
            )
        return self.get(job_id)

    def get(self, job_id: str, owner: Owner | None = None) -> Job:
        """The job; with ``owner``, only if it is theirs.

        Raises
        ------
        NotFoundError
            No such job, or (with ``owner``) another's: the same answer, so
            that a job id tells no one else it exists.
        """
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(_jobs).where(_jobs.c.id == job_id)
            ).first()
        if row is None or (
            owner is not None
            and (row.owner_subject, row.owner_issuer) != (owner.subject, owner.issuer)
        ):
            raise NotFoundError(f"no analysis job {job_id!r}")
        return Job(
            id=row.id,
            analysis=row.analysis,
            state=row.state,
            request=row.request,
            tasks=row.tasks,
            reason=row.reason,
            submitter=row.submitter,
            round_trips=row.round_trips,
            created=row.created,
            updated=row.updated,
            result=row.result,
            owner=Owner(row.owner_subject, row.owner_issuer)
            if row.owner_subject is not None and row.owner_issuer is not None
            else None,
            runner_pid=row.runner_pid,
        )

    def update(
        self,
        job_id: str,
        *,
        state: str | None = None,
        reason: str | None = None,
        tasks: Mapping[str, Any] | None = None,
        result: Mapping[str, Any] | None = None,
        round_trips: int | None = None,
    ) -> bool:
        """Write what changed, unless the job has ended (a cancel wins over a
        runner still writing); returns whether it was written."""
        values: dict[str, Any] = {"updated": _now()}
        if state is not None:
            values["state"] = state
        if reason is not None:
            values["reason"] = reason
        if tasks is not None:
            # A JSON column compares by identity: a new object makes it dirty.
            values["tasks"] = json.loads(json.dumps(tasks))
        if result is not None:
            values["result"] = dict(result)
        if round_trips is not None:
            values["round_trips"] = round_trips
        with self.engine.begin() as connection:
            done = connection.execute(
                _jobs.update()
                .where(_jobs.c.id == job_id, _jobs.c.state.not_in(FINAL_STATES))
                .values(**values)
            )
        return done.rowcount > 0

    def cancel(self, job_id: str, owner: Owner | None = None) -> Job:
        """Mark the job CANCELED (its runner stops before its next round).

        Raises
        ------
        NotFoundError
            No such job.
        ConflictError
            It has already ended.
        """
        job = self.get(job_id, owner)
        if job.state in FINAL_STATES:
            raise ConflictError(f"job {job_id} has already ended ({job.state})")
        tasks = {
            name: {**task, "state": "CANCELED"}
            if task.get("state") not in FINAL_STATES
            else task
            for name, task in job.tasks.items()
        }
        self.update(
            job_id, state="CANCELED", reason="canceled by the user", tasks=tasks
        )
        return self.get(job_id, owner)

    def state(self, job_id: str) -> str:
        with self.engine.connect() as connection:
            value = connection.execute(
                sa.select(_jobs.c.state).where(_jobs.c.id == job_id)
            ).scalar_one()
        return str(value)

    def recover(self) -> list[str]:
        """Jobs whose runner process is gone: back to QUEUED, waiting for their
        owner (called at start-up; see the module docstring)."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(_jobs.c.id, _jobs.c.runner_pid, _jobs.c.tasks).where(
                    _jobs.c.state.not_in(FINAL_STATES)
                )
            ).all()
        orphaned = []
        for job_id, pid, tasks in rows:
            if pid is None or (pid != os.getpid() and _alive(pid)):
                continue
            waiting = {
                name: {**task, "state": "QUEUED", "progress": 0.0, "reason": None}
                for name, task in tasks.items()
            }
            with self.engine.begin() as connection:
                done = connection.execute(
                    _jobs.update()
                    .where(
                        _jobs.c.id == job_id,
                        _jobs.c.runner_pid == pid,
                        _jobs.c.state.not_in(FINAL_STATES),
                    )
                    .values(
                        state="QUEUED",
                        reason=WAITING_FOR_OWNER,
                        tasks=waiting,
                        runner_pid=None,
                        updated=_now(),
                    )
                )
            if done.rowcount:
                orphaned.append(job_id)
        return orphaned

    def claim(self, job: Job) -> bool:
        """Make this process the runner of ``job``, a job waiting for its owner
        (no runner, or a runner process that is gone); False when it is not
        waiting or another process claimed it first."""
        if job.state in FINAL_STATES:
            return False
        if job.runner_pid is not None and (
            job.runner_pid == os.getpid() or _alive(job.runner_pid)
        ):
            return False
        same_runner = (
            _jobs.c.runner_pid.is_(None)
            if job.runner_pid is None
            else _jobs.c.runner_pid == job.runner_pid
        )
        with self.engine.begin() as connection:
            done = connection.execute(
                _jobs.update()
                .where(
                    _jobs.c.id == job.id,
                    same_runner,
                    _jobs.c.state.not_in(FINAL_STATES),
                )
                .values(runner_pid=os.getpid(), reason=None, updated=_now())
            )
        return done.rowcount > 0


def open_job_store(directory: pathlib.Path | None, url: str | None = None) -> JobStore:
    """The jobs of the network whose NETWORK.yaml is in ``directory`` (or at
    ``url``; ``"memory"``: in this process only, for tests)."""
    if url == "memory":
        return JobStore(
            sa.create_engine(
                "sqlite://",
                poolclass=sa.pool.StaticPool,
                connect_args={"check_same_thread": False},
            )
        )
    if url is None:
        assert directory is not None
        path = directory / DATABASE_FILENAME
        if not path.exists():
            path.touch(mode=0o600)
        url = f"sqlite:///{path}"
    return JobStore(create_engine(url))
