"""The outbox relay: publishes committed outbox rows to JetStream with the event id as Nats-Msg-Id.

Rows are claimed with a lease on the single outbox table (no SKIP LOCKED, so it runs on TiDB too), so
several relays (replicas of a service) never publish the same row in the same window, and a relay that
dies mid-batch leaves rows that another claims once the lease runs out. A row is kept until JetStream
acknowledged it; published rows are deleted after a retention window so a broker that lost writes can
be re-fed by `republish_since`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from datetime import datetime, timedelta

from nats.js import JetStreamContext
from sqlalchemy import delete, func, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from pawgle.common import workqueue
from pawgle.common.bus.outbox import OUTBOX_TOPIC
from pawgle.common.bus.tables import OutboxEvent, utcnow
from pawgle.common.db import read_only, run_with_retries
from pawgle.common.ids import new_ulid
from pawgle.common.telemetry import OUTBOX_BACKLOG, OUTBOX_PUBLISHED
from pawgle.common.workers import WakeableLoop
from pawgle.common.workqueue import on_commit_wake

log = logging.getLogger(__name__)


class OutboxRelay(WakeableLoop):
    """Publish a service's outbox; `run()` until stopped (a `WakeableLoop` woken by commits that add events)."""

    def __init__(
        self,
        engine: Engine,
        js: JetStreamContext,
        *,
        service: str,
        batch_size: int = 256,
        lease: timedelta = timedelta(seconds=30),
        poll_interval_s: float = 1.0,
        publish_timeout_s: float = 5.0,
        retention: timedelta = timedelta(hours=1),
        gauge_interval_s: float = 1.0,
    ) -> None:
        super().__init__("outbox-relay", self.publish_pending, poll_interval_s=poll_interval_s, max_backoff_s=5.0)
        self.on_idle = self._between_bursts
        self.engine = engine
        self.js = js
        self.service = service
        self.batch_size = batch_size
        self.lease = lease
        self.publish_timeout_s = publish_timeout_s
        self.retention = retention
        self.gauge_interval_s = gauge_interval_s
        self.owner = f"{service}-{os.getpid()}-{new_ulid()[-6:]}"
        self._last_cleanup = 0.0
        self._last_gauge = 0.0

    async def run(self) -> None:
        unsubscribe = on_commit_wake(self.engine, OUTBOX_TOPIC, self.wake)
        try:
            await super().run()
        finally:
            unsubscribe()

    async def publish_pending(self) -> int:
        """Claim one batch, publish it and record the acknowledgements; returns how many were published."""
        rows = await asyncio.to_thread(run_with_retries, self._claim_batch)
        if not rows:
            return 0
        results = await asyncio.gather(*(self._publish(row) for row in rows), return_exceptions=True)
        done = [row.seq for row, result in zip(rows, results, strict=True) if result is True]
        failed = [row.seq for row, result in zip(rows, results, strict=True) if result is not True]
        # Settling must not be lost to a deadlock: published rows would stay leased and go out again later.
        await asyncio.to_thread(run_with_retries, lambda: self._settle(done, failed))
        OUTBOX_PUBLISHED.labels(self.service).inc(len(done))
        if failed:
            first_error = next(r for r in results if r is not True)
            log.warning("outbox publish failed for %d events: %r", len(failed), first_error)
            raise RuntimeError("some outbox events were not acknowledged")
        return len(done)

    async def _publish(self, row: OutboxEvent) -> bool:
        headers = json.loads(row.headers or "{}")
        headers["Nats-Msg-Id"] = row.event_id
        await self.js.publish(row.subject, row.payload.encode(), headers=headers, timeout=self.publish_timeout_s)
        return True

    def _claim_batch(self) -> list[OutboxEvent]:
        with Session(self.engine, expire_on_commit=False) as session:
            rows = workqueue.claim(
                session,
                OutboxEvent,
                key="seq",
                due=col(OutboxEvent.published_at).is_(None),
                order_by=[col(OutboxEvent.seq)],
                limit=self.batch_size,
                lease_s=self.lease.total_seconds(),
                owner=f"{self.owner}:{new_ulid()}",
                also_set={"attempts": OutboxEvent.attempts + 1},
            )
            session.commit()
            return rows

    def _settle(self, done: list[int | None], failed: list[int | None]) -> None:
        now = utcnow()
        with Session(self.engine) as session:
            if done:
                session.execute(
                    update(OutboxEvent)
                    .where(col(OutboxEvent.seq).in_(done))
                    .values(published_at=now, lease_owner=None, lease_until=None)
                )
            if failed:
                # Retry soon, not after the whole lease.
                session.execute(
                    update(OutboxEvent)
                    .where(col(OutboxEvent.seq).in_(failed))
                    .values(lease_owner=None, lease_until=now + timedelta(milliseconds=500))
                )
            session.commit()

    async def _between_bursts(self) -> None:
        """After a burst, and after a failed cycle too: keep the backlog gauge true, drop old published rows."""
        now = asyncio.get_running_loop().time()
        if now - self._last_cleanup >= 10:
            self._last_cleanup = now
            await asyncio.to_thread(self._delete_published_before_retention)
        if now - self._last_gauge >= self.gauge_interval_s:
            self._last_gauge = now
            OUTBOX_BACKLOG.labels(self.service).set(await asyncio.to_thread(outbox_backlog, self.engine))

    def _delete_published_before_retention(self) -> None:
        with Session(self.engine) as session:
            session.execute(
                delete(OutboxEvent).where(
                    col(OutboxEvent.published_at).is_not(None),
                    col(OutboxEvent.published_at) < utcnow() - self.retention,
                )
            )
            session.commit()


def outbox_backlog(engine: Engine) -> int:
    """Outbox events not yet acknowledged by JetStream (read from the table, so true in any fault)."""
    with Session(read_only(engine)) as session:
        return int(
            session.exec(
                select(func.count()).select_from(OutboxEvent).where(col(OutboxEvent.published_at).is_(None))
            ).one()
        )


def republish_since(engine: Engine, since: datetime) -> int:
    """Mark outbox rows published since `since` as pending again (after a broker lost acknowledged writes).

    JetStream de-duplicates the ones it still has inside its window; consumers are idempotent for the rest.
    """
    with Session(engine) as session:
        result = session.execute(
            update(OutboxEvent)
            .where(col(OutboxEvent.published_at) >= since)
            .values(published_at=None, lease_owner=None, lease_until=None)
        )
        session.commit()
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
