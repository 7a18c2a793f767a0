"""Idempotent JetStream consumers.

Each consumer is durable, named `<service>-<event>`, and filters one subject. A handler runs in its own
database transaction together with the inbox row that records the event id; the message is acknowledged
only after that commit, so a crash anywhere means redelivery, and redelivery means no second effect.
A failing handler is retried with exponential backoff; after `max_deliveries` the event is parked in the
service's dead_letters table (metric + log) and the consumer moves on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from opentelemetry import context as otel_context
from opentelemetry import trace
from sqlalchemy import bindparam, func, insert
from sqlalchemy import select as core_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from pawgle.common import telemetry
from pawgle.common.bus.pull import PullFeed
from pawgle.common.bus.streams import stream_for
from pawgle.common.bus.tables import DeadLetter, InboxEntry, utcnow
from pawgle.common.events.envelope import Envelope, UnknownEventError, decode_event
from pawgle.common.telemetry import (
    CONSUMER_LAG,
    DEAD_LETTERED,
    DEAD_LETTERS,
    EVENT_HANDLE_LATENCY,
    EVENTS_HANDLED,
    context_from_headers,
    tracer,
)

log = logging.getLogger(__name__)

Handler = Callable[[Session, Envelope[Any]], None]


@dataclass(frozen=True)
class ConsumerSpec:
    """What a service consumes: one event type and the handler that applies it in a transaction."""

    service: str
    event_type: str
    handler: Handler
    max_deliveries: int = 5

    @property
    def name(self) -> str:
        return f"{self.service}-{self.event_type.replace('.', '-').replace('_', '-')}"

    @property
    def stream(self) -> str:
        return stream_for(self.event_type).name


class Outcome(Enum):
    HANDLED = "handled"
    DUPLICATE = "duplicate"
    RETRY = "retry"
    PARKED = "parked"


@dataclass(frozen=True)
class Delivery:
    """A message as the database thread sees it (no live NATS objects cross the thread boundary)."""

    data: bytes
    headers: dict[str, str]
    subject: str
    num_delivered: int
    stream_seq: int | None


def backoff_delay(num_delivered: int) -> float:
    """Seconds before the next attempt: 0.5, 1, 2, 4 ... capped at 30."""
    return float(min(0.5 * 2 ** max(num_delivered - 1, 0), 30.0))


def handle_delivery(
    engine: Engine, spec: ConsumerSpec, delivery: Delivery, *, inbox_name: str | None = None
) -> Outcome:
    """Apply one event exactly once: the inbox row and the handler's effects commit together."""
    return handle_batch(engine, spec, [delivery], inbox_name=inbox_name)[0]


def handle_batch(
    engine: Engine, spec: ConsumerSpec, deliveries: list[Delivery], *, inbox_name: str | None = None
) -> list[Outcome]:
    """Apply a batch of events in one transaction; each event's inbox row commits with its effects.

    The fast path runs the whole batch in one transaction. If any handler fails, that attempt is rolled
    back and the batch is run again with a savepoint per event, so one failure costs only its own
    event; parked events are written in the same transaction. If the commit fails, nothing of the batch
    happened and every event is retried.
    """
    consumer = inbox_name or spec.name
    try:
        results = _run_batch(engine, spec, deliveries, consumer, isolate=False)
    except _HandlerFailed:
        results = None
    except Exception:  # noqa: BLE001 - a failed commit means none of the batch happened
        log.warning("consumer %s: batch commit failed; it will be redelivered", consumer, exc_info=True)
        return [Outcome.RETRY] * len(deliveries)
    if results is None:
        try:
            results = _run_batch(engine, spec, deliveries, consumer, isolate=True)
        except Exception:  # noqa: BLE001
            log.warning("consumer %s: batch commit failed; it will be redelivered", consumer, exc_info=True)
            return [Outcome.RETRY] * len(deliveries)
    _count_outcomes(consumer, results)
    return [outcome for outcome, _ in results]


_metric_children: dict[str, tuple[dict[Outcome, Any], Any]] = {}


