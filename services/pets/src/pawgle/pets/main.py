"""The pets service process: pets, photos, QR tags and posters, the public found page, its consumers."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI

from pawgle.common.app import create_service_app
from pawgle.common.blobs import BlobStore, LocalBlobStore, blob_store_from_env
from pawgle.common.photos import PhotoPipeline
from pawgle.common.throttle import ThrottleStore, TrustedProxies
from pawgle.common.workers import Worker
from pawgle.pets import api, edits_api, public_api
from pawgle.pets.cleanup import cleanup_workers
from pawgle.pets.config import Settings
from pawgle.pets.consumers import handlers

MIGRATIONS = Path(__file__).with_name("migrations")


def photo_url_maker(store: BlobStore) -> Callable[[str], str]:
    """The URL of a photo key: remembered for the local store (it never changes), fresh for presigned S3."""
    if isinstance(store, LocalBlobStore):
        return functools.lru_cache(maxsize=200_000)(store.url)
    return store.url


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the pets app: blob store, photo pipeline and throttles are set up when it starts."""
    settings = settings or Settings()

    async def on_startup(app: FastAPI) -> None:
        app.state.blobs = blob_store_from_env(data_dir=settings.data_dir, public_base_url=settings.public_base_url)
        app.state.photos = PhotoPipeline(app.state.blobs)
        app.state.photo_url = photo_url_maker(app.state.blobs)
        app.state.trusted_proxies = TrustedProxies(settings.trusted_proxies)
        app.state.throttle_store = await ThrottleStore.open(
            app.state.js,
            bucket=settings.throttle_bucket,
            replicas=settings.stream_replicas,
            overrides=settings.throttle_rates,
            enabled=settings.throttle_enabled,
        )

    async def on_shutdown(app: FastAPI) -> None:
        photos: PhotoPipeline | None = getattr(app.state, "photos", None)
        if photos is not None:
            photos.close()

    def workers(app: FastAPI) -> list[Worker]:
        return list(cleanup_workers(app.state.engine, app.state.blobs, settings))

    return create_service_app(
        settings,
        title="PawGle pets",
        routers=[api.router, public_api.router, edits_api.router],
        migrations=MIGRATIONS,
        handlers=handlers,
        workers=workers,
        on_startup=on_startup,
        on_shutdown=on_shutdown,
    )
