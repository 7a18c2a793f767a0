"""Serve an ASGI app over real HTTP (uvicorn in a background thread) for the length of a test."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from pawgle.common.natsserver import free_port


class _ThreadedServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the main thread keeps its handlers
        pass


@contextlib.contextmanager
def serve(app: FastAPI, *, port: int | None = None, startup_timeout_s: float = 30.0) -> Iterator[str]:
    """Run `app` (lifespan included) on 127.0.0.1 and yield its base URL; stop it afterwards."""
    port = port or free_port()
    server = _ThreadedServer(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=5
        )
    )
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("server failed to start (see the log above)")
        if time.monotonic() > deadline:
            raise TimeoutError("server did not start in time")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
