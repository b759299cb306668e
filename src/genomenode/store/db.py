"""The metadata database: engine creation and migrations.

SQLite (a file in the node directory) by default, PostgreSQL by URL. The schema is
owned by the Alembic migrations in ``migrations/``; :func:`open_database` brings a
database up to the newest revision before returning its engine. A database already
at :data:`HEAD_REVISION` is recognised with one query, without loading Alembic and
its scripts (a third of a second that every command and server start paid).
"""

from __future__ import annotations

import re

import sqlalchemy
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from ..errors import ConfigError

__all__ = ["HEAD_REVISION", "create_engine", "migrate", "open_database"]

#: The newest revision in ``migrations/versions`` (a test checks it against the
#: scripts): a new migration changes it.
HEAD_REVISION = "0006"

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def create_engine(url: str, schema: str | None = None) -> Engine:
    """An engine for ``url``; with ``schema``, PostgreSQL tables live in that schema."""
    try:
        engine = sqlalchemy.create_engine(url)
    except (sqlalchemy.exc.ArgumentError, ImportError) as error:
        raise ConfigError(f"db_url: cannot use database URL: {error}") from None
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            # WAL lets readers go on while an ingest writes; FKs are off by default.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    elif schema is not None:
        if not _SCHEMA_NAME.match(schema):
            raise ConfigError(f"db_schema: {schema!r} is not a plain lower-case name")

        @event.listens_for(engine, "connect")
        def _search_path(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            cursor.execute(f"SET search_path TO {schema}")
            cursor.close()
            dbapi_connection.commit()

    return engine


def migrate(engine: Engine) -> None:
    """Bring the database of ``engine`` to the newest schema revision."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "genomenode.store:migrations")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def open_database(url: str, schema: str | None = None) -> Engine:
    """An engine on an up-to-date database."""
    engine = create_engine(url, schema)
    try:
        if _revision(engine) != HEAD_REVISION:
            migrate(engine)
    except sqlalchemy.exc.OperationalError as error:
        raise ConfigError(
            f"db_url: cannot open the metadata database: {error}"
        ) from None
    return engine


def _revision(engine: Engine) -> str | None:
    """The database's schema revision; None before the first migration."""
    try:
        with engine.connect() as connection:
            revision = connection.execute(
                text("SELECT version_num FROM alembic_version")
            ).scalar()
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.ProgrammingError):
        return None  # no alembic_version table yet (or no database: migrate says)
    return None if revision is None else str(revision)
