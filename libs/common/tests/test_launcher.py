"""`make run` end to end: the whole mesh starts on embedded defaults, serves, stops, and restarts onto its data."""

from __future__ import annotations

import email
import email.policy
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from pawgle.common.natsserver import free_port

SIGNUP = {
    "username": "launcher_test",
    "email": "launcher@example.com",
    "password": "sturdy-Kite-42",
    "confirm_password": "sturdy-Kite-42",
}


def start_mesh(data_dir: Path, port: int) -> subprocess.Popen[str]:
    # One process per service here: test_make_run.py covers several workers.
    env = {**os.environ, "PAWGLE_PORT": str(port), "PAWGLE_DATA_DIR": str(data_dir), "PAWGLE_WORKERS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "pawgle.common.launcher"],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 150
    assert process.stdout is not None
    lines = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "PawGle mesh is running" in line:
            return process
    process.kill()
    pytest.fail("the mesh did not start:\n" + "".join(lines))


def stop_mesh(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0, out
    return out


def link_token_from_mail(data_dir: Path, *, timeout_s: float = 30.0) -> str:
    """The one-time token in the verification e-mail the notifier wrote to its outbox folder."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for path in sorted((data_dir / "notifier" / "outbox-mail").glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            body = message.get_body(preferencelist=("plain",))
            found = re.search(r"/auth/magic\?token=([A-Za-z0-9_-]+)", body.get_content() if body else "")
            if found:
                return found.group(1)
        time.sleep(0.2)
    pytest.fail("no verification e-mail in the outbox folder")


def a_new_user_verifies_signs_in_and_uses_the_mesh(base: str, data_dir: Path) -> None:
    """Signup → e-mail (auth → bus → notifier) → magic link → session cookie → alerts and notifications."""
    origin = {"Origin": "http://localhost:3000"}
    with httpx.Client(base_url=base, timeout=10, headers=origin) as browser:
        consumed = browser.post("/api/auth/magic/consume/", json={"token": link_token_from_mail(data_dir)})
        assert consumed.status_code == 200, consumed.text
        assert consumed.headers["access-control-allow-origin"] == "http://localhost:3000"
        assert "pawgle_refresh" in browser.cookies
        again = browser.post("/api/auth/magic/consume/", json={"token": link_token_from_mail(data_dir)})
        assert again.status_code == 400  # single use
        refreshed = browser.post("/api/token/refresh/", headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert refreshed.status_code == 200, refreshed.text
        bearer = {"Authorization": f"Bearer {refreshed.json()['access']}"}
        alert = {"label": "Home", "center_lat": 52.52, "center_lon": 13.405, "radius_km": 5, "status_filter": ""}
        created = browser.post("/api/auth/alerts/", json=alert, headers=bearer)
        assert created.status_code == 201, created.text
        assert created.json()["radius_km"] == 5
        listed = browser.get("/api/auth/notifications/", headers=bearer)
        assert listed.status_code == 200
        assert listed.json()["unread_count"] == len([n for n in listed.json()["notifications"] if not n["is_read"]])
        assert browser.get("/api/auth/alerts/", headers={"Authorization": "Bearer null"}).status_code == 401


def test_the_whole_mesh_runs_stops_and_keeps_its_data(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://localhost:{port}"
    mesh = start_mesh(tmp_path, port)
    try:
        health = httpx.get(f"{base}/healthz", timeout=10)
        assert health.status_code == 200, health.text
        assert set(health.json()["services"]) == {
            "auth",
            "pets",
            "reports",
            "chat",
            "embeddings",
            "matcher",
            "notifier",
        }
        signup = httpx.post(f"{base}//api/auth/signup/", timeout=10, json=SIGNUP)
        assert signup.status_code == 201, signup.text
        a_new_user_verifies_signs_in_and_uses_the_mesh(base, tmp_path)
    finally:
        out = stop_mesh(mesh)
    assert "Stopped." in out
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/healthz", timeout=2)

    again = start_mesh(tmp_path, port)
    try:
        # The account from the first run is still there: the same username is taken.
        repeat = httpx.post(f"{base}/api/auth/signup/", timeout=10, json={**SIGNUP, "email": "other@example.com"})
        assert repeat.status_code == 400, repeat.text
        assert "username" in repeat.json()
    finally:
        stop_mesh(again)
