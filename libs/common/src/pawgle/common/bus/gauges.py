"""Bus gauges that stay true in faults, refreshed by a job of their own rather than by the loops they watch.

The consumer loops and the relay set some of these as they work; when a consumer dies or the broker is
down they stop, so a periodic job (started by create_service_app) reads the truth from where it lives:
the outbox and dead-letter tables for backlog and parked events, JetStream's consumer info for pending,
ack-pending and redelivered counts (which the broker keeps even while a consumer is down).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from prometheus_client import Counter, Gauge
from sqlalchemy.engine import Engine

from pawgle.common.bus.consumer import ConsumerSpec, refresh_dead_letter_gauge
from pawgle.common.bus.relay import outbox_backlog
from pawgle.common.telemetry import CONSUMER_LAG, OUTBOX_BACKLOG

log = logging.getLogger(__name__)

CONSUMER_ACK_PENDING = Gauge(
    "pawgle_consumer_ack_pending", "Events delivered to a consumer and not yet acknowledged", ["consumer"]
)
CONSUMER_REDELIVERED = Gauge(
    "pawgle_consumer_redelivered", "Events JetStream is delivering to a consumer more than once", ["consumer"]
)
EVENTS_DROPPED = Counter(
    "pawgle_events_dropped_total", "Events a handler dropped on purpose, by reason", ["event_type", "reason"]
)


def record_dropped(event_type: str, reason: str, **context: object) -> None:
    """An event handled by doing nothing on purpose (an expired link...): a WARNING with its reason, and a metric."""
    EVENTS_DROPPED.labels(event_type, reason).inc()
    log.warning("%s dropped: %s", event_type, reason, extra={"event_type": event_type, "reason": reason, **context})


@dataclass(frozen=True)
class ConsumerState:
    """What JetStream knows about one durable consumer."""

    name: str
    event_type: str
    exists: bool
    pending: int = 0
    ack_pending: int = 0
    redelivered: int = 0
    last_delivery: datetime | None = None


async def consumer_states(js: JetStreamContext, specs: Sequence[ConsumerSpec]) -> list[ConsumerState]:
    """Pending, ack-pending and redelivered counts and the last delivery time of each consumer."""
    states = []
    for spec in specs:
        try:
            info = await js.consumer_info(spec.stream, spec.name)
        except NotFoundError:
            states.append(ConsumerState(spec.name, spec.event_type, exists=False))
            continue
        last = info.delivered.last_active if info.delivered is not None else None
        states.append(
            ConsumerState(
                spec.name,
                spec.event_type,
                exists=True,
                pending=info.num_pending or 0,
                ack_pending=info.num_ack_pending or 0,
                redelivered=info.num_redelivered or 0,
                last_delivery=last,
            )
        )
    return states


class BusGauges:
    """Refreshes outbox backlog, dead letters and per-consumer broker counts (one `refresh()` per run)."""

    def __init__(self, engine: Engine, js: JetStreamContext, *, service: str, specs: Sequence[ConsumerSpec]) -> None:
        self.engine = engine
        self.js = js
        self.service = service
        self.specs = list(specs)

    async def refresh(self) -> None:
        OUTBOX_BACKLOG.labels(self.service).set(await asyncio.to_thread(outbox_backlog, self.engine))
        await asyncio.to_thread(refresh_dead_letter_gauge, self.engine)
        for state in await consumer_states(self.js, self.specs):
            CONSUMER_LAG.labels(state.name).set(state.pending)
            CONSUMER_ACK_PENDING.labels(state.name).set(state.ack_pending)
            CONSUMER_REDELIVERED.labels(state.name).set(state.redelivered)
