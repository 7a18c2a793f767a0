"""Notifier request path: requests/s, p50, p99 and CPU per request of small authenticated reads, direct.

The notifier runs as its own uvicorn process (uvloop + httptools, as `make run` starts it) on a real
nats-server and a SQLite file seeded like the original's measurement: one user with 5 alert areas and 20
notifications. The load generator is `wrk` (keep-alive, 2 threads) when installed, else a Python one of
threads on http.client (slower: it competes for the same cores). Every request carries a real EdDSA access
token, verified by the service as in production.

CPU per request is the service process's CPU time (user + system, from /proc) over the requests it
answered: unlike requests/s it barely moves when other work shares the machine. The through-the-gateway
figures are in `bench/http.py`.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from sqlalchemy import insert
from sqlmodel import Session

from bench.stats import percentile, report
from bench.wrk import run_wrk
from pawgle.common.db import make_engine
from pawgle.common.migrations import upgrade_to_head
from pawgle.common.natsserver import NatsServer, free_port
from pawgle.notifier import geo
from pawgle.notifier.config import Settings
from pawgle.notifier.main import MIGRATIONS, create_app
from pawgle.notifier.models import AlertArea, AlertAreaCell, Notification

ROOT = Path(__file__).resolve().parent.parent
PATHS = ("/api/auth/notifications/", "/api/auth/alerts/")
CONNECTIONS = (8, 64)
DURATION_S = 10
USER_ID = 7
JWKS_ENV = "PAWGLE_BENCH_JWKS"
ISSUER, AUDIENCE = "pawgle-auth", "pawgle"


def app_factory() -> FastAPI:
    """The notifier app with the bench's public key loaded (uvicorn's --factory target in the child)."""
    app = create_app(Settings())
    app.state.token_verifier.jwks.set_keys(json.loads(os.environ[JWKS_ENV]))
    return app


def _signing_key() -> tuple[Ed25519PrivateKey, str, dict[str, Any]]:
    key = Ed25519PrivateKey.generate()
    kid = f"bench-{uuid.uuid4().hex[:8]}"
    jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(key.public_key()))
    return key, kid, {"keys": [{**jwk, "kid": kid, "alg": "EdDSA", "use": "sig"}]}


def _token(key: Ed25519PrivateKey, kid: str) -> str:
    now = int(time.time())
    claims = {
        "user_id": USER_ID,
        "token_type": "access",
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + 3600,
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid})


def seed(database_url: str) -> None:
    """5 alert areas and 20 notifications (5 unread) of one user, plus some of other users around them."""
    engine = make_engine(database_url)
    upgrade_to_head(MIGRATIONS, database_url, engine)
    base = datetime(2025, 1, 1)
    areas, cells, notifications = [], [], []
    for user in range(1, 41):
        for n in range(5):
            alert_id = len(areas) + 1
            lat, lon, radius = 48.0 + n * 0.1 + user * 0.01, 2.0 + n * 0.1, 5.0
            areas.append(
                {
                    "id": alert_id,
                    "user_id": user,
                    "label": f"area {n}",
                    "center_lat": lat,
                    "center_lon": lon,
                    "radius_km": radius,
                    "status_filter": "",
                    "is_active": True,
                    "created_at": base + timedelta(minutes=alert_id),
                }
            )
            cells.extend({"cell": cell, "alert_id": alert_id} for cell in geo.cells_covering(lat, lon, radius))
        for n in range(20):
            notifications.append(
                {
                    "user_id": user,
                    "verb": "New lost pet near you",
                    "description": f"A lost Beagle named Rex was reported {n + 1} km from area {n % 5}.",
                    "target_id": 1000 + n,
                    "target_name": "Rex",
                    "is_read": n >= 5,
                    "created_at": base + timedelta(hours=n),
                    "dedupe_key": f"bench:{user}:{n}",
                }
            )
    with Session(engine) as session:
        for table, rows in ((AlertArea, areas), (AlertAreaCell, cells), (Notification, notifications)):
            session.exec(insert(table), params=rows)
        session.commit()
    engine.dispose()


@contextlib.contextmanager
def notifier_process(port: int, env: dict[str, str]) -> Iterator[int]:
    """Run the notifier under uvicorn until the block ends; yields the process id."""
    command = [sys.executable, "-m", "uvicorn", "--factory", "bench.notifier_http:app_factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"]
    python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": python_path, **env})
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError):
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                connection.request("GET", "/readyz")
                if connection.getresponse().status == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the notifier did not start")
            time.sleep(0.1)
        yield process.pid
    finally:
        process.terminate()
        process.wait(timeout=15)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_wrk(
    url: str, token: str, connections: int, duration_s: int = DURATION_S, *, script: str | None = None
) -> dict[str, float]:
    """wrk -t2 for duration_s seconds (the shared runner): requests, requests/s, p50 and p99 in ms, non-2xx."""
    result = run_wrk(url, token, connections, duration_s, script=script)
    return {
        "requests": result.requests,
        "rps": result.requests_per_s,
        "p50": result.p50_ms,
        "p99": result.p99_ms,
        "errors": result.non_2xx + result.errors,
    }


def load_python(url: str, token: str, connections: int, duration_s: int = DURATION_S) -> dict[str, float]:
    """The same measurement without wrk: one thread per keep-alive connection."""
    parsed = http.client.urlsplit(url)
    stop_at = time.perf_counter() + duration_s
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections

    def worker(slot: int) -> None:
        connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            connection.request("GET", parsed.path, headers={"Authorization": f"Bearer {token}"})
            response = connection.getresponse()
            response.read()
            latencies[slot].append((time.perf_counter() - started) * 1000)
            errors[slot] += response.status != 200

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(slot,)) for slot in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    every = [v for slot in latencies for v in slot]
    return {
        "requests": len(every),
        "rps": len(every) / elapsed,
        "p50": percentile(every, 50),
        "p99": percentile(every, 99),
        "errors": sum(errors),
    }


def main() -> None:
    """Print requests/s, p50, p99 and CPU per request for each path at 8 and 64 connections."""
    load = load_wrk if shutil.which("wrk") else load_python
    key, kid, jwks = _signing_key()
    token = _token(key, kid)
    with tempfile.TemporaryDirectory(prefix="pawgle-bench-notifier-http-") as tmp:
        nats = NatsServer(Path(tmp) / "js").start()
        try:
            data_dir = Path(tmp) / "data"
            seed(Settings(environment="test", data_dir=data_dir).db_url)
            port = free_port()
            env = {
                "PAWGLE_DATA_DIR": str(data_dir),
                "PAWGLE_NATS_URL": nats.url,
                "PAWGLE_LOG_LEVEL": "WARNING",
                "PAWGLE_JWT_ISSUER": ISSUER,
                "PAWGLE_JWT_AUDIENCE": AUDIENCE,
                JWKS_ENV: json.dumps(jwks),
            }
            with notifier_process(port, env) as pid:
                report(
                    f"notifier direct, {os.cpu_count()} cores (shared: other work on the machine moves requests/s "
                    f"and latency; CPU per request much less), {'wrk -t2' if load is load_wrk else 'Python threads'},"
                    f" {DURATION_S} s per row"
                )
                for path in PATHS:
                    load(f"http://127.0.0.1:{port}{path}", token, 8, 2)  # warm-up: token cache, connection pool
                    for connections in CONNECTIONS:
                        cpu_before = cpu_seconds(pid)
                        figures = load(f"http://127.0.0.1:{port}{path}", token, connections)
                        cpu_ms = (cpu_seconds(pid) - cpu_before) * 1000 / max(figures["requests"], 1)
                        report(
                            f"  GET {path:<26} c={connections:<3} {figures['rps']:7.0f} req/s  "
                            f"p50 {figures['p50']:6.2f} ms  p99 {figures['p99']:7.2f} ms  "
                            f"CPU {cpu_ms:.2f} ms/request  (non-2xx: {int(figures['errors'])})"
                        )
        finally:
            nats.stop()


if __name__ == "__main__":
    main()
