"""A service's own failure never spills onto other requests: a connection it closes is retried, once."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest


class _KeepAliveThenDrop(socketserver.BaseRequestHandler):
    """HTTP/1.1 keep-alive; a `fail` request is answered 500 and the connection then closed without notice.

    That is what a service does after an unhandled error: the gateway's pooled connection is dead, and
    the next request sent on it gets no response byte at all.
    """

    def handle(self) -> None:
        sock: socket.socket = self.request
        buffer = b""
        while True:
            while b"\r\n\r\n" not in buffer:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                buffer += chunk
            head, buffer = buffer.split(b"\r\n\r\n", 1)
            lines = head.split(b"\r\n")
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            while len(buffer) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                buffer += chunk
            buffer = buffer[length:]
            failing = b"fail" in lines[0]
            body = b'{"detail":"boom"}' if failing else b'{"ok":true}'
            status = b"500 Internal Server Error" if failing else b"200 OK"
            sock.sendall(
                b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )
            if failing:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                return


@pytest.fixture(scope="module")
def dropping_service() -> Iterator[str]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _KeepAliveThenDrop)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_burst_of_failing_requests_does_not_touch_the_others(
    custom_gateway: Callable[..., httpx.Client], dropping_service: str
) -> None:
    gateway = custom_gateway(notifier_url=dropping_service)

    def call(index: int) -> tuple[str, int]:
        if index % 3 == 0:
            return "fail", gateway.get(f"/api/auth/alerts/{index + 1}/?fail=1").status_code
        if index % 3 == 1:
            return "normal", gateway.get("/api/auth/notifications/").status_code
        # Reads: a request written into a connection the service dropped without a word cannot be known
        # unsent, so only idempotent ones may be sent again (a real service says `Connection: close`, below).
        return "normal", gateway.get("/api/auth/alerts/").status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(call, range(600)))
    failing = [status for kind, status in results if kind == "fail"]
    assert set(failing) == {500}
    bad = [(i, kind, status) for i, (kind, status) in enumerate(results) if kind == "normal" and status != 200]
    assert not bad, f"bystanders failed: {bad[:20]}"


@pytest.fixture(scope="module")
def crashing_service() -> Iterator[str]:
    """A real service (FastAPI under uvicorn, the mesh's error handlers) whose `fail` route raises."""
    from fastapi import FastAPI

    from pawgle.common.errors import install_error_handlers
    from pawgle.common.testing.server import serve

    app = FastAPI()
    install_error_handlers(app)

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def handler(path: str, fail: int = 0) -> dict[str, bool]:
        if fail:
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        return {"ok": True}

    with serve(app) as url:
        yield url


def test_a_service_raising_on_some_requests_does_not_touch_the_others(
    custom_gateway: Callable[..., httpx.Client], crashing_service: str
) -> None:
    gateway = custom_gateway(notifier_url=crashing_service)

    def call(index: int) -> tuple[str, int]:
        if index % 3 == 0:
            return "fail", gateway.get(f"/api/auth/alerts/{index + 1}/?fail=1").status_code
        if index % 3 == 1:
            return "normal", gateway.get("/api/auth/notifications/").status_code
        return "normal", gateway.post("/api/auth/alerts/", json={"label": "home"}).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(call, range(600)))
    bad = [(i, kind, status) for i, (kind, status) in enumerate(results) if kind == "normal" and status != 200]
    assert not bad, f"bystanders failed: {bad[:20]}"
    assert {status for kind, status in results if kind == "fail"} == {500}
