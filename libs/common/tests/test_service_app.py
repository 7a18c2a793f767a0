"""A service assembled by create_service_app: health, readiness, JSON errors, metrics, outbox to consumer."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from pawgle.common.app import create_service_app
from pawgle.common.auth import CurrentUserId
from pawgle.common.bus.outbox import add_event
from pawgle.common.config import ServiceSettings
from pawgle.common.db import SessionDep
from pawgle.common.errors import NotFound
from pawgle.common.events.mesh import Pinged
from pawgle.common.natsserver import NatsServer
from pawgle.common.testing.probe import MIGRATIONS, probe_consumer, tallies


class ItemCreate(BaseModel):
    name: str = Field(min_length=1, max_length=10)
    count: int = Field(ge=0)


def toy_router() -> APIRouter:
    router = APIRouter()

    @router.get("/items/{item_id}/")
    def read_item(item_id: int) -> dict[str, int]:
        """An item that never exists."""
        raise NotFound("Item not found.")

    @router.post("/items/")
    def create_item(item: ItemCreate) -> dict[str, str]:
        """Validation only."""
        return {"name": item.name}

    @router.post("/boom/")
    def boom() -> None:
        """An unexpected failure."""
        raise RuntimeError("secret internals /etc/passwd")

    @router.get("/me/")
    def me(user_id: CurrentUserId) -> dict[str, int]:
        """Needs a valid access token."""
        return {"user_id": user_id}

    @router.post("/pings/{key}/")
    def ping(key: str, session: SessionDep) -> dict[str, str]:
        """Announce a ping through the outbox."""
        add_event(session, Pinged(key=key, sent_at_ns=time.time_ns()), producer="toy")
        return {"key": key}

    return router


def toy_app(database_url: str, nats_url: str, data_dir: Path, service: str) -> FastAPI:
    settings = ServiceSettings(
        service_name=service, database_url=database_url, nats_url=nats_url, data_dir=data_dir, environment="test"
    )
    return create_service_app(
        settings,
        title="toy",
        routers=[toy_router()],
        migrations=MIGRATIONS,
        consumers=lambda app: [probe_consumer(service)],
    )


@pytest.fixture
def client(database_url: str, nats_url: str, data_dir: Path, service_name: str) -> Iterator[TestClient]:
    with TestClient(toy_app(database_url, nats_url, data_dir, service_name), raise_server_exceptions=False) as c:
        yield c


def assert_error_body(body: dict[str, object]) -> None:
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert body["error"]
    assert body["message"]


def test_liveness_and_readiness(client: TestClient) -> None:
    alive = client.get("/healthz")
    assert alive.json() == {"status": "ok"}
    assert alive.headers["content-type"] == "application/json; charset=utf-8"
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "bus": "ok", "workers": "ok"}


def test_unknown_routes_and_methods_answer_json(client: TestClient) -> None:
    missing = client.get("/nope/")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/json; charset=utf-8"
    assert_error_body(missing.json())
    wrong_method = client.delete("/items/")
    assert wrong_method.status_code == 405
    assert_error_body(wrong_method.json())


def test_invalid_input_gets_a_400_that_names_the_field(client: TestClient) -> None:
    response = client.post("/items/", json={"name": "", "count": -1})
    assert response.status_code == 400
    body = response.json()
    assert_error_body(body)
    assert "name" in body
    assert "count" in body
    assert "name" in body["detail"]
    not_json = client.post("/items/", content=b"{broken", headers={"content-type": "application/json"})
    assert not_json.status_code == 400
    assert client.get("/items/abc/").status_code == 400


def test_an_unexpected_error_is_a_generic_json_500(client: TestClient) -> None:
    response = client.post("/boom/")
    assert response.status_code == 500
    assert_error_body(response.json())
    assert "passwd" not in response.text
    assert "RuntimeError" not in response.text


@pytest.mark.parametrize("header", [None, "Bearer null", "Bearer undefined", "Bearer abc.def.ghi", "Basic x"])
def test_protected_routes_answer_401_with_www_authenticate(client: TestClient, header: str | None) -> None:
    response = client.get("/me/", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert_error_body(response.json())


def test_metrics_are_labelled_by_route_template(client: TestClient) -> None:
    client.get("/items/7/")
    metrics = client.get("/metrics").text
    assert 'route="/items/{item_id}/"' in metrics
    assert 'route="/items/7/"' not in metrics
    assert "pawgle_http_request_duration_seconds_bucket" in metrics


def test_an_event_written_by_a_route_reaches_the_consumer(client: TestClient, service_name: str) -> None:
    # The probe stream is shared by the session: a key of this test's own, so only its event counts.
    key = f"hello-{service_name}"
    assert client.post(f"/pings/{key}/").status_code == 200
    engine = client.app.state.engine  # type: ignore[attr-defined]
    deadline = time.monotonic() + 20
    while tallies(engine).get(key) != 1:
        assert time.monotonic() < deadline, "the ping never reached the consumer"
        time.sleep(0.05)


def test_readiness_reports_a_lost_bus(database_url: str, data_dir: Path, tmp_path: Path, service_name: str) -> None:
    server = NatsServer(tmp_path / "js").start()
    try:
        with TestClient(toy_app(database_url, server.url, data_dir, service_name)) as c:
            assert c.get("/readyz").status_code == 200
            server.kill()
            response = c.get("/readyz")
            assert response.status_code == 503
            assert response.json()["checks"]["bus"].startswith("failed")
            server.start()
            deadline = time.monotonic() + 20
            while c.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, "never became ready again after the bus came back"
                time.sleep(0.2)
    finally:
        server.stop()


def test_the_ops_cli_migrates_and_lists(nats_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "PAWGLE_DATA_DIR": str(tmp_path), "PAWGLE_NATS_URL": nats_url}
    ops = [sys.executable, "-m", "pawgle.common.ops", "pets"]
    migrated = subprocess.run([*ops, "migrate"], env=env, capture_output=True, text=True, timeout=60)
    assert migrated.returncode == 0, migrated.stderr
    assert "database at head" in migrated.stdout
    assert (tmp_path / "pets" / "db.sqlite3").exists()
    listed = subprocess.run([*ops, "dead-letters", "list"], env=env, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    unknown = subprocess.run(
        [*ops, "replay", "nope", "--from-seq", "1"], env=env, capture_output=True, text=True, timeout=60
    )
    assert unknown.returncode == 2
    assert "unknown consumer" in unknown.stdout


def test_one_trace_runs_from_the_request_through_the_consumer(client: TestClient) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(exporter))  # type: ignore[attr-defined]
    trace_id = secrets.token_hex(16)  # this test's own trace: the probe stream also holds earlier tests' events
    response = client.post("/pings/traced/", headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
    assert response.status_code == 200

    def consumer_spans_of_this_trace() -> list[object]:
        return [
            s
            for s in exporter.get_finished_spans()
            if s.name == "consume mesh.pinged" and format(s.context.trace_id, "032x") == trace_id
        ]

    deadline = time.monotonic() + 20
    while not consumer_spans_of_this_trace():
        assert time.monotonic() < deadline, "the consumer's span is not part of the request's trace"
        time.sleep(0.05)
    server_spans = [
        s
        for s in exporter.get_finished_spans()
        if s.kind == trace.SpanKind.SERVER and format(s.context.trace_id, "032x") == trace_id
    ]
    assert [s.name for s in server_spans] == ["POST /pings/{key}/"]


def test_metrics_show_dead_letters_and_consumer_lag(client: TestClient, service_name: str) -> None:
    key = f"counted-{service_name}"
    client.post(f"/pings/{key}/")
    engine = client.app.state.engine  # type: ignore[attr-defined]
    deadline = time.monotonic() + 20
    while tallies(engine).get(key) != 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    metrics = client.get("/metrics").text
    assert "pawgle_consumer_pending{" in metrics
    assert "pawgle_events_handled_total{" in metrics


def test_a_serving_process_freezes_its_startup_heap(database_url: str, nats_url: str, data_dir: Path) -> None:
    """With settle_heap (every deployed process), startup's objects leave the collector's sight."""
    import gc

    settings = ServiceSettings(
        service_name="settled", database_url=database_url, nats_url=nats_url, data_dir=data_dir, settle_heap=True
    )
    threshold = gc.get_threshold()
    try:
        with TestClient(create_service_app(settings, title="settled", migrations=MIGRATIONS)) as client:
            assert client.get("/healthz").status_code == 200
            assert gc.get_freeze_count() > 10_000
            assert gc.get_threshold()[0] == 10_000
    finally:
        gc.unfreeze()  # this test process goes on starting apps
        gc.set_threshold(*threshold)
    assert ServiceSettings(service_name="x").settle_heap is False  # the test plugin's default, from the env
