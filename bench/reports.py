"""Reports: the map list and bounding-box queries under load with 100,000 reports stored; a partner feed.

The reports service runs as its own uvicorn process (one worker) on a real nats-server and a SQLite file
holding 100,000 reports (lost and found, spread over Europe), behind the gateway as `make run` starts it
(`python -m pawgle.gateway.edge`, Caddy). `wrk -t2 -c64` (or Python threads without wrk) loads,
authenticated with a real EdDSA token:
- L1 `GET /api/auth/pets/locations/`: the default list, capped at 1,000 reports (about 0.5 MB of JSON),
  direct and through the gateway;
- bounding-box queries through the gateway: a city (0.2 x 0.15 degrees, capped at 1,000 reports like L1)
  and a district (0.02 x 0.02 degrees, a few dozen reports, what a zoomed-in map asks for), at 64
  connections and from one client at a time (the latency one map user sees). Target: p99 <= 30 ms.
Each row is run RUNS times (min / median / max of p50 and p99), with the service's CPU per request.
Then a partner pushes a feed of 10,000 rows (JSON, no photos): rows/s of the whole import, each row a
found report with its report.filed in the outbox. Last, the service's resident memory (VmRSS, and its
peak VmHWM) before and after the feed.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI
from sqlalchemy import insert
from sqlmodel import Session

# The same bench user, signing key and token as the notifier bench (user 7, EdDSA, the mesh issuer).
from bench.notifier_http import AUDIENCE, ISSUER, JWKS_ENV, _token, cpu_seconds, load_python, load_wrk
from bench.notifier_http import _signing_key as _keys
from bench.stats import report
from pawgle.common.db import make_engine, utcnow
from pawgle.common.migrations import upgrade_to_head
from pawgle.common.natsserver import NatsServer, free_port
from pawgle.gateway.routes import SERVICES
from pawgle.reports import ops_commands
from pawgle.reports.config import Settings
from pawgle.reports.grid import cell_of
from pawgle.reports.main import MIGRATIONS, create_app
from pawgle.reports.models import Report
from pawgle.reports.privacy import public_position

ROOT = Path(__file__).resolve().parent.parent
REPORTS = 100_000
FEED_ROWS = 10_000
DURATION_S = int(os.environ.get("BENCH_HTTP_SECONDS", "5"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SEQUENTIAL = 300
BERLIN_BOX = "13.30,52.45,13.50,52.60"
DISTRICT_BOX = "13.40,52.50,13.42,52.52"
# A different district of Berlin (where the seed clusters) on every request: never an answer the read lane kept.
RANDOM_DISTRICTS_LUA = """
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("seed", threads)  -- each wrk thread its own sequence of districts
end
function init(args)
  math.randomseed(7919 * seed)
end
request = function()
  local west = 13.1 + math.random() * 0.58
  local south = 52.3 + math.random() * 0.38
  local box = string.format("%.5f,%.5f,%.5f,%.5f", west, south, west + 0.02, south + 0.02)
  local path = "/api/auth/pets/locations/?bbox=" .. box
  return wrk.format("GET", path)
