"""The service's own loops: purging pets past their grace period, and removing let-go photos after commit."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.engine import Engine
from sqlmodel import Session

from pawgle.common.blobs import BlobStore
from pawgle.common.workers import PeriodicJob, WakeableLoop
from pawgle.common.workqueue import on_commit_wake
from pawgle.pets import repository, service
from pawgle.pets.config import Settings
from pawgle.pets.repository import BLOB_DELETIONS_TOPIC

log = logging.getLogger(__name__)


def purge_once(engine: Engine, settings: Settings) -> int:
    """One purge pass in its own transaction: pets deleted longer ago than the grace period."""
    with Session(engine, expire_on_commit=False) as session:
        purged = service.purge_deleted_pets(session=session, settings=settings)
        session.commit()
    if purged:
        log.info("purged %d deleted pets", purged)
    return purged


def delete_queued_blobs(engine: Engine, store: BlobStore, *, batch: int = 200) -> int:
    """Remove up to `batch` queued blobs, then forget them; a blob already gone is fine."""
    with Session(engine) as session:
        keys = repository.blob_deletions(session, limit=batch)
        session.commit()
    if not keys:
        return 0
    for key in keys:
        store.delete(key)
    with Session(engine) as session:
        repository.forget_blob_deletions(session, keys)
        session.commit()
    return len(keys)


def cleanup_workers(engine: Engine, store: BlobStore, settings: Settings) -> list[PeriodicJob | WakeableLoop]:
    """The purge job and the blob remover (woken by every commit that queued a blob)."""

    async def remove_blobs() -> int:
        return await asyncio.to_thread(delete_queued_blobs, engine, store)

    remover = WakeableLoop("pets-blob-deletions", remove_blobs, poll_interval_s=30.0)
    on_commit_wake(engine, BLOB_DELETIONS_TOPIC, remover.wake)
    purge = PeriodicJob("pets-purge", lambda: purge_once(engine, settings), every_s=settings.purge_every_s)
    return [purge, remover]
