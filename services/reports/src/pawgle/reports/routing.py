"""What the reports routers share: the app's blob store, photo pipeline and settings, and one-hop transactions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Depends, Request, Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from pawgle.common.blobs import BlobStore
from pawgle.common.photos import PhotoPipeline
from pawgle.reports.config import Settings
from pawgle.reports.listcache import ListCache

T = TypeVar("T")


def _blobs(request: Request) -> BlobStore:
    return request.app.state.blobs


def _photos(request: Request) -> PhotoPipeline:
    return request.app.state.photos


def _list_cache(request: Request) -> ListCache:
    return request.app.state.list_cache


def _settings(request: Request) -> Settings:
    return request.app.state.settings


BlobsDep = Annotated[BlobStore, Depends(_blobs)]
PhotosDep = Annotated[PhotoPipeline, Depends(_photos)]
SettingsDep = Annotated[Settings, Depends(_settings)]
ListCacheDep = Annotated[ListCache, Depends(_list_cache)]


async def in_thread(session: Session, work: Callable[[], T]) -> T:
    """Run `work` and commit the session in one worker-thread hop (for `async def` routes).

    An error leaves the rollback to the session dependency.
    """

    def run() -> T:
        result = work()
        if session.in_transaction():
            session.commit()
        return result

    return await run_in_threadpool(run)


def json_response(body: Any, *, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response serialised in one pass (lists of a thousand reports are the hot path)."""
    return Response(
        orjson.dumps(body), status_code=status_code, media_type="application/json; charset=utf-8", headers=headers
    )


def bytes_response(body: bytes, *, headers: dict[str, str] | None = None) -> Response:
    """Already serialized JSON (the cached map lists)."""
    return Response(body, media_type="application/json; charset=utf-8", headers=headers)
