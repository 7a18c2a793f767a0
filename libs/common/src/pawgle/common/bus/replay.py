"""Re-run a consumer over a stream from a sequence or a time (backfills, new projections, lost indexes).

The events go through the same inbox as live delivery: replaying into the live consumer's inbox skips
what it already handled (no double effects); replaying under a new inbox name (`inbox_name`) applies
every event once to a fresh projection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy.engine import Engine

from pawgle.common.bus.consumer import ConsumerSpec, Delivery, Outcome, handle_delivery, to_delivery

Progress = Callable[[int, int], None]


@dataclass
class ReplayReport:
    seen: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: Outcome) -> None:
        self.outcomes[outcome.value] = self.outcomes.get(outcome.value, 0) + 1


def _handle_with_retries(engine: Engine, spec: ConsumerSpec, delivery: Delivery, inbox_name: str | None) -> Outcome:
    """Replays retry a failing event a few times in place, then park it like live delivery would."""
    for attempt in range(1, spec.max_deliveries + 1):
        outcome = handle_delivery(
            engine,
            spec,
            Delivery(delivery.data, delivery.headers, delivery.subject, attempt, delivery.stream_seq),
            inbox_name=inbox_name,
        )
        if outcome is not Outcome.RETRY:
            return outcome
    return Outcome.PARKED


async def replay(
    engine: Engine,
    nc: Client,
    spec: ConsumerSpec,
    *,
    from_seq: int | None = None,
    from_time: datetime | None = None,
    inbox_name: str | None = None,
    progress: Progress | None = None,
    batch_size: int = 256,
) -> ReplayReport:
    """Apply every `spec.event_type` event stored from `from_seq` (or `from_time`) up to now."""
    if (from_seq is None) == (from_time is None):
        raise ValueError("give exactly one of from_seq or from_time")
    js = nc.jetstream(timeout=10)
    info = await js.stream_info(spec.stream)
    last_seq = info.state.last_seq
    config = ConsumerConfig(
        ack_policy=AckPolicy.EXPLICIT,
        filter_subject=spec.event_type,
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE if from_seq is not None else DeliverPolicy.BY_START_TIME,
        opt_start_seq=from_seq,
        opt_start_time=from_time,
        inactive_threshold=60.0,
        mem_storage=True,
        max_deliver=1,
    )
    sub = await js.pull_subscribe(spec.event_type, stream=spec.stream, config=config)
    report = ReplayReport()
    try:
        while True:
            try:
                msgs = await sub.fetch(batch_size, timeout=1.0)
            except TimeoutError:  # nats-py raises its own subclass or a bare asyncio.TimeoutError
                break  # nothing left to deliver
            done = False
            for msg in msgs:
                if msg.metadata.sequence.stream > last_seq:
                    done = True  # events newer than the start of the replay are the live consumer's
                    break
                outcome = await asyncio.to_thread(_handle_with_retries, engine, spec, to_delivery(msg), inbox_name)
                await msg.ack()
                report.seen += 1
                report.count(outcome)
                if progress is not None:
                    progress(report.seen, report.seen + (msg.metadata.num_pending or 0))
            if done or (msgs and msgs[-1].metadata.sequence.stream >= last_seq):
                break
    finally:
        await sub.unsubscribe()
    return report
