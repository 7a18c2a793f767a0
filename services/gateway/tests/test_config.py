"""Settings come from the environment the launcher and the deployments set."""

from __future__ import annotations

import pytest

from pawgle.gateway.config import Settings
from pawgle.gateway.routes import SERVICES


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SERVICES:
        monkeypatch.delenv(f"PAWGLE_{name.upper()}_URL", raising=False)
    for name in ("GATEWAY_CORS_ORIGINS", "GATEWAY_MAX_BODY_BYTES", "PAWGLE_FRONTEND_ORIGIN"):
        monkeypatch.delenv(name, raising=False)


def test_services_default_to_ports_8101_to_8107_in_mesh_order() -> None:
    urls = Settings().service_urls
    assert list(urls) == list(SERVICES)
    assert list(urls.values()) == [f"http://127.0.0.1:{port}" for port in range(8101, 8108)]


def test_service_urls_and_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAWGLE_CHAT_URL", "http://chat:8080/")
    monkeypatch.setenv("GATEWAY_MAX_BODY_BYTES", "1048576")
    settings = Settings()
    assert settings.service_urls["chat"] == "http://chat:8080"
    assert settings.max_body_bytes == 1048576


def test_allowed_origins_are_the_frontend_plus_the_extra_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAWGLE_FRONTEND_ORIGIN", "https://app.example.org/")
    monkeypatch.setenv("GATEWAY_CORS_ORIGINS", " https://staging.example.org , ,http://localhost:3000")
    assert Settings().allowed_origins == {
        "https://app.example.org",
        "https://staging.example.org",
        "http://localhost:3000",
    }
