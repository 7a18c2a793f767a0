"""Pytest fixtures shared by every service's tests (loaded with `-p pawgle.common.testing.plugin`).

- `nats_server`: one real nats-server for the whole test session, on a free port.
- `database_url`: a clean, migrated-by-the-test database per test: a SQLite file, and the same test
  again against MySQL when PAWGLE_TEST_MYSQL_URL is set (a fresh database per test, dropped after).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from pawgle.common.natsserver import NatsServer

MYSQL_URL_ENV = "PAWGLE_TEST_MYSQL_URL"

# A test process starts many apps in turn: none of them may freeze the heap (settings read it from here too).
os.environ.setdefault("PAWGLE_SETTLE_HEAP", "false")


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    root = tmp_path_factory.mktemp("nats")
    server = NatsServer(root / "js", log_file=root / "nats.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def nats_url(nats_server: NatsServer) -> str:
    return nats_server.url


def _backends() -> list[str]:
    return ["sqlite", "mysql"] if os.environ.get(MYSQL_URL_ENV) else ["sqlite"]


@pytest.fixture(params=_backends())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database for this test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.sqlite3'}"
        return
    base = make_url(os.environ[MYSQL_URL_ENV])
    name = f"pawgle_t_{secrets.token_hex(6)}"
    admin = sa.create_engine(base)
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A local S3-compatible server (moto) for the session, started only when a test asks for it."""
    from pawgle.common.testing.s3 import moto_s3_server

    with moto_s3_server() as endpoint:
        yield endpoint
