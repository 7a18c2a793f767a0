"""Fixtures: the chat service running on a real bus and a real database (harness: pawgle.common.testing)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pawgle.chat.config import Settings
from pawgle.chat.main import create_app
from pawgle.common.testing.server import serve
from pawgle.common.testing.service import RunningService, load_test_module, running_service, service_settings

factories = load_test_module("pawgle_chat_test_factories", Path(__file__).with_name("factories.py"))


@pytest.fixture
def settings_factory(database_url: str, nats_url: str, data_dir: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        fields: dict[str, Any] = {
            "public_base_url": "http://media.test",
            "consumer_max_deliveries": 5,
            **overrides,
        }
        return service_settings(Settings, database_url=database_url, nats_url=nats_url, data_dir=data_dir, **fields)

    return make


@pytest.fixture
def chat(settings_factory: Callable[..., Settings]) -> Iterator[RunningService]:
    """The full chat service: API and consumers on the bus."""
    with running_service(create_app(settings_factory()), settings_factory()) as running:
        yield running


STREAM_SECRET = "stream-ticket-secret-for-tests-0123456789"


@pytest.fixture
def two_processes(settings_factory: Callable[..., Settings]) -> Iterator[tuple[RunningService, str]]:
    """Two chat processes on one database and one bus: the first in a test client, the second over HTTP."""
    settings = settings_factory(stream_ticket_secret=STREAM_SECRET)
    with running_service(create_app(settings), settings) as first:
        second = create_app(settings_factory(stream_ticket_secret=STREAM_SECRET))
        second.state.token_verifier.jwks.set_keys(first.tokens.jwks)
        with serve(second) as url:
            yield first, url
            factories.hang_up()  # an open stream would hold the servers' shutdown
