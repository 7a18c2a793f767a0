"""The request session: committed with the route in one worker thread, rolled back on error, readers and
the readiness ping never waiting behind a writer, and save()."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Column, Integer, String, event, text
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel

from pawgle.common.db import SessionDep, SessionRoute, make_engine, ping, read_only, save
from pawgle.common.errors import BadRequest, install_error_handlers


class Note(SQLModel, table=True):
    __tablename__ = "db_sessions_notes"

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    text: str = Field(sa_column=Column(String(50), nullable=False))


class KeptRefusal(BadRequest):
    commit_session = True


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    Note.__table__.create(engine)  # type: ignore[attr-defined]
    yield engine
    engine.dispose()


@pytest.fixture
def threads() -> dict[str, int]:
    return {}


@pytest.fixture
def client(engine: Engine, threads: dict[str, int]) -> Iterator[TestClient]:
    router = APIRouter(route_class=SessionRoute)

    @router.post("/notes/")
    def add_note(session: SessionDep) -> dict[str, int | None]:
        threads["endpoint"] = threading.get_ident()
        return {"id": save(session, Note(text="kept")).id}

    @router.post("/notes/refused/")
    def refused(session: SessionDep) -> None:
        save(session, Note(text="rolled back"))
        raise BadRequest("No.")

    @router.post("/notes/kept/")
    def refused_but_kept(session: SessionDep) -> None:
        save(session, Note(text="kept although refused"))
        raise KeptRefusal("Refused, and recorded.")

    @router.get("/notes/")
    def count_notes(session: SessionDep) -> dict[str, int]:
        return {"count": len(session.exec(text("SELECT id FROM db_sessions_notes")).all())}  # type: ignore[call-overload]

    @router.get("/async/")
    async def async_route() -> dict[str, bool]:
        return {"ok": True}

    app = FastAPI()
    app.state.engine = engine
    install_error_handlers(app)
    app.include_router(router)

    def on_commit(_conn: object) -> None:
        threads["commit"] = threading.get_ident()

    event.listen(engine, "commit", on_commit)
    with TestClient(app) as client:
        yield client
    event.remove(engine, "commit", on_commit)


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM db_sessions_notes")).scalar_one())


def test_a_def_route_and_its_commit_share_one_worker_thread(client: TestClient, engine: Engine, threads) -> None:
    response = client.post("/notes/")
    assert response.status_code == 200
    assert response.json()["id"] == 1
    assert _count(engine) == 1
    assert threads["commit"] == threads["endpoint"]
    assert threads["endpoint"] != threading.get_ident()  # not on the event loop's thread either


def test_a_raising_route_is_rolled_back(client: TestClient, engine: Engine) -> None:
    response = client.post("/notes/refused/")
    assert response.status_code == 400
    assert response.json()["detail"] == "No."
    assert _count(engine) == 0


def test_an_error_that_says_so_keeps_the_writes(client: TestClient, engine: Engine) -> None:
    response = client.post("/notes/kept/")
    assert response.status_code == 400
    assert response.json()["detail"] == "Refused, and recorded."
    assert _count(engine) == 1


def test_async_routes_are_left_as_they_are(client: TestClient) -> None:
    assert client.get("/async/").json() == {"ok": True}


def _hold_write_lock(engine: Engine) -> sqlite3.Connection:
    holder = sqlite3.connect(engine.url.database, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO db_sessions_notes (text) VALUES ('uncommitted')")
    return holder


def test_a_get_reads_while_a_writer_holds_the_lock(client: TestClient, engine: Engine) -> None:
    client.post("/notes/")
    holder = _hold_write_lock(engine)
    try:
        started = time.monotonic()
        response = client.get("/notes/")
        assert response.json() == {"count": 1}
        assert time.monotonic() - started < 1.0
    finally:
        holder.rollback()
        holder.close()


def test_the_readiness_ping_never_waits_for_the_write_lock(engine: Engine) -> None:
    holder = _hold_write_lock(engine)
    try:
        done = threading.Event()
        worker = threading.Thread(target=lambda: (ping(engine), done.set()), daemon=True)
        started = time.monotonic()
        worker.start()
        assert done.wait(2.0), "ping waited behind the writer"
        assert time.monotonic() - started < 1.0
    finally:
        holder.rollback()
        holder.close()


def test_read_only_is_made_once_per_engine(engine: Engine) -> None:
    assert read_only(engine) is read_only(engine)
    with Session(read_only(engine)) as session:
        session.connection()
        # A read transaction holds no lock a writer would wait for.
        holder = _hold_write_lock(engine)
        holder.rollback()
        holder.close()
