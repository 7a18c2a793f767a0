"""Fixtures: small real upstream services over HTTP, and the gateway itself over HTTP in front of them."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pytest
from fastapi import FastAPI, Request, Response, WebSocket
from fastapi.responses import JSONResponse, StreamingResponse

from pawgle.common.natsserver import free_port
from pawgle.common.testing.server import serve
from pawgle.gateway.config import Settings
from pawgle.gateway.edge import caddy_process
from pawgle.gateway.main import create_app
from pawgle.gateway.routes import SERVICES

FRONTEND = "http://localhost:3000"
NO_PROXY = "192.0.2.255"  # a documentation address: no peer is ever a trusted proxy of uvicorn
EXTRA_ORIGIN = "https://app.example.org"


@dataclass
class Upstream:
    """One fake service: its name, URL, the requests it saw and switches the tests flip."""

    name: str
    app: FastAPI
    url: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)
    ready: bool = True
    release: threading.Event = field(default_factory=threading.Event)
    open_streams: int = 0
    open_websockets: int = 0


def upstream_app(upstream: Upstream) -> FastAPI:
    """An app that answers every path with what it received; query switches make it misbehave."""
    app = upstream.app

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        if upstream.ready:
            return JSONResponse({"status": "ok", "checks": {"database": "ok", "bus": "ok"}})
        return JSONResponse({"status": "unavailable", "checks": {"bus": "failed: timeout"}}, status_code=503)

    @app.websocket("/api/auth/chat/ws/")
    async def websocket_echo(websocket: WebSocket) -> None:
        await websocket.accept(subprotocol=(websocket.scope.get("subprotocols") or [None])[0])
        upstream.open_websockets += 1
        try:
            await websocket.send_json(
                {
                    "service": upstream.name,
                    "path": websocket.url.path,
                    "query": websocket.scope["query_string"].decode(),
                    "headers": [[k.decode(), v.decode()] for k, v in websocket.scope["headers"]],
                }
            )
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("text") == "close-me":
                    await websocket.close(code=4001, reason="bye")
                    return
                if message.get("text") is not None:
                    await websocket.send_text("echo:" + message["text"])
                else:
                    await websocket.send_bytes(b"echo:" + message["bytes"])
        finally:
            upstream.open_websockets -= 1

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"])
    async def echo(request: Request) -> Response:
        query = request.query_params
        if "sleep" in query:
            await asyncio.sleep(float(query["sleep"]))
        if "endless" in query:
            return StreamingResponse(_endless_stream(upstream), media_type="text/event-stream")
        if "stream" in query:
            return StreamingResponse(_stream_until_released(upstream), media_type="text/plain")
        body = await request.body()
        seen = {
            "service": upstream.name,
            "method": request.method,
            "path": request.url.path,
            "raw_path": request.scope["raw_path"].decode(),
            "query": request.scope["query_string"].decode(),
            "headers": [[k.decode(), v.decode()] for k, v in request.scope["headers"]],
            "body_length": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
        }
        upstream.calls.append(seen)
        response = JSONResponse(seen, status_code=int(query.get("status", 200)))
        for index in range(int(query.get("cookies", 0))):
            response.set_cookie(f"cookie{index}", f"value{index}", httponly=True, samesite="lax")
        if "cors" in query:
            response.headers["Access-Control-Allow-Origin"] = "*"
            response.headers["Access-Control-Allow-Methods"] = "TRACE"
        if query.get("status") == "401":
            response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
        return response

    return app


async def _stream_until_released(upstream: Upstream) -> AsyncIterator[bytes]:
    yield b"first chunk;"
    released = await asyncio.to_thread(upstream.release.wait, 10)
    yield b"released" if released else b"timed out"


async def _endless_stream(upstream: Upstream) -> AsyncIterator[bytes]:
    upstream.open_streams += 1
    try:
        while True:
            yield b"data: tick\n\n"
            await asyncio.sleep(0.05)
    finally:
        upstream.open_streams -= 1


@pytest.fixture(scope="session")
def upstreams() -> Iterator[dict[str, Upstream]]:
    """One running echo service per name in the mesh."""
    with contextlib.ExitStack() as stack:
        running: dict[str, Upstream] = {}
        for name in SERVICES:
            upstream = Upstream(name=name, app=FastAPI())
            upstream_app(upstream)
            upstream.url = stack.enter_context(serve(upstream.app))
            running[name] = upstream
        yield running


@pytest.fixture(autouse=True)
def _reset_upstreams(request: pytest.FixtureRequest) -> None:
    if "upstreams" in request.fixturenames:
        for upstream in request.getfixturevalue("upstreams").values():
            upstream.calls.clear()
            upstream.ready = True
            upstream.release.clear()
            upstream.open_streams = 0
            upstream.open_websockets = 0


def gateway_settings(urls: dict[str, str], data_dir: Path, **overrides: Any) -> Settings:
    """Gateway settings pointing at `urls`, with the test origins."""
    values: dict[str, Any] = {
        "environment": "test",
        "data_dir": data_dir,
        "frontend_origin": FRONTEND,
        "cors_origins": f"{EXTRA_ORIGIN}, ",
        **{f"{name}_url": url for name, url in urls.items()},
    }
    values.update(overrides)
    return Settings(**values)


@contextlib.contextmanager
def running_gateway(settings: Settings, kind: str = "caddy") -> Iterator[tuple[FastAPI, httpx.Client]]:
    """The gateway over real HTTP and a client for it: Caddy with its companion app, or the Python relay.

    The app yielded is the Python gateway app: the relay itself, or Caddy's companion (/healthz, /media/).
    """
    app = create_app(settings)
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(serve_as_launched(app))
        if kind == "caddy":
            port = free_port()
            config_dir = Path(tempfile.mkdtemp(prefix="caddy-"))
            stack.callback(shutil.rmtree, config_dir, ignore_errors=True)
            stack.enter_context(
                caddy_process(settings, host="127.0.0.1", port=port, sidecar_url=url, config_dir=config_dir)
            )
            url = f"http://127.0.0.1:{port}"
        client = stack.enter_context(httpx.Client(base_url=url, timeout=30))
        yield app, client


@contextlib.contextmanager
def serve_as_launched(app: FastAPI) -> Iterator[str]:
    """Serve `app` as the launcher and pawgle-serve do: uvicorn believes no X-Forwarded-* header.

    uvicorn reads FORWARDED_ALLOW_IPS when its config is made, at start: the variable is set only for that
    moment, so other tests' servers in the same session keep uvicorn's default.
    """
    with contextlib.ExitStack() as stack:
        with mock.patch.dict(os.environ, {"FORWARDED_ALLOW_IPS": NO_PROXY}):
            url = stack.enter_context(serve(app))
        yield url


@pytest.fixture(scope="session", params=["caddy", "python"])
def gateway_kind(request: pytest.FixtureRequest) -> str:
    """Which gateway the tests run against: Caddy (the default one) and the Python relay."""
    return str(request.param)


@pytest.fixture
def python_only(gateway_kind: str) -> None:
    """For tests of the Python relay's own internals (its pool, its app state): Caddy has none of them."""
    if gateway_kind != "python":
        pytest.skip("exercises the Python relay's internals")


