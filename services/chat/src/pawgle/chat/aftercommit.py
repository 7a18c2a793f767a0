"""Work that must happen only once a session's transaction has committed (live notices, counters).

A consumer's handler runs inside the bus's transaction (and possibly inside a savepoint that is rolled
back when that one event fails); a route's writes commit when the route returns. Either way, a live
notice published before the commit could make a client poll for a row that is not there yet, or for
one that never will be. `on_commit(session, fn)` runs `fn` right after the outermost commit; work
queued inside a savepoint that is rolled back, or in a transaction that is rolled back, is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

log = logging.getLogger(__name__)

_KEY = "pawgle_chat_after_commit"


def on_commit(session: Session, fn: Callable[[], Any]) -> None:
    """Run `fn` (in the committing thread) after `session`'s transaction commits; never if it rolls back."""
    pending: list[tuple[SessionTransaction | None, Callable[[], Any]]] | None = session.info.get(_KEY)
    if pending is None:
        pending = session.info[_KEY] = []
        event.listen(session, "after_commit", _run)
        event.listen(session, "after_soft_rollback", _drop)
    pending.append((session.get_nested_transaction() or session.get_transaction(), fn))


def _run(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: the work waits for the real commit
    pending = session.info.get(_KEY) or []
    session.info[_KEY] = []
    for _, fn in pending:
        try:
            fn()
        except Exception:  # noqa: BLE001 - the commit happened; a notice or a counter must not undo a response
            log.warning("after-commit work failed", exc_info=True)


def _drop(session: Session, previous: SessionTransaction) -> None:
    pending = session.info.get(_KEY)
    if pending:
        session.info[_KEY] = [(tx, fn) for tx, fn in pending if not _within(tx, previous)]


def _within(tx: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while tx is not None:
        if tx is ancestor:
            return True
        tx = tx.parent
    return False
