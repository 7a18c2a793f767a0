"""The launcher's supervision and process model, on small real processes (fast)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from pawgle.common.launcher import MAX_RESTARTS, Child, Mesh, default_workers
from pawgle.common.natsserver import free_port
from pawgle.common.stackfile import NoStackFound, ServiceEndpoint, StackRecord, bus_environment, write_stack


def _mesh(tmp_path: Path) -> Mesh:
    return Mesh(data_dir=tmp_path, port=free_port(), frontend_origin="http://localhost:3000", backoff_s=0.01)


def _run_until(mesh: Mesh, done: object, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:  # type: ignore[operator]
        mesh.supervise_once(time.monotonic())
        time.sleep(0.02)


def test_hot_services_get_two_processes_on_two_cores_and_settings_override() -> None:
    assert default_workers("notifier", {}, cores=2) == 2
    assert default_workers("notifier", {}, cores=1) == 1
    assert default_workers("matcher", {}, cores=8) == 1
    assert default_workers("auth", {"PAWGLE_WORKERS": "3"}, cores=2) == 3
    assert default_workers("matcher", {"PAWGLE_WORKERS_MATCHER": "2"}, cores=2) == 2


def test_a_child_that_dies_is_restarted_and_the_others_keep_running(tmp_path: Path) -> None:
    mesh = _mesh(tmp_path)
    flag = tmp_path / "first-run-done"
    # Dies at once on its first run, then stays up: a crash followed by a good restart.
    script = (
        f"import os, sys, time\nif not os.path.exists({str(flag)!r}):\n"
        f"    open({str(flag)!r}, 'w').close()\n    sys.exit(3)\ntime.sleep(60)"
    )
    flaky = Child("flaky", [sys.executable, "-c", script], dict(os.environ), tmp_path / "flaky.log")
    steady = Child(
        "steady", [sys.executable, "-c", "import time; time.sleep(60)"], dict(os.environ), tmp_path / "s.log"
    )
    mesh.children = {"flaky": flaky, "steady": steady}
    for child in mesh.children.values():
        child.start()
    first_steady_pid = steady.process.pid if steady.process else None
    _run_until(mesh, lambda: len(flaky.exits) == 1 and flaky.running())
    try:
        assert flaky.running()
        assert len(flaky.exits) == 1
        assert steady.running()
        assert steady.process is not None
        assert steady.process.pid == first_steady_pid
    finally:
        mesh.stop()
    assert not flaky.running()
    assert not steady.running()


def test_a_crash_loop_is_given_up_after_the_bound(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mesh = _mesh(tmp_path)
    crashing = Child("crashing", [sys.executable, "-c", "raise SystemExit(7)"], dict(os.environ), tmp_path / "c.log")
    mesh.children = {"crashing": crashing}
    crashing.start()
    _run_until(mesh, lambda: crashing.given_up)
    assert crashing.given_up
    assert len(crashing.exits) == MAX_RESTARTS + 1
    assert "crashing is crash-looping" in capsys.readouterr().out
    mesh.stop()


def test_tools_find_the_running_stack_and_never_guess_a_bus(tmp_path: Path) -> None:
    with pytest.raises(NoStackFound, match="no running `make run` stack"):
        bus_environment("auth", {"PAWGLE_DATA_DIR": str(tmp_path)})
    record = StackRecord(
        launcher_pid=os.getpid(),
        data_dir=str(tmp_path),
        gateway="http://localhost:8000",
        bus="nats://127.0.0.1:4999",
        services={"auth": ServiceEndpoint(url="http://127.0.0.1:5000", bus_url="nats://auth:pw@127.0.0.1:4999")},
    )
    path = write_stack(record)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    env = bus_environment("auth", {"PAWGLE_DATA_DIR": str(tmp_path)})
    assert env == {"PAWGLE_NATS_URL": "nats://auth:pw@127.0.0.1:4999", "PAWGLE_DATA_DIR": str(tmp_path)}
    assert bus_environment("auth", {"PAWGLE_NATS_URL": "nats://elsewhere:4222"}) == {}
    with pytest.raises(NoStackFound, match="no notifier"):
        bus_environment("notifier", {"PAWGLE_DATA_DIR": str(tmp_path)})
    # A record left by a launcher that is gone is not a running stack.
    record.launcher_pid = 2**22 + 12345
    write_stack(record)
    with pytest.raises(NoStackFound):
        bus_environment("auth", {"PAWGLE_DATA_DIR": str(tmp_path)})
