"""The notifier service process: alerts and notifications API, event consumers and the e-mail sender."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from pawgle.common.app import create_service_app
from pawgle.common.workers import Worker
from pawgle.notifier.api import router
from pawgle.notifier.config import Settings
from pawgle.notifier.consumers import handlers
from pawgle.notifier.mail.sender import MailSender, build_mailer

MIGRATIONS = Path(__file__).with_name("migrations")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the notifier app: its consumers and the e-mail sender run in the app's lifespan."""
    settings = settings or Settings()

    async def build_sender(app: FastAPI) -> None:
        app.state.mailer = build_mailer(settings)
        app.state.mail_sender = MailSender(app.state.engine, app.state.mailer, settings)

    def workers(app: FastAPI) -> list[Worker]:
        return [app.state.mail_sender]

    return create_service_app(
        settings,
        title="PawGle notifier",
        routers=[router],
        migrations=MIGRATIONS,
        handlers=handlers,
        workers=workers,
        on_startup=build_sender,
    )
