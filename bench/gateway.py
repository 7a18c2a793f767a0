"""Gateway overhead: latency of a small JSON GET called directly vs through the gateway, on loopback.

The upstream (a minimal FastAPI service) runs under uvicorn and the gateway as `make run` starts it
(`python -m pawgle.gateway.edge`), once with Caddy (the default) and once with the Python relay
(GATEWAY_ENGINE=python); one keep-alive connection per side, sequential requests, alternating direct and
via-gateway so both see the same machine noise. The figure that matters is the added p50 (target: <= 2 ms).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from fastapi import FastAPI, Request

from bench.stats import percentile, report
from pawgle.common.natsserver import free_port
from pawgle.gateway.routes import SERVICES

ROOT = Path(__file__).resolve().parent.parent
PATH = "/api/auth/users/count/"
UPLOAD_PATH = "/api/auth/pets/add/"
WARMUP = 300
REQUESTS = 3000
UPLOADS = 200
UPLOAD_BYTES = 1024 * 1024


def upstream_app() -> FastAPI:
    """The service behind the gateway: one tiny JSON route and a readiness probe."""
    app = FastAPI()

    @app.get(PATH)
    async def users_count() -> dict[str, int]:
        return {"user_count": 42}

    @app.post(UPLOAD_PATH)
    async def upload(request: Request) -> dict[str, int]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return {"received": size}

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ok"}

    return app


@contextlib.contextmanager
def uvicorn_process(factory: str, port: int, env: dict[str, str]) -> Iterator[None]:
    """Run `factory` under uvicorn (uvloop + httptools when installed) until the block ends."""
    command = [sys.executable, "-m", "uvicorn", "--factory", factory, "--host", "127.0.0.1", "--port", str(port)]
    command += ["--log-level", "warning", "--no-access-log"]
    with running_process(command, port, env):
        yield


@contextlib.contextmanager
def running_process(command: list[str], port: int, env: dict[str, str]) -> Iterator[None]:
    """Run `command` until the block ends, once its /readyz on `port` answers 200."""
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **env})
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError):
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                connection.request("GET", "/readyz")
                if connection.getresponse().status == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{' '.join(command)} did not start")
            time.sleep(0.1)
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


def timed_get(connection: http.client.HTTPConnection) -> float:
    """One request on a kept-alive connection; seconds until the whole body is read."""
    started = time.perf_counter()
    connection.request("GET", PATH, headers={"Origin": "http://localhost:3000"})
    response = connection.getresponse()
    response.read()
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise RuntimeError(f"unexpected status {response.status}")
    return elapsed


def timed_upload(connection: http.client.HTTPConnection, body: bytes) -> float:
    """One 1 MB multipart-sized POST; seconds until the answer is read."""
    started = time.perf_counter()
    connection.request("POST", UPLOAD_PATH, body=body, headers={"Content-Type": "application/octet-stream"})
    response = connection.getresponse()
    response.read()
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise RuntimeError(f"unexpected status {response.status}")
    return elapsed


def measure(engine: str) -> None:
    """Print p50/p99 direct, via the gateway run with `engine`, and the overhead the gateway adds."""
    upstream_port, gateway_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        gateway_env = {
            **{f"PAWGLE_{name.upper()}_URL": f"http://127.0.0.1:{upstream_port}" for name in SERVICES},
            "PAWGLE_DATA_DIR": data_dir,
            "PAWGLE_LOG_LEVEL": "WARNING",
            "PAWGLE_LISTEN_PORT": str(gateway_port),
            "GATEWAY_ENGINE": engine,
        }
        with (
            uvicorn_process("bench.gateway:upstream_app", upstream_port, {}),
            running_process([sys.executable, "-m", "pawgle.gateway.edge"], gateway_port, gateway_env),
        ):
            direct = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=10)
            via = http.client.HTTPConnection("127.0.0.1", gateway_port, timeout=10)
            for _ in range(WARMUP):
                timed_get(direct)
                timed_get(via)
            direct_s: list[float] = []
            via_s: list[float] = []
            for _ in range(REQUESTS):
                direct_s.append(timed_get(direct))
                via_s.append(timed_get(via))
            body = os.urandom(UPLOAD_BYTES)
            upload_direct_s: list[float] = []
            upload_via_s: list[float] = []
            for _ in range(UPLOADS):
                upload_direct_s.append(timed_upload(direct, body))
                upload_via_s.append(timed_upload(via, body))
    d50, d99 = percentile(direct_s, 50) * 1000, percentile(direct_s, 99) * 1000
    v50, v99 = percentile(via_s, 50) * 1000, percentile(via_s, 99) * 1000
    report(f"gateway engine {engine}: GET {PATH}, {REQUESTS} sequential requests each way, keep-alive, loopback")
    report(f"  direct:      p50 {d50:.2f} ms, p99 {d99:.2f} ms")
    report(f"  via gateway: p50 {v50:.2f} ms, p99 {v99:.2f} ms")
    report(f"  gateway overhead: p50 +{v50 - d50:.2f} ms, p99 +{v99 - d99:.2f} ms (target p50 <= 2 ms)")
    u_direct, u_via = percentile(upload_direct_s, 50) * 1000, percentile(upload_via_s, 50) * 1000
    report(
        f"  POST {UPLOAD_PATH} 1 MiB body, {UPLOADS} each way: direct p50 {u_direct:.2f} ms, "
        f"via gateway p50 {u_via:.2f} ms (+{u_via - u_direct:.2f} ms, streamed, not buffered)"
    )


def main() -> None:
    """Both gateway engines: Caddy (the default) and the Python relay."""
    for engine in ("caddy", "python"):
        measure(engine)


if __name__ == "__main__":
    main()
