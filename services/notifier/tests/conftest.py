"""Fixtures: a local server speaking Resend's e-mail API and the notifier running on a real bus.

The running service, its token issuer and the settings come from `pawgle.common.testing`.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pawgle.common.testing.fake_http import FakeRequest, FakeResponse, fake_http_server
from pawgle.common.testing.service import RunningService, load_test_module, running_service, service_settings
from pawgle.notifier.config import Settings
from pawgle.notifier.main import create_app

factories = load_test_module("pawgle_notifier_test_factories", Path(__file__).with_name("factories.py"))

FRONTEND = "https://app.pawgle.test"
FORWARD_SECRET = "forward-secret-for-tests-0123456789"
RESEND_KEY = "re_test_key"


@dataclass
class FakeResend:
    """Answers POST /emails like Resend (on a local HTTP server), and can be switched into an outage."""

    url: str = ""
    mode: str = "ok"  # ok | fail (500) | throttle (429) | invalid (422)
    requests: list[dict[str, Any]] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, request: FakeRequest) -> FakeResponse:
        with self.lock:
            seen = {"path": request.path, "headers": request.headers, "json": request.json()}
            self.requests.append(seen)
            if request.headers.get("authorization") != f"Bearer {RESEND_KEY}":
                return FakeResponse(401, {"statusCode": 401, "name": "missing_api_key", "message": "Missing API key"})
            if request.method != "POST" or request.path != "/emails":
                return FakeResponse(404, {"statusCode": 404, "name": "not_found", "message": "Not found"})
            if self.mode == "fail":
                return FakeResponse(500, {"statusCode": 500, "name": "internal_server_error", "message": "Oops"})
            if self.mode == "throttle":
                return FakeResponse(429, {"statusCode": 429, "name": "rate_limit_exceeded", "message": "Slow down"})
            if self.mode == "invalid":
                return FakeResponse(422, {"statusCode": 422, "name": "validation_error", "message": "Invalid `to`"})
            self.accepted.append(seen)
            return FakeResponse(200, {"id": str(uuid.uuid4())})

    def accepted_to(self, address: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.accepted if r["json"]["to"] == [address]]


@pytest.fixture
def fake_resend() -> Iterator[FakeResend]:
    fake = FakeResend()
    with fake_http_server(fake.handle) as url:
        fake.url = url
        yield fake


@pytest.fixture
def settings_factory(
    database_url: str, nats_url: str, data_dir: Path, fake_resend: FakeResend
) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        fields: dict[str, Any] = {
            "frontend_origin": FRONTEND,
            "resend_api_key": RESEND_KEY,
            "resend_api_url": fake_resend.url,
            "mail_poll_interval_s": 0.05,
            "mail_retry_base_s": 0.05,
            "mail_retry_max_s": 0.2,
            "reply_domain": "reply.pawgle.test",
            "forward_secret": FORWARD_SECRET,
            "consumer_max_deliveries": 5,
            **overrides,
        }
        return service_settings(Settings, database_url=database_url, nats_url=nats_url, data_dir=data_dir, **fields)

    return make


def make_running(settings: Settings) -> Iterator[RunningService]:
    with running_service(create_app(settings), settings) as running:
        yield running


@pytest.fixture
def notifier(settings_factory: Callable[..., Settings]) -> Iterator[RunningService]:
    """The full service: consumers on the bus and the e-mail sender pointed at the fake Resend."""
    yield from make_running(settings_factory())


@pytest.fixture
def folder_notifier(settings_factory: Callable[..., Settings]) -> Iterator[RunningService]:
    """The full service on its embedded default: e-mail goes to the local outbox folder."""
    yield from make_running(settings_factory(resend_api_key=None))


@pytest.fixture
def api(settings_factory: Callable[..., Settings]) -> Iterator[RunningService]:
    """The service without background workers: for the HTTP API alone."""
    yield from make_running(settings_factory(run_workers=False))
