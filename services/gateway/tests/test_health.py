"""/healthz aggregates every service's readiness; /readyz is the gateway's own; metrics are internal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client import generate_latest

from pawgle.common.natsserver import free_port
from pawgle.gateway.routes import SERVICES


def test_healthz_is_ok_when_every_service_is_ready(gateway: httpx.Client) -> None:
    response = gateway.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["services"]) == set(SERVICES)
    assert all(service["status"] == "ok" for service in body["services"].values())
    assert body["services"]["auth"]["checks"] == {"database": "ok", "bus": "ok"}


def test_healthz_names_the_service_that_is_not_ready(gateway: httpx.Client, upstreams: dict[str, Any]) -> None:
    upstreams["notifier"].ready = False
    response = gateway.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["services"]["notifier"]["status"] == "unavailable"
    assert body["services"]["notifier"]["reason"] == "/readyz answered 503"
    assert body["services"]["auth"]["status"] == "ok"


def test_healthz_reports_a_service_that_is_down(
    custom_gateway: Callable[..., httpx.Client], closed_port_url: str
) -> None:
    gateway = custom_gateway(pets_url=closed_port_url)
    body = gateway.get("/healthz").json()
    assert body["status"] == "degraded"
    assert body["services"]["pets"]["status"] == "unavailable"
    assert body["services"]["pets"]["reason"].startswith("unreachable")


def test_readyz_is_the_gateway_process_alone(custom_gateway: Callable[..., httpx.Client], closed_port_url: str) -> None:
    gateway = custom_gateway(**{f"{name}_url": closed_port_url for name in SERVICES})
    response = gateway.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_metrics_are_not_a_public_path(gateway: httpx.Client) -> None:
    response = gateway.get("/metrics")
    assert response.status_code == 404
    assert "pawgle_http" not in response.text


def test_caddy_serves_its_metrics_on_the_internal_port_only(
    custom_gateway: Callable[..., httpx.Client], gateway_kind: str
) -> None:
    if gateway_kind != "caddy":
        pytest.skip("Caddy's metrics listener")
    metrics_port = free_port()
    gateway = custom_gateway(metrics_port=metrics_port)
    assert gateway.get("/api/auth/pets/5/qr/").status_code == 200
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
    assert "caddy_http_requests_total" in text
    assert gateway.get("/metrics").status_code == 404


def test_metrics_count_requests_by_route_template(gateway: httpx.Client, python_only: None) -> None:
    gateway.get("/api/auth/pets/5/qr/")
    gateway.get("/readyz")
    gateway.get("/no/such/page/")
    text = generate_latest().decode()  # the Python relay runs in this process; edge.py serves these
    assert 'route="/api/auth/pets/{id}/qr/"' in text
    assert 'route="/readyz"' in text
    assert 'route="unmatched"' in text
    assert "/no/such/page/" not in text
    assert 'service="gateway"' in text
