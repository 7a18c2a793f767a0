from __future__ import annotations

import asyncio

from nats.aio.client import Client
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from pawgle.common.bus.outbox import add_event
from pawgle.common.bus.relay import OutboxRelay, republish_since
from pawgle.common.bus.tables import OutboxEvent, utcnow
from pawgle.common.events.mesh import Pinged
from pawgle.common.testing.probe import publish_pings

from .busutil import stop, stream_event_ids, wait_until


def pending_count(engine: Engine) -> int:
    with Session(engine) as session:
        return len(session.exec(select(OutboxEvent).where(OutboxEvent.published_at == None)).all())  # noqa: E711


async def test_a_rolled_back_transaction_publishes_nothing(engine: Engine, nc: Client) -> None:
    with Session(engine) as session:
        add_event(session, Pinged(key="never"), producer="test")
        session.rollback()
    publish_pings(engine, ["kept"])
    relay = OutboxRelay(engine, nc.jetstream(), service="test")
    assert await relay.publish_pending() == 1
    assert await relay.publish_pending() == 0
    ids = await stream_event_ids(nc)
    assert len(ids) == 1


async def test_events_committed_before_a_crash_are_published_after_restart(engine: Engine, nc: Client) -> None:
    # The process "died" right after commit: rows are in the outbox and no relay ever ran.
    publish_pings(engine, [f"k{i}" for i in range(25)], per_transaction=5)
    assert pending_count(engine) == 25
    relay = OutboxRelay(engine, nc.jetstream(), service="test")
    task = asyncio.create_task(relay.run())
    try:
        await wait_until(lambda: pending_count(engine) == 0)
    finally:
        await stop(task)
    assert len(await stream_event_ids(nc)) == 25


async def test_a_relay_that_died_holding_a_lease_is_taken_over(engine: Engine, nc: Client) -> None:
    publish_pings(engine, ["a", "b", "c"])
    dead = OutboxRelay(engine, nc.jetstream(), service="test")
    claimed = await asyncio.to_thread(dead._claim_batch)  # claimed, then the process vanished
    assert len(claimed) == 3
    survivor = OutboxRelay(engine, nc.jetstream(), service="test")
    assert await survivor.publish_pending() == 0  # the lease still holds
    with Session(engine) as session:  # let the lease run out
        for row in session.exec(select(OutboxEvent)).all():
            row.lease_until = utcnow()
            session.add(row)
        session.commit()
    assert await survivor.publish_pending() == 3
    assert len(await stream_event_ids(nc)) == 3


async def test_two_relays_publish_every_event_exactly_once(engine: Engine, nc: Client) -> None:
    relays = [OutboxRelay(engine, nc.jetstream(), service="test", batch_size=16) for _ in range(2)]
    tasks = [asyncio.create_task(r.run()) for r in relays]
    try:
        await asyncio.to_thread(publish_pings, engine, [f"e{i}" for i in range(300)], per_transaction=3)
        await wait_until(lambda: pending_count(engine) == 0)
    finally:
        await stop(*tasks)
    ids = await stream_event_ids(nc)
    assert len(ids) == 300
    assert len(set(ids)) == 300


async def test_republishing_a_window_is_deduplicated_by_jetstream(engine: Engine, nc: Client) -> None:
    publish_pings(engine, ["x", "y"])
    relay = OutboxRelay(engine, nc.jetstream(), service="test")
    await relay.publish_pending()
    assert republish_since(engine, utcnow().replace(year=2000)) == 2
    assert await relay.publish_pending() == 2
    assert len(await stream_event_ids(nc)) == 2


async def test_commit_wakes_the_relay_without_waiting_for_the_poll(engine: Engine, nc: Client) -> None:
    relay = OutboxRelay(engine, nc.jetstream(), service="test", poll_interval_s=30.0)
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(0.2)  # the relay is now asleep for up to 30 s
        publish_pings(engine, ["wake"])
        await wait_until(lambda: pending_count(engine) == 0, timeout_s=5.0)
    finally:
        await stop(task)
