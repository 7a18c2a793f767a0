"""The reports service process.

Only the shared skeleton so far (health, readiness, metrics, the bus connection and outbox relay):
its domain is not built yet, so every public path it will own answers a JSON 404 through the gateway.
"""

from pathlib import Path

from fastapi import FastAPI

from pawgle.common.app import create_service_app
from pawgle.reports.config import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the reports service app."""
    settings = settings or Settings()
    return create_service_app(settings, title="PawGle reports", migrations=Path(__file__).with_name("migrations"))
