"""The map lists (L1-L3, X2) as bytes: from this process's cache of renderings when still valid."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from sqlmodel import Session

from pawgle.reports import listcache, repository, service, views
from pawgle.reports.listcache import PUBLIC, ListCache, build_list, join, renderer
from pawgle.reports.query_options import encode_cursor
from pawgle.reports.repository import MapQuery


@dataclass(frozen=True)
class MapList:
    body: bytes
    # The cursor of the next page (X-Next-Cursor) when this page is full.
    next_cursor: str | None


def _is_default(query: MapQuery) -> bool:
    return query.bbox is None and query.species is None and query.after is None


def map_list(*, session: Session, query: MapQuery, user_id: int, cache: ListCache, url: views.UrlOf) -> MapList:
    """L1-L3 for one caller: the shared public rendering, with the caller's own rows rendered for them."""
    version = listcache.current_version(session)  # before the rows: see listcache
    viewer = service.viewer_of(session=session, user_id=user_id)
    public, own = renderer(PUBLIC, url), renderer(viewer, url)
    if _is_default(query):
        key = ("map", query.statuses, query.limit)
        cached = cache.get_list(key, version)
        if cached is None:
            cached = build_list(repository.active_reports(session, query), public)
            cache.put_list(key, version, cached)
        full_page = cached.rows and len(cached.rows) == query.limit
        last = cached.rows[-1] if full_page else None
        cursor = encode_cursor(last.reported_at, last.id) if last is not None else None
        return MapList(cached.for_viewer(viewer, own), cursor)
    keys = repository.active_report_keys(session, query)
    conversation = viewer.conversation_reports
    special = {i for i, reporter, owner in keys if user_id in (reporter, owner) or i in conversation}
    ids = [k[0] for k in keys]
    have = cache.get_rows([i for i in ids if i not in special], version)
    need = [i for i in ids if i in special or i not in have]
    full = repository.reports_by_id(session, need) if need else {}
    fresh = {i: public(full[i]) for i in need if i not in special and i in full}
    cache.put_rows(version, fresh)
    parts = []
    for i in ids:
        if i in special:
            if i in full:
                parts.append(own(full[i]))
        elif (part := have.get(i) or fresh.get(i)) is not None:
            parts.append(part)
    cursor = None
    if keys and len(keys) == query.limit:
        last_id = keys[-1][0]
        last_at = full[last_id].reported_at if last_id in full else repository.reported_at_of(session, last_id)
        cursor = encode_cursor(last_at, last_id) if last_at is not None else None
    return MapList(join(parts), cursor)


def lost_pets(*, session: Session, limit: int, cache: ListCache) -> bytes:
    """X2 (public): the same bytes for everyone."""
    version = listcache.current_version(session)
    key = ("x2", limit)
    cached = cache.get_list(key, version)
    if cached is None:
        rows = repository.active_reports(session, MapQuery(statuses=("lost",), limit=limit))
        cached = build_list(rows, lambda row: _dumps(views.lost_pet_entry(row)))
        cache.put_list(key, version, cached)
    return cached.body


def _dumps(body: object) -> bytes:
    return orjson.dumps(body)
