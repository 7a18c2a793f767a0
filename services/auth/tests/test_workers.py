"""Auth's background work is declared to the app: the purge of expired tokens runs and stops with it."""

from __future__ import annotations

import time
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import text

from pawgle.auth.models import utcnow
from pawgle.common.workers import PeriodicJob

from .conftest import login, verified_user


def test_the_purge_of_expired_tokens_is_a_running_worker_of_the_app(client: TestClient) -> None:
    workers = client.app.state.workers  # type: ignore[attr-defined]
    assert "purge-expired" in workers.tasks
    assert not workers.tasks["purge-expired"].done()
    assert client.get("/readyz").json()["checks"]["workers"] == "ok"
    purge = workers.workers["purge-expired"]
    assert isinstance(purge, PeriodicJob)
    assert purge.every_s == 3600
    deadline = time.monotonic() + 10
    while purge.runs < 1:  # its first run is at start, then hourly
        assert time.monotonic() < deadline, "the purge never ran"
        time.sleep(0.02)

    verified_user(client)
    login(client)
    engine = client.app.state.engine  # type: ignore[attr-defined]
    long_ago = utcnow() - timedelta(days=40)
    with engine.begin() as conn:
        conn.execute(text("UPDATE auth_refresh_tokens SET family_expires_at = :t, expires_at = :t"), {"t": long_ago})
        conn.execute(text("UPDATE auth_magic_links SET expires_at = :t"), {"t": long_ago})
    assert client.portal.call(purge.run_once) == 3  # what the hourly run does
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM auth_refresh_tokens")).scalar() == 0