end
"""


def app_factory() -> FastAPI:
    """The reports app with the bench's public key loaded (uvicorn's --factory target in the child)."""
    app = create_app(Settings())
    app.state.token_verifier.jwks.set_keys(json.loads(os.environ[JWKS_ENV]))
    return app


def seed(settings: Settings, rng: random.Random) -> None:
    """100,000 reports over Europe (one in ten around Berlin), newest first spread over 90 days."""
    engine = make_engine(settings.db_url)
    upgrade_to_head(MIGRATIONS, settings.db_url, engine)
    now = utcnow()
    rows = []
    for n in range(REPORTS):
        status = "lost" if n % 2 else "found"
        if n % 10 == 0:
            lat, lon = rng.uniform(52.3, 52.7), rng.uniform(13.1, 13.7)
        else:
            lat, lon = rng.uniform(36.0, 60.0), rng.uniform(-9.0, 30.0)
        map_lat, map_lon = public_position(status, lat, lon, cell_m=settings.privacy_cell_m)
        reported = now - timedelta(seconds=rng.uniform(0, 80 * 86400))
        rows.append(
            {
                "reporter_id": 1000 + n % 5000,
                "status": status,
                "latitude": lat,
                "longitude": lon,
                "map_lat": map_lat,
                "map_lon": map_lon,
                "map_cell": cell_of(map_lat, map_lon),
                "animal_name": "Rex",
                "type": "Dogs" if n % 3 else "Cats",
                "breed": "Beagle" if n % 3 else "Persian",
                "category": "Domestic",
                "description": "Brown collar, very friendly, last seen near the park.",
                "contact_name": "Jane",
                "contact_phone": "+49 30 1234567",
                "contact_email": "jane@example.org",
                "image_key": None,
                "feature_status": "completed",
                "is_test": False,
                "wants_pet": False,
                "reported_at": reported,
                "expires_at": reported + timedelta(days=90),
            }
        )
    with Session(engine) as session:
        for start in range(0, len(rows), 5000):
            session.exec(insert(Report), params=rows[start : start + 5000])
        session.commit()
    engine.dispose()


@contextlib.contextmanager
def reports_process(port: int, env: dict[str, str]) -> Iterator[int]:
    """Run the reports service under uvicorn until the block ends; yields the process id."""
    command = [sys.executable, "-m", "uvicorn", "--factory", "bench.reports:app_factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"]
    with _process(command, port, env) as pid:
        yield pid


@contextlib.contextmanager
def gateway_process(port: int, upstream_port: int, data_dir: Path) -> Iterator[int]:
    """The gateway as `make run` starts it, every service's routes sent to the reports process."""
    env = {
        **{f"PAWGLE_{name.upper()}_URL": f"http://127.0.0.1:{upstream_port}" for name in SERVICES},
        "PAWGLE_DATA_DIR": str(data_dir),
        "PAWGLE_LOG_LEVEL": "WARNING",
        "PAWGLE_LISTEN_PORT": str(port),
    }
    with _process([sys.executable, "-m", "pawgle.gateway.edge"], port, env) as pid:
        yield pid


@contextlib.contextmanager
def _process(command: list[str], port: int, env: dict[str, str]) -> Iterator[int]:
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **env})
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError):
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                connection.request("GET", "/readyz")
                if connection.getresponse().status == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{' '.join(command)} did not start")
            time.sleep(0.1)
        yield process.pid
    finally:
        process.terminate()
        process.wait(timeout=15)


