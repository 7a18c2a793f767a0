from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys

from nats.aio.client import Client
from sqlalchemy.engine import Engine

from pawgle.common.bus.consumer import ConsumerRunner, Outcome
from pawgle.common.bus.deadletters import discard_dead_letter, list_dead_letters, retry_dead_letter
from pawgle.common.bus.pull import PullFeed
from pawgle.common.bus.relay import OutboxRelay
from pawgle.common.events import encode_event, new_event
from pawgle.common.events.mesh import Pinged
from pawgle.common.testing.probe import FaultPlan, probe_consumer, publish_pings, tallies, tally_count

from .busutil import stop, wait_until


async def run_pipeline(engine: Engine, nc: Client, runner: ConsumerRunner) -> list[asyncio.Task[None]]:
    relay = OutboxRelay(engine, nc.jetstream(), service="test")
    return [asyncio.create_task(relay.run()), asyncio.create_task(runner.run())]


async def test_each_event_has_its_effect_once(engine: Engine, nc: Client, service_name: str) -> None:
    runner = ConsumerRunner(engine, nc, probe_consumer(service_name))
    tasks = await run_pipeline(engine, nc, runner)
    try:
        publish_pings(engine, [f"k{i}" for i in range(50)], per_transaction=10)
        await wait_until(lambda: tally_count(engine) == 50)
    finally:
        await stop(*tasks)
    assert set(tallies(engine).values()) == {1}


async def test_the_same_event_delivered_twice_has_one_effect(engine: Engine, nc: Client, service_name: str) -> None:
    js = nc.jetstream()
    envelope = new_event(Pinged(key="twice"), producer="test")
    # Two publishes with different message ids get past JetStream's de-duplication: a true redelivery.
    await js.publish("mesh.pinged", encode_event(envelope), headers={"Nats-Msg-Id": f"{service_name}-1"})
    await js.publish("mesh.pinged", encode_event(envelope), headers={"Nats-Msg-Id": f"{service_name}-2"})
    await js.publish("mesh.pinged", encode_event(new_event(Pinged(key="after"), producer="test")))
    runner = ConsumerRunner(engine, nc, probe_consumer(service_name))
    task = asyncio.create_task(runner.run())
    try:
        await wait_until(lambda: "after" in tallies(engine))
        await asyncio.sleep(0.3)
    finally:
        await stop(task)
    assert tallies(engine) == {"twice": 1, "after": 1}


async def test_a_failing_handler_is_retried_and_its_effect_happens_once(
    engine: Engine, nc: Client, service_name: str
) -> None:
    faults = FaultPlan(failures={"flaky": 2})
    runner = ConsumerRunner(engine, nc, probe_consumer(service_name, faults=faults))
    tasks = await run_pipeline(engine, nc, runner)
    try:
        publish_pings(engine, ["flaky", "steady"])
        await wait_until(lambda: tallies(engine).get("flaky") == 1, timeout_s=20)
    finally:
        await stop(*tasks)
    assert tallies(engine) == {"flaky": 1, "steady": 1}
    assert list_dead_letters(engine) == []


async def test_a_poison_event_is_parked_and_the_consumer_goes_on(engine: Engine, nc: Client, service_name: str) -> None:
    faults = FaultPlan(always={"poison"})
    spec = probe_consumer(service_name, faults=faults, max_deliveries=3)
    runner = ConsumerRunner(engine, nc, spec)
    tasks = await run_pipeline(engine, nc, runner)
    try:
        publish_pings(engine, ["poison"])
        publish_pings(engine, [f"ok{i}" for i in range(5)])
        await wait_until(lambda: len(list_dead_letters(engine)) == 1, timeout_s=20)
        await wait_until(lambda: tally_count(engine) == 5)
    finally:
        await stop(*tasks)
    (parked,) = list_dead_letters(engine)
    assert parked.consumer == spec.name
    assert parked.deliveries == 3
    assert "poison" in parked.error
    assert "poison" not in tallies(engine)

    # The operator fixes the cause and retries: the effect happens once and the letter is resolved.
    healed = probe_consumer(service_name)
    assert retry_dead_letter(engine, healed, parked.id or 0) is Outcome.HANDLED
    assert tallies(engine)["poison"] == 1
    assert list_dead_letters(engine) == []
    assert len(list_dead_letters(engine, include_resolved=True)) == 1


