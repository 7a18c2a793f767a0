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
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from opentelemetry import context as otel_context
from opentelemetry import trace
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from pawgle.common.bus.streams import stream_for
from pawgle.common.bus.tables import DeadLetter, InboxEntry
from pawgle.common.events.envelope import Envelope, EventData, UnknownEventError, decode_event
from pawgle.common.telemetry import (
    CONSUMER_LAG,
    DEAD_LETTERED,
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
    consumer = inbox_name or spec.name
    try:
        envelope = decode_event(delivery.data)
    except UnknownEventError as exc:
        park(engine, spec, delivery, error=str(exc), event_id=None)
        return Outcome.PARKED
    parent = context_from_headers(delivery.headers)
    token = otel_context.attach(parent)
    try:
        with tracer().start_as_current_span(
            f"consume {spec.event_type}", kind=trace.SpanKind.CONSUMER, attributes={"consumer": consumer}
        ):
            return _apply(engine, spec, delivery, envelope, consumer)
    finally:
        otel_context.detach(token)


def _apply(
    engine: Engine, spec: ConsumerSpec, delivery: Delivery, envelope: Envelope[EventData], consumer: str
) -> Outcome:
    try:
        with Session(engine) as session:
            if session.get(InboxEntry, (consumer, envelope.id)) is not None:
                return Outcome.DUPLICATE
            session.add(InboxEntry(consumer=consumer, event_id=envelope.id))
            session.flush()
            spec.handler(session, envelope)
            session.commit()
    except IntegrityError:
        # Either a concurrent delivery recorded the same event first, or the handler hit a constraint.
        with Session(engine) as session:
            if session.get(InboxEntry, (consumer, envelope.id)) is not None:
                return Outcome.DUPLICATE
        return _failed(engine, spec, delivery, envelope, "integrity error in handler")
    except Exception as exc:  # noqa: BLE001 - a handler failure of any kind is retried, then parked
        log.warning(
            "handler %s failed on %s (delivery %d)", consumer, envelope.id, delivery.num_delivered, exc_info=True
        )
        return _failed(engine, spec, delivery, envelope, f"{type(exc).__name__}: {exc}")
    EVENT_HANDLE_LATENCY.labels(consumer).observe(max(time.time() - envelope.occurred_at.timestamp(), 0.0))
    return Outcome.HANDLED


def _failed(
    engine: Engine, spec: ConsumerSpec, delivery: Delivery, envelope: Envelope[EventData], error: str
) -> Outcome:
    if delivery.num_delivered >= spec.max_deliveries:
        park(engine, spec, delivery, error=error, event_id=envelope.id)
        return Outcome.PARKED
    return Outcome.RETRY


def park(engine: Engine, spec: ConsumerSpec, delivery: Delivery, *, error: str, event_id: str | None) -> None:
    """Record an event this consumer gives up on, where an operator can list and retry it."""
    with Session(engine) as session:
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
        session.commit()
    DEAD_LETTERED.labels(spec.name).inc()
    log.error(
        "event parked as dead letter",
        extra={"consumer": spec.name, "event_id": event_id, "subject": delivery.subject, "error": error[:500]},
    )


def to_delivery(msg: Msg) -> Delivery:
    meta = msg.metadata
    return Delivery(
        data=msg.data,
        headers=dict(msg.headers or {}),
        subject=msg.subject,
        num_delivered=meta.num_delivered,
        stream_seq=meta.sequence.stream,
    )


class ConsumerRunner:
    """Pull, handle and acknowledge one consumer's events until cancelled; survives broker restarts."""

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

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        await self.js.add_consumer(self.spec.stream, self.consumer_config())
        return await self.js.pull_subscribe_bind(durable=self.spec.name, stream=self.spec.stream)

    async def run(self) -> None:
        failures = 0
        while True:
            sub: JetStreamContext.PullSubscription | None = None
            try:
                sub = await self._subscribe()
                failures = 0
                await self._pull_until_stalled(sub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the loop must outlive any bus or database hiccup
                failures += 1
                log.warning("consumer %s: %r; resubscribing", self.spec.name, exc)
                await asyncio.sleep(min(0.25 * 2**failures, 5.0))
            finally:
                if sub is not None:
                    try:
                        await sub.unsubscribe()
                    except Exception:  # noqa: BLE001, S110 - the connection may already be gone
                        pass

    async def _pull_until_stalled(self, sub: JetStreamContext.PullSubscription) -> None:
        """Pull batches; return (to resubscribe) when the subscription stops delivering though work waits."""
        idle_since = time.monotonic()
        while True:
            try:
                msgs = await sub.fetch(self.batch_size, timeout=self.fetch_timeout_s)
            except NatsTimeoutError:
                msgs = []
            if msgs:
                idle_since = time.monotonic()
                await self._process(msgs)
                continue
            if time.monotonic() - idle_since >= self.stall_check_s:
                idle_since = time.monotonic()
                info = await self.js.consumer_info(self.spec.stream, self.spec.name)
                CONSUMER_LAG.labels(self.spec.name).set(info.num_pending or 0)
                if info.num_pending:
                    # nats.py issue 504: after a server restart a pull subscription can go quiet.
                    log.info("consumer %s idle with %d pending; resubscribing", self.spec.name, info.num_pending)
                    return

    async def _process(self, msgs: list[Msg]) -> None:
        deliveries = [to_delivery(msg) for msg in msgs]
        outcomes = await asyncio.to_thread(self._handle_batch, deliveries)
        for msg, delivery, outcome in zip(msgs, deliveries, outcomes, strict=True):
            EVENTS_HANDLED.labels(self.spec.name, outcome.value).inc()
            if outcome is Outcome.RETRY:
                await msg.nak(delay=backoff_delay(delivery.num_delivered))
            else:
                await msg.ack()
                self.handled += 1

    def _handle_batch(self, deliveries: list[Delivery]) -> list[Outcome]:
        return [handle_delivery(self.engine, self.spec, d) for d in deliveries]
