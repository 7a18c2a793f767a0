"""Forwarding over real HTTP: paths, queries, bodies, headers, cookies, streaming, and failing upstreams."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from pawgle.gateway.routes import ROUTE_TABLE

from .test_routes import CONTRACT_PATHS, sample_path

MB = 1024 * 1024


def headers_of(echo: dict[str, Any], name: str) -> list[str]:
    return [value for key, value in echo["headers"] if key == name]


@pytest.mark.parametrize(("path", "owner"), CONTRACT_PATHS)
def test_each_contract_path_reaches_its_owner_unchanged(gateway: httpx.Client, path: str, owner: str) -> None:
    response = gateway.post(path, json={"probe": True})
    assert response.status_code == 200
    echo = response.json()
    assert (echo["service"], echo["path"], echo["method"]) == (owner, path, "POST")


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_every_method_is_forwarded(gateway: httpx.Client, method: str) -> None:
    response = gateway.request(method, "/api/auth/alerts/3/")
    assert response.json()["method"] == method


def test_paths_without_the_trailing_slash_are_forwarded_as_sent(gateway: httpx.Client) -> None:
    for template, owner in ROUTE_TABLE:
        path = sample_path(template).rstrip("/")
        echo = gateway.get(path).json()
        assert (echo["service"], echo["path"]) == (owner, path)


def test_the_query_string_is_forwarded_byte_for_byte(gateway: httpx.Client) -> None:
    query = "after=2025-04-01T09%3A15%3A02.123456Z&tag=a&tag=b&empty=&q=caf%C3%A9+noir"
    echo = gateway.get(f"/api/auth/chat/conversations/abc/messages/?{query}").json()
    assert echo["query"] == query


def test_percent_encoded_paths_stay_encoded(gateway: httpx.Client) -> None:
    echo = gateway.get("/api/auth/chat/conversations/a%20b/").json()
    assert echo["raw_path"] == "/api/auth/chat/conversations/a%20b/"


@pytest.mark.parametrize("prefix", ["//", "///", "////"])
def test_leading_slashes_are_collapsed_without_a_redirect(gateway: httpx.Client, prefix: str) -> None:
    request = gateway.build_request("POST", "/api/auth/login/", json={"email": "a@b.c", "password": "x"})
    request.url = request.url.copy_with(raw_path=f"{prefix}api/auth/login/".encode())
    response = gateway.send(request)
    assert response.status_code == 200
    assert response.json()["path"] == "/api/auth/login/"
    assert response.json()["raw_path"] == "/api/auth/login/"


def test_gateway_routes_are_never_redirected(gateway: httpx.Client) -> None:
    response = gateway.get("/healthz/")
    assert response.status_code == 404
    assert "location" not in response.headers


def test_a_multipart_body_arrives_intact(gateway: httpx.Client) -> None:
    photo = secrets.token_bytes(300_000)
    response = gateway.post(
        "/api/auth/pets/report/",
        data={"animal_name": "Rex", "status": "lost", "latitude": "48.85"},
        files={"image": ("rex.jpg", photo, "image/jpeg")},
    )
    echo = response.json()
    sent = response.request
    assert headers_of(echo, "content-type") == [sent.headers["content-type"]]
    assert echo["body_length"] == int(sent.headers["content-length"])
    assert echo["body_sha256"] == hashlib.sha256(sent.read()).hexdigest()


def test_a_large_chunked_body_is_streamed_through(gateway: httpx.Client) -> None:
    chunks = [os.urandom(256 * 1024) for _ in range(32)]  # 8 MB, no Content-Length

    def body() -> Iterator[bytes]:
        yield from chunks

    echo = gateway.post("/api/auth/pets/add/", content=body()).json()
    assert echo["body_length"] == 8 * MB
    assert echo["body_sha256"] == hashlib.sha256(b"".join(chunks)).hexdigest()
    assert headers_of(echo, "transfer-encoding") == ["chunked"]


def test_an_empty_post_without_content_type_is_forwarded(gateway: httpx.Client) -> None:
    response = gateway.post("/api/token/refresh/", headers={"content-type": "application/x-www-form-urlencoded"})
    echo = response.json()
    assert echo["body_length"] == 0
    assert headers_of(echo, "content-length") == ["0"]


def test_the_response_body_is_streamed_not_buffered(gateway: httpx.Client, upstreams: dict[str, Any]) -> None:
    upstream = upstreams["chat"]
    with gateway.stream("GET", "/api/auth/chat/events/?stream=1") as response:
        chunks = response.iter_raw()
        first = next(chunks)
        # Only once the first chunk is here does the upstream get to finish; a buffering proxy waits 10 s.
        upstream.release.set()
        rest = b"".join(chunks)
    assert first + rest == b"first chunk;released"


def test_an_endless_stream_is_closed_upstream_when_the_client_leaves(
    gateway: httpx.Client, upstreams: dict[str, Any]
) -> None:
    upstream = upstreams["chat"]
    with gateway.stream("GET", "/api/auth/chat/events/?endless=1") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        chunks = response.iter_raw()  # held: dropping the iterator closes the connection at once
        assert next(chunks).startswith(b"data: tick")
        assert upstream.open_streams == 1
    deadline = time.monotonic() + 5
    while upstream.open_streams and time.monotonic() < deadline:
        time.sleep(0.02)
    assert upstream.open_streams == 0


def test_request_headers_and_cookies_reach_the_service(gateway: httpx.Client) -> None:
    echo = gateway.get(
        "/api/auth/profile/",
        headers={
            "Authorization": "Bearer abc.def.ghi",
            "Cookie": "pawgle_refresh=r1; other=2",
            "X-Custom": "kept",
            "Connection": "keep-alive, X-Drop-Me",
            "X-Drop-Me": "hop-by-hop",
            "Host": "api.example.app",
        },
    ).json()
    assert headers_of(echo, "authorization") == ["Bearer abc.def.ghi"]
    assert headers_of(echo, "cookie") == ["pawgle_refresh=r1; other=2"]
    assert headers_of(echo, "x-custom") == ["kept"]
    assert headers_of(echo, "x-drop-me") == []
    assert headers_of(echo, "x-forwarded-host") == ["api.example.app"]
    assert headers_of(echo, "x-forwarded-proto") == ["http"]
    assert headers_of(echo, "x-forwarded-for") == ["127.0.0.1"]


def test_a_client_supplied_forwarded_host_is_replaced(gateway: httpx.Client) -> None:
    echo = gateway.get("/api/auth/profile/", headers={"X-Forwarded-Host": "evil.example"}).json()
    assert headers_of(echo, "x-forwarded-host") == [gateway.base_url.netloc.decode()]


def test_a_sane_request_id_is_kept_end_to_end(gateway: httpx.Client) -> None:
    response = gateway.get("/api/auth/profile/", headers={"X-Request-ID": "req-0123456789abcdef"})
    assert response.headers["x-request-id"] == "req-0123456789abcdef"
    assert headers_of(response.json(), "x-request-id") == ["req-0123456789abcdef"]


@pytest.mark.parametrize("incoming", [None, "short", "has spaces in it", "x" * 200, "<script>alert(1)</script>"])
def test_a_missing_or_odd_request_id_is_replaced_by_a_fresh_one(gateway: httpx.Client, incoming: str | None) -> None:
    headers = {"X-Request-ID": incoming} if incoming else {}
    response = gateway.get("/api/auth/profile/", headers=headers)
    request_id = response.headers["x-request-id"]
    assert request_id != incoming
    # A fresh random id: a uuid4 (hex from the Python relay, dashed from Caddy).
    assert re.fullmatch(r"[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", request_id)
    assert headers_of(response.json(), "x-request-id") == [request_id]


def test_every_gateway_answer_has_a_request_id(gateway: httpx.Client) -> None:
    for path in ("/healthz", "/nope/", "/media/missing.png"):
        assert len(gateway.get(path).headers.get_list("x-request-id")) == 1


def test_the_trace_context_is_propagated(gateway: httpx.Client) -> None:
    trace_id = secrets.token_hex(16)
    echo = gateway.get("/api/auth/profile/", headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}).json()
    [traceparent] = headers_of(echo, "traceparent")
    assert traceparent.split("-")[1] == trace_id


def test_every_set_cookie_header_is_relayed_and_none_is_kept(
    gateway_and_app: tuple[FastAPI, httpx.Client],
) -> None:
    app, gateway = gateway_and_app
    response = gateway.post("/api/auth/login/?cookies=3")
    cookies = response.headers.get_list("set-cookie")
    assert [cookie.split("=")[0] for cookie in cookies] == ["cookie0", "cookie1", "cookie2"]
    assert all("HttpOnly" in cookie for cookie in cookies)
    assert len(app.state.proxy.client.cookies.jar) == 0


def test_the_status_and_headers_of_the_service_are_relayed(gateway: httpx.Client) -> None:
    response = gateway.get("/api/auth/profile/?status=401")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="api"'
    assert response.headers["content-type"] == "application/json"


def test_a_declared_body_over_the_limit_is_refused_before_reaching_the_service(
    custom_gateway: Callable[..., httpx.Client], upstreams: dict[str, Any]
) -> None:
    gateway = custom_gateway(max_body_bytes=1000)
    response = gateway.post("/api/auth/pets/add/", content=b"x" * 1001)
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    assert upstreams["pets"].calls == []


def test_a_streamed_body_over_the_limit_is_cut_off(custom_gateway: Callable[..., httpx.Client]) -> None:
    gateway = custom_gateway(max_body_bytes=64 * 1024)

    def body() -> Iterator[bytes]:
        for _ in range(4):
            yield b"x" * 32 * 1024

    response = gateway.post("/api/auth/pets/add/", content=body())
    assert response.status_code == 413
    assert response.json()["error"] == response.json()["detail"]


def test_a_body_at_the_limit_passes(custom_gateway: Callable[..., httpx.Client]) -> None:
    gateway = custom_gateway(max_body_bytes=1000)
    assert gateway.post("/api/auth/pets/add/", content=b"x" * 1000).json()["body_length"] == 1000


def test_a_malformed_content_length_is_a_400(gateway: httpx.Client) -> None:
    with socket.create_connection((gateway.base_url.host, gateway.base_url.port), timeout=5) as sock:
        sock.sendall(b"POST /api/auth/pets/add/ HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n")
        status_line = sock.recv(1024).split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 400")


def test_a_service_that_is_down_gives_a_json_502(
    custom_gateway: Callable[..., httpx.Client], closed_port_url: str
) -> None:
    gateway = custom_gateway(matcher_url=closed_port_url)
    response = gateway.get("/api/auth/matches/", headers={"Origin": "http://localhost:3000"})
    assert response.status_code == 502
    assert response.json()["detail"] == "The matcher service is unavailable."
    assert response.headers["access-control-allow-origin"] == "http://localhost:3000"


def test_a_slow_service_gives_a_json_504(custom_gateway: Callable[..., httpx.Client]) -> None:
    gateway = custom_gateway(read_timeout_s=0.3)
    response = gateway.get("/api/auth/pets/search/?sleep=2")
    assert response.status_code == 504
    assert response.json()["detail"] == "The embeddings service did not answer in time."


def test_a_full_pool_gives_a_json_503_with_retry_after(
    custom_gateway: Callable[..., httpx.Client], python_only: None
) -> None:
    # Caddy has no pool timeout: it opens as many upstream connections as requests need.
    gateway = custom_gateway(max_connections=1, pool_timeout_s=0.2)
    slow = threading.Thread(target=gateway.get, args=("/api/auth/alerts/?sleep=1.5",))
    slow.start()
    time.sleep(0.3)  # the one pooled connection is now busy
    response = gateway.get("/api/auth/alerts/")
    slow.join()
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["detail"] == "The gateway is overloaded. Try again shortly."


def test_unknown_paths_get_a_json_404(gateway: httpx.Client) -> None:
    for path in ("/nope", "/api/token/", "/api/auth/pets/abc/edit/", "/docs", "/openapi.json"):
        response = gateway.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        assert response.json()["detail"] == "Not found."


def test_the_wrong_method_on_a_gateway_route_is_a_json_405(gateway: httpx.Client) -> None:
    response = gateway.post("/healthz")
    assert response.status_code == 405
    assert response.json()["detail"] == "Method not allowed."


def test_concurrent_requests_share_the_pool(gateway: httpx.Client) -> None:
    results: list[int] = []

    def call() -> None:
        results.append(gateway.get("/api/auth/pets/count/").status_code)

    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * 20
