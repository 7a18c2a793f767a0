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
from sqlalchemy import delete, func, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from pawgle.common.bus.outbox import on_commit_wake
from pawgle.common.bus.tables import OutboxEvent, utcnow
from pawgle.common.db import run_with_retries
from pawgle.common.ids import new_ulid
from pawgle.common.telemetry import OUTBOX_BACKLOG, OUTBOX_PUBLISHED

log = logging.getLogger(__name__)


class OutboxRelay:
    """Publish a service's outbox; `run()` until cancelled."""

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
    ) -> None:
        self.engine = engine
        self.js = js
        self.service = service
        self.batch_size = batch_size
        self.lease = lease
        self.poll_interval_s = poll_interval_s
        self.publish_timeout_s = publish_timeout_s
        self.retention = retention
        self.owner = f"{service}-{os.getpid()}-{new_ulid()[-6:]}"
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_cleanup = 0.0

    def wake(self) -> None:
        """Thread-safe: ask the relay to look at the outbox now."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        unsubscribe = on_commit_wake(self.engine, self.wake)
        failures = 0
        try:
            while True:
                try:
                    published = await self.publish_pending()
                    failures = 0
                except asyncio.CancelledError:
                    raise
                except Exception:
                    failures += 1
                    log.warning("outbox relay cycle failed", exc_info=True)
                    await asyncio.sleep(min(0.2 * 2**failures, 5.0))
                    continue
                await self._maybe_cleanup()
                if published:
                    continue  # there may be more
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval_s)
                except TimeoutError:
                    pass
                self._wake.clear()
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
        now = utcnow()
        claim = f"{self.owner}:{new_ulid()}"
        claimable = or_(OutboxEvent.lease_until.is_(None), OutboxEvent.lease_until < now)
        with Session(self.engine) as session:
            seqs = session.exec(
                select(OutboxEvent.seq)
                .where(OutboxEvent.published_at.is_(None), claimable)
                .order_by(OutboxEvent.seq)
                .limit(self.batch_size)
            ).all()
            if not seqs:
                return []
            session.execute(
                update(OutboxEvent)
                .where(OutboxEvent.seq.in_(seqs), OutboxEvent.published_at.is_(None), claimable)
                .values(lease_owner=claim, lease_until=now + self.lease, attempts=OutboxEvent.attempts + 1)
            )
            session.commit()
            return list(
                session.exec(
                    select(OutboxEvent).where(OutboxEvent.lease_owner == claim).order_by(OutboxEvent.seq)
                ).all()
            )

    def _settle(self, done: list[int | None], failed: list[int | None]) -> None:
        now = utcnow()
        with Session(self.engine) as session:
            if done:
                session.execute(
                    update(OutboxEvent)
                    .where(OutboxEvent.seq.in_(done))
                    .values(published_at=now, lease_owner=None, lease_until=None)
                )
            if failed:
                # Retry soon, not after the whole lease.
                session.execute(
                    update(OutboxEvent)
                    .where(OutboxEvent.seq.in_(failed))
                    .values(lease_owner=None, lease_until=now + timedelta(milliseconds=500))
                )
            session.commit()

    async def _maybe_cleanup(self) -> None:
        loop_time = asyncio.get_running_loop().time()
        if loop_time - self._last_cleanup < 10:
            return
        self._last_cleanup = loop_time
        backlog = await asyncio.to_thread(self._cleanup_and_count)
        OUTBOX_BACKLOG.labels(self.service).set(backlog)

    def _cleanup_and_count(self) -> int:
        with Session(self.engine) as session:
            session.execute(
                delete(OutboxEvent).where(
                    OutboxEvent.published_at.is_not(None),
                    OutboxEvent.published_at < utcnow() - self.retention,
                )
            )
            session.commit()
            return session.exec(
                select(func.count()).select_from(OutboxEvent).where(OutboxEvent.published_at.is_(None))
            ).one()


def republish_since(engine: Engine, since: datetime) -> int:
    """Mark outbox rows published since `since` as pending again (after a broker lost acknowledged writes).

    JetStream de-duplicates the ones it still has inside its window; consumers are idempotent for the rest.
    """
    with Session(engine) as session:
        result = session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.published_at >= since)
            .values(published_at=None, lease_owner=None, lease_until=None)
        )
        session.commit()
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
