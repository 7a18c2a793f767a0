"""The notifier service process: alerts and notifications API, event consumers and the e-mail sender."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import FastAPI

from pawgle.common.app import create_service_app, stop_tasks
from pawgle.notifier.api import router
from pawgle.notifier.config import Settings
from pawgle.notifier.consumers import consumers
from pawgle.notifier.mail.sender import MailSender, build_mailer

MIGRATIONS = Path(__file__).with_name("migrations")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the notifier app; its lifespan also runs the e-mail sender when workers are enabled."""
    settings = settings or Settings()

    async def start_sender(app: FastAPI) -> None:
        app.state.mailer = build_mailer(settings)
        app.state.mail_sender = MailSender(app.state.engine, app.state.mailer, settings)
        app.state.mail_task = None
        if settings.run_workers:
            app.state.mail_task = asyncio.create_task(app.state.mail_sender.run(), name="mail-sender")

    async def stop_sender(app: FastAPI) -> None:
        task = getattr(app.state, "mail_task", None)
        if task is not None:
            await stop_tasks([task])

    return create_service_app(
        settings,
        title="PawGle notifier",
        routers=[router],
        migrations=MIGRATIONS,
        consumers=consumers,
        on_startup=start_sender,
        on_shutdown=stop_sender,
    )
