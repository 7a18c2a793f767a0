"""Request path: GET notifications and alerts under wrk, service direct and through the gateway, side by side.

Runs the real stack as `make run` does (auth and notifier, each with the worker processes the launcher picks
for this machine, Caddy as the gateway, per-service bus users), signs a user up and in through the real
flow (verification mail, magic link, refresh cookie), seeds 5 alert areas (through the API) and 20
notifications, then loads `GET /api/auth/notifications/` and `GET /api/auth/alerts/` with
`wrk -t2 -c8` and `-c64`, authenticated, direct to the notifier's port and through the gateway, interleaved.
For each: requests/s, p50, p99, and CPU per request of the notifier's processes and of the gateway's
(Caddy and its companion), read from /proc. The machine's core count is printed with the figures; CPU per
request is the steadier figure on a shared machine. Last, the time a SIGKILLed notifier takes to serve again.

The original backend's figures (Django under gunicorn, 2 workers, same machine kind, 64 connections):
notifications 319 req/s, p99 275 ms; alerts 556 req/s, p99 195 ms. Targets: >= 3x those requests/s through
the gateway, p99 <= 50 ms.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.stats import report
from pawgle.common.natsserver import free_port
from pawgle.common.stackfile import StackRecord, read_running_stack

DURATION_S = int(os.environ.get("BENCH_HTTP_SECONDS", "6"))
CONNECTIONS = (8, 64)
ENDPOINTS = ("/api/auth/notifications/", "/api/auth/alerts/")
ORIGINAL = {"/api/auth/notifications/": 319.0, "/api/auth/alerts/": 556.0}
TICKS = os.sysconf("SC_CLK_TCK")
RELAXED = json.dumps(dict.fromkeys(("anon", "user", "login", "signup", "email_verification"), "1000000/min"))


@dataclass
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url: str, token: str, connections: int) -> WrkResult:
    """One wrk run; its requests/s, latency percentiles and counts."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{DURATION_S}s", "--latency"]
    command += ["-H", f"Authorization: Bearer {token}", "-H", "Origin: http://localhost:3000", url]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=DURATION_S + 30).stdout
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.MULTILINE))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return WrkResult(
        requests_per_s=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        p50_ms=_ms(percentiles["50"]),
        p99_ms=_ms(percentiles["99"]),
        requests=int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
    )


def _group_cpu_s(pgid: int) -> float:
    """CPU seconds (user + system) of every live process in a process group."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, ...
            total += int(fields[11]) + int(fields[12])
    return total / TICKS


def _child_pid(parent: int, marker: str) -> int:
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
        if ppid == parent and marker in cmdline:
            return int(proc.name)
    raise RuntimeError(f"no {marker} process under the launcher")


def start_stack(data_dir: Path, port: int) -> tuple[subprocess.Popen[bytes], StackRecord]:
    env = {
        **os.environ,
        "PAWGLE_PORT": str(port),
        "PAWGLE_DATA_DIR": str(data_dir),
        "PAWGLE_RUN_SERVICES": "auth,notifier",
        "PAWGLE_LOG_LEVEL": "WARNING",
        # Throttles stay in the path (their cost is in the figures) but do not cut the load short.
        "AUTH_THROTTLE_RATES": RELAXED,
    }
    env.pop("PAWGLE_NATS_URL", None)
    launcher = subprocess.Popen(
        [sys.executable, "-m", "pawgle.common.launcher"],
        env=env,
        stdout=open(data_dir / "launcher.out", "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        record = read_running_stack(data_dir)
        if record is not None:
            return launcher, record
        if launcher.poll() is not None:
            raise RuntimeError((data_dir / "launcher.out").read_text())
        time.sleep(0.5)
    raise RuntimeError("the stack did not start in 300 s")


def sign_in(gateway: str, data_dir: Path) -> str:
    """An access token through the real flow: signup, verification mail, magic link, refresh cookie."""
    body = {
        "username": "bench",
        "email": "bench@example.com",
        "password": "sturdy-Kite-42",
        "confirm_password": "sturdy-Kite-42",
    }
    with httpx.Client(base_url=gateway, timeout=30) as browser:
        signup = browser.post("/api/auth/signup/", json=body)
        if signup.status_code != 201:
            raise RuntimeError(f"signup failed: {signup.status_code} {signup.text}")
        token = _link_token(data_dir)
        if browser.post("/api/auth/magic/consume/", json={"token": token}).status_code != 200:
            raise RuntimeError("magic link refused")
        refreshed = browser.post("/api/token/refresh/", headers={"Content-Type": "application/x-www-form-urlencoded"})
        return str(refreshed.json()["access"])


def _link_token(data_dir: Path) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for path in (data_dir / "notifier" / "outbox-mail").glob("*.eml"):
            if path.name.startswith("."):  # the sender's half-written file, renamed when complete
                continue
            try:
                message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            except FileNotFoundError:
                continue
            part = message.get_body(preferencelist=("plain",))
            found = re.search(r"/auth/magic\?token=([A-Za-z0-9_-]+)", part.get_content() if part else "")
            if found:
                return found.group(1)
        time.sleep(0.2)
    raise RuntimeError("no verification mail")


def seed(gateway: str, token: str, data_dir: Path) -> None:
    """5 alert areas through the API, 20 notifications for the same user in the notifier's database."""
    from sqlmodel import Session

    from pawgle.common.db import make_engine
    from pawgle.notifier.models import Notification

    bearer = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=gateway, timeout=30, headers=bearer) as client:
        for i in range(5):
            area = {
                "label": f"Area {i}",
                "center_lat": 48.85 + i / 100,
                "center_lon": 2.35,
                "radius_km": 5,
                "status_filter": "",
            }
            if client.post("/api/auth/alerts/", json=area).status_code != 201:
                raise RuntimeError("could not create an alert area")
    claims = json.loads(_b64(token.split(".")[1]))
    engine = make_engine(f"sqlite:///{data_dir / 'notifier' / 'db.sqlite3'}")
    with Session(engine) as session:
        for i in range(20):
            session.add(
                Notification(
                    user_id=int(claims["user_id"]),
                    verb="A lost pet was reported near you",
                    description=f"Rex, a Beagle, {i} km away",
                    target_id=1000 + i,
                    target_name="Rex",
                    dedupe_key=f"bench-{i}",
                )
            )
        session.commit()
    engine.dispose()


