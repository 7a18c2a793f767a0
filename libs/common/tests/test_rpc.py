"""Request-reply over the real nats-server: an answer, errors in the shared shape, timeouts that never hang."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client
from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine
from sqlmodel import Session

from pawgle.common.bus.rpc import Endpoint, NoResponder, RemoteError, RequestTimeout, Responders, call
from pawgle.common.errors import AppError, NotFound
from pawgle.common.testing.probe import ProbeTally
from pawgle.common.workers import WorkerSet


class CountQuery(BaseModel):
    key: str = Field(min_length=1, max_length=64)
    delay_s: float = 0.0


class CountAnswer(BaseModel):
    key: str
    hits: int


def endpoint(service: str, name: str = "count", timeout_s: float = 2.0) -> Endpoint[CountQuery, CountAnswer]:
    return Endpoint(f"rpc.{service}.{name}", request=CountQuery, response=CountAnswer, timeout_s=timeout_s)


def responders_for(service: str) -> tuple[Responders, Endpoint[CountQuery, CountAnswer]]:
    responders = Responders(service)
    count = endpoint(service)

    @responders.answer(count)
    def answer_count(session: Session, request: CountQuery) -> CountAnswer:
        if request.delay_s:
            time.sleep(request.delay_s)
        if request.key == "boom":
            raise RuntimeError("secret internals")
        row = session.get(ProbeTally, request.key)
        if row is None:
            raise NotFound(f"No tally for {request.key}.", key=request.key)
        return CountAnswer(key=row.key, hits=row.hits)

    return responders, count


@pytest.fixture
async def answering(engine: Engine, nc: Client, service_name: str) -> AsyncIterator[Endpoint[CountQuery, CountAnswer]]:
    with Session(engine) as session:
        session.add(ProbeTally(key="rex", hits=3))
        session.commit()
    responders, count = responders_for(service_name)
    workers = WorkerSet()
    answering = responders.workers(nc, engine=engine)
    for responder in answering:
        workers.start(responder)
    await asyncio.wait_for(asyncio.gather(*(r.subscribed.wait() for r in answering)), timeout=5)
    yield count
    await workers.stop(timeout_s=5)


async def test_a_request_gets_its_typed_answer(nc: Client, answering: Endpoint[CountQuery, CountAnswer]) -> None:
    answer = await call(nc, answering, CountQuery(key="rex"))
    assert answer == CountAnswer(key="rex", hits=3)


async def test_an_app_error_comes_back_in_the_shared_error_shape(
    nc: Client, answering: Endpoint[CountQuery, CountAnswer]
) -> None:
    with pytest.raises(RemoteError) as caught:
        await call(nc, answering, CountQuery(key="nobody"))
    assert isinstance(caught.value, AppError)
    assert caught.value.status_code == 404
    assert caught.value.detail == "No tally for nobody."
    assert caught.value.extra == {"key": "nobody"}


async def test_an_unexpected_failure_is_a_generic_500(nc: Client, answering: Endpoint[CountQuery, CountAnswer]) -> None:
    with pytest.raises(RemoteError) as caught:
        await call(nc, answering, CountQuery(key="boom"))
    assert caught.value.status_code == 500
    assert "secret" not in caught.value.detail


async def test_an_invalid_request_is_a_400_naming_the_field(
    nc: Client, answering: Endpoint[CountQuery, CountAnswer]
) -> None:
    reply = await nc.request(answering.subject, b'{"key": ""}', timeout=2)
    assert reply.headers is not None
    assert reply.headers["Pawgle-Status"] == "400"
    assert b"key" in reply.data


async def test_nobody_answering_is_a_clear_error_at_once(nc: Client, service_name: str) -> None:
    started = time.monotonic()
    with pytest.raises(NoResponder) as caught:
        await call(nc, endpoint(service_name, "absent", timeout_s=5), CountQuery(key="rex"))
    assert caught.value.status_code == 503
    assert time.monotonic() - started < 2, "no responder is known at once, not after the timeout"


async def test_a_slow_answer_is_a_timeout_not_a_hang(nc: Client, answering: Endpoint[CountQuery, CountAnswer]) -> None:
    started = time.monotonic()
    with pytest.raises(RequestTimeout) as caught:
        await call(nc, answering, CountQuery(key="rex", delay_s=1.5), timeout_s=0.3)
    assert caught.value.status_code == 504
    assert "0.3 s" in caught.value.detail
    assert time.monotonic() - started < 1.2
    assert await call(nc, answering, CountQuery(key="rex")) == CountAnswer(key="rex", hits=3)


async def test_the_answer_joins_the_callers_trace(nc: Client, answering: Endpoint[CountQuery, CountAnswer]) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(TracerProvider())  # what setup_telemetry does in a service
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with trace.get_tracer("test").start_as_current_span("caller") as caller:
        await call(nc, answering, CountQuery(key="rex"))
    trace_id = caller.get_span_context().trace_id
    answers = [s for s in exporter.get_finished_spans() if s.name == f"answer {answering.subject}"]
    assert answers
    assert answers[-1].context.trace_id == trace_id


@pytest.mark.parametrize("subject", ["pets.find", "rpc.x", "report.filed"])
def test_request_subjects_never_land_in_an_event_stream(subject: str) -> None:
    with pytest.raises(ValueError, match="rpc|stream"):
        Endpoint(subject, request=CountQuery, response=CountAnswer)


def test_two_answers_for_one_subject_are_refused() -> None:
    responders, count = responders_for("twice")
    with pytest.raises(ValueError, match="already answered"):

        @responders.answer(count)
        def again(request: CountQuery) -> dict[str, Any]:
            return {}


def test_create_service_app_starts_the_responders_and_stops_them_with_the_app(
    database_url: str, nats_url: str, data_dir: Path, service_name: str
) -> None:
    from fastapi.testclient import TestClient

    from pawgle.common.app import create_service_app
    from pawgle.common.config import ServiceSettings
    from pawgle.common.testing.probe import MIGRATIONS

    responders, count = responders_for(service_name)
    settings = ServiceSettings(
        service_name=service_name, database_url=database_url, nats_url=nats_url, data_dir=data_dir, environment="test"
    )
    app = create_service_app(settings, title="answers", migrations=MIGRATIONS, responders=responders)
    with TestClient(app) as client:
        with Session(app.state.engine) as session:
            session.add(ProbeTally(key="app-rex", hits=2))
            session.commit()
        assert f"answer-{count.subject}" in app.state.workers.tasks
        answer = client.portal.call(call, app.state.nc, count, CountQuery(key="app-rex"))  # type: ignore[union-attr]
        assert answer == CountAnswer(key="app-rex", hits=2)
        assert client.get("/readyz").json()["checks"]["workers"] == "ok"
    assert app.state.workers.tasks[f"answer-{count.subject}"].done()
