"""What the pets routers share: the blob store and photo pipeline of the app, and one-hop transactions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request, UploadFile
from sqlmodel import Session

from pawgle.common.blobs import BlobStore
from pawgle.common.db import is_local_read, run_in_thread
from pawgle.common.photos import PhotoPipeline, PhotoUpload, StoredPhoto, read_upload
from pawgle.pets.config import Settings

T = TypeVar("T")


async def _blobs(request: Request) -> BlobStore:
    return request.app.state.blobs


async def _photos(request: Request) -> PhotoPipeline:
    return request.app.state.photos


async def _photo_url(request: Request) -> Callable[[str], str]:
    return request.app.state.photo_url


async def _settings(request: Request) -> Settings:
    return request.app.state.settings


# `async def`, though they only read app.state: FastAPI runs a plain `def` dependency in its thread pool,
# a hop costing more CPU than a small query.
BlobsDep = Annotated[BlobStore, Depends(_blobs)]
PhotosDep = Annotated[PhotoPipeline, Depends(_photos)]
SettingsDep = Annotated[Settings, Depends(_settings)]
PhotoUrlDep = Annotated[Callable[[str], str], Depends(_photo_url)]


async def in_thread(session: Session, work: Callable[[], T]) -> T:
    """Run `work` and end the session's transaction in one worker-thread hop (commit on success).

    For `async def` routes, which must await the photo pipeline before their first query: the database
    part then runs like a SessionRoute `def` route. An error leaves the rollback to the session dependency.
    """

    def run() -> T:
        result = work()
        if session.in_transaction():
            session.commit()
        return result

    # A read of SQLite (the profile) runs where it is: a hop to a worker thread costs more than it does.
    return run() if is_local_read(session) else await run_in_thread(run)


async def read_uploads(files: list[UploadFile], photos: PhotoPipeline) -> list[PhotoUpload]:
    """The uploaded files' bytes, each refused as soon as it passes the size limit."""
    uploads = []
    for index, file in enumerate(files):
        label = "images" if len(files) == 1 else f"images[{index}]"
        uploads.append(PhotoUpload(await read_upload(file, rules=photos.rules, label=label), file.filename))
    return uploads


async def stored_then(photos: PhotoPipeline, stored: list[StoredPhoto], session: Session, work: Callable[[], T]) -> T:
    """Run the database step of a request whose photos are stored; if it fails, remove those photos."""
    try:
        return await in_thread(session, work)
    except BaseException:
        await photos.discard(stored)
        raise
