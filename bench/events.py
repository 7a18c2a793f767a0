"""Events through outbox → JetStream → idempotent consumer, on the embedded defaults (SQLite, local nats-server).

Figures: sustained throughput (events/s, producer writing as fast as it can), and end-to-end latency
(commit of the producer's transaction → consumer's handler) at a paced 500 events/s; three runs each,
printed as min-median-max. As deployed, producer and consumer are separate services: the producer
(writer + outbox relay) runs in this process on its own SQLite file, the consumer in a child process on
another. The figures depend on what the first lines print: cores and load (the machine may be shared),
the filesystem of the data folder (tmpfs vs a disk), SQLite's journal and sync modes, the batch sizes.
Each paced latency is split at the time JetStream stored the event (the stream's own timestamp): commit →
stored is the producer's share (writer, relay wake-up, claim, publish), stored → handled the consumer's
(pull, decode, handler, commit). Every run checks that each event had exactly one effect.
"""

from __future__ import annotations

import asyncio
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy import text
from sqlalchemy.engine import Engine

from bench.stats import percentile, report
from pawgle.common.bus.connection import connect_bus
from pawgle.common.bus.relay import OutboxRelay
from pawgle.common.bus.streams import ensure_streams
from pawgle.common.db import make_engine, read_only
from pawgle.common.events.mesh import Pinged
from pawgle.common.natsserver import NatsServer, nats_server_binary
from pawgle.common.testing.probe import latencies_us_by_key, migrate_probe_db, publish_pings, tally_count
from pawgle.common.workers import stop_tasks

# The defaults are the published figures' settings; the env lets one compare (PAWGLE_BENCH_CONSUMER_BATCH=8).
RUNS = int(os.environ.get("PAWGLE_BENCH_RUNS", "3"))
THROUGHPUT_EVENTS = 10_000
PER_TRANSACTION = 50
PACED_RATE = 500
PACED_SECONDS = 10
CONSUMER_BATCH = int(os.environ.get("PAWGLE_BENCH_CONSUMER_BATCH", "256"))
RELAY_BATCH = int(os.environ.get("PAWGLE_BENCH_RELAY_BATCH", "256"))

Case = Callable[[Engine, Engine, JetStreamContext], Awaitable[dict[str, float]]]
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system) a process has used so far; this process when `pid` is None."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


class CpuMeter:
    """CPU used per event by the producer (this process), the consumer process and the nats-server.

    Unlike events/s, CPU per event barely moves when other work shares the machine: it says what the
    path costs, and 2 cores / (sum of CPU per event) bounds what this machine could do alone.
    """

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = pids
        self.start = {name: cpu_seconds(pid) for name, pid in pids.items()}

    def per_event_ms(self, events: int) -> dict[str, float]:
        return {name: (cpu_seconds(pid) - self.start[name]) * 1000 / events for name, pid in self.pids.items()}


def _filesystem_of(path: Path) -> str:
    """The mount type holding `path` (tmpfs means no disk sync at all)."""
    best, kind = "", "unknown"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            _, mount, fstype, *_ = line.split()
            if str(path).startswith(mount) and len(mount) > len(best):
                best, kind = mount, fstype
    except OSError:
        pass
    return f"{kind} (mounted at {best or '?'})"


def describe_environment(root: Path, engine: Engine) -> None:
    """Print what the figures depend on."""
    with engine.connect() as conn:
        journal = conn.execute(text("PRAGMA journal_mode")).scalar()
        sync = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(conn.execute(text("PRAGMA synchronous")).scalar())
    version = subprocess.run([nats_server_binary(), "--version"], capture_output=True, text=True).stdout.strip()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    report(
        f"machine: {os.cpu_count()} cores, load average {load} (1/5/15 min); {platform.python_implementation()} "
        f"{platform.python_version()}"
    )
    report(f"data folder: {root} on {_filesystem_of(root)}")
    report(
        f"SQLite {sqlite3.sqlite_version}: journal_mode={journal}, synchronous={sync} (WAL + NORMAL: a commit "
        "does not wait for the disk; checkpoints do)"
    )
    report(f"{version}: JetStream file storage, default sync (fsync every 2 min, not per message)")
    report(
        f"producer: transactions of {PER_TRANSACTION} (throughput) or 1 (latency); relay batch {RELAY_BATCH}; "
        f"consumer batch {CONSUMER_BATCH} per transaction"
    )