@pytest.fixture(scope="session")
def gateway_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gateway-data")


@pytest.fixture(scope="session")
def gateway_and_app(
    upstreams: dict[str, Upstream], gateway_data_dir: Path, gateway_kind: str
) -> Iterator[tuple[FastAPI, httpx.Client]]:
    urls = {name: upstream.url for name, upstream in upstreams.items()}
    settings = gateway_settings(urls, gateway_data_dir, max_body_bytes=10 * 1024 * 1024)
    with running_gateway(settings, gateway_kind) as running:
        yield running


@pytest.fixture
def gateway(gateway_and_app: tuple[FastAPI, httpx.Client]) -> httpx.Client:
    """A client of the shared gateway (all seven services up, 10 MB body limit)."""
    return gateway_and_app[1]


@pytest.fixture
def custom_gateway(
    upstreams: dict[str, Upstream], tmp_path: Path, gateway_kind: str
) -> Iterator[Callable[..., httpx.Client]]:
    """Start a gateway with other settings: `custom_gateway(matcher_url=..., read_timeout_s=...)`."""
    with contextlib.ExitStack() as stack:

        def start(**overrides: Any) -> httpx.Client:
            urls = {name: upstream.url for name, upstream in upstreams.items()}
            settings = gateway_settings(urls, tmp_path, **overrides)
            return stack.enter_context(running_gateway(settings, gateway_kind))[1]

        yield start


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL nobody listens on."""
    return f"http://127.0.0.1:{free_port()}"
