"""Operators' gauges stay true in faults: the outbox backlog while the bus is down, consumers while one is down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.aio.client import Client
from prometheus_client import REGISTRY
from sqlalchemy.engine import Engine

from pawgle.common.bus.connection import connect_bus
from pawgle.common.bus.consumer import ConsumerRunner
from pawgle.common.bus.gauges import EVENTS_DROPPED, BusGauges, consumer_states, record_dropped
from pawgle.common.bus.relay import OutboxRelay, outbox_backlog
from pawgle.common.bus.streams import ensure_streams
from pawgle.common.natsserver import NatsServer
from pawgle.common.testing.probe import probe_consumer, publish_pings, tally_count
from pawgle.common.workers import WorkerSet

from .busutil import wait_until


def gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


@pytest.fixture
async def own_server(tmp_path: Path) -> AsyncIterator[NatsServer]:
    """A nats-server of this test's own, since the test kills it."""
    server = NatsServer(tmp_path / "js", log_file=tmp_path / "nats.log").start()
    yield server
    server.stop()


async def test_the_backlog_gauge_equals_the_real_backlog_while_the_bus_is_down(
    engine: Engine, own_server: NatsServer, service_name: str
) -> None:
    nc: Client = await connect_bus(own_server.url, name="gauge-test")
    await ensure_streams(nc.jetstream())
    relay = OutboxRelay(engine, nc.jetstream(timeout=1), service=service_name, publish_timeout_s=0.5)
    relay.gauge_interval_s = 0.1
    workers = WorkerSet()
    workers.start(relay)
    try:
        publish_pings(engine, ["before-1", "before-2"], producer="test")
        await wait_until(lambda: outbox_backlog(engine) == 0, timeout_s=20)
        await asyncio.to_thread(own_server.kill)
        for batch in range(3):
            publish_pings(engine, [f"down-{batch}-{i}" for i in range(7)], producer="test")
            expected = 7 * (batch + 1)
            assert outbox_backlog(engine) == expected
            await wait_until(lambda n=expected: gauge("pawgle_outbox_backlog", service=service_name) == n, timeout_s=15)
        await asyncio.to_thread(own_server.start)
        await wait_until(lambda: outbox_backlog(engine) == 0, timeout_s=30)
        await wait_until(lambda: gauge("pawgle_outbox_backlog", service=service_name) == 0, timeout_s=15)
    finally:
        await workers.stop(timeout_s=5)
        await nc.close()


async def test_consumer_counts_are_reported_while_the_consumer_is_down(
    engine: Engine, nc: Client, service_name: str
) -> None:
    spec = probe_consumer(service_name)
    runner = ConsumerRunner(engine, nc, spec)
    workers = WorkerSet()
    workers.start(runner)
    relay = OutboxRelay(engine, nc.jetstream(), service=service_name)
    publish_pings(engine, ["seen"], producer="test")
    assert await relay.publish_pending() == 1
    await wait_until(lambda: tally_count(engine) >= 1, timeout_s=20)
    await workers.stop(timeout_s=5)  # the consumer is down from here on
    publish_pings(engine, [f"waiting-{i}" for i in range(4)], producer="test")
    assert await relay.publish_pending() == 4
    (state,) = await consumer_states(nc.jetstream(), [spec])
    assert state.exists
    assert state.pending == 4
    assert state.ack_pending == 0
    assert state.last_delivery is not None
    await BusGauges(engine, nc.jetstream(), service=service_name, specs=[spec]).refresh()
    assert gauge("pawgle_consumer_pending", consumer=spec.name) == 4
    assert gauge("pawgle_consumer_ack_pending", consumer=spec.name) == 0
    assert gauge("pawgle_consumer_redelivered", consumer=spec.name) == 0
    assert gauge("pawgle_outbox_backlog", service=service_name) == 0


def test_an_event_dropped_on_purpose_is_a_warning_with_its_reason_and_a_metric(
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = EVENTS_DROPPED.labels("auth.magic_link_requested", "link expired")._value.get()
    with caplog.at_level("WARNING"):
        record_dropped("auth.magic_link_requested", "link expired", event_id="01TEST")
    assert EVENTS_DROPPED.labels("auth.magic_link_requested", "link expired")._value.get() == before + 1
    (record,) = [r for r in caplog.records if r.name == "pawgle.common.bus.gauges"]
    assert record.levelname == "WARNING"
    assert "link expired" in record.getMessage()


async def test_the_ops_cli_shows_each_consumers_pending_ack_pending_redelivered_and_last_delivery(
    own_server: NatsServer, tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    from pawgle.common.bus.consumer import ConsumerSpec
    from pawgle.common.events import encode_event, new_event
    from pawgle.common.events.auth import UserDeleted

    nc = await connect_bus(own_server.url, name="ops-test")
    js = nc.jetstream()
    await ensure_streams(js)
    spec = ConsumerSpec(service="notifier", event_type="user.deleted", handler=lambda s, e: None)
    runner = ConsumerRunner(engine=None, nc=nc, spec=spec)  # type: ignore[arg-type]  # only its config is used
    await js.add_consumer(spec.stream, runner.consumer_config())
    for user_id in (1, 2, 3):
        await js.publish("user.deleted", encode_event(new_event(UserDeleted(user_id=user_id), producer="test")))
    sub = await js.pull_subscribe_bind(durable=spec.name, stream=spec.stream)
    (in_flight,) = await sub.fetch(1, timeout=5)  # delivered, not acknowledged
    env = {**os.environ, "PAWGLE_DATA_DIR": str(tmp_path), "PAWGLE_NATS_URL": own_server.url}
    listed = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "pawgle.common.ops", "notifier", "consumers"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    await in_flight.ack()
    await nc.close()
    assert listed.returncode == 0, listed.stderr
    lines = {line.split("\t")[0]: line.split("\t") for line in listed.stdout.splitlines()}
    assert lines["consumer"][3:] == ["pending", "ack_pending", "redelivered", "last_delivery"]
    name, event, stream, pending, ack_pending, redelivered, last = lines["notifier-user-deleted"]
    assert (event, stream, pending, ack_pending, redelivered) == ("user.deleted", "USERS", "2", "1", "0")
    assert last.endswith("Z")
    assert "not created yet" in lines["notifier-report-filed"][3]