async def test_an_undecodable_message_is_parked_at_once(engine: Engine, nc: Client, service_name: str) -> None:
    await nc.jetstream().publish("mesh.pinged", b"{not json")
    runner = ConsumerRunner(engine, nc, probe_consumer(service_name))
    task = asyncio.create_task(runner.run())
    try:
        await wait_until(lambda: len(list_dead_letters(engine)) == 1)
    finally:
        await stop(task)
    (parked,) = list_dead_letters(engine)
    assert parked.deliveries == 1
    discard_dead_letter(engine, parked.id or 0)
    assert list_dead_letters(engine) == []


async def test_a_consumer_killed_mid_batch_loses_and_duplicates_nothing(
    engine: Engine, nc: Client, nats_url: str, database_url: str, service_name: str
) -> None:
    keys = [f"c{i}" for i in range(60)]
    relay_task = asyncio.create_task(OutboxRelay(engine, nc.jetstream(), service="test").run())
    child = subprocess.Popen(
        [sys.executable, "-m", "pawgle.common.testing.probe", database_url, nats_url, service_name, "0.02", "2"],
        env={**os.environ},
        start_new_session=True,
    )
    try:
        publish_pings(engine, keys, per_transaction=20)
        await wait_until(lambda: tally_count(engine) >= 10, timeout_s=60)
        os.kill(child.pid, signal.SIGKILL)  # mid-batch: some events handled, some in flight, none acked
        child.wait(timeout=10)
        assert tally_count(engine) < len(keys)
        runner = ConsumerRunner(engine, nc, probe_consumer(service_name), ack_wait_s=2, batch_size=8)
        task = asyncio.create_task(runner.run())
        try:
            await wait_until(lambda: tally_count(engine) == len(keys), timeout_s=60)
            await asyncio.sleep(2.5)  # past AckWait: any late redelivery would show up now
        finally:
            await stop(task)
    finally:
        if child.poll() is None:
            child.kill()
        await stop(relay_task)
    assert tallies(engine) == dict.fromkeys(keys, 1)


async def test_two_replicas_of_a_consumer_share_its_events_and_each_has_one_effect(
    engine: Engine, nc: Client, service_name: str
) -> None:
    replicas = [ConsumerRunner(engine, nc, probe_consumer(service_name), batch_size=8) for _ in range(2)]
    tasks = [asyncio.create_task(replica.run()) for replica in replicas]
    relay_task = asyncio.create_task(OutboxRelay(engine, nc.jetstream(), service="test").run())
    keys = [f"r{i}" for i in range(300)]
    try:
        await asyncio.sleep(0.3)  # both replicas have their pull requests open
        await asyncio.to_thread(publish_pings, engine, keys, per_transaction=5)
        await wait_until(lambda: all(key in tallies(engine) for key in keys))
        await asyncio.sleep(0.5)  # a duplicate would land now
    finally:
        await stop(*tasks, relay_task)
    counts = tallies(engine)
    assert {counts[key] for key in keys} == {1}
    assert all(replica.handled > 0 for replica in replicas)


async def test_one_event_reaches_an_idle_consumer_through_its_open_pull_request(
    engine: Engine, nc: Client, service_name: str
) -> None:
    # The feed counts what it asked for; a count gone wrong would hold the event until the silence
    # guard re-asks (the requests' expiry + 2 s, past this test's bound).
    runner = ConsumerRunner(engine, nc, probe_consumer(service_name), batch_size=256, fetch_timeout_s=30)
    tasks = await run_pipeline(engine, nc, runner)
    try:
        await asyncio.sleep(0.5)  # idle, with its pull request open
        publish_pings(engine, ["alone"])
        await wait_until(lambda: "alone" in tallies(engine), timeout_s=3)
    finally:
        await stop(*tasks)
    assert tallies(engine)["alone"] == 1


async def test_the_feed_asks_again_once_its_pull_requests_expire(nc: Client, service_name: str) -> None:
    spec = probe_consumer(service_name)
    runner = ConsumerRunner(engine=None, nc=nc, spec=spec)  # type: ignore[arg-type]  # only its config is used
    js = nc.jetstream()
    await js.add_consumer(spec.stream, runner.consumer_config())
    feed = PullFeed(nc, stream=spec.stream, durable=spec.name, batch=4, expires_s=0.3)
    await feed.start()
    try:
        while await feed.next_batch(0.5):  # whatever the stream already holds (earlier tests' events)
            pass
        await asyncio.sleep(1.0)  # every request has expired (the server said so with a 408)
        envelope = new_event(Pinged(key="late"), producer="test")
        await js.publish("mesh.pinged", encode_event(envelope))
        msgs = await feed.next_batch(2.0)
        assert [json.loads(m.data)["id"] for m in msgs] == [envelope.id]
        for msg in msgs:
            await msg.ack()
    finally:
        await feed.close()
