"""Request path: GET notifications and alerts under wrk, service direct and through the gateway, side by side.

Runs the real stack as `make run` does (auth and notifier, each with the worker processes the launcher picks
for this machine, Caddy as the gateway, per-service bus users), signs a user up and in through the real
flow (verification mail, magic link, refresh cookie), seeds 5 alert areas (through the API) and 20
notifications, then loads `GET /api/auth/notifications/` and `GET /api/auth/alerts/` with `wrk -t2` at 8
and 64 connections, authenticated, direct to the notifier's port and through the gateway, interleaved
(the shared runner, `bench/wrk.py`). For each: requests/s, p50, p99, and CPU per request of the
notifier's processes and of the gateway's (Caddy and its companion), read from /proc. The machine's core
count and load are printed with the figures; CPU per request is the steadier figure on a shared machine.
Last, the time a SIGKILLed notifier takes to serve again.

The original backend's figures (Django under gunicorn, 2 workers, same machine kind, 64 connections):
notifications 319 req/s, p99 275 ms; alerts 556 req/s, p99 195 ms. Targets: >= 3x those requests/s through
the gateway, p99 <= 50 ms.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from bench.stats import report
from bench.wrk import DURATION_S, Stack, WrkResult, _ms, child_pid, group_cpu_s, have_wrk, side_by_side, sign_in

ENDPOINTS = ("/api/auth/notifications/", "/api/auth/alerts/")
ORIGINAL = {"/api/auth/notifications/": 319.0, "/api/auth/alerts/": 556.0}
# Kept importable under their old names (bench modules of other services use them).
_child_pid, _group_cpu_s = child_pid, group_cpu_s
__all__ = ["DURATION_S", "WrkResult", "_b64", "_child_pid", "_group_cpu_s", "_ms", "seed", "sign_in"]


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
            created = client.post("/api/auth/alerts/", json=area)
            if created.status_code != 201:
                raise RuntimeError(f"could not create an alert area: {created.status_code} {created.text[:300]}")
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
    os.kill(child_pid(launcher.pid, "pawgle.notifier.main"), signal.SIGKILL)
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
    """Print the side-by-side table, then the time to serve again after a SIGKILL."""
    if not have_wrk():
        return
    with Stack(["auth", "notifier"]) as stack:
        token = sign_in(stack.gateway, stack.data_dir)
        seed(stack.gateway, token, stack.data_dir)
        stack_side_by_side(stack, token)
        assert stack.launcher is not None
        back = time_to_serve_again(stack.launcher, stack.gateway, token)
        report(f"a SIGKILLed notifier serves again through the gateway after {back:.1f} s (launcher supervision)")


def stack_side_by_side(stack: Stack, token: str) -> None:
    side_by_side(stack, "notifier", token, ENDPOINTS, original=ORIGINAL)
    report("original, 64 conns: notifications 319 req/s p99 275 ms, alerts 556 req/s p99 195 ms")
    report("targets: >= 3x the original's req/s through the gateway (957 / 1,668), p99 <= 50 ms at 64 connections")


if __name__ == "__main__":
    main()
