"""The event path under broker crashes: nothing lost, nothing applied twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.aio.client import Client
from sqlalchemy.engine import Engine

from pawgle.common.bus.connection import connect_bus
from pawgle.common.bus.consumer import ConsumerRunner
from pawgle.common.bus.relay import OutboxRelay
from pawgle.common.bus.streams import ensure_streams
from pawgle.common.natsserver import NatsServer
from pawgle.common.testing.probe import probe_consumer, publish_pings, tallies, tally_count

from .busutil import stop, wait_until


@pytest.fixture
async def own_server(tmp_path: Path) -> AsyncIterator[NatsServer]:
    """A nats-server of this test's own, since the test kills it."""
    server = NatsServer(tmp_path / "js", log_file=tmp_path / "nats.log").start()
    yield server
    server.stop()


async def test_events_survive_three_broker_kills(engine: Engine, own_server: NatsServer) -> None:
    nc: Client = await connect_bus(own_server.url, name="fault-test")
    await ensure_streams(nc.jetstream())
    relay = OutboxRelay(engine, nc.jetstream(timeout=2), service="test", publish_timeout_s=2)
    runner = ConsumerRunner(engine, nc, probe_consumer("faults"), stall_check_s=2.0)
    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(runner.run())]
    keys = [f"f{i}" for i in range(2000)]

    async def publish_slowly() -> None:
        for start in range(0, len(keys), 100):
            await asyncio.to_thread(publish_pings, engine, keys[start : start + 100], per_transaction=10)
            await asyncio.sleep(0.15)

    async def crash_the_broker_three_times() -> None:
        for _ in range(3):
            await asyncio.sleep(0.7)
            await asyncio.to_thread(own_server.kill)
            await asyncio.sleep(0.5)
            await asyncio.to_thread(own_server.start)

    try:
        await asyncio.gather(publish_slowly(), crash_the_broker_three_times())
        await wait_until(lambda: tally_count(engine) == len(keys), timeout_s=120, interval_s=0.25)
        await asyncio.sleep(1.0)  # anything redelivered late would land now
    finally:
        await stop(*tasks)
        await nc.close()
    counts = tallies(engine)
    assert len(counts) == len(keys)
    assert set(counts.values()) == {1}
