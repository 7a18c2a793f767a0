"""The typed handler registry: dispatch by event class, mistakes refused when the module is imported."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from pawgle.common.app import create_service_app
from pawgle.common.bus.consumer import Delivery, Outcome, handle_delivery
from pawgle.common.bus.handlers import EventHandlers
from pawgle.common.bus.outbox import add_event
from pawgle.common.config import ServiceSettings
from pawgle.common.events import encode_event, new_event
from pawgle.common.events.auth import UserDeleted
from pawgle.common.events.envelope import EventData
from pawgle.common.events.mesh import Pinged
from pawgle.common.testing.probe import MIGRATIONS, ProbeTally, tallies


def counting_registry(service: str, seen: list[dict[str, Any]]) -> EventHandlers:
    handlers = EventHandlers(service)

    @handlers.on(Pinged)
    def count_ping(session: Session, data: Pinged, event_id: str, occurred_at: datetime, settings: Any) -> None:
        seen.append({"data": data, "event_id": event_id, "occurred_at": occurred_at, "settings": settings})
        row = session.get(ProbeTally, data.key) or ProbeTally(key=data.key, hits=0)
        row.hits += 1
        session.add(row)

    return handlers


def test_a_handler_receives_the_typed_payload_and_the_envelope_metadata_it_asks_for(engine: Engine) -> None:
    seen: list[dict[str, Any]] = []
    (spec,) = counting_registry("typed", seen).consumer_specs(settings="the settings")
    assert spec.name == "typed-mesh-pinged"
    assert spec.event_type == "mesh.pinged"
    envelope = new_event(Pinged(key="typed-1"), producer="test")
    delivery = Delivery(encode_event(envelope), {}, "mesh.pinged", 1, 1)
    assert handle_delivery(engine, spec, delivery) is Outcome.HANDLED
    assert handle_delivery(engine, spec, delivery) is Outcome.DUPLICATE
    (call,) = seen
    assert call["data"] == Pinged(key="typed-1")
    assert isinstance(call["data"], Pinged)
    assert call["event_id"] == envelope.id
    assert call["occurred_at"] == envelope.occurred_at
    assert call["settings"] == "the settings"
    assert tallies(engine)["typed-1"] == 1


def test_one_function_may_handle_several_events_each_with_its_own_consumer() -> None:
    handlers = EventHandlers("multi")

    @handlers.on(Pinged, UserDeleted)
    def either(data: Pinged | UserDeleted) -> None:
        """Does nothing."""

    assert sorted(spec.name for spec in handlers.consumer_specs()) == ["multi-mesh-pinged", "multi-user-deleted"]


def test_a_second_handler_for_the_same_event_is_refused_at_declaration() -> None:
    handlers = EventHandlers("dup")

    @handlers.on(Pinged)
    def first(data: Pinged) -> None:
        """The one handler."""

    with pytest.raises(ValueError, match="already handled by"):

        @handlers.on(Pinged)
        def second(data: Pinged) -> None:
            """A second one."""


def test_a_class_that_is_not_a_registered_event_is_refused() -> None:
    class NeverRegistered(EventData):
        event_type = "mesh.never_registered"

    handlers = EventHandlers("unknown")
    with pytest.raises(TypeError, match="not a registered event"):
        handlers.on(NeverRegistered)
    with pytest.raises(TypeError, match="not an event class"):
        handlers.on(dict)  # type: ignore[arg-type]


def test_a_parameter_nobody_supplies_is_refused_at_declaration() -> None:
    handlers = EventHandlers("params")
    with pytest.raises(TypeError, match="nothing supplies parameter 'mailer'"):

        @handlers.on(Pinged)
        def needs_a_mailer(data: Pinged, mailer: object) -> None:
            """Cannot be satisfied."""


@pytest.fixture
def registry_app(database_url: str, nats_url: str, data_dir: Path, service_name: str) -> Iterator[TestClient]:
    settings = ServiceSettings(
        service_name=service_name, database_url=database_url, nats_url=nats_url, data_dir=data_dir, environment="test"
    )
    app = create_service_app(
        settings, title="registry", migrations=MIGRATIONS, handlers=counting_registry(service_name, [])
    )
    with TestClient(app) as client:
        yield client


def test_create_service_app_runs_the_registry_as_durable_consumers(registry_app: TestClient, service_name: str) -> None:
    engine = registry_app.app.state.engine  # type: ignore[attr-defined]
    key = f"through-the-app-{service_name}"
    with Session(engine) as session:
        envelope = add_event(session, Pinged(key=key))  # the producer comes from the app's engine
        session.commit()
    assert envelope.producer == service_name
    deadline = time.monotonic() + 20
    while tallies(engine).get(key) != 1:
        assert time.monotonic() < deadline, "the registry's consumer never handled the event"
        time.sleep(0.05)
    consumers = registry_app.app.state.consumer_factory(registry_app.app)  # type: ignore[attr-defined]
    assert [spec.name for spec in consumers] == [f"{service_name}-mesh-pinged"]


def test_add_event_outside_a_service_app_needs_a_producer(engine: Engine) -> None:
    with Session(engine) as session, pytest.raises(ValueError, match="no producer"):
        add_event(session, Pinged(key="anonymous"))
