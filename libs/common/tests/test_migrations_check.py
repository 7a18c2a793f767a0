"""The migrations check itself: it passes on a match and names every kind of mismatch."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, String
from sqlmodel import Field, SQLModel

from pawgle.common.testing.migrations import BUS_PACKAGE, migration_differences
from pawgle.common.testing.probe import MIGRATIONS

PROBE = "pawgle.common.testing.probe"


class UnmigratedTable(SQLModel, table=True):
    """Declared here, created by no migration."""

    __tablename__ = "migrations_check_unmigrated"

    id: int = Field(sa_column=Column(Integer, primary_key=True))
    name: str = Field(sa_column=Column(String(20), nullable=False))


def test_probe_migrations_match_the_probe_models(database_url: str) -> None:
    assert migration_differences(database_url, migrations=MIGRATIONS, packages=(PROBE, BUS_PACKAGE)) == []


def test_a_model_without_its_migration_is_reported(database_url: str) -> None:
    differences = migration_differences(database_url, migrations=MIGRATIONS, packages=(PROBE, BUS_PACKAGE, __name__))
    assert [(d[0], d[1].name) for d in differences] == [("add_table", "migrations_check_unmigrated")]


def test_a_migrated_table_without_its_model_is_reported(database_url: str) -> None:
    differences = migration_differences(database_url, migrations=MIGRATIONS, packages=(BUS_PACKAGE,))
    assert [(d[0], d[1].name) for d in differences] == [("remove_table", "probe_tally")]


@pytest.mark.parametrize("package", ["pawgle.notifier"])
def test_a_changed_column_is_reported(database_url: str, package: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from pawgle.notifier.models import AlertArea

    column = AlertArea.__table__.c.label  # type: ignore[attr-defined]
    monkeypatch.setattr(column, "nullable", True)
    from pawgle.notifier.main import MIGRATIONS as NOTIFIER_MIGRATIONS

    differences = migration_differences(database_url, migrations=NOTIFIER_MIGRATIONS, packages=(package,))
    assert any(d[0][0] == "modify_nullable" and d[0][3] == "label" for d in differences if isinstance(d, list))
