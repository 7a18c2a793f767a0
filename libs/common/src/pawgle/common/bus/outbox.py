"""Transactional outbox: `add_event` writes the event row in the caller's transaction.

After that transaction commits, the relay of this engine is woken (see relay.py), so events leave
within milliseconds without polling; the relay still polls as a safety net.

The producer named in each envelope is the service that owns the database: `create_service_app` records
it for the service's engine (`set_producer`), so a service never spells its own name at a call site.
"""

from __future__ import annotations

import json
import threading
import weakref
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session

from pawgle.common.bus.tables import OutboxEvent, utcnow
from pawgle.common.events.envelope import Envelope, EventData, encode_event, new_event
from pawgle.common.telemetry import current_trace_headers
from pawgle.common.workqueue import wake_after_commit

OUTBOX_TOPIC = "outbox"
_INSERT_OUTBOX_ROW = insert(OutboxEvent.__table__)
# A session may name its producer itself (session.info[PRODUCER_KEY]); otherwise its engine's is used.
PRODUCER_KEY = "pawgle_producer"
# Keyed weakly by the engine's pool: engines derived with execution_options() share their parent's pool
# (and database), and a disposed engine's entry goes away with it.
_producers: weakref.WeakKeyDictionary[object, str] = weakref.WeakKeyDictionary()
_producers_lock = threading.Lock()


def _pool_of(bind: object) -> object:
    return getattr(bind, "pool", None) or bind


def set_producer(engine: object, producer: str) -> None:
    """Name the service whose events are written through `engine` (create_service_app calls this)."""
    with _producers_lock:
        _producers[_pool_of(engine)] = producer


def producer_of(session: Session) -> str | None:
    """The producer this session writes events for: its own info key, else its engine's, else None."""
    named = session.info.get(PRODUCER_KEY)
    if named:
        return str(named)
    with _producers_lock:
        return _producers.get(_pool_of(session.get_bind()))


def add_event(session: Session, data: EventData, *, producer: str | None = None) -> Envelope[Any]:
    """Record `data` as an event to publish when (and only if) the session's transaction commits.

    The producer comes from the session (see `producer_of`); `producer=` is for code outside a service
    app (benchmarks, probes) whose engine no app has named.
    """
    name = producer or producer_of(session)
    if not name:
        raise ValueError(
            "add_event: no producer for this session; use the service app's engine, or set_producer(engine, name)"
        )
    envelope = new_event(data, producer=name)
    row = {
        "event_id": envelope.id,
        "subject": envelope.subject,
        "payload": encode_event(envelope).decode(),
        "headers": json.dumps(current_trace_headers()),
        "created_at": utcnow(),
        "attempts": 0,
    }
    # A plain INSERT on the session's connection: in its transaction (and savepoint) like an ORM add,
    # without the ORM's per-object bookkeeping, which was most of the writer's cost per event.
    session.connection().execute(_INSERT_OUTBOX_ROW, row)
    wake_after_commit(session, OUTBOX_TOPIC)
    return envelope
