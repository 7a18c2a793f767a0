"""A SessionRoute endpoint runs in anyio's worker thread: it may call back into the loop (anyio.from_thread)."""

from __future__ import annotations

from pathlib import Path

import anyio.from_thread
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from pawgle.common.db import SessionDep, SessionRoute, make_engine


async def _on_the_loop() -> str:
    return "from the loop"


def test_a_def_endpoint_can_call_back_into_the_loop(tmp_path: Path) -> None:
    router = APIRouter(route_class=SessionRoute)

    @router.get("/both/")
    def both(session: SessionDep) -> dict[str, object]:
        one = session.execute(text("SELECT 1")).scalar_one()
        return {"db": one, "loop": anyio.from_thread.run(_on_the_loop)}

    app = FastAPI()
    app.state.engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    app.include_router(router)
    try:
        with TestClient(app) as client:
            response = client.get("/both/")
        assert response.status_code == 200, response.text
        assert response.json() == {"db": 1, "loop": "from the loop"}
    finally:
        app.state.engine.dispose()
