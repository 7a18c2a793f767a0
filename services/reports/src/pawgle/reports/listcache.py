"""The map lists rendered once per change of the reports and shared by every caller, in every process.

Rendering a thousand reports costs more CPU than anything else a map load does, and the lists are the
same for nearly everyone: only the reports a caller filed, owns the pet of or discusses in a match
conversation look different to them (exact place, `pet` id). So each process keeps the public rendering
of each report (and of the default lists, whole) and renders only those few rows per caller.

Correct across processes and replicas: every transaction that changes a report also bumps one counter row
(`reports_list_version`), as the last thing before it commits (a hook on every session; nobody holds that
row lock while waiting for another, so it adds no deadlock). A request reads the counter first, then its
rows, in one transaction: a cached rendering is used only while the counter is what it was when the
rendering was made. Entries also age out after `max_age_s` (presigned photo URLs expire).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import event, select, update
from sqlalchemy.orm import ORMExecuteState
from sqlalchemy.orm import Session as OrmSession

from pawgle.reports import views
from pawgle.reports.models import ListVersion, Report

_CHANGED = "pawgle_reports_changed"
_REPORTS = Report.__table__
PUBLIC = views.Viewer(None)
_BUMP = update(ListVersion).where(ListVersion.id == 1).values(version=ListVersion.version + 1)
_READ = select(ListVersion.version).where(ListVersion.id == 1)


# --- the counter ----------------------------------------------------------------------------------


@event.listens_for(OrmSession, "after_flush")
def _flushed(session: OrmSession, _context: Any) -> None:
    if any(isinstance(o, Report) for o in itertools.chain(session.new, session.dirty, session.deleted)):
        session.info[_CHANGED] = True


@event.listens_for(OrmSession, "do_orm_execute")
def _bulk(state: ORMExecuteState) -> None:
    if (state.is_update or state.is_delete or state.is_insert) and getattr(state.statement, "table", None) is _REPORTS:
        state.session.info[_CHANGED] = True


@event.listens_for(OrmSession, "before_commit")
def _bump_before_commit(session: OrmSession) -> None:
    if any(isinstance(o, Report) for o in itertools.chain(session.new, session.dirty, session.deleted)):
        session.flush()
    if session.info.pop(_CHANGED, False):
        session.execute(_BUMP)


@event.listens_for(OrmSession, "after_rollback")
def _rolled_back(session: OrmSession) -> None:
    session.info.pop(_CHANGED, None)


def current_version(session: OrmSession) -> int | None:
    """The counter as this transaction sees it (read it before the rows).

    Core, on the session's connection: the ORM's execute path cost several times this one-row read.
    """
    return session.connection().execute(_READ).scalar()


# --- the cache ------------------------------------------------------------------------------------


@dataclass
class CachedList:
    """A default list: its bytes, each report's part, and which rows a given caller sees differently."""

    body: bytes
    parts: list[bytes]
    rows: Sequence[Any]
    by_reporter: dict[int, list[int]]
    by_pet_owner: dict[int, list[int]]
    by_id: dict[int, int]

    def for_viewer(self, viewer: views.Viewer, render: Callable[[Any], bytes]) -> bytes:
        """The list as `viewer` sees it: the shared bytes, with their own rows rendered for them."""
        if viewer.user_id is None:
            return self.body
        own = set(self.by_reporter.get(viewer.user_id, ()))
        own.update(self.by_pet_owner.get(viewer.user_id, ()))
        own.update(self.by_id[r] for r in viewer.conversation_reports if r in self.by_id)
        if not own:
            return self.body
        parts = list(self.parts)
        for index in own:
            parts[index] = render(self.rows[index])
        return join(parts)


def join(parts: Sequence[bytes]) -> bytes:
    """A JSON array of already serialized items, byte for byte what orjson.dumps of the list gives."""
    return b"[" + b",".join(parts) + b"]"


def build_list(rows: Sequence[Any], render: Callable[[Any], bytes]) -> CachedList:
    parts = [render(row) for row in rows]
    by_reporter: dict[int, list[int]] = {}
    by_pet_owner: dict[int, list[int]] = {}
    for index, row in enumerate(rows):
        by_reporter.setdefault(row.reporter_id, []).append(index)
        if row.pet_owner_id is not None:
            by_pet_owner.setdefault(row.pet_owner_id, []).append(index)
    by_id = {row.id: index for index, row in enumerate(rows)}
    return CachedList(join(parts), parts, rows, by_reporter, by_pet_owner, by_id)


class ListCache:
    """One process's renderings, all valid for one counter value (and at most `max_age_s` old)."""

    def __init__(self, *, max_age_s: float, max_rows: int) -> None:
        self.max_age_s = max_age_s
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._version: int | None = None
        self._since = 0.0
        self._lists: dict[Any, CachedList] = {}
        self._rows: dict[int, bytes] = {}

    def _current(self, version: int | None) -> bool:
        """Whether entries of `version` may be read and stored (called under the lock)."""
        if version is None:
            return False
        now = time.monotonic()
        if self._version is None or version > self._version or now - self._since > self.max_age_s:
            self._version, self._since = version, now
            self._lists, self._rows = {}, {}
        return version == self._version

    def get_list(self, key: Any, version: int | None) -> CachedList | None:
        with self._lock:
            return self._lists.get(key) if self._current(version) else None

    def put_list(self, key: Any, version: int | None, value: CachedList) -> None:
        with self._lock:
            if self._current(version):
                self._lists[key] = value

    def get_rows(self, ids: Sequence[int], version: int | None) -> dict[int, bytes]:
        with self._lock:
            if not self._current(version):
                return {}
            rows = self._rows
            return {i: rows[i] for i in ids if i in rows}

    def put_rows(self, version: int | None, rendered: dict[int, bytes]) -> None:
        with self._lock:
            if self._current(version):
                if len(self._rows) + len(rendered) > self.max_rows:
                    self._rows = {}
                self._rows.update(rendered)


def renderer(viewer: views.Viewer, url: views.UrlOf) -> Callable[[Any], bytes]:
    """One report row as `viewer` sees it in a map list, serialized."""

    def render(row: Any) -> bytes:
        return orjson.dumps(views.location(row, viewer=viewer, url=url))

    return render
