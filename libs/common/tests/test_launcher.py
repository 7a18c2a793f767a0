"""`make run` end to end: the whole mesh starts on embedded defaults, serves, stops, and restarts onto its data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from pawgle.common.testing.natsserver import free_port

SIGNUP = {
    "username": "launcher_test",
    "email": "launcher@example.com",
    "password": "sturdy-Kite-42",
    "confirm_password": "sturdy-Kite-42",
}


def start_mesh(data_dir: Path, port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PAWGLE_PORT": str(port), "PAWGLE_DATA_DIR": str(data_dir)}
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
