"""Transactional outbox: `add_event` writes the event row in the caller's transaction.

After that transaction commits, the relay of this engine is woken (see relay.py), so events leave
within milliseconds without polling; the relay still polls as a safety net.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.engine import Engine
from sqlmodel import Session

from pawgle.common.bus.tables import OutboxEvent
from pawgle.common.events.envelope import Envelope, EventData, encode_event, new_event
from pawgle.common.telemetry import current_trace_headers

_WAKE_FLAG = "pawgle_outbox_dirty"
_wakers: dict[int, list[Callable[[], None]]] = {}
_wakers_lock = threading.Lock()


def add_event(session: Session, data: EventData, *, producer: str) -> Envelope[Any]:
    """Record `data` as an event to publish when (and only if) the session's transaction commits."""
    envelope = new_event(data, producer=producer)
    session.add(
        OutboxEvent(
            event_id=envelope.id,
            subject=envelope.subject,
            payload=encode_event(envelope).decode(),
            headers=json.dumps(current_trace_headers()),
        )
    )
    session.info[_WAKE_FLAG] = True
    return envelope


def _engine_key(bind: object) -> int:
    # Engines derived with execution_options() share the pool (and the database) of their parent.
    pool = getattr(bind, "pool", None)
    return id(pool) if pool is not None else id(bind)


def on_commit_wake(engine: Engine, wake: Callable[[], None]) -> Callable[[], None]:
    """Call `wake` after every commit on `engine` that added outbox events; returns an unsubscribe."""
    key = _engine_key(engine)
    with _wakers_lock:
        _wakers.setdefault(key, []).append(wake)

    def unsubscribe() -> None:
        with _wakers_lock:
            callbacks = _wakers.get(key, [])
            if wake in callbacks:
                callbacks.remove(wake)

    return unsubscribe


@sa_event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if not session.info.pop(_WAKE_FLAG, False):
        return
    with _wakers_lock:
        callbacks = list(_wakers.get(_engine_key(session.get_bind()), []))
    for wake in callbacks:
        wake()


@sa_event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_WAKE_FLAG, None)
