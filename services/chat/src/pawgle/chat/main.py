"""The chat service process: conversations and messages API, contact-owner, and its event consumers."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
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


def ticket_secret(settings: Settings) -> bytes:
    """The key signing stream tickets: CHAT_STREAM_TICKET_SECRET, else one derived from the mesh's edge
    secret (the same in every process of a deployment, so a ticket from one worker opens a stream on
    another), else random (right for a single process only)."""
    if settings.stream_ticket_secret:
        return settings.stream_ticket_secret.encode()
    if settings.edge_secret is not None:
        edge = settings.edge_secret.get_secret_value().encode()
        return hmac.new(edge, b"pawgle chat stream tickets", hashlib.sha256).digest()
    return secrets.token_bytes(32)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the chat app: the photo pipeline is made at startup and closed at shutdown."""
    settings = settings or Settings()

    async def build_photos(app: FastAPI) -> None:
        # Consumers and routes commit in worker threads; their live notices are handed to this loop.
        app.state.loop = asyncio.get_running_loop()
        app.state.blobs = blob_store_from_env(data_dir=settings.data_dir, public_base_url=settings.public_base_url)
        app.state.photos = PhotoPipeline(app.state.blobs)
        app.state.stream_ticket_secret = ticket_secret(settings)
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