def _b64(segment: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def time_to_serve_again(launcher: subprocess.Popen[bytes], gateway: str, token: str) -> float:
    """SIGKILL the notifier's main process; seconds until the gateway gets its answers again."""
    os.kill(_child_pid(launcher.pid, "pawgle.notifier.main"), signal.SIGKILL)
    killed = time.monotonic()
    time.sleep(0.3)
    while time.monotonic() - killed < 300:
        try:
            answer = httpx.get(
                f"{gateway}/api/auth/notifications/", headers={"Authorization": f"Bearer {token}"}, timeout=2
            )
            if answer.status_code == 200:
                return time.monotonic() - killed
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the notifier did not come back")


def main() -> None:
    """Print the side-by-side table."""
    if shutil.which("wrk") is None:
        report("wrk is missing: install it (apt-get install -y wrk) to get these figures. Skipped.")
        return
    cores = os.cpu_count()
    with tempfile.TemporaryDirectory(prefix="pawgle-bench-http-") as tmp:
        data_dir = Path(tmp)
        port = free_port()
        launcher, record = start_stack(data_dir, port)
        try:
            gateway = f"http://127.0.0.1:{port}"
            token = sign_in(gateway, data_dir)
            seed(gateway, token, data_dir)
            notifier = record.services["notifier"]
            notifier_pgid = _child_pid(launcher.pid, "pawgle.notifier.main")
            gateway_pgid = _child_pid(launcher.pid, "pawgle.gateway.edge")
            load = os.getloadavg()[0]
            report(
                f"{cores} cores; notifier {notifier.workers} process(es), gateway Caddy + companion; "
                f"wrk -t2, {DURATION_S} s per run; load average at start {load:.1f} (a shared machine: "
                "CPU per request is the steadier figure)"
            )
            report(
                f"{'endpoint':<28}{'conns':>5}  {'via':<8}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}"
                f"{'svc CPU/req':>12}{'gw CPU/req':>11}{'x orig':>7}"
            )
            for path in ENDPOINTS:
                for connections in CONNECTIONS:
                    for via, base in (("direct", notifier.url), ("gateway", gateway)):
                        service_before, gateway_before = _group_cpu_s(notifier_pgid), _group_cpu_s(gateway_pgid)
                        result = run_wrk(base + path, token, connections)
                        service_ms = (_group_cpu_s(notifier_pgid) - service_before) * 1000 / max(result.requests, 1)
                        gateway_ms = (_group_cpu_s(gateway_pgid) - gateway_before) * 1000 / max(result.requests, 1)
                        ratio = result.requests_per_s / ORIGINAL[path] if connections == 64 else float("nan")
                        report(
                            f"{path:<28}{connections:>5}  {via:<8}{result.requests_per_s:>8.0f}{result.p50_ms:>8.1f}"
                            f"{result.p99_ms:>8.1f}{service_ms:>10.2f}ms"
                            f"{(f'{gateway_ms:.2f}ms' if via == 'gateway' else '-'):>11}"
                            f"{(f'{ratio:.2f}' if ratio == ratio else ''):>7}"
                            + (f"  ({result.non_2xx} non-2xx!)" if result.non_2xx else "")
                        )
            report("original, 64 conns: notifications 319 req/s p99 275 ms, alerts 556 req/s p99 195 ms")
            report("targets: >= 3x the original's req/s through the gateway, p99 <= 50 ms at 64 connections")
            back = time_to_serve_again(launcher, gateway, token)
            report(f"a SIGKILLed notifier serves again through the gateway after {back:.1f} s (launcher supervision)")
        finally:
            launcher.send_signal(signal.SIGINT)
            try:
                launcher.wait(timeout=60)
            except subprocess.TimeoutExpired:
                launcher.kill()


if __name__ == "__main__":
    main()
