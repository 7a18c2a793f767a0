"""The chat service process: conversations and messages API, contact-owner, and its event consumers."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

from fastapi import FastAPI

from pawgle.chat import api, contact, exchange, live
from pawgle.chat.config import Settings
from pawgle.chat.consumers import handlers
from pawgle.common.app import create_service_app
from pawgle.common.blobs import blob_store_from_env
from pawgle.common.photos import PhotoPipeline
from pawgle.common.throttle import ThrottleStore

MIGRATIONS = Path(__file__).with_name("migrations")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the chat app: the photo pipeline is made at startup and closed at shutdown."""
    settings = settings or Settings()

    async def build_photos(app: FastAPI) -> None:
        # Consumers and routes commit in worker threads; their live notices are handed to this loop.
        app.state.loop = asyncio.get_running_loop()
        app.state.blobs = blob_store_from_env(data_dir=settings.data_dir, public_base_url=settings.public_base_url)
        app.state.photos = PhotoPipeline(app.state.blobs)
        secret = settings.stream_ticket_secret
        app.state.stream_ticket_secret = secret.encode() if secret else secrets.token_bytes(32)
        app.state.throttle_store = await ThrottleStore.open(
            app.state.js,
            bucket=settings.throttle_bucket,
            replicas=settings.stream_replicas,
            overrides=settings.throttle_rates,
            enabled=settings.throttle_enabled,
        )

    async def close_photos(app: FastAPI) -> None:
        app.state.photos.close()

    return create_service_app(
        settings,
        title="PawGle chat",
        routers=[live.router, api.router, contact.router, exchange.router],
        migrations=MIGRATIONS,
        handlers=handlers,
        on_startup=build_photos,
        on_shutdown=close_photos,
    )
