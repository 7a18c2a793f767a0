"""`pawgle-gateway`: the gateway process: Caddy in front, the small Python companion beside it.

Caddy listens on PAWGLE_HOST:PAWGLE_LISTEN_PORT and relays every path of the route table; the companion
(the Python gateway app, on an internal loopback port) answers only what Caddy sends it: the aggregated
`/healthz` and `/media/`. Caddy is a child of this process and dies with it; if Caddy exits, this process
exits too, so a supervisor (the launcher, Kubernetes) restarts the pair. With GATEWAY_ENGINE=python the
Python app relays everything itself, as before.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import prometheus_client
import uvicorn

from pawgle.common.natsserver import free_port, wait_for_port
from pawgle.gateway.caddy import caddy_binary, caddy_config
from pawgle.gateway.config import Settings

_PR_SET_PDEATHSIG = 1
# Looked up once here: the child between fork and exec only calls it (no library loading there).
_prctl: Callable[..., int] | None
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: Caddy still stops with the gateway, just not on SIGKILL
    _prctl = None


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies (even by SIGKILL), so no Caddy is orphaned."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@contextlib.contextmanager
def caddy_process(
    settings: Settings, *, host: str, port: int, sidecar_url: str, config_dir: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Caddy serving the gateway on host:port (metrics on GATEWAY_METRICS_PORT), configured from the route table."""
    metrics_port = settings.metrics_port
    config = caddy_config(
        settings,
        listen=_host_port(host, port),
        sidecar_url=sidecar_url,
        metrics_listen=_host_port(host, metrics_port) if metrics_port else None,
    )
    config_dir.mkdir(parents=True, exist_ok=True)
    config_file = config_dir / "caddy.json"
    # The file may hold the edge secret: readable by this user only.
    config_file.touch(mode=0o600)
    config_file.write_text(json.dumps(config, indent=1))
    env = {**os.environ, "XDG_DATA_HOME": str(config_dir), "XDG_CONFIG_HOME": str(config_dir)}
    # Go's collector at its default (GOGC=100) runs every few thousand proxied requests; at 400 it runs a
    # quarter as often for a few more MB of heap. An operator's own GOGC wins.
    env.setdefault("GOGC", "400")
    process = subprocess.Popen(  # noqa: S603 - our own binary and file
        [caddy_binary(), "run", "--config", str(config_file)], env=env, preexec_fn=_die_with_parent
    )
    try:
        wait_for_port(port, host="127.0.0.1" if host in ("0.0.0.0", "::") else host)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def main() -> None:
    """Run the gateway: Caddy on the public port, the companion app on a loopback port."""
    settings = Settings()
    host = os.environ.get("PAWGLE_HOST", "127.0.0.1")
    port = int(os.environ.get("PAWGLE_LISTEN_PORT", "8080"))
    if settings.engine == "python":
        if settings.metrics_port:
            # Metrics on their own internal port: /metrics is never a public path of the gateway.
            prometheus_client.start_http_server(settings.metrics_port, addr=host)
        uvicorn.run(
            "pawgle.gateway.main:create_app",
            factory=True,
            host=host,
            port=port,
            proxy_headers=False,
            access_log=False,
            timeout_graceful_shutdown=10,
        )
        return
    sidecar_port = free_port()
    config_dir = Path(tempfile.mkdtemp(prefix="pawgle-caddy-"))
    server = uvicorn.Server(
        uvicorn.Config(
            "pawgle.gateway.main:create_app",
            factory=True,
            host="127.0.0.1",
            port=sidecar_port,
            proxy_headers=False,
            access_log=False,
            timeout_graceful_shutdown=5,
        )
    )
    caddy: list[subprocess.Popen[bytes]] = []

    def run_caddy() -> None:
        """Caddy once the companion listens (so /readyz and /healthz answer from the first request)."""
        try:
            wait_for_port(sidecar_port, timeout_s=60)
            with caddy_process(
                settings, host=host, port=port, sidecar_url=f"http://127.0.0.1:{sidecar_port}", config_dir=config_dir
            ) as process:
                caddy.append(process)
                process.wait()
        finally:
            if not server.should_exit:  # Caddy died or never started: the whole gateway stops
                os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=run_caddy, name="caddy", daemon=True).start()
    try:
        server.run()
    finally:
        for process in caddy:
            if process.poll() is None:
                process.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=10)
        shutil.rmtree(config_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
