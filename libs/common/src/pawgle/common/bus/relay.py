"""The outbox relay: publishes committed outbox rows to JetStream with the event id as Nats-Msg-Id.

Rows are claimed with a lease on the single outbox table (no SKIP LOCKED, so it runs on TiDB too), so
several relays (replicas of a service) never publish the same row in the same window, and a relay that
dies mid-batch leaves rows that another claims once the lease runs out. A row is kept until JetStream
acknowledged it; published rows are deleted after a retention window so a broker that lost writes can
be re-fed by `republish_since`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import orjson
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from sqlalchemy import bindparam, delete, func, or_, update
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col, select

from pawgle.common.bus.outbox import OUTBOX_TOPIC
from pawgle.common.bus.tables import OutboxEvent, utcnow
from pawgle.common.db import read_only, run_with_retries
from pawgle.common.ids import new_ulid
from pawgle.common.telemetry import OUTBOX_BACKLOG, OUTBOX_PUBLISHED
from pawgle.common.workers import WakeableLoop
from pawgle.common.workqueue import on_commit_wake

log = logging.getLogger(__name__)

_OUTBOX = OutboxEvent.__table__
_C = _OUTBOX.c
_DUE = _C.published_at.is_(None)
_FREE = or_(_C.lease_until.is_(None), _C.lease_until < bindparam("now"))
# Core statements built once: the relay's per-batch cost is then its three round trips, not the ORM.
_SELECT_DUE = (
    core_select(_C.seq, _C.event_id, _C.subject, _C.payload, _C.headers)
    .where(_DUE, _FREE)
    .order_by(_C.seq)
    .limit(bindparam("limit"))
)
_LEASE = (
    update(_OUTBOX)
    .where(_C.seq.in_(bindparam("seqs", expanding=True)), _DUE, _FREE)
    .values(lease_owner=bindparam("owner"), lease_until=bindparam("until"), attempts=_C.attempts + 1)
)
_SELECT_LEASED = (
    core_select(_C.seq, _C.event_id, _C.subject, _C.payload, _C.headers)
    .where(_C.lease_owner == bindparam("owner"))
    .order_by(_C.seq)
)
_NO_HEADERS = "{}"
# How long acknowledged rows may wait, unmarked, for the next claim to mark them published.
_SETTLE_WITHIN_S = 0.05


class PendingEvent(NamedTuple):
    """An outbox row claimed for publishing."""

    seq: int
    event_id: str
    subject: str
    payload: str
    headers: str


_UNANSWERED = TimeoutError("no acknowledgement from JetStream in time")


class _Acks:
    """The acknowledgements one batch still waits for, by position."""

    def __init__(self, size: int) -> None:
        self.errors: list[BaseException | None] = [_UNANSWERED] * size
        self.waiting = size
        self.done = asyncio.get_running_loop().create_future()

    def settle(self, position: int, error: BaseException | None) -> None:
        if not 0 <= position < len(self.errors) or self.done.done():
            return
        if self.errors[position] is _UNANSWERED:  # the first answer for a position counts
            self.errors[position] = error
            self.waiting -= 1
            if self.waiting == 0:
                self.done.set_result(None)


class OutboxRelay(WakeableLoop):
    """Publish a service's outbox; `run()` until stopped (a `WakeableLoop` woken by commits that add events).

    A batch is published pipelined: every message goes out with its own reply subject under one inbox
    the relay subscribes to once, and the relay waits once for all the batch's acknowledgements, instead
    of a request (a future, a timer, a task) per message.
    """

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
        super().__init__("outbox-relay", self._publish_step, poll_interval_s=poll_interval_s, max_backoff_s=5.0)
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
        self._published = OUTBOX_PUBLISHED.labels(service)
        self._ack_sub: Subscription | None = None
        self._ack_prefix = ""
        self._batches: dict[int, _Acks] = {}
        self._batch_ids = itertools.count()
        # Rows the loop published whose marking as published rides on its next claim (see _publish_step).
        self._unsettled: list[int] = []
        self._claim_failing = False

    async def run(self) -> None:
        unsubscribe = on_commit_wake(self.engine, OUTBOX_TOPIC, self.wake)
        try:
            await super().run()
        finally:
            unsubscribe()
            if self._unsettled:
                try:
                    await asyncio.to_thread(run_with_retries, lambda: self._settle(self._unsettled, []))
                    self._unsettled = []
                except Exception:  # noqa: BLE001 - they go out again once their lease ends (JetStream deduplicates)
                    log.warning("outbox relay: published rows left unmarked at stop", exc_info=True)
            if self._ack_sub is not None:
                sub, self._ack_sub = self._ack_sub, None
                try:
                    await sub.unsubscribe()
                except Exception:  # noqa: BLE001, S110 - the connection may already be gone
                    pass

    async def _publish_step(self) -> int:
        """One cycle of the loop: a full batch means more may wait (go again at once); a partial one, sleep.

        The sleep ends at once if a commit woke the relay meanwhile, so nothing waits for the poll, and
        the loop does not spend a write transaction on a claim that would find nothing. Acknowledged rows
        are marked published in the next cycle's claim transaction (one write transaction and one thread
        hop per cycle instead of two); when no commit wakes the relay within `_SETTLE_WITHIN_S`, its sleep
        ends then and that claim marks them (see `sleep`). A relay that dies first only sends them again
        once their lease ends, which JetStream's de-duplication absorbs.
        """
        return await self._cycle(defer_settling=True)

    async def sleep(self, seconds: float) -> None:
        """The loop's sleep, cut to `_SETTLE_WITHIN_S` while rows wait to be marked (unless claims fail)."""
        if self._unsettled and not self._claim_failing:
            seconds = min(seconds, _SETTLE_WITHIN_S)
        await super().sleep(seconds)

    async def publish_pending(self) -> int:
        """Claim one batch, publish it and record the acknowledgements; returns how many were published."""
        return await self._cycle(defer_settling=False)

    async def _cycle(self, *, defer_settling: bool) -> int:
        previous = self._unsettled
        try:
            rows = await asyncio.to_thread(run_with_retries, lambda: self._claim_batch(settle_first=previous))
        except Exception:
            self._claim_failing = True  # back off as the loop does; the rows stay to be marked
            raise
        self._claim_failing = False
        self._unsettled = []
        if not rows:
            return 0
        errors = await self._publish_batch(rows)
        done = [row.seq for row, error in zip(rows, errors, strict=True) if error is None]
        failed = [row.seq for row, error in zip(rows, errors, strict=True) if error is not None]
        self._published.inc(len(done))
        if defer_settling and not failed:
            self._unsettled = done
            return len(done) if len(rows) >= self.batch_size else 0
        # Settling must not be lost to a deadlock: published rows would stay leased and go out again later.
        await asyncio.to_thread(run_with_retries, lambda: self._settle(done, failed))
        if failed:
            first_error = next(error for error in errors if error is not None)
            log.warning("outbox publish failed for %d events: %r", len(failed), first_error)
            raise RuntimeError("some outbox events were not acknowledged")
        return len(done)

    async def _publish_batch(self, rows: list[PendingEvent]) -> list[BaseException | None]:
        """Publish every row, then wait (up to `publish_timeout_s`) for all the acknowledgements at once."""
        nc = self.js._nc  # the JetStream context's client: the publishes and the ack inbox share it
        if self._ack_sub is None:
            self._ack_prefix = nc.new_inbox() + "."
            self._ack_sub = await nc.subscribe(self._ack_prefix + "*", cb=self._on_ack)
        batch_id = next(self._batch_ids)
        acks = self._batches[batch_id] = _Acks(len(rows))
        try:
            for position, row in enumerate(rows):
                if row.headers == _NO_HEADERS:
                    headers = {"Nats-Msg-Id": row.event_id}
                else:
                    headers = orjson.loads(row.headers)
                    headers["Nats-Msg-Id"] = row.event_id
                try:
                    await nc.publish(
                        row.subject,
                        row.payload.encode(),
                        reply=f"{self._ack_prefix}{batch_id}-{position}",
                        headers=headers,
                    )
                except Exception as exc:  # noqa: BLE001 - this one and the rest of the batch are retried
                    for rest in range(position, len(rows)):
                        acks.settle(rest, exc)
                    break
            if not acks.done.done():
                await asyncio.wait([acks.done], timeout=self.publish_timeout_s)
        finally:
            del self._batches[batch_id]
        return acks.errors

    async def _on_ack(self, msg: Msg) -> None:
        batch_id, _, position = msg.subject[len(self._ack_prefix) :].partition("-")
        acks = self._batches.get(int(batch_id)) if batch_id.isdigit() else None
        if acks is None or not position.isdigit():
            return  # a batch that timed out already: its rows go out again (and JetStream deduplicates)
        error: BaseException | None = None
        if msg.headers and msg.headers.get("Status") == "503":
            error = RuntimeError(f"no stream captures {self.service}'s subject (no responders)")
        else:
            try:
                answer = orjson.loads(msg.data)
            except orjson.JSONDecodeError:
                answer = {"error": {"description": "unreadable acknowledgement"}}
            if "error" in answer:  # a duplicate is an ack (with "duplicate": true): the stream has it
                error = RuntimeError(f"JetStream refused the event: {answer['error']}")
        acks.settle(int(position), error)

    def _claim_batch(self, settle_first: list[int] | None = None) -> list[PendingEvent]:
        """Lease up to `batch_size` due rows (free or with an expired lease) in one short transaction.

        `settle_first`: rows of the previous cycle to mark published in the same transaction.

        Two relays racing for the same rows both run the guarded UPDATE; only the rows whose lease was
        still free when each UPDATE ran become theirs. When the UPDATE matched every row selected (always
        on SQLite, whose writers take turns) they are all ours; otherwise the leased rows are read back.
        """
        now = utcnow()
        owner = f"{self.owner}:{new_ulid()}"
        with self.engine.begin() as conn:
            if settle_first:
                _mark_published(conn, settle_first, now)
            due = _pending(conn.execute(_SELECT_DUE, {"now": now, "limit": self.batch_size}))
            if not due:
                return []
            leased = _rowcount(
                conn.execute(
                    _LEASE,
                    {"seqs": [row.seq for row in due], "now": now, "owner": owner, "until": now + self.lease},
                )
            )
            if leased == len(due):
                return due
            return _read_leased(conn, owner)

    def _settle(self, done: list[int], failed: list[int]) -> None:
        now = utcnow()
        with self.engine.begin() as conn:
            if done:
                _mark_published(conn, done, now)
            if failed:
                # Retry soon, not after the whole lease.
                conn.execute(
                    update(_OUTBOX)
                    .where(_C.seq.in_(bindparam("seqs", expanding=True)))
                    .values(lease_owner=None, lease_until=now + timedelta(milliseconds=500)),
                    {"seqs": failed},
                )

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


_MARK_PUBLISHED = (
    update(_OUTBOX)
    .where(_C.seq.in_(bindparam("seqs", expanding=True)))
    .values(published_at=bindparam("now"), lease_owner=None, lease_until=None)
)


def _mark_published(conn: Connection, seqs: list[int], now: datetime) -> None:
    conn.execute(_MARK_PUBLISHED, {"seqs": seqs, "now": now})


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _read_leased(conn: Connection, owner: str) -> list[PendingEvent]:
    return _pending(conn.execute(_SELECT_LEASED, {"owner": owner}))


def _pending(rows: Any) -> list[PendingEvent]:
    return [PendingEvent(*row) for row in rows]


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
