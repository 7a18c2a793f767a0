"""Relational store: engines from a URL (SQLite embedded, MySQL/TiDB via pymysql) and the request session."""

from __future__ import annotations

import functools
import inspect
import random
import time
import weakref
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from sqlalchemy import BigInteger, DateTime, Integer, event, text
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, create_engine
from starlette.concurrency import run_in_threadpool

from pawgle.common.errors import AppError

T = TypeVar("T")
P = ParamSpec("P")

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
    # pysqlite would defer BEGIN; we emit it ourselves. A transaction that may write begins IMMEDIATE:
    # it takes the write lock at its first statement (a Session opens no connection before it needs one)
    # and waits its turn under busy_timeout. A DEFERRED transaction that reads and then writes would
    # instead have to upgrade its read snapshot to a write lock; if another writer committed in between,
    # SQLite answers SQLITE_BUSY at once, without waiting (busy_timeout does not apply to a stale snapshot),
    # and only a retry of the whole transaction could recover, which a request cannot do for its caller.
    # So only transactions known to read only (see `read_only`: GET and HEAD requests, readiness, the mail
    # sender's scan) begin DEFERRED, and in WAL mode they never wait for a writer nor hold one up.
    # Straight to the driver: SQLAlchemy's statement machinery would cost as much as the query itself.
    mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
    conn.connection.driver_connection.execute(_BEGIN[mode])


_BEGIN = {"IMMEDIATE": "BEGIN IMMEDIATE", "DEFERRED": "BEGIN DEFERRED"}


_read_only_engines: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def read_only(engine: Engine) -> Engine:
    """The same engine, for transactions that only read (on SQLite they then never wait for a writer).

    Made once per engine: building the option engine costs ~50 us, too much to repeat per request.
    """
    ro = _read_only_engines.get(engine)
    if ro is None:
        ro = _read_only_engines[engine] = engine.execution_options(sqlite_begin="DEFERRED")
    return ro


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
    """Raise if the database cannot answer a trivial query (read-only: never takes or waits for a write lock)."""
    with read_only(engine).connect() as conn:
        conn.execute(text("SELECT 1"))


async def run_in_thread(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run blocking `func` in one of the request path's worker threads (Starlette's, on anyio) and await it.

    anyio's threads, not a plain executor: a plain one hops for less CPU (py-spy put anyio's cancel scope,
    capacity limiter and backend lookups at ~10 % of a small read), but endpoints call back into the loop
    with `anyio.from_thread.run`, which only works from anyio's own worker threads.
    """
    return await run_in_threadpool(func, *args, **kwargs)


def _ends_on_the_loop(session: Session) -> bool:
    """Whether ending this session's transaction does no I/O worth a thread hop.

    A read transaction on SQLite (the `read_only` engine) ends by releasing its snapshot in shared memory:
    no disk write, no network, microseconds. A hop to a worker thread and back costs far more CPU than
    that. Any other transaction (a writer's commit, or any MySQL round trip) ends in a worker thread.
    """
    bind = session.bind
    return (
        isinstance(bind, Engine)
        and bind.dialect.name == "sqlite"
        and bind.get_execution_options().get("sqlite_begin") == "DEFERRED"
    )


def is_local_read(session: Session) -> bool:
    """Whether this session only reads SQLite: its queries and its end are then cheaper on the loop than a
    thread hop away (a read of a few rows is tens of microseconds; the hop costs more)."""
    return _ends_on_the_loop(session)


async def _end_transaction(session: Session, *, commit: bool) -> None:
    if not session.in_transaction():
        return
    end = session.commit if commit else session.rollback
    if _ends_on_the_loop(session):
        end()
    else:
        await run_in_thread(end)


# The request session is made on the event loop (no I/O: it connects at its first query, in the route's
# worker thread). Ending the transaction is I/O, so it runs in a worker thread too, unless the route
# already ended it there (see SessionRoute), never opened one, or only read SQLite (_ends_on_the_loop).
# One flat generator per dependency, not a nested context manager: FastAPI already wraps each generator
# dependency in its own, and every extra layer costs CPU on each request.


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One session per request: committed when the route returns, rolled back when it raises.

    An AppError whose class sets `commit_session` is the exception: the writes are committed, then the
    error is answered.

    Safe methods (GET, HEAD) get a read transaction, which on SQLite never waits behind a writer; a GET
    with side effects (a legacy verification link, read receipts) takes `WriteSessionDep` instead.
    """
    engine: Engine = request.app.state.engine
    session = Session(read_only(engine) if request.method in ("GET", "HEAD") else engine, expire_on_commit=False)
    try:
        yield session
    except AppError as exc:
        # An error whose class says so keeps the request's writes (AppError.commit_session).
        await _end_transaction(session, commit=exc.commit_session)
        raise
    except BaseException:
        await _end_transaction(session, commit=False)
        raise
    else:
        await _end_transaction(session, commit=True)
    finally:
        session.close()


async def get_write_session(request: Request) -> AsyncIterator[Session]:
    """Like get_session, but always a writing transaction, whatever the method."""
    session = Session(request.app.state.engine, expire_on_commit=False)
    try:
        yield session
    except AppError as exc:
        await _end_transaction(session, commit=exc.commit_session)
        raise
    except BaseException:
        await _end_transaction(session, commit=False)
        raise
    else:
        await _end_transaction(session, commit=True)
    finally:
        session.close()


# scope="function": commit before the response is sent, so a failed commit becomes an error response.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
WriteSessionDep = Annotated[Session, Depends(get_write_session, scope="function")]


class SessionRoute(APIRoute):
    """A route whose `def` endpoint runs in one worker thread together with its session's commit.

    FastAPI would otherwise hop between the event loop and its thread pool for the endpoint, again for
    validating its return value, and again for the commit; each hop costs about as much CPU as a small
    query. Here the endpoint and the commit share one hop and the response is serialized on the loop.
    The error path is unchanged: a raising endpoint leaves its session to the dependency, which rolls it
    back. `async def` endpoints are left as they are.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint) and inspect.isfunction(endpoint):
            endpoint = _in_one_thread(endpoint)
        super().__init__(path, endpoint, **kwargs)


def _in_one_thread(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(endpoint)  # FastAPI reads the wrapped endpoint's signature and annotations
    async def run(**values: Any) -> Any:
        return await run_in_thread(_call_then_commit, endpoint, values)

    return run


def _call_then_commit(endpoint: Callable[..., Any], values: dict[str, Any]) -> Any:
    result = endpoint(**values)
    for value in values.values():
        if isinstance(value, Session) and value.in_transaction():
            value.commit()
    return result
