"""`pawgle-serve`, the command of every service image: picks the service, serves it over HTTP, stops cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from pawgle.common.natsserver import free_port

SERVE = Path(sys.executable).parent / "pawgle-serve"


def _env(**overrides: str) -> dict[str, str]:
    """This environment without the variables pawgle-serve reads, plus `overrides`."""
    read = (
        "PAWGLE_SERVICE",
        "PAWGLE_HOST",
        "PAWGLE_LISTEN_PORT",
        "UVICORN_ACCESS_LOG",
        "UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN",
    )
    return {**{k: v for k, v in os.environ.items() if k not in read}, **overrides}


@pytest.fixture(autouse=True)
def _installed() -> None:
    assert SERVE.is_file(), f"{SERVE} is missing: the console script of libs/common; run `make install`"


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["kennel"], {}, "unknown service 'kennel'"),
        ([], {"PAWGLE_SERVICE": "common"}, "unknown service 'common'"),
        ([], {}, "no service named"),
        (["pets"], {"PAWGLE_LISTEN_PORT": "80a"}, "PAWGLE_LISTEN_PORT must be a port number"),
        (["pets"], {"UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN": "20s"}, "UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN must be whole"),
    ],
)
def test_it_refuses_what_it_cannot_serve_with_exit_code_2(args: list[str], env: dict[str, str], message: str) -> None:
    result = subprocess.run([str(SERVE), *args], env=_env(**env), capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert message in result.stderr
    if "service" in message:
        assert "auth, pets, reports, chat, embeddings, matcher, notifier, gateway" in result.stderr


def test_it_serves_the_named_service_over_http_and_stops_on_sigterm(nats_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = _env(
        PAWGLE_NATS_URL=nats_url,
        PAWGLE_DATA_DIR=str(tmp_path),
        PAWGLE_LISTEN_PORT=str(port),
        UVICORN_ACCESS_LOG="false",
    )
    process = subprocess.Popen(
        [str(SERVE), "pets"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code
            except httpx.TransportError:
                time.sleep(0.1)
                continue
            if status == 200:
                break
        assert status == 200, f"pets did not answer /healthz on {port}"
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        checks = {"database": "ok", "bus": "ok", "workers": "ok"}
        assert ready.json()["checks"] == checks, "the pets app, on its own data dir and bus"
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    # uvicorn re-raises the SIGTERM it handled once it has shut down (older versions exit 0).
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output, "a clean shutdown: lifespan ran to its end"
    assert f"Uvicorn running on http://127.0.0.1:{port}" in output, "PAWGLE_HOST defaults to loopback"
    assert "pets ready" in output
    assert '"GET /healthz' not in output, "UVICORN_ACCESS_LOG=false turns the access log off"
    assert (tmp_path / "pets" / "db.sqlite3").is_file(), "the service keeps its data under PAWGLE_DATA_DIR"
