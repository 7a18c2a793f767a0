"""Fixtures: a local server speaking Resend's e-mail API, the notifier app on a real bus, and helpers."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import nats
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from pawgle.common.bus.consumer import ConsumerSpec
from pawgle.common.bus.streams import STREAMS, ensure_streams
from pawgle.common.events.envelope import EventData, encode_event, new_event
from pawgle.notifier.config import Settings
from pawgle.notifier.main import create_app


def _load_factories() -> Any:
    # Every service has a tests/factories.py; a private module name keeps them from shadowing each other.
    name = "pawgle_notifier_test_factories"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("factories.py"))
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


factories = _load_factories()

FRONTEND = "https://app.pawgle.test"
FORWARD_SECRET = "forward-secret-for-tests-0123456789"
RESEND_KEY = "re_test_key"


@dataclass
class FakeResend:
    """A local HTTP server that answers POST /emails like Resend, and can be switched into an outage."""

    url: str = ""
    mode: str = "ok"  # ok | fail (500) | throttle (429) | invalid (422)
    requests: list[dict[str, Any]] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        with self.lock:
            seen = {"path": path, "headers": headers, "json": json.loads(body or b"null")}
            self.requests.append(seen)
            if headers.get("authorization") != f"Bearer {RESEND_KEY}":
                return 401, {"statusCode": 401, "name": "missing_api_key", "message": "Missing API key"}
            if path != "/emails":
                return 404, {"statusCode": 404, "name": "not_found", "message": "Not found"}
            if self.mode == "fail":
                return 500, {"statusCode": 500, "name": "internal_server_error", "message": "Unexpected error"}
            if self.mode == "throttle":
                return 429, {"statusCode": 429, "name": "rate_limit_exceeded", "message": "Too many requests"}
            if self.mode == "invalid":
                return 422, {"statusCode": 422, "name": "validation_error", "message": "Invalid `to` field"}
            self.accepted.append(seen)
            return 200, {"id": str(uuid.uuid4())}

    def accepted_to(self, address: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.accepted if r["json"]["to"] == [address]]


@pytest.fixture
def fake_resend() -> Iterator[FakeResend]:
    fake = FakeResend()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            status, doc = fake.handle(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            payload = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


async def _purge_streams(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await ensure_streams(js)
        for spec in STREAMS:
            await js.purge_stream(spec.name)
    finally:
        await nc.drain()


@pytest.fixture
def settings_factory(
    database_url: str, nats_url: str, data_dir: Path, fake_resend: FakeResend
) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        fields: dict[str, Any] = {
            "environment": "test",
            "data_dir": data_dir,
            "database_url": database_url,
            "nats_url": nats_url,
            "frontend_origin": FRONTEND,
            "resend_api_key": RESEND_KEY,
            "resend_api_url": fake_resend.url,
            "mail_poll_interval_s": 0.05,
            "mail_retry_base_s": 0.05,
            "mail_retry_max_s": 0.2,
            "reply_domain": "reply.pawgle.test",
            "forward_secret": FORWARD_SECRET,
            "consumer_max_deliveries": 5,
        }
        fields.update(overrides)
        return Settings(**fields)

    return make


@dataclass
class Running:
    """The notifier app running its lifespan (bus, consumers, sender), and handles to poke at it."""

    app: FastAPI
    client: TestClient
    settings: Settings
    tokens: Any

    @property
    def engine(self) -> Engine:
        return self.app.state.engine

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def publish(self, data: EventData, *, envelope: Any = None, msg_id: str | None = None) -> Any:
        """Publish an event over the app's own JetStream connection, the way a producer's relay does."""
        env = envelope or new_event(data, producer="tests")
        headers = {"Nats-Msg-Id": msg_id or env.id}
        self.client.portal.call(self._publish, env.subject, encode_event(env), headers)
        return env

    async def _publish(self, subject: str, payload: bytes, headers: dict[str, str]) -> None:
        await self.app.state.js.publish(subject, payload, headers=headers)

    def drained(self, event_type: str) -> bool:
        """True once the consumer of `event_type` has every published event delivered and acknowledged."""
        spec = ConsumerSpec(service=self.settings.service_name, event_type=event_type, handler=lambda s, e: None)
        info = self.client.portal.call(self.app.state.js.consumer_info, spec.stream, spec.name)
        return info.num_pending == 0 and info.num_ack_pending == 0


def make_running(settings: Settings) -> Iterator[Running]:
    asyncio.run(_purge_streams(settings.nats_url))
    tokens = factories.TokenIssuer(issuer=settings.jwt_issuer, audience=settings.jwt_audience)
    app = create_app(settings)
    app.state.token_verifier.jwks.set_keys(tokens.jwks)
    with TestClient(app) as client:
        yield Running(app=app, client=client, settings=settings, tokens=tokens)


@pytest.fixture
def notifier(settings_factory: Callable[..., Settings]) -> Iterator[Running]:
    """The full service: consumers on the bus and the e-mail sender pointed at the fake Resend."""
    yield from make_running(settings_factory())


@pytest.fixture
def folder_notifier(settings_factory: Callable[..., Settings]) -> Iterator[Running]:
    """The full service on its embedded default: e-mail goes to the local outbox folder."""
    yield from make_running(settings_factory(resend_api_key=None))


@pytest.fixture
def api(settings_factory: Callable[..., Settings]) -> Iterator[Running]:
    """The service without background workers: for the HTTP API alone."""
    yield from make_running(settings_factory(run_workers=False))
