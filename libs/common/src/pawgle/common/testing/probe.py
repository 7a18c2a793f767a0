"""A probe projection: counts `mesh.pinged` events per key. Tests and benchmarks of the event path use it
to prove that every event had its effect exactly once."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Integer, String, bindparam
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, func, select

from pawgle.common.bus.consumer import ConsumerSpec
from pawgle.common.bus.outbox import add_event
from pawgle.common.db import read_only
from pawgle.common.events.envelope import Envelope
from pawgle.common.events.mesh import Pinged
from pawgle.common.migrations import upgrade_to_head

MIGRATIONS = Path(__file__).with_name("probe_migrations")


class ProbeTally(SQLModel, table=True):
    __tablename__ = "probe_tally"

    key: str = Field(sa_column=Column(String(64), primary_key=True))
    hits: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    latency_us: int = Field(default=0, sa_column=Column(Integer, nullable=False))


def migrate_probe_db(database_url: str, engine: Engine | None = None) -> None:
    upgrade_to_head(MIGRATIONS, database_url, engine)


class FaultPlan:
    """Keys whose handler should fail a given number of times before succeeding (thread-safe)."""

    def __init__(self, failures: dict[str, int] | None = None, always: set[str] | None = None) -> None:
        self._failures = dict(failures or {})
        self._always = set(always or ())
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        if key in self._always:
            raise RuntimeError(f"poison: {key}")
        with self._lock:
            left = self._failures.get(key, 0)
            if left > 0:
                self._failures[key] = left - 1
                raise RuntimeError(f"induced failure for {key} ({left} left)")


_COUNT_HIT_BY_DIALECT: dict[str, Any] = {}


def _count_hit_statement(session: Session) -> Any:
    """INSERT the key with one hit, or add a hit to it: the dialect's own upsert (built once per dialect)."""
    dialect = session.connection().dialect.name
    if dialect not in _COUNT_HIT_BY_DIALECT:
        _COUNT_HIT_BY_DIALECT[dialect] = _build_count_hit(dialect)
    return _COUNT_HIT_BY_DIALECT[dialect]


def _build_count_hit(dialect: str) -> Any:
    table = ProbeTally.__table__  # type: ignore[attr-defined]
    values = {"key": bindparam("key"), "hits": 1, "latency_us": bindparam("latency_us")}
    if dialect == "mysql":
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        return mysql_insert(table).values(values).on_duplicate_key_update(hits=table.c.hits + 1)
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement: Any = sqlite_insert(table)
    else:
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement = pg_insert(table)
    return statement.values(values).on_conflict_do_update(index_elements=["key"], set_={"hits": table.c.hits + 1})


def probe_consumer(
    service: str, *, faults: FaultPlan | None = None, max_deliveries: int = 5, slow_s: float = 0.0
) -> ConsumerSpec:
    """A consumer of mesh.pinged that counts each key's effects in probe_tally."""

    def count_ping(session: Session, envelope: Envelope[Any]) -> None:
        data: Pinged = envelope.data
        latency_us = max((time.time_ns() - data.sent_at_ns) // 1000, 0) if data.sent_at_ns else 0
        # One statement (an upsert), so the benchmark measures the event path rather than ORM bookkeeping.
        session.connection().execute(_count_hit_statement(session), {"key": data.key, "latency_us": latency_us})
        if slow_s:
            time.sleep(slow_s)
        if faults is not None:
            faults.check(data.key)  # after the write: a failure must roll the effect back

    return ConsumerSpec(
        service=service, event_type=Pinged.event_type, handler=count_ping, max_deliveries=max_deliveries
    )


def publish_pings(engine: Engine, keys: list[str], *, producer: str = "probe", per_transaction: int = 1) -> None:
    """Write one ping per key through the outbox, `per_transaction` events per commit."""
    for start in range(0, len(keys), per_transaction):
        with Session(engine) as session:
            for key in keys[start : start + per_transaction]:
                add_event(session, Pinged(key=key, sent_at_ns=time.time_ns()), producer=producer)
            session.commit()


def tallies(engine: Engine) -> dict[str, int]:
    with Session(read_only(engine)) as session:
        return {row.key: row.hits for row in session.exec(select(ProbeTally)).all()}


def tally_count(engine: Engine) -> int:
    with Session(read_only(engine)) as session:
        return session.exec(select(func.count()).select_from(ProbeTally)).one()


def latencies_us(engine: Engine, *, key_prefix: str = "") -> list[int]:
    """Publish-to-handler latency of each key starting with `key_prefix`."""
    return list(latencies_us_by_key(engine, key_prefix=key_prefix).values())


def latencies_us_by_key(engine: Engine, *, key_prefix: str = "") -> dict[str, int]:
    """Publish-to-handler latency by key, for the keys starting with `key_prefix`."""
    with Session(read_only(engine)) as session:
        rows = session.exec(select(ProbeTally)).all()
    return {row.key: row.latency_us for row in rows if row.key.startswith(key_prefix)}


async def _consume_forever(
    database_url: str, nats_url: str, service: str, slow_s: float, ack_wait_s: float, batch_size: int
) -> None:
    from pawgle.common.bus.connection import connect_bus
    from pawgle.common.bus.consumer import ConsumerRunner
    from pawgle.common.db import make_engine

    engine = make_engine(database_url)
    nc = await connect_bus(nats_url, name="probe-consumer")
    runner = ConsumerRunner(
        engine, nc, probe_consumer(service, slow_s=slow_s), ack_wait_s=ack_wait_s, batch_size=batch_size
    )
    await runner.run()


def main(argv: list[str] | None = None) -> None:
    """`python -m pawgle.common.testing.probe DATABASE_URL NATS_URL SERVICE SLOW_S ACK_WAIT_S [BATCH]`: a
    consumer process for crash tests (they kill it with SIGKILL mid-batch) and benchmarks."""
    import asyncio
    import sys

    args = argv or sys.argv[1:]
    database_url, nats_url, service, slow_s, ack_wait_s = args[:5]
    batch_size = int(args[5]) if len(args) > 5 else 8
    asyncio.run(_consume_forever(database_url, nats_url, service, float(slow_s), float(ack_wait_s), batch_size))


if __name__ == "__main__":
    main()