def _memory_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _sequential(url: str, token: str, requests: int = SEQUENTIAL) -> dict[str, float]:
    """One client, one request at a time (what one map user waits): p50 and p99 in ms."""
    parsed = urlsplit(url)
    connection = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=10)
    path = parsed.path + (f"?{parsed.query}" if parsed.query else "")
    latencies = []
    for _ in range(requests):
        started = time.perf_counter()
        connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        response.read()
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status != 200:
            raise RuntimeError(f"{url}: {response.status}")
    latencies.sort()
    return {"p50": latencies[len(latencies) // 2], "p99": latencies[int(len(latencies) * 0.99) - 1]}


def _spread(values: list[float]) -> str:
    ordered = sorted(values)
    return f"{ordered[0]:6.1f} / {ordered[len(ordered) // 2]:6.1f} / {ordered[-1]:6.1f}"


def _feed(rng: random.Random) -> list[dict[str, str]]:
    return [
        {
            "external_id": f"SHELTER-{n}",
            "species": "Dogs",
            "breed": "Beagle",
            "description": "Brought in by a neighbour.",
            "photo_url": "",
            "latitude": f"{rng.uniform(48.0, 54.0):.6f}",
            "longitude": f"{rng.uniform(6.0, 14.0):.6f}",
            "found_date": "2026-11-20",
        }
        for n in range(FEED_ROWS)
    ]


def main() -> None:
    """Print L1 and bbox p50/p99 at 64 connections, partner feed rows/s and the service's memory."""
    load = load_wrk if shutil.which("wrk") else load_python
    rng = random.Random(12)
    key, kid, jwks = _keys()
    token = _token(key, kid)
    with tempfile.TemporaryDirectory(prefix="pawgle-bench-reports-") as tmp:
        nats = NatsServer(Path(tmp) / "js").start()
        try:
            data_dir = Path(tmp) / "data"
            settings = Settings(environment="test", data_dir=data_dir)
            started = time.perf_counter()
            seed(settings, rng)
            report(f"seeded {REPORTS} reports in {time.perf_counter() - started:.1f} s")
            env = {
                "PAWGLE_DATA_DIR": str(data_dir),
                "PAWGLE_NATS_URL": nats.url,
                "PAWGLE_LOG_LEVEL": "WARNING",
                "PAWGLE_JWT_ISSUER": ISSUER,
                "PAWGLE_JWT_AUDIENCE": AUDIENCE,
                "REPORTS_THROTTLE_ENABLED": "false",
                JWKS_ENV: json.dumps(jwks),
            }
            port, gateway_port = free_port(), free_port()
            with reports_process(port, env) as pid, gateway_process(gateway_port, port, data_dir / "gateway"):
                base, edge = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{gateway_port}"
                tool = "wrk -t2" if load is load_wrk else "Python threads"
                report(f"{os.cpu_count()} cores (shared machine; load average {os.getloadavg()[0]:.1f}), {tool}")
                report(f"c=64, {DURATION_S} s a run, {RUNS} runs: min / median / max; CPU = the service's per request")
                lua = Path(tmp) / "districts.lua"
                lua.write_text(RANDOM_DISTRICTS_LUA)
                script = str(lua) if load is load_wrk else None
                rows = [
                    ("L1 default list, direct", base + "/api/auth/pets/locations/", None),
                    ("L1 default list, via the gateway", edge + "/api/auth/pets/locations/", None),
                    (
                        "bbox of a city (1,000 of ~3,700), gateway",
                        f"{edge}/api/auth/pets/locations/?bbox={BERLIN_BOX}",
                        None,
                    ),
                    ("bbox of a district (~20), gateway", f"{edge}/api/auth/pets/locations/?bbox={DISTRICT_BOX}", None),
                ]
                if script:
                    rows.append(("a new district every request, gateway", edge + "/api/auth/pets/locations/", script))
                for label, url, lua_script in rows:
                    load(url, token, 8, 2)  # warm-up
                    p50s, p99s, rps, cpu = [], [], [], []
                    for _ in range(RUNS):
                        cpu_before = cpu_seconds(pid)
                        figures = load(url, token, 64, script=lua_script) if lua_script else load(url, token, 64)
                        cpu.append((cpu_seconds(pid) - cpu_before) * 1000 / max(figures["requests"], 1))
                        p50s.append(figures["p50"])
                        p99s.append(figures["p99"])
                        rps.append(figures["rps"])
                        if figures["errors"]:
                            report(f"    ({int(figures['errors'])} non-2xx answers)")
                    report(
                        f"  {label:<42} p50 {_spread(p50s)} ms  p99 {_spread(p99s)} ms  "
                        f"req/s {_spread(rps)}  CPU {_spread(cpu)} ms"
                    )
                report(f"one client, {SEQUENTIAL} requests one after the other, via the gateway ({RUNS} runs)")
                for label, path in (
                    ("L1 default list", "/api/auth/pets/locations/"),
                    ("bbox of a city (1,000 reports)", f"/api/auth/pets/locations/?bbox={BERLIN_BOX}"),
                    ("bbox of a district (~20)", f"/api/auth/pets/locations/?bbox={DISTRICT_BOX}"),
                ):
                    runs = [_sequential(edge + path, token) for _ in range(RUNS)]
                    report(
                        f"  {label:<42} p50 {_spread([r['p50'] for r in runs])} ms  "
                        f"p99 {_spread([r['p99'] for r in runs])} ms"
                    )
                report(f"  service memory before the feed: {_memory_mb(pid):.0f} MB resident")
                feed_key = _issue_partner_key(settings)
                rows = _feed(rng)
                cpu_before = cpu_seconds(pid)
                started = time.perf_counter()
                response = httpx.post(
                    f"{base}/api/partners/found/", json={"rows": rows}, headers={"X-Partner-Key": feed_key}, timeout=600
                )
                elapsed = time.perf_counter() - started
                feed_cpu_ms = (cpu_seconds(pid) - cpu_before) * 1000 / FEED_ROWS
                result = response.json()
                report(
                    f"  partner feed of {FEED_ROWS} rows (JSON): {FEED_ROWS / elapsed:7.0f} rows/s "
                    f"({elapsed:.2f} s; created {result.get('created')}, refused {result.get('refused')}; "
                    f"service CPU {feed_cpu_ms:.2f} ms/row, the outbox relay's publishing included)"
                )
                report(
                    f"  service memory after the feed: {_memory_mb(pid):.0f} MB resident "
                    f"(peak {_memory_mb(pid, 'VmHWM'):.0f} MB)"
                )
        finally:
            nats.stop()


def _issue_partner_key(settings: Settings) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        ops_commands.main(["partners", "add", "Bench Shelter", "--user-id", "99"], settings=settings)
    return out.getvalue().splitlines()[0].rsplit(" ", 1)[1]


if __name__ == "__main__":
    main()
