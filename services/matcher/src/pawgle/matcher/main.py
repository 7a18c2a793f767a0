"""The matcher service process: its projections, the matching worker and the matches API."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import FastAPI
from sqlmodel import Session

from pawgle.common.app import create_service_app
from pawgle.common.db import read_only
from pawgle.common.workers import Worker
from pawgle.common.workqueue import on_commit_wake
from pawgle.matcher import metrics, repository
from pawgle.matcher.api import router
from pawgle.matcher.config import Settings
from pawgle.matcher.consumers import handlers
from pawgle.matcher.worker import JOBS_TOPIC, MatchingLoop, MatchingWorker

MIGRATIONS = Path(__file__).with_name("migrations")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the matcher app: consumers keep the projections, the worker matches, the API shows matches."""
    settings = settings or Settings()

    def workers(app: FastAPI) -> list[Worker]:
        worker = MatchingWorker(engine=app.state.engine, nc=app.state.nc, settings=settings)

        async def gauge() -> None:
            def depth() -> int:
                with Session(read_only(app.state.engine)) as session:
                    return repository.pending_jobs(session)

            metrics.QUEUE_DEPTH.set(await asyncio.to_thread(depth))

        loop = MatchingLoop(worker, poll_interval_s=settings.poll_interval_s, on_idle=gauge)
        app.state.unwake = on_commit_wake(app.state.engine, JOBS_TOPIC, loop.wake)
        app.state.matching_worker = worker
        return [loop]

    async def on_shutdown(app: FastAPI) -> None:
        unwake = getattr(app.state, "unwake", None)
        if unwake is not None:
            unwake()

    return create_service_app(
        settings,
        title="PawGle matcher",
        routers=[router],
        migrations=MIGRATIONS,
        handlers=handlers,
        workers=workers,
        on_shutdown=on_shutdown,
    )