def _keys_seen(engine: Engine) -> int:
    """How many keys the consumer has counted so far, in O(log n): the tally's rowids only grow (no
    deletes; a key seen again updates its row), so the largest is the number of keys. `count(*)` would
    scan the table every poll and charge the producer's CPU with the benchmark's own polling."""
    with read_only(engine).connect() as conn:
        return int(conn.execute(text("SELECT coalesce(max(rowid), 0) FROM probe_tally")).scalar_one())


async def _wait_for(engine: Engine, count: int, timeout_s: float) -> float:
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        if await asyncio.to_thread(_keys_seen, engine) >= count:
            return time.perf_counter()
        await asyncio.sleep(0.01)
    raise TimeoutError(f"only {tally_count(engine)} of {count} events handled in {timeout_s} s")


def _check_exactly_once(engine: Engine, count: int) -> None:
    """Every event had its effect once: `count` keys, one hit each (a figure from a lossy run is no figure)."""
    with read_only(engine).connect() as conn:
        keys, hits = conn.execute(text("SELECT count(*), coalesce(sum(hits), 0) FROM probe_tally")).one()
    if keys != count or hits != count:
        raise AssertionError(f"expected {count} keys with one hit each, found {keys} keys and {hits} hits")


NATS_PID: int | None = None


async def _run_case(root: Path, name: str, nats_url: str, case: Case) -> dict[str, float]:
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
        [
            sys.executable,
            "-m",
            "pawgle.common.testing.probe",
            consumer_url,
            nats_url,
            f"bench-{name}",
            "0",
            "30",
            str(CONSUMER_BATCH),
        ]
    )
    relay = OutboxRelay(producer_db, js, service="bench", batch_size=RELAY_BATCH)
    relay_task = asyncio.create_task(relay.run())
    try:
        # Warm up: the consumer process is up and subscribed once it has handled one event.
        publish_pings(producer_db, ["warm-up"])
        await _wait_for(consumer_db, 1, 60)
        meter = CpuMeter({"producer": None, "consumer": consumer.pid, "nats-server": NATS_PID})
        figures = await case(producer_db, consumer_db, js)
        cpu = meter.per_event_ms(int(figures["events"]))
        await asyncio.sleep(0.5)  # a duplicate delivered late would land now
        _check_exactly_once(consumer_db, int(figures["events"]) + 1)  # + the warm-up event
        return figures | {f"cpu_{k}": v for k, v in cpu.items()}
    finally:
        await stop_tasks([relay_task])
        consumer.terminate()
        consumer.wait(timeout=15)
        await nc.close()
        producer_db.dispose()
        consumer_db.dispose()


async def flood(producer_db: Engine, consumer_db: Engine, js: JetStreamContext) -> dict[str, float]:
    keys = [f"t{i}" for i in range(THROUGHPUT_EVENTS)]
    started = time.perf_counter()
    writer = asyncio.create_task(asyncio.to_thread(publish_pings, producer_db, keys, per_transaction=PER_TRANSACTION))
    finished = await _wait_for(consumer_db, len(keys) + 1, 300)
    await writer
    return {"events_per_s": len(keys) / (finished - started), "events": len(keys)}


async def stored_after_ms(js: JetStreamContext, key_prefix: str) -> dict[str, float]:
    """Per key, commit → stored in JetStream (the stream's own timestamp), which splits each event's
    latency into the producer's part (writer, relay, broker) and the consumer's (pull, handler, commit)."""
    sub = await js.pull_subscribe(
        Pinged.event_type,
        stream="MESH",
        config=ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL, mem_storage=True),
    )
    stored: dict[str, float] = {}
    try:
        while True:
            try:
                msgs = await sub.fetch(1000, timeout=1.0)
            except TimeoutError:
                return stored
            for msg in msgs:
                data = orjson.loads(msg.data)["data"]
                if data["key"].startswith(key_prefix):
                    stored[data["key"]] = (msg.metadata.timestamp.timestamp() * 1e9 - data["sent_at_ns"]) / 1e6
    finally:
        await sub.unsubscribe()


