"""`make run` end to end (auth and notifier, two processes each): supervision, exactly-once events, discovery.

One stack for the module (starting it is the slow part); the stop test runs last.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from pawgle.common.natsserver import free_port
from pawgle.common.stackfile import StackRecord, read_running_stack, stack_file

RELAXED = json.dumps(dict.fromkeys(("anon", "user", "login", "signup", "email_verification"), "100000/min"))


@dataclass
class Stack:
    process: subprocess.Popen[bytes]
    data_dir: Path
    record: StackRecord
    gateway: str


def _wait_for(condition: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("make-run")
    port = free_port()
    env = {
        **os.environ,
        "PAWGLE_PORT": str(port),
        "PAWGLE_DATA_DIR": str(data_dir),
        "PAWGLE_RUN_SERVICES": "auth,notifier",
        "PAWGLE_WORKERS": "2",
        "AUTH_THROTTLE_RATES": RELAXED,
        "AUTH_ARGON2_TIME_COST": "1",
        "AUTH_ARGON2_MEMORY_KIB": "1024",
        "PAWGLE_ENVIRONMENT": "development",
    }
    env.pop("PAWGLE_NATS_URL", None)
    log = open(data_dir / "launcher.out", "wb")  # noqa: SIM115
    process = subprocess.Popen([sys.executable, "-m", "pawgle.common.launcher"], env=env, stdout=log, stderr=log)
    try:
        _wait_for(lambda: read_running_stack(data_dir) is not None or process.poll() is not None, 240, "the stack")
        record = read_running_stack(data_dir)
        assert record is not None, (data_dir / "launcher.out").read_text()
        yield Stack(process, data_dir, record, f"http://127.0.0.1:{port}")
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()


def _child_pid(parent: int, marker: str) -> int:
    """The pid of the launcher's child whose command line contains `marker`."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and marker in cmdline:
            return int(proc.name)
    raise AssertionError(f"no child {marker} of {parent}")


def _mails(data_dir: Path) -> list[str]:
    """The mails written so far (not the sender's half-written `.tmp-*` files, renamed when complete)."""
    mails = []
    for path in (data_dir / "notifier" / "outbox-mail").glob("*.eml"):
        if not path.name.startswith("."):
            with contextlib.suppress(FileNotFoundError):
                mails.append(path.read_text(errors="replace"))
    return mails


def test_the_stack_records_where_everything_listens(stack: Stack) -> None:
    printed = (stack.data_dir / "launcher.out").read_text()
    assert str(stack_file(stack.data_dir)) in printed
    assert stack.record.bus in printed
    assert set(stack.record.services) == {"auth", "notifier"}
    assert all(endpoint.workers == 2 for endpoint in stack.record.services.values())
    # Each service has its own bus user; the printed line hides the password.
    assert stack.record.services["auth"].bus_url.startswith("nats://auth:")
    assert stack.record.services["auth"].bus_url not in printed


def test_pawgle_ops_finds_the_running_stack_and_refuses_to_guess(stack: Stack, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PAWGLE_NATS_URL"}
    ops = [sys.executable, "-m", "pawgle.common.ops", "notifier", "consumers"]
    found = subprocess.run(ops, env={**env, "PAWGLE_DATA_DIR": str(stack.data_dir)}, capture_output=True, timeout=120)
    assert found.returncode == 0, found.stdout + found.stderr
    assert b"notifier-" in found.stdout
    nowhere = subprocess.run(ops, env={**env, "PAWGLE_DATA_DIR": str(tmp_path)}, capture_output=True, timeout=120)
    assert nowhere.returncode == 2
    assert b"no running `make run` stack" in nowhere.stdout


def test_events_from_two_processes_are_handled_once_by_two_processes(stack: Stack) -> None:
    """Signups on a 2-process auth (two outbox relays) mailed by a 2-process notifier (two consumers)."""
    addresses = [f"once{i}@example.com" for i in range(24)]
    with httpx.Client(base_url=stack.gateway, timeout=30) as client:
        for i, address in enumerate(addresses):
            body = {
                "username": f"once{i}",
                "email": address,
                "password": "Long-enough-9",
                "confirm_password": "Long-enough-9",
            }
            assert client.post("/api/auth/signup/", json=body).status_code == 201

    def mailed() -> list[str]:
        return [a for a in addresses for mail in _mails(stack.data_dir) if f"To: {a}" in mail]

    _wait_for(lambda: len(set(mailed())) == len(addresses), 90, "one mail per signup")
    time.sleep(2)  # a duplicate would arrive now
    assert sorted(mailed()) == sorted(addresses)


def test_metrics_of_a_two_process_service_count_both_processes(stack: Stack) -> None:
    """Whichever worker answers /metrics, it reports every worker's requests (prometheus multiprocess)."""
    assert stack.record is not None
    notifier = stack.record.services["notifier"].url
    for _ in range(40):  # a new connection each: the two workers share the listening socket
        assert httpx.get(f"{notifier}/healthz", timeout=30).status_code == 200
    pattern = re.compile(r'^pawgle_http_requests_total\{[^}]*route="/healthz"[^}]*status="200"[^}]*\} (\S+)$', re.M)
    for _ in range(4):
        scraped = httpx.get(f"{notifier}/metrics", timeout=30).text
        counts = [float(value) for value in pattern.findall(scraped)]
        assert sum(counts) >= 40, counts


def test_a_killed_service_is_restarted_while_the_others_keep_serving(stack: Stack) -> None:
    outcomes: list[int] = []
    stop = threading.Event()

    def traffic() -> None:
        with httpx.Client(base_url=stack.gateway, timeout=10) as client:
            while not stop.is_set():
                outcomes.append(client.get("/api/auth/users/count/").status_code)
                time.sleep(0.05)

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        os.kill(_child_pid(stack.process.pid, "pawgle.notifier.main"), signal.SIGKILL)
        killed_at = time.monotonic()

        def serving() -> bool:
            try:
                return httpx.get(f"{stack.gateway}/api/auth/notifications/", timeout=2).status_code == 401
            except httpx.HTTPError:
                return False

        time.sleep(1)
        _wait_for(serving, 180, "the notifier to serve again")
        time.monotonic() - killed_at
    finally:
        stop.set()
        worker.join()
    assert "notifier exited" in (stack.data_dir / "launcher.out").read_text()
    assert outcomes
    assert set(outcomes) == {200}, f"auth answered {sorted(set(outcomes))} while notifier restarted"


def test_ctrl_c_stops_everything_and_removes_the_record(stack: Stack) -> None:
    ports = [int(e.url.rsplit(":", 1)[1]) for e in stack.record.services.values()]
    stack.process.send_signal(signal.SIGINT)
    assert stack.process.wait(timeout=90) == 0
    assert not stack_file(stack.data_dir).exists()
    for port in ports:
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{stack.gateway}/readyz", timeout=2)
