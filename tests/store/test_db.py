"""The metadata database on SQLite and PostgreSQL: migrations and visibility."""

from __future__ import annotations

import datetime as dt

import sqlalchemy
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from genomenode.store.db import HEAD_REVISION, create_engine, migrate, open_database
from genomenode.store.models import (
    STATUS_STAGING,
    Base,
    Dataset,
    published_datasets,
)


def _dataset(dataset_id, status):
    return Dataset(
        id=dataset_id,
        name="n",
        description="d",
        country="FI",
        contact_name="c",
        contact_email="c@example.org",
        security_level="CONTROLLED",
        assembly="GRCh38",
        status=status,
        fingerprint="0" * 64,
        num_individuals=1,
        num_samples=1,
        num_variants=1,
        description_document={"id": dataset_id},
        created_at=dt.datetime.now(dt.UTC),
    )


def test_migrations_create_the_schema_and_are_idempotent(node):
    tables = set(sqlalchemy.inspect(node.engine).get_table_names())
    assert {
        "datasets",
        "individuals",
        "biosamples",
        "files",
        "audit_log",
        "audit_checkpoints",
        "dac_members",
        "applications",
        "application_events",
        "entitlements",
        "dataset_generation",
        "alembic_version",
    } <= tables
    migrate(node.engine)  # a second upgrade is a no-op
    with node.engine.connect() as connection:
        version = connection.execute(
            sqlalchemy.text("SELECT version_num FROM alembic_version")
        )
        assert [row[0] for row in version] == ["0006"]


def test_head_revision_is_the_newest_migration_script():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", "genomenode.store:migrations")
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


def test_a_database_at_head_opens_without_migrating(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    open_database(url).dispose()  # migrates a new database
    migrated = []
    monkeypatch.setattr(
        "genomenode.store.db.migrate", lambda engine: migrated.append(engine)
    )
    open_database(url).dispose()
    assert migrated == []
    # One behind head (a node from an older genomenode): migrated again.
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sqlalchemy.text("UPDATE alembic_version SET version_num='0004'")
        )
    engine.dispose()
    open_database(url).dispose()
    assert len(migrated) == 1


def test_migrations_build_the_schema_the_models_declare(node):
    with node.engine.connect() as connection:
        differences = compare_metadata(
            MigrationContext.configure(connection), Base.metadata
        )
    assert differences == []


def test_only_published_datasets_are_visible(node):
    with node.session() as session, session.begin():
        session.add(_dataset("staged", STATUS_STAGING))
        session.add(_dataset("done", "published"))
    with node.session() as session:
        assert [row.id for row in session.scalars(published_datasets())] == ["done"]
        assert (
            session.scalar(select(Dataset).where(Dataset.id == "staged")).status
            == "staging"
        )
    assert [row.id for row in node.published()] == ["done"]