async def paced(producer_db: Engine, consumer_db: Engine, js: JetStreamContext) -> dict[str, float]:
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
    await _wait_for(consumer_db, total + 1, 180)
    thread.join()
    lat_ms = {key: us / 1000 for key, us in latencies_us_by_key(consumer_db, key_prefix="p").items()}
    stored = await stored_after_ms(js, "p")
    producer_part = [stored[key] for key in lat_ms if key in stored]
    consumer_part = [total_ms - stored[key] for key, total_ms in lat_ms.items() if key in stored]
    figures = {f"p{q}": percentile(list(lat_ms.values()), q) for q in (50, 95, 99)}
    return figures | {
        "max": max(lat_ms.values()),
        "events": total,
        "producer_p50": percentile(producer_part, 50),
        "producer_p95": percentile(producer_part, 95),
        "consumer_p50": percentile(consumer_part, 50),
        "consumer_p95": percentile(consumer_part, 95),
    }


def spread(values: list[float], fmt: str) -> str:
    """min-median-max of a figure over the runs."""
    return "-".join(format(v, fmt) for v in (min(values), statistics.median(values), max(values)))


async def _bench(root: Path, nats_url: str) -> None:
    throughput: list[dict[str, float]] = []
    latency: list[dict[str, float]] = []
    for run in range(1, RUNS + 1):
        throughput.append(await _run_case(root, f"throughput-{run}", nats_url, flood))
        latency.append(await _run_case(root, f"latency-{run}", nats_url, paced))
        lat, flow = latency[-1], throughput[-1]
        cpu = {k.removeprefix("cpu_"): v for k, v in flow.items() if k.startswith("cpu_")}
        report(
            f"run {run}: {flow['events_per_s']:,.0f} events/s end to end; at {PACED_RATE}/s "
            f"p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms, p99 {lat['p99']:.1f} ms, max {lat['max']:.1f} ms "
            f"(commit → stored p50 {lat['producer_p50']:.1f} / p95 {lat['producer_p95']:.1f} ms, stored → handled "
            f"p50 {lat['consumer_p50']:.1f} / p95 {lat['consumer_p95']:.1f} ms); "
            "CPU per event: "
            + ", ".join(f"{k} {v:.3f} ms" for k, v in cpu.items())
            + f" (bound on {os.cpu_count()} idle cores: {os.cpu_count() * 1000 / sum(cpu.values()):,.0f} events/s)"
        )
    total_cpu = [sum(v for k, v in t.items() if k.startswith("cpu_")) for t in throughput]
    report(f"CPU per event, all three processes: {spread(total_cpu, '.3f')} ms (min-median-max)")
    report(
        f"throughput: {THROUGHPUT_EVENTS} events (transactions of {PER_TRANSACTION}) written, published and handled: "
        f"{spread([t['events_per_s'] for t in throughput], ',.0f')} events/s (min-median-max of {RUNS} runs)"
    )
    report(
        f"latency at {PACED_RATE} events/s for {PACED_SECONDS} s (one event per transaction, commit → handler), "
        f"min-median-max of {RUNS} runs: "
        + ", ".join(f"{q} {spread([lat[q] for lat in latency], '.1f')} ms" for q in ("p50", "p95", "p99", "max"))
    )


def main() -> None:
    data_root = os.environ.get("PAWGLE_BENCH_DIR")  # e.g. a disk-backed folder instead of the default /tmp
    with tempfile.TemporaryDirectory(prefix="pawgle-bench-", dir=data_root) as tmp:
        root = Path(tmp)
        server = NatsServer(root / "js").start()
        global NATS_PID
        NATS_PID = server.process.pid if server.process else None
        try:
            probe_engine = make_engine(f"sqlite:///{root / 'probe.sqlite3'}")
            describe_environment(root, probe_engine)
            probe_engine.dispose()
            asyncio.run(_bench(root, server.url))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