def _count_outcomes(consumer: str, results: list[tuple[Outcome, float | None]]) -> None:
    """One counter increment per outcome and batch; the latency histogram gets every handled event."""
    children = _metric_children.get(consumer)
    if children is None:  # label lookups cost more than the increments: once per consumer
        children = _metric_children[consumer] = (
            {outcome: EVENTS_HANDLED.labels(consumer, outcome.value) for outcome in Outcome},
            EVENT_HANDLE_LATENCY.labels(consumer),
        )
    counters, latency = children
    now = time.time()
    counts: dict[Outcome, int] = {}
    for outcome, occurred_at in results:
        counts[outcome] = counts.get(outcome, 0) + 1
        if occurred_at is not None:
            latency.observe(max(now - occurred_at, 0.0))
    for outcome, count in counts.items():
        counters[outcome].inc(count)


class _HandlerFailed(Exception):
    """A handler raised on the fast path: redo the batch with a savepoint per event."""


def _run_batch(
    engine: Engine, spec: ConsumerSpec, deliveries: list[Delivery], consumer: str, *, isolate: bool
) -> list[tuple[Outcome, float | None]]:
    with Session(engine) as session:
        if isolate:
            results = [_apply_one(session, spec, d, consumer, isolate=True) for d in deliveries]
        else:
            results = _apply_all(session, spec, deliveries, consumer)
        session.commit()
    return results


_INBOX = InboxEntry.__table__
_SELECT_HANDLED = core_select(_INBOX.c.event_id).where(
    _INBOX.c.consumer == bindparam("consumer"), _INBOX.c.event_id.in_(bindparam("ids", expanding=True))
)
_INSERT_INBOX = insert(_INBOX)


def _apply_all(
    session: Session, spec: ConsumerSpec, deliveries: list[Delivery], consumer: str
) -> list[tuple[Outcome, float | None]]:
    """The fast path: one query finds the events already handled, the handlers run, one insert records them.

    The inbox rows are written by one multi-row INSERT after the handlers, in the same transaction, so
    the exactly-once rule is unchanged: effects and inbox rows commit together or not at all. Another
    replica that handled one of these events meanwhile makes that INSERT fail (primary key), the whole
    batch rolls back and is redelivered, and the second time the event is found handled.
    """
    results: list[tuple[Outcome, float | None] | None] = [None] * len(deliveries)
    decoded: list[tuple[int, Delivery, Envelope[Any]]] = []
    for i, delivery in enumerate(deliveries):
        try:
            decoded.append((i, delivery, decode_event(delivery.data)))
        except UnknownEventError as exc:
            _park(session, spec, delivery, error=str(exc), event_id=None)
            results[i] = (Outcome.PARKED, None)
    connection = session.connection()
    seen: set[str] = set()
    if decoded:
        ids = [envelope.id for _, _, envelope in decoded]
        seen.update(connection.execute(_SELECT_HANDLED, {"consumer": consumer, "ids": ids}).scalars())
    handled_at = utcnow()
    inbox_rows: list[dict[str, Any]] = []
    traced = telemetry._exporting  # spans only when they leave the process or continue a trace (as requests)
    for i, delivery, envelope in decoded:
        if envelope.id in seen:  # handled before, or twice in this batch (a republished window)
            results[i] = (Outcome.DUPLICATE, None)
            continue
        seen.add(envelope.id)
        try:
            if traced or "traceparent" in delivery.headers:
                _handle_in_span(session, spec, delivery, envelope, consumer)
            else:
                spec.handler(session, envelope)
        except Exception as exc:  # noqa: BLE001 - isolate it: the batch is redone with a savepoint per event
            raise _HandlerFailed from exc
        inbox_rows.append({"consumer": consumer, "event_id": envelope.id, "handled_at": handled_at})
        results[i] = (Outcome.HANDLED, envelope.occurred_at.timestamp())
    try:
        session.flush()  # a handler's pending ORM writes fail here, not in the commit: the isolating retry runs
    except Exception as exc:  # noqa: BLE001
        raise _HandlerFailed from exc
    if inbox_rows:
        session.connection().execute(_INSERT_INBOX, inbox_rows)
    return [result for result in results if result is not None]


def _handle_in_span(
    session: Session, spec: ConsumerSpec, delivery: Delivery, envelope: Envelope[Any], consumer: str
) -> None:
    token = otel_context.attach(context_from_headers(delivery.headers))
    try:
        with tracer().start_as_current_span(
            f"consume {spec.event_type}", kind=trace.SpanKind.CONSUMER, attributes={"consumer": consumer}
        ):
            spec.handler(session, envelope)
    finally:
        otel_context.detach(token)


_INBOX_INSERT_IGNORING_DUPLICATES = {
    "sqlite": insert(InboxEntry.__table__).prefix_with("OR IGNORE"),
    "mysql": insert(InboxEntry.__table__).prefix_with("IGNORE"),
}


