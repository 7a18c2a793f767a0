"""CORS with credentials for the configured origins on every response, and preflights at the gateway."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import EXTRA_ORIGIN, FRONTEND, gateway_settings, running_gateway


def assert_credentialed_cors(response: httpx.Response, origin: str) -> None:
    assert response.headers.get_list("access-control-allow-origin") == [origin]
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "origin" in response.headers["vary"].lower()


PREFLIGHT_PATHS = ["/api/auth/login/", "/api/auth/pets/17/edit/", "/nowhere/", "/healthz", "/media/x.png"]


@pytest.mark.parametrize("path", PREFLIGHT_PATHS)
def test_a_preflight_is_answered_by_the_gateway_without_auth(
    gateway: httpx.Client, upstreams: dict[str, Any], path: str
) -> None:
    response = gateway.options(
        path,
        headers={
            "Origin": FRONTEND,
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "authorization, content-type, sentry-trace, baggage",
        },
    )
    assert response.status_code == 204
    assert response.content == b""
    assert_credentialed_cors(response, FRONTEND)
    methods = {m.strip() for m in response.headers["access-control-allow-methods"].split(",")}
    assert methods == {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
    allowed = {h.strip() for h in response.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "sentry-trace", "baggage", "x-request-id"} <= allowed
    assert all(not upstream.calls for upstream in upstreams.values())


def test_a_preflight_from_a_foreign_origin_gets_no_allow_origin(gateway: httpx.Client) -> None:
    response = gateway.options(
        "/api/auth/login/", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-credentials" not in response.headers
    assert response.headers["vary"] == "Origin"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/auth/profile/", 200),
        ("/api/auth/profile/?status=401", 401),
        ("/api/auth/profile/?status=429", 429),
        ("/api/auth/profile/?status=500", 500),
        ("/nowhere/", 404),
        ("/healthz", 200),
    ],
)
def test_the_exact_origin_is_echoed_on_every_status(gateway: httpx.Client, path: str, status: int) -> None:
    response = gateway.get(path, headers={"Origin": FRONTEND})
    assert response.status_code == status
    assert_credentialed_cors(response, FRONTEND)
    assert "x-request-id" in response.headers["access-control-expose-headers"]


def test_an_origin_from_the_extra_list_is_allowed(gateway: httpx.Client) -> None:
    assert_credentialed_cors(gateway.get("/api/auth/pets/count/", headers={"Origin": EXTRA_ORIGIN}), EXTRA_ORIGIN)


def test_a_foreign_origin_gets_vary_but_no_cors(gateway: httpx.Client) -> None:
    response = gateway.get("/api/auth/pets/count/", headers={"Origin": "https://evil.example"})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    assert response.headers["vary"] == "Origin"


def test_vary_origin_is_sent_without_an_origin_too(gateway: httpx.Client) -> None:
    for path in ("/api/auth/pets/count/", "/nowhere/"):
        assert gateway.get(path).headers["vary"] == "Origin"


def test_the_services_own_cors_headers_are_replaced(gateway: httpx.Client) -> None:
    response = gateway.get("/api/auth/profile/?cors=1", headers={"Origin": FRONTEND})
    assert_credentialed_cors(response, FRONTEND)
    assert "access-control-allow-methods" not in response.headers


def test_cors_is_on_502_413_and_504(custom_gateway: Callable[..., httpx.Client], closed_port_url: str) -> None:
    gateway = custom_gateway(chat_url=closed_port_url, max_body_bytes=10, read_timeout_s=0.3)
    answers = [
        gateway.get("/api/auth/chat/conversations/", headers={"Origin": FRONTEND}),
        gateway.post("/api/auth/pets/add/", content=b"x" * 11, headers={"Origin": FRONTEND}),
        gateway.get("/api/auth/pets/search/?sleep=2", headers={"Origin": FRONTEND}),
    ]
    assert [answer.status_code for answer in answers] == [502, 413, 504]
    for answer in answers:
        assert_credentialed_cors(answer, FRONTEND)
        assert answer.headers["content-type"] == "application/json; charset=utf-8"


def test_an_unexpected_error_is_still_json_with_cors(upstreams: dict[str, Any], tmp_path: Path) -> None:
    urls = {name: upstream.url for name, upstream in upstreams.items()}
    with running_gateway(gateway_settings(urls, tmp_path), kind="python") as (app, gateway):

        async def broken_forward(*_args: Any) -> None:
            raise RuntimeError("a bug")

        app.state.proxy.forward = broken_forward
        response = gateway.get("/api/auth/profile/", headers={"Origin": FRONTEND})
    assert response.status_code == 500
    assert response.json()["detail"] == "An unexpected error occurred."
    assert_credentialed_cors(response, FRONTEND)
    assert len(response.headers["x-request-id"]) == 32
