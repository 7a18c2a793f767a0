"""What an operator does with parked events: list them, retry one, or discard it with a reason."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from pawgle.common.bus.consumer import ConsumerSpec, Delivery, Outcome, handle_delivery, refresh_dead_letter_gauge
from pawgle.common.bus.tables import DeadLetter, utcnow


def list_dead_letters(
    engine: Engine, *, consumer: str | None = None, include_resolved: bool = False, limit: int = 100
) -> list[DeadLetter]:
    with Session(engine) as session:
        query = select(DeadLetter).order_by(col(DeadLetter.id)).limit(limit)
        if consumer:
            query = query.where(DeadLetter.consumer == consumer)
        if not include_resolved:
            query = query.where(col(DeadLetter.resolved_at).is_(None))
        return list(session.exec(query).all())


def retry_dead_letter(engine: Engine, spec: ConsumerSpec, dead_letter_id: int) -> Outcome:
    """Run the parked event through the consumer again (inbox included); resolved if it now succeeds."""
    with Session(engine) as session:
        parked = session.get(DeadLetter, dead_letter_id)
        if parked is None or parked.consumer != spec.name:
            raise LookupError(f"no dead letter {dead_letter_id} for consumer {spec.name}")
        delivery = Delivery(parked.payload.encode(), {}, parked.subject, 1, parked.stream_seq)
    # One attempt short of parking again: an operator's retry that fails leaves the letter where it is.
    outcome = handle_delivery(engine, _no_park(spec), delivery)
    if outcome in (Outcome.HANDLED, Outcome.DUPLICATE):
        _resolve(engine, dead_letter_id, "retried")
    return outcome


def discard_dead_letter(engine: Engine, dead_letter_id: int) -> None:
    _resolve(engine, dead_letter_id, "discarded")


def _resolve(engine: Engine, dead_letter_id: int, resolution: str) -> None:
    with Session(engine) as session:
        parked = session.get(DeadLetter, dead_letter_id)
        if parked is None:
            raise LookupError(f"no dead letter {dead_letter_id}")
        parked.resolved_at = utcnow()
        parked.resolution = resolution
        session.add(parked)
        session.commit()
    refresh_dead_letter_gauge(engine)


def _no_park(spec: ConsumerSpec) -> ConsumerSpec:
    return ConsumerSpec(service=spec.service, event_type=spec.event_type, handler=spec.handler, max_deliveries=2**31)
