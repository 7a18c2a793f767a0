"""The reports service process: the map lists, filing and status routes, its consumers and the expiry job."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from pawgle.common.app import create_service_app
from pawgle.common.blobs import blob_store_from_env
from pawgle.common.photos import PhotoPipeline
from pawgle.common.throttle import ThrottleStore, TrustedProxies
from pawgle.common.workers import PeriodicJob, Worker
from pawgle.reports import api, partner_api
from pawgle.reports.config import Settings
from pawgle.reports.consumers import handlers
from pawgle.reports.expiry import expire_once
from pawgle.reports.listcache import ListCache

MIGRATIONS = Path(__file__).with_name("migrations")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the reports app: blob store, photo pipeline and throttles are set up when it starts."""
    settings = settings or Settings()

    async def on_startup(app: FastAPI) -> None:
        app.state.blobs = blob_store_from_env(data_dir=settings.data_dir, public_base_url=settings.public_base_url)
        app.state.photos = PhotoPipeline(app.state.blobs)
        app.state.list_cache = ListCache(max_age_s=settings.list_cache_max_age_s, max_rows=settings.list_cache_rows)
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
        engine = app.state.engine
        job = PeriodicJob("expire-reports", lambda: expire_once(engine, settings), every_s=settings.expiry_every_s)
        app.state.expiry_job = job
        return [job]

    return create_service_app(
        settings,
        title="PawGle reports",
        routers=[api.router, api.public_router, partner_api.router],
        migrations=MIGRATIONS,
        handlers=handlers,
        workers=workers,
        on_startup=on_startup,
        on_shutdown=on_shutdown,
    )
