"""The client address is decided once, at the gateway, and a client cannot choose it (rotating headers)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from pawgle.auth.config import Settings as AuthSettings
from pawgle.auth.main import create_app as create_auth_app
from pawgle.common.throttle import CONTRACT_RATES

from .conftest import gateway_settings, running_gateway, serve_as_launched

SPOOFED = {"X-Forwarded-For": "203.0.113.66", "X-Pawgle-Client-Ip": "203.0.113.67", "X-Pawgle-Edge": "guess"}


def headers_of(echo: dict[str, Any], name: str) -> list[str]:
    return [value for key, value in echo["headers"] if key == name]


def test_what_a_client_claims_is_replaced_by_the_socket_address(custom_gateway: Callable[..., httpx.Client]) -> None:
    gateway = custom_gateway(edge_secret=SecretStr("edge-secret-for-tests"))
    echo = gateway.get("/api/auth/profile/", headers=SPOOFED).json()
    assert headers_of(echo, "x-forwarded-for") == ["127.0.0.1"]
    assert headers_of(echo, "x-pawgle-client-ip") == ["127.0.0.1"]
    assert headers_of(echo, "x-pawgle-edge") == ["edge-secret-for-tests"]


def test_without_a_secret_no_proof_is_passed_on(gateway: httpx.Client) -> None:
    echo = gateway.get("/api/auth/profile/", headers=SPOOFED).json()
    assert headers_of(echo, "x-pawgle-edge") == []
    assert headers_of(echo, "x-pawgle-client-ip") == ["127.0.0.1"]


def test_behind_a_trusted_proxy_the_client_is_the_first_untrusted_hop(
    custom_gateway: Callable[..., httpx.Client],
) -> None:
    gateway = custom_gateway(trusted_proxies="127.0.0.1/32, 10.0.0.0/8")
    # A client wrote the left part itself; the ingress (10.0.0.7) appended the address it really saw.
    echo = gateway.get("/api/auth/profile/", headers={"X-Forwarded-For": "203.0.113.1, 198.51.100.5, 10.0.0.7"}).json()
    assert headers_of(echo, "x-pawgle-client-ip") == ["198.51.100.5"]


@pytest.fixture
def auth_url(database_url: str, nats_url: str, data_dir: Path) -> Iterator[tuple[str, AuthSettings]]:
    """The real auth service as the launcher runs it (no proxy headers), login limited to 3 a minute."""
    settings = AuthSettings(
        database_url=database_url,
        nats_url=nats_url,
        data_dir=data_dir,
        environment="test",
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        argon2_parallelism=1,
        throttle_bucket=f"t{secrets.token_hex(6)}",
        throttle_rates={**dict.fromkeys(CONTRACT_RATES, "10000/min"), "login": "3/min"},
        edge_secret=SecretStr("edge-secret-for-tests"),
    )
    with serve_as_launched(create_auth_app(settings)) as url:
        yield url, settings


def _attempts(client: httpx.Client, count: int) -> list[int]:
    """Logins for different accounts, each from a different claimed address."""
    return [
        client.post(
            "/api/auth/login/",
            json={"email": f"nobody{i}@example.com", "password": "wrong password"},
            headers={
                "X-Forwarded-For": f"203.0.113.{i + 1}",
                "X-Pawgle-Client-Ip": f"198.51.100.{i + 1}",
                "X-Real-Ip": f"192.0.2.{i + 1}",
            },
        ).status_code
        for i in range(count)
    ]


def test_rotating_forwarded_for_through_the_gateway_buys_no_fresh_login_budget(
    auth_url: tuple[str, AuthSettings], gateway_kind: str, tmp_path: Path
) -> None:
    url, settings = auth_url
    upstreams = {"auth": url}
    config = gateway_settings(upstreams, tmp_path, edge_secret=settings.edge_secret)
    with running_gateway(config, gateway_kind) as (_app, gateway):
        assert _attempts(gateway, 4) == [401, 401, 401, 429]


def test_rotating_forwarded_for_on_the_services_own_port_buys_no_fresh_budget(
    auth_url: tuple[str, AuthSettings],
) -> None:
    url, _settings = auth_url
    with httpx.Client(base_url=url) as direct:
        assert _attempts(direct, 4) == [401, 401, 401, 429]
