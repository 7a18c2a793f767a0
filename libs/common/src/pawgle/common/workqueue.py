"""A database table used as a work queue: claim rows with a lease, renew or release it, wake after a commit.

The outbox (relay) and the notifier's mail log (sender) both work this way. A claim marks up to `limit`
due rows with an owner and a lease time in one short transaction; the worker then does the slow part
(publishing, sending) outside any transaction, renews the lease while it works, and settles or releases
the rows. A worker that dies leaves rows that another claims once the lease runs out; one that stops
cleanly releases what it did not get to, so nothing waits for a lease. One table, no SKIP LOCKED: this
runs on SQLite, MySQL and TiDB alike.

A transaction that adds work calls `wake_after_commit(session, topic)`; once (and only if) it commits,
every callback registered with `on_commit_wake(engine, topic, ...)` runs, so the worker starts within
milliseconds instead of at its next poll.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, or_, update
from sqlalchemy import event as sa_event
from sqlalchemy.orm import InstrumentedAttribute
from sqlmodel import Session, SQLModel, select

from pawgle.common.bus.tables import utcnow

Row = TypeVar("Row", bound=SQLModel)


def new_lease_owner(prefix: str = "") -> str:
    """A claim's owner: unique per claim, so a renewal or release touches only this claim's rows."""
    return f"{prefix}{secrets.token_hex(8)}"[:64]


def _claimable(table: type[SQLModel], now: datetime) -> ColumnElement[bool]:
    lease_until = _column(table, "lease_until")
    return or_(lease_until.is_(None), lease_until < now)


def _column(table: type[SQLModel], name: str) -> InstrumentedAttribute[Any]:
    column: InstrumentedAttribute[Any] = getattr(table, name)
    return column


def claim(
    session: Session,
    table: type[Row],
    *,
    key: str,
    due: ColumnElement[bool],
    order_by: Sequence[Any],
    limit: int,
    lease_s: float,
    owner: str,
    now: datetime | None = None,
    also_set: dict[str, Any] | None = None,
) -> list[Row]:
    """Lease up to `limit` rows matching `due` whose lease is free or expired; returns them in order.

    The caller commits. Two claimers racing for the same rows both run the guarded UPDATE; only the
    rows whose lease was still free when each UPDATE ran become theirs.
    """
    now = now or utcnow()
    key_column = _column(table, key)
    free = _claimable(table, now)
    keys = list(session.exec(select(key_column).where(due, free).order_by(*order_by).limit(limit)).all())
    if not keys:
        return []
    values = {"lease_owner": owner, "lease_until": now + timedelta(seconds=lease_s), **(also_set or {})}
    session.execute(update(table).where(key_column.in_(keys), due, free).values(**values))
    claimed = select(table).where(_column(table, "lease_owner") == owner).order_by(key_column)
    return list(session.exec(claimed).all())


def renew(session: Session, table: type[SQLModel], *, owner: str, lease_s: float, now: datetime | None = None) -> int:
    """Extend the lease of every row `owner` still holds; returns how many (the caller commits)."""
    until = (now or utcnow()) + timedelta(seconds=lease_s)
    result = session.execute(update(table).where(_column(table, "lease_owner") == owner).values(lease_until=until))
    return int(getattr(result, "rowcount", 0) or 0)


def release(session: Session, table: type[SQLModel], *, owner: str, retry_at: datetime | None = None) -> int:
    """Give back every row `owner` still holds, claimable again at `retry_at` (now when None)."""
    result = session.execute(
        update(table).where(_column(table, "lease_owner") == owner).values(lease_owner=None, lease_until=retry_at)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --- wake after commit ---------------------------------------------------------------------------

_FLAG_PREFIX = "pawgle_wake:"
_callbacks: dict[tuple[int, str], list[Callable[[], None]]] = {}
_callbacks_lock = threading.Lock()


def _engine_key(bind: object) -> int:
    # Engines derived with execution_options() share the pool (and the database) of their parent.
    pool = getattr(bind, "pool", None)
    return id(pool) if pool is not None else id(bind)


def wake_after_commit(session: Session, topic: str) -> None:
    """Ask for `topic`'s workers to be woken once this session's transaction commits (never on rollback)."""
    session.info[_FLAG_PREFIX + topic] = True


def on_commit_wake(engine: object, topic: str, callback: Callable[[], None]) -> Callable[[], None]:
    """Call `callback` after every commit on `engine` that asked to wake `topic`; returns an unsubscribe."""
    key = (_engine_key(engine), topic)
    with _callbacks_lock:
        _callbacks.setdefault(key, []).append(callback)

    def unsubscribe() -> None:
        with _callbacks_lock:
            registered = _callbacks.get(key, [])
            if callback in registered:
                registered.remove(callback)

    return unsubscribe


def _pop_topics(session: Session) -> list[str]:
    topics = [name for name in session.info if isinstance(name, str) and name.startswith(_FLAG_PREFIX)]
    for name in topics:
        session.info.pop(name, None)
    return [name[len(_FLAG_PREFIX) :] for name in topics]


@sa_event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    topics = _pop_topics(session)
    if not topics:
        return
    engine_key = _engine_key(session.get_bind())
    with _callbacks_lock:
        callbacks = [cb for topic in topics for cb in _callbacks.get((engine_key, topic), [])]
    for callback in callbacks:
        callback()


@sa_event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    _pop_topics(session)