def _inbox_insert(session: Session, consumer: str, event_id: str) -> bool:
    """Record the event as handled by `consumer`; False when it already was (one statement, no race)."""
    connection = session.connection()
    row = {"consumer": consumer, "event_id": event_id, "handled_at": utcnow()}
    statement = _INBOX_INSERT_IGNORING_DUPLICATES.get(connection.dialect.name)
    if statement is None:  # PostgreSQL and other ON CONFLICT dialects
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement = pg_insert(InboxEntry.__table__).on_conflict_do_nothing()
    return bool(connection.execute(statement, row).rowcount)


def _apply_one(
    session: Session, spec: ConsumerSpec, delivery: Delivery, consumer: str, *, isolate: bool
) -> tuple[Outcome, float | None]:
    try:
        envelope = decode_event(delivery.data)
    except UnknownEventError as exc:
        _park(session, spec, delivery, error=str(exc), event_id=None)
        return Outcome.PARKED, None
    token = otel_context.attach(context_from_headers(delivery.headers))
    savepoint = session.begin_nested() if isolate else None
    try:
        with tracer().start_as_current_span(
            f"consume {spec.event_type}", kind=trace.SpanKind.CONSUMER, attributes={"consumer": consumer}
        ):
            if not _inbox_insert(session, consumer, envelope.id):
                if savepoint is not None:
                    savepoint.rollback()
                return Outcome.DUPLICATE, None
            spec.handler(session, envelope)
            session.flush()
            if savepoint is not None:
                savepoint.commit()
            return Outcome.HANDLED, envelope.occurred_at.timestamp()
    except Exception as exc:  # noqa: BLE001 - a handler failure of any kind is retried, then parked
        if savepoint is None:
            raise _HandlerFailed from exc
        if savepoint.is_active:
            savepoint.rollback()
        log.warning(
            "handler %s failed on %s (delivery %d)", consumer, envelope.id, delivery.num_delivered, exc_info=True
        )
        if delivery.num_delivered >= spec.max_deliveries:
            _park(session, spec, delivery, error=f"{type(exc).__name__}: {exc}", event_id=envelope.id)
            return Outcome.PARKED, None
        return Outcome.RETRY, None
    finally:
        otel_context.detach(token)


def _park(session: Session, spec: ConsumerSpec, delivery: Delivery, *, error: str, event_id: str | None) -> None:
    """Record an event this consumer gives up on, where an operator can list and retry it."""
    session.add(
        DeadLetter(
            consumer=spec.name,
            event_id=event_id,
            subject=delivery.subject,
            stream_seq=delivery.stream_seq,
            payload=delivery.data.decode(errors="replace"),
            error=error[:4000],
            deliveries=delivery.num_delivered,
        )
    )
    DEAD_LETTERED.labels(spec.name).inc()
    log.error(
        "event parked as dead letter",
        extra={"consumer": spec.name, "event_id": event_id, "subject": delivery.subject, "error": error[:500]},
    )


def refresh_dead_letter_gauge(engine: Engine) -> None:
    """Set the open-dead-letters gauge of every consumer from the table."""
    with Session(engine) as session:
        rows = session.exec(
            select(DeadLetter.consumer, func.count())
            .where(col(DeadLetter.resolved_at).is_(None))
            .group_by(DeadLetter.consumer)
        ).all()
    counts: dict[str, int] = dict(rows)
    for consumer in _dead_letter_gauges | counts.keys():  # a consumer whose letters were all resolved goes to 0
        DEAD_LETTERS.labels(consumer).set(counts.get(consumer, 0))
        _dead_letter_gauges.add(consumer)


_dead_letter_gauges: set[str] = set()


def to_delivery(msg: Msg) -> Delivery:
    num_delivered, stream_seq, _ = ack_fields(msg.reply)
    return Delivery(
        data=msg.data,
        headers=dict(msg.headers) if msg.headers else {},
        subject=msg.subject,
        num_delivered=num_delivered,
        stream_seq=stream_seq,
    )


