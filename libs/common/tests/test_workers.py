"""Declared workers: started with the app, woken by commits, stopped cleanly, and a dead one fails /readyz."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from pawgle.common.app import create_service_app
from pawgle.common.config import ServiceSettings
from pawgle.common.testing.probe import MIGRATIONS
from pawgle.common.workers import PeriodicJob, WakeableLoop, Worker, WorkerSet
from pawgle.common.workqueue import on_commit_wake, wake_after_commit


class Crashes:
    """A worker whose loop dies of a bug after a moment."""

    name = "crashes"

    def __init__(self) -> None:
        self.go = threading.Event()

    async def run(self) -> None:
        while not self.go.is_set():
            await asyncio.sleep(0.01)
        raise RuntimeError("a bug in the loop")

    def request_stop(self) -> None:
        """Nothing to finish."""


class SlowSteps:
    """A wakeable loop whose step runs in a thread and takes a while, counting what it finished."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.finished_items = 0
        self.loop = WakeableLoop("slow-steps", self.step, poll_interval_s=0.05)

    async def step(self) -> int:
        return await asyncio.to_thread(self._work)

    def _work(self) -> int:
        self.started.set()
        for _ in range(5):
            if self.loop.should_stop():
                break
            time.sleep(0.1)
            self.finished_items += 1
        return 1


def toy_settings(database_url: str, nats_url: str, data_dir: Path, service: str) -> ServiceSettings:
    return ServiceSettings(
        service_name=service, database_url=database_url, nats_url=nats_url, data_dir=data_dir, environment="test"
    )


@pytest.fixture
def toy(database_url: str, nats_url: str, data_dir: Path, service_name: str) -> Iterator[tuple[TestClient, dict]]:
    declared: dict[str, object] = {"ticks": 0, "crashes": Crashes(), "slow": SlowSteps()}

    def tick() -> None:
        declared["ticks"] = int(declared["ticks"]) + 1  # type: ignore[call-overload]

    def workers(app: FastAPI) -> list[Worker]:
        return [
            PeriodicJob("ticker", tick, every_s=0.05),
            declared["crashes"],  # type: ignore[list-item]
            declared["slow"].loop,  # type: ignore[attr-defined]
        ]

    app = create_service_app(
        toy_settings(database_url, nats_url, data_dir, service_name),
        title="workers",
        migrations=MIGRATIONS,
        workers=workers,
    )
    with TestClient(app) as client:
        yield client, declared


def test_declared_workers_start_with_the_app_and_readiness_reports_one_that_died(toy: tuple[TestClient, dict]) -> None:
    client, declared = toy
    deadline = time.monotonic() + 10
    while declared["ticks"] < 3:
        assert time.monotonic() < deadline, "the periodic job never ran"
        time.sleep(0.02)
    assert client.get("/readyz").json()["checks"]["workers"] == "ok"
    names = set(client.app.state.workers.tasks)  # type: ignore[attr-defined]
    assert {"outbox-relay", "bus-gauges", "ticker", "crashes", "slow-steps"} <= names
    declared["crashes"].go.set()
    deadline = time.monotonic() + 10
    while (response := client.get("/readyz")).status_code == 200:
        assert time.monotonic() < deadline, "a dead worker never showed in /readyz"
        time.sleep(0.02)
    assert response.status_code == 503
    assert response.json()["checks"]["workers"].startswith("failed")
    assert response.json()["checks"]["database"] == "ok"


def test_stopping_the_app_lets_a_threaded_step_finish_its_item_and_stops_every_loop(
    database_url: str, nats_url: str, data_dir: Path, service_name: str
) -> None:
    slow = SlowSteps()
    app = create_service_app(
        toy_settings(database_url, nats_url, data_dir, service_name),
        title="stop",
        migrations=MIGRATIONS,
        workers=lambda app: [slow.loop],
    )
    with TestClient(app):
        assert slow.started.wait(10)
        time.sleep(0.15)
    # The lifespan returned only after the thread saw the stop flag and finished the item in hand.
    items_at_stop = slow.finished_items
    time.sleep(0.3)
    assert slow.finished_items == items_at_stop, "the step's thread was still running after the app stopped"
    tasks = app.state.workers.tasks
    assert all(task.done() for task in tasks.values())
    assert not any(task.cancelled() for task in tasks.values()), "stopped by request, not by cancellation"


async def test_a_commit_that_adds_work_wakes_the_loop_at_once(engine: Engine) -> None:
    woken: list[float] = []

    async def step() -> int:
        woken.append(time.monotonic())
        return 0

    loop = WakeableLoop("woken", step, poll_interval_s=60)
    unsubscribe = on_commit_wake(engine, "test-topic", loop.wake)
    workers = WorkerSet()
    workers.start(loop)
    try:
        while not woken:
            await asyncio.sleep(0.01)
        with Session(engine) as session:
            wake_after_commit(session, "test-topic")
            session.rollback()  # a rolled-back transaction wakes nobody
        await asyncio.sleep(0.2)
        assert len(woken) == 1

        def commit_with_work() -> None:
            with Session(engine) as session:
                wake_after_commit(session, "test-topic")
                session.commit()

        committed_at = time.monotonic()
        await asyncio.to_thread(commit_with_work)
        while len(woken) < 2:
            assert time.monotonic() - committed_at < 2, "the commit did not wake the loop"
            await asyncio.sleep(0.01)
        assert woken[1] - committed_at < 1
    finally:
        unsubscribe()
        await workers.stop(timeout_s=5)


async def test_a_failing_step_is_retried_with_backoff_instead_of_ending_the_loop() -> None:
    calls: list[int] = []

    async def step() -> int:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("database hiccup")
        return 0

    loop = WakeableLoop("flaky", step, poll_interval_s=60)
    workers = WorkerSet()
    workers.start(loop)
    try:
        deadline = time.monotonic() + 5
        while len(calls) < 3:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        assert workers.dead() == []
    finally:
        await workers.stop(timeout_s=5)
