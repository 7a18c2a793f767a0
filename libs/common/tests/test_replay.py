from __future__ import annotations

import asyncio

from nats.aio.client import Client
from sqlalchemy.engine import Engine
from sqlmodel import Session, delete

from pawgle.common.bus.consumer import ConsumerRunner
from pawgle.common.bus.relay import OutboxRelay
from pawgle.common.bus.replay import replay
from pawgle.common.db import make_engine
from pawgle.common.testing.probe import (
    ProbeTally,
    migrate_probe_db,
    probe_consumer,
    publish_pings,
    tallies,
    tally_count,
)

from .busutil import stop, wait_until


async def test_replay_into_a_fresh_projection_matches_the_live_one(
    engine: Engine, nc: Client, service_name: str, tmp_path
) -> None:
    spec = probe_consumer(service_name)
    tasks = [
        asyncio.create_task(OutboxRelay(engine, nc.jetstream(), service="test").run()),
        asyncio.create_task(ConsumerRunner(engine, nc, spec).run()),
    ]
    try:
        publish_pings(engine, [f"r{i}" for i in range(120)], per_transaction=12)
        await wait_until(lambda: tally_count(engine) == 120)
    finally:
        await stop(*tasks)
    live = tallies(engine)

    fresh_url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    fresh = make_engine(fresh_url)
    migrate_probe_db(fresh_url, fresh)
    progress: list[tuple[int, int]] = []
    report = await replay(fresh, nc, spec, from_seq=1, progress=lambda done, total: progress.append((done, total)))
    assert tallies(fresh) == live
    assert report.seen == 120
    assert progress[-1] == (120, 120)
    fresh.dispose()


async def test_replaying_into_the_live_consumer_has_no_double_effects(
    engine: Engine, nc: Client, service_name: str
) -> None:
    spec = probe_consumer(service_name)
    publish_pings(engine, [f"d{i}" for i in range(30)])
    await OutboxRelay(engine, nc.jetstream(), service="test").publish_pending()
    first = await replay(engine, nc, spec, from_seq=1)
    again = await replay(engine, nc, spec, from_seq=1)
    assert first.outcomes == {"handled": 30}
    assert again.outcomes == {"duplicate": 30}
    assert set(tallies(engine).values()) == {1}


async def test_a_projection_lost_and_replayed_under_a_new_inbox_is_rebuilt(
    engine: Engine, nc: Client, service_name: str
) -> None:
    spec = probe_consumer(service_name)
    publish_pings(engine, [f"l{i}" for i in range(10)])
    await OutboxRelay(engine, nc.jetstream(), service="test").publish_pending()
    await replay(engine, nc, spec, from_seq=1)
    with Session(engine) as session:  # the projection is lost (e.g. a new index), the inbox remains
        session.execute(delete(ProbeTally))
        session.commit()
    report = await replay(engine, nc, spec, from_seq=1, inbox_name=f"{spec.name}-rebuild")
    assert report.outcomes == {"handled": 10}
    assert len(tallies(engine)) == 10