def ack_fields(reply: str) -> tuple[int, int, int]:
    """(deliveries, stream sequence, pending) from a JetStream message's ack subject.

    `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`, or with `<domain>.<account
    hash>` after ACK (and a random token at the end) in the newer form. nats-py's `msg.metadata` parses
    the same into dataclasses and a datetime, a tenth of a small event's CPU for three integers.
    """
    tokens = reply.split(".")
    first = 4 if len(tokens) == 9 else 6
    try:
        return int(tokens[first]), int(tokens[first + 1]), int(tokens[first + 4])
    except (IndexError, ValueError):  # a layout this parser does not know: nats-py's own parser decides
        meta = Msg.Metadata._from_reply(reply)
        return meta.num_delivered, meta.sequence.stream, meta.num_pending


class ConsumerRunner:
    """Pull, handle and acknowledge one consumer's events until stopped; survives broker restarts.

    A worker of its app (see workers.py): `request_stop()` lets the batch in hand commit and be
    acknowledged, then the loop returns.
    """

    def __init__(
        self,
        engine: Engine,
        nc: Client,
        spec: ConsumerSpec,
        *,
        batch_size: int = 128,
        fetch_timeout_s: float = 1.0,
        ack_wait_s: float = 30.0,
        stall_check_s: float = 5.0,
    ) -> None:
        self.engine = engine
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream(timeout=5)
        self.spec = spec
        self.batch_size = batch_size
        self.fetch_timeout_s = fetch_timeout_s
        self.ack_wait_s = ack_wait_s
        self.stall_check_s = stall_check_s
        self.handled = 0
        self._stopping = False

    @property
    def name(self) -> str:
        return self.spec.name

    def request_stop(self) -> None:
        """Finish the batch in hand, then return from `run()`."""
        self._stopping = True

    def consumer_config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.spec.name,
            filter_subject=self.spec.event_type,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.ack_wait_s,
            max_deliver=-1,  # we count deliveries ourselves and park, so nothing is silently dropped
            max_ack_pending=10_000,
        )

    async def _subscribe(self) -> PullFeed:
        await self.js.add_consumer(self.spec.stream, self.consumer_config())
        feed = PullFeed(
            self.nc,
            stream=self.spec.stream,
            durable=self.spec.name,
            batch=self.batch_size,
            api_prefix=self.js._prefix,  # the JetStream API prefix (a domain changes it)
        )
        await feed.start()
        return feed

    async def run(self) -> None:
        await asyncio.to_thread(refresh_dead_letter_gauge, self.engine)
        failures = 0
        while not self._stopping:
            feed: PullFeed | None = None
            try:
                feed = await self._subscribe()
                failures = 0
                await self._pull_until_stalled(feed)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the loop must outlive any bus or database hiccup
                failures += 1
                log.warning("consumer %s: %r; resubscribing", self.spec.name, exc)
                await asyncio.sleep(min(0.25 * 2**failures, 5.0))
            finally:
                if feed is not None:
                    try:
                        await feed.close()
                    except Exception:  # noqa: BLE001, S110 - the connection may already be gone
                        pass

    async def _pull_until_stalled(self, feed: PullFeed) -> None:
        """Handle batches; return (to resubscribe) when the subscription stops delivering though work waits."""
        idle_since = time.monotonic()
        lag = CONSUMER_LAG.labels(self.spec.name)
        while not self._stopping:
            msgs = await feed.next_batch(self.fetch_timeout_s)
            if msgs:
                idle_since = time.monotonic()
                await self._process(msgs, lag)
                continue
            if time.monotonic() - idle_since >= self.stall_check_s:
                idle_since = time.monotonic()
                info = await self.js.consumer_info(self.spec.stream, self.spec.name)
                lag.set(info.num_pending or 0)
                if info.num_pending:
                    # nats.py issue 504: after a server restart a pull subscription can go quiet.
                    log.info("consumer %s idle with %d pending; resubscribing", self.spec.name, info.num_pending)
                    return

    async def _process(self, msgs: list[Msg], lag: Any) -> None:
        deliveries = [to_delivery(msg) for msg in msgs]
        outcomes = await asyncio.to_thread(self._handle_batch, deliveries)
        for msg, delivery, outcome in zip(msgs, deliveries, outcomes, strict=True):
            if outcome is Outcome.RETRY:
                await msg.nak(delay=backoff_delay(delivery.num_delivered))
            else:
                await msg.ack()
                self.handled += 1
        lag.set(ack_fields(msgs[-1].reply)[2])
        if Outcome.PARKED in outcomes:
            await asyncio.to_thread(refresh_dead_letter_gauge, self.engine)

    def _handle_batch(self, deliveries: list[Delivery]) -> list[Outcome]:
        return handle_batch(self.engine, self.spec, deliveries)
