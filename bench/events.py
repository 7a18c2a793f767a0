"""Events through outbox → JetStream → idempotent consumer, on the embedded defaults (SQLite, local nats-server).

Figures: sustained throughput (events/s, producer writing as fast as it can), and end-to-end latency
(commit of the producer's transaction → consumer's handler) at a paced 500 events/s.
As deployed, producer and consumer are separate services: the producer (writer + outbox relay) runs in
this process on its own SQLite file, the consumer in a child process on another.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.stats import percentile, report
from pawgle.common.app import stop_tasks
from pawgle.common.bus.connection import connect_bus
from pawgle.common.bus.relay import OutboxRelay
from pawgle.common.bus.streams import ensure_streams
from pawgle.common.db import make_engine
from pawgle.common.natsserver import NatsServer
from pawgle.common.testing.probe import latencies_us, migrate_probe_db, publish_pings, tally_count

THROUGHPUT_EVENTS = 10_000
PACED_RATE = 500
PACED_SECONDS = 10


async def _wait_for(engine, count: int, timeout_s: float) -> float:  # type: ignore[no-untyped-def]
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        if await asyncio.to_thread(tally_count, engine) >= count:
            return time.perf_counter()
        await asyncio.sleep(0.02)
    raise TimeoutError(f"only {tally_count(engine)} of {count} events handled in {timeout_s} s")


async def _run_case(root: Path, name: str, nats_url: str, producer) -> int:  # type: ignore[no-untyped-def]
    producer_url = f"sqlite:///{root / name}-producer.sqlite3"
    consumer_url = f"sqlite:///{root / name}-consumer.sqlite3"
    producer_db, consumer_db = make_engine(producer_url), make_engine(consumer_url)
    migrate_probe_db(producer_url, producer_db)
    migrate_probe_db(consumer_url, consumer_db)
    nc = await connect_bus(nats_url, name=f"bench-{name}")
    js = nc.jetstream(timeout=5)
    await ensure_streams(js)
    await js.purge_stream("MESH")
    consumer = subprocess.Popen(
        [sys.executable, "-m", "pawgle.common.testing.probe", consumer_url, nats_url, f"bench-{name}", "0", "30", "256"]
    )
    relay = asyncio.create_task(OutboxRelay(producer_db, js, service="bench").run())
    try:
        # Warm up: the consumer process is up and subscribed once it has handled one event.
        publish_pings(producer_db, ["warm-up"])
        await _wait_for(consumer_db, 1, 60)
        return await producer(producer_db, consumer_db)
    finally:
        await stop_tasks([relay])
        consumer.terminate()
        consumer.wait(timeout=15)
        await nc.close()


async def _bench(root: Path, nats_url: str) -> None:
    async def flood(producer_db, consumer_db) -> int:  # type: ignore[no-untyped-def]
        keys = [f"t{i}" for i in range(THROUGHPUT_EVENTS)]
        started = time.perf_counter()
        writer = asyncio.create_task(asyncio.to_thread(publish_pings, producer_db, keys, per_transaction=50))
        finished = await _wait_for(consumer_db, len(keys) + 1, 180)
        await writer
        elapsed = finished - started
        report(
            f"throughput: {len(keys)} events (transactions of 50) written, published and handled "
            f"in {elapsed:.2f} s = {len(keys) / elapsed:,.0f} events/s end to end"
        )
        return len(keys)

    await _run_case(root, "throughput", nats_url, flood)

    async def paced(producer_db, consumer_db) -> int:  # type: ignore[no-untyped-def]
        total = PACED_RATE * PACED_SECONDS

        def write_paced() -> None:
            interval = 1 / PACED_RATE
            start = time.perf_counter()
            for i in range(total):
                delay = start + i * interval - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                publish_pings(producer_db, [f"p{i}"])

        thread = threading.Thread(target=write_paced)
        thread.start()
        await _wait_for(consumer_db, total + 1, 120)
        thread.join()
        lat_ms = [us / 1000 for us in latencies_us(consumer_db, key_prefix="p")]
        report(
            f"latency at {PACED_RATE} events/s for {PACED_SECONDS} s (one event per transaction): "
            f"p50 {percentile(lat_ms, 50):.1f} ms, p95 {percentile(lat_ms, 95):.1f} ms, "
            f"p99 {percentile(lat_ms, 99):.1f} ms, max {max(lat_ms):.1f} ms"
        )
        return total

    await _run_case(root, "latency", nats_url, paced)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="pawgle-bench-") as tmp:
        root = Path(tmp)
        server = NatsServer(root / "js").start()
        try:
            asyncio.run(_bench(root, server.url))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
