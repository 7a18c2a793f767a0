"""The request session commits on success, rolls back on an error, and commits an error that says so."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from pawgle.common.db import SessionDep, make_engine
from pawgle.common.errors import Forbidden, Unauthorized, install_error_handlers


class RefusedButRecorded(Unauthorized):
    commit_session = True


def _app(tmp_path: Path) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.state.engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with app.state.engine.begin() as conn:
        conn.execute(text("CREATE TABLE attempts (note TEXT NOT NULL)"))

    @app.post("/attempt/{outcome}")
    def attempt(outcome: str, session: SessionDep) -> dict[str, str]:
        session.execute(text("INSERT INTO attempts (note) VALUES (:note)"), {"note": outcome})
        if outcome == "recorded":
            raise RefusedButRecorded("Invalid credentials.")
        if outcome == "refused":
            raise Forbidden("No.")
        return {"note": outcome}

    return app


def test_an_error_whose_class_says_so_keeps_the_requests_writes(tmp_path: Path) -> None:
    app = _app(tmp_path)
    with TestClient(app) as client:
        assert client.post("/attempt/ok").status_code == 200
        recorded = client.post("/attempt/recorded")
        assert recorded.status_code == 401
        assert recorded.json()["detail"] == "Invalid credentials."
        assert client.post("/attempt/refused").status_code == 403
    with app.state.engine.connect() as conn:
        notes = [row.note for row in conn.execute(text("SELECT note FROM attempts ORDER BY rowid"))]
    assert notes == ["ok", "recorded"]  # the plain error's write was rolled back
    app.state.engine.dispose()
