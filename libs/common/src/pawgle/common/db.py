"""Relational store: engines from a URL (SQLite embedded, MySQL/TiDB via pymysql) and the request session."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy import BigInteger, DateTime, Integer, event, text
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, create_engine

from pawgle.common.errors import AppError

T = TypeVar("T")

# --- column types and helpers every service's models use ------------------------------------------

# Ids are 64-bit on MySQL/TiDB; on SQLite only a column declared exactly INTEGER PRIMARY KEY is the rowid,
# so the variant keeps that spelling there. Tables whose ids are referenced (by notifications, links,
# other services) also set `sqlite_autoincrement=True` so a deleted row's id is never handed out again
# (MySQL's AUTO_INCREMENT never reuses one anyway).
BigId = BigInteger().with_variant(Integer(), "sqlite")
# MySQL's DATETIME drops the fraction of a second unless asked (fsp=6); timestamps carry microseconds.
PreciseDateTime = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


def utcnow() -> datetime:
    """Naive UTC now, microseconds included, as every timestamp column stores it."""
    return datetime.now(UTC).replace(tzinfo=None)


def save(session: Session, row: T) -> T:
    """Add or update one row and flush it, so its generated id and any constraint error show up here."""
    session.add(row)
    session.flush()
    return row


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an engine tuned for its backend: WAL SQLite for one machine, pooled pymysql for MySQL/TiDB."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            echo=echo,
            # Error messages would otherwise carry bound values (sign-in links, e-mail bodies) into logs.
            hide_parameters=True,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=10,
            max_overflow=20,
        )
        event.listen(engine, "connect", _tune_sqlite)
        event.listen(engine, "begin", _begin_sqlite)
        return engine
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "mysql":
        connect_args = {"connect_timeout": 10, "read_timeout": 30, "write_timeout": 30, "charset": "utf8mb4"}
    return create_engine(
        url,
        echo=echo,
        hide_parameters=True,
        pool_pre_ping=True,
        pool_recycle=1800,
        pool_size=10,
        max_overflow=20,
        connect_args=connect_args,
    )


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (see make_engine)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _begin_sqlite(conn: Any) -> None:
    # pysqlite defers BEGIN; we emit it ourselves so that a writing transaction takes the write lock up
    # front (waiting its turn) instead of failing to upgrade a stale read snapshot later. Readers
    # (see `read_only`) begin DEFERRED and never wait for writers in WAL mode.
    mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
    conn.exec_driver_sql(f"BEGIN {mode}")


def read_only(engine: Engine) -> Engine:
    """The same engine, for transactions that only read (on SQLite they then never wait for a writer)."""
    return engine.execution_options(sqlite_begin="DEFERRED")


_RETRYABLE_MYSQL_ERRORS = {1205, 1213}  # lock wait timeout, deadlock


def is_retryable(exc: BaseException) -> bool:
    """A transaction that lost a lock race and may simply be run again."""
    if not isinstance(exc, OperationalError):
        return False
    code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
    return code in _RETRYABLE_MYSQL_ERRORS or "database is locked" in str(exc.orig)


def run_with_retries(work: Callable[[], T], *, attempts: int = 5) -> T:
    """Run a whole transaction function, again (with jittered backoff) when it deadlocked."""
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except OperationalError as exc:
            if attempt == attempts or not is_retryable(exc):
                raise
            time.sleep(random.uniform(0, 0.01 * 2**attempt))
    raise AssertionError("unreachable")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def ping(engine: Engine) -> None:
    """Raise if the database cannot answer a trivial query."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def _request_session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except AppError as exc:
            # An error whose class says so keeps the request's writes (AppError.commit_session).
            if exc.commit_session:
                session.commit()
            else:
                session.rollback()
            raise
        except BaseException:
            session.rollback()
            raise


def get_session(request: Request) -> Iterator[Session]:
    """One session per request: committed when the route returns, rolled back when it raises.

    An AppError whose class sets `commit_session` is the exception: the writes are committed, then the
    error is answered.

    Safe methods (GET, HEAD) get a read transaction, which on SQLite never waits behind a writer; a GET
    with side effects (a legacy verification link, read receipts) takes `WriteSessionDep` instead.
    """
    engine: Engine = request.app.state.engine
    yield from _request_session(read_only(engine) if request.method in ("GET", "HEAD") else engine)


def get_write_session(request: Request) -> Iterator[Session]:
    """Like get_session, but always a writing transaction, whatever the method."""
    yield from _request_session(request.app.state.engine)


# scope="function": commit before the response is sent, so a failed commit becomes an error response.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
WriteSessionDep = Annotated[Session, Depends(get_write_session, scope="function")]
