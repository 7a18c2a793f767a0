"""A service running its whole lifespan for a test: client, engine, sessions, events in, and waiting.

A service's conftest builds its settings with `service_settings`, then `yield from running_service(app,
settings)` (or `with running_service(...) as running:`) in a fixture; tests publish events with
`running.publish(...)`, wait with `running.wait_until_handled(...)` or `wait_for(...)`, and call routes with
`running.client` and `running.tokens.headers(user_id)`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import nats
import nats.js.errors
from anyio.from_thread import BlockingPortal
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from pawgle.common.bus.consumer import ConsumerSpec
from pawgle.common.bus.streams import STREAMS, ensure_streams
from pawgle.common.config import ServiceSettings
from pawgle.common.events.envelope import Envelope, EventData, encode_event, new_event
from pawgle.common.testing.tokens import TokenIssuer

T = TypeVar("T")
S = TypeVar("S", bound=ServiceSettings)


def wait_for(condition: Callable[[], T], *, timeout_s: float = 15.0, interval_s: float = 0.02, message: str = "") -> T:
    """Poll `condition` until it returns something truthy and return that; fail the test after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(message or f"condition not met within {timeout_s} s")
        time.sleep(interval_s)


def service_settings(
    settings_class: type[S], *, database_url: str, nats_url: str, data_dir: Path, **overrides: Any
) -> S:
    """Settings of a service under test: the test's own database, the session's nats-server, a temp data dir."""
    values: dict[str, Any] = {
        "environment": "test",
        "data_dir": data_dir,
        "database_url": database_url,
        "nats_url": nats_url,
        "settle_heap": False,  # one test process starts many apps: nothing of theirs may be frozen
    }
    values.update(overrides)
    return settings_class(**values)


async def purge_streams(nats_url: str) -> None:
    """Empty every stream, so a test sees only the events it publishes (the server lives all session)."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await ensure_streams(js)
        for spec in STREAMS:
            await js.purge_stream(spec.name)
    finally:
        await nc.drain()


@dataclass
class RunningService:
    """A service app inside its lifespan (bus, relay, consumers), with handles for tests."""

    app: FastAPI
    client: TestClient
    settings: ServiceSettings
    tokens: TokenIssuer

    @property
    def engine(self) -> Engine:
        return self.app.state.engine

    @property
    def portal(self) -> BlockingPortal:
        """Runs coroutines on the app's event loop (its bus connection lives there)."""
        assert self.client.portal is not None, "the client is inside its lifespan"
        return self.client.portal

    def session(self) -> Session:
        """A session on the service's database (objects stay readable after commit)."""
        return Session(self.engine, expire_on_commit=False)

    def publish(self, data: EventData, *, envelope: Envelope[Any] | None = None, msg_id: str | None = None) -> Any:
        """Publish an event over the app's own JetStream connection, the way a producer's relay does."""
        env = envelope or new_event(data, producer="tests")
        headers = {"Nats-Msg-Id": msg_id or env.id}
        self.portal.call(self._publish, env.subject, encode_event(env), headers)
        return env

    async def _publish(self, subject: str, payload: bytes, headers: dict[str, str]) -> None:
        await self.app.state.js.publish(subject, payload, headers=headers)

    def drained(self, event_type: str) -> bool:
        """True once the consumer of `event_type` has every published event delivered and acknowledged."""
        spec = ConsumerSpec(service=self.settings.service_name, event_type=event_type, handler=lambda s, e: None)
        try:
            info = self.portal.call(self.app.state.js.consumer_info, spec.stream, spec.name)
        except nats.js.errors.NotFoundError:
            return False  # the app's consumer loop has not created its durable consumer yet
        return info.num_pending == 0 and info.num_ack_pending == 0

    def wait_until_handled(self, event_type: str, *, timeout_s: float = 10.0) -> None:
        """Wait until the service's consumer of `event_type` has handled everything published to it."""
        wait_for(lambda: self.drained(event_type), timeout_s=timeout_s, message=f"{event_type} not handled in time")

    def headers(self, user_id: int) -> dict[str, str]:
        """An Authorization header with a fresh access token for `user_id`."""
        return self.tokens.headers(user_id)


@contextmanager
def running_service(
    app: FastAPI,
    settings: ServiceSettings,
    *,
    tokens: TokenIssuer | None = None,
    purge: bool = True,
    base_url: str = "http://testserver",
) -> Iterator[RunningService]:
    """Run `app` inside its lifespan; its token verifier trusts `tokens` (a fresh issuer by default)."""
    if purge:
        asyncio.run(purge_streams(settings.nats_url))
    tokens = tokens or TokenIssuer(issuer=settings.jwt_issuer, audience=settings.jwt_audience)
    app.state.token_verifier.jwks.set_keys(tokens.jwks)
    with TestClient(app, base_url=base_url) as client:
        yield RunningService(app=app, client=client, settings=settings, tokens=tokens)


def load_test_module(name: str, path: Path) -> ModuleType:
    """Import a service's tests/factories.py (or similar) under a private module name, once.

    Every service has a tests/factories.py; importing each as `factories` would make them shadow each other.
    """
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]
