"""The check every service's tests run: its migrations build exactly the tables its models declare."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, Table
from sqlmodel import SQLModel

from pawgle.common.db import make_engine
from pawgle.common.migrations import upgrade_to_head

BUS_PACKAGE = "pawgle.common.bus"  # the outbox, inbox and dead letters: in every service's database


def declared_metadata(packages: tuple[str, ...]) -> MetaData:
    """The tables declared by the SQLModel models of these packages or modules (e.g. "pawgle.notifier")."""
    metadata = MetaData()
    for mapper in SQLModel._sa_registry.mappers:
        module = mapper.class_.__module__
        if any(module == p or module.startswith(p + ".") for p in packages):
            table = mapper.local_table
            assert isinstance(table, Table)  # SQLModel's tables are plain tables, never joins
            if table.name not in metadata.tables:
                table.to_metadata(metadata)
    return metadata


def migration_differences(database_url: str, *, migrations: Path, packages: tuple[str, ...]) -> list[Any]:
    """Alembic's differences between a fresh database migrated to head and the models of `packages`.

    Every test run imports every service's models into one SQLModel registry, so the comparison is
    limited to the given packages' tables; a table the migrations create that none of them declares, or
    the reverse, is a difference too, as are columns, types, nullability, indexes and unique constraints.
    """
    engine = make_engine(database_url)
    try:
        upgrade_to_head(migrations, database_url, engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, declared_metadata(packages)))
    finally:
        engine.dispose()


def assert_migrations_match_models(package: str, database_url: str) -> None:
    """Fail with Alembic's differences unless `package`'s migrations produce exactly its models and the bus's.

    `package` is a service's package ("pawgle.notifier"): its migrations are in `<package>/migrations`,
    its models are whatever `<package>.main` imports.
    """
    service = importlib.import_module(package)
    importlib.import_module(f"{package}.main")  # the app module imports every model the service has
    migrations = Path(next(iter(service.__path__))) / "migrations"
    differences = migration_differences(database_url, migrations=migrations, packages=(package, BUS_PACKAGE))
    assert not differences, f"{package}: migrations and models differ:\n" + "\n".join(map(repr, differences))
