"""The Alembic migrations create exactly the schema that the ORM models describe."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from backend.db.migrate import alembic_config, upgrade_database
from backend.db.models import Base


def test_migrations_match_models(database_url):
    upgrade_database(database_url)
    engine = create_engine(database_url)

    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)

    engine.dispose()
    assert differences == []


def test_upgrade_is_idempotent_and_downgrade_empties(database_url):
    upgrade_database(database_url)
    upgrade_database(database_url)

    command.downgrade(alembic_config(database_url), "base")

    engine = create_engine(database_url)
    tables = set(inspect(engine).get_table_names()) - {"alembic_version"}
    engine.dispose()
    assert tables == set()
