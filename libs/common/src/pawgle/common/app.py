"""The one way a service process is assembled: settings → engine → migrations → bus → relay and consumers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.datastructures import Default

from pawgle.common.auth import AccessTokenVerifier, JwksCache
from pawgle.common.bus.connection import connect_bus
from pawgle.common.bus.consumer import ConsumerRunner, ConsumerSpec
from pawgle.common.bus.relay import OutboxRelay
from pawgle.common.bus.streams import ensure_streams
from pawgle.common.config import ServiceSettings
from pawgle.common.db import make_engine
from pawgle.common.errors import JSONResponseUTF8, install_error_handlers
from pawgle.common.health import ReadinessCheck, health_router
from pawgle.common.migrations import upgrade_to_head
from pawgle.common.revocation import RevocationList
from pawgle.common.telemetry import instrument_app, setup_telemetry

log = logging.getLogger(__name__)

Hook = Callable[[FastAPI], Awaitable[None]]
ConsumerFactory = Callable[[FastAPI], Sequence[ConsumerSpec]]


async def stop_tasks(tasks: Sequence[asyncio.Task[None]], *, attempts: int = 10, wait_s: float = 2.0) -> None:
    """Cancel background loops and wait for them, cancelling again if a cancellation was swallowed.

    On Python 3.11 `asyncio.wait_for` (used inside nats-py) can swallow a cancellation that races with
    its own completion, so one `cancel()` is not always enough; the retries are bounded.
    """
    pending = {task for task in tasks if not task.done()}
    for _ in range(attempts):
        if not pending:
            return
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=wait_s)
    if pending:
        log.error("background tasks did not stop: %s", ", ".join(t.get_name() for t in pending))


def create_service_app(
    settings: ServiceSettings,
    *,
    title: str,
    routers: Sequence[APIRouter] = (),
    migrations: Path | None = None,
    consumers: ConsumerFactory | None = None,
    on_startup: Hook | None = None,
    on_shutdown: Hook | None = None,
    ready_checks: dict[str, ReadinessCheck] | None = None,
) -> FastAPI:
    """A FastAPI app whose lifespan owns the engine, the bus connection, the relay and the consumers."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        setup_telemetry(
            service=settings.service_name,
            otlp_endpoint=settings.otlp_endpoint,
            log_format=settings.log_format,
            log_level=settings.log_level,
        )
        engine = make_engine(settings.db_url)
        app.state.engine = engine
        if migrations is not None and settings.auto_migrate:
            await asyncio.to_thread(upgrade_to_head, migrations, settings.db_url, engine)
        nc = await connect_bus(settings.nats_url, name=f"pawgle-{settings.service_name}")
        app.state.nc = nc
        app.state.js = nc.jetstream(timeout=5)
        await ensure_streams(app.state.js, replicas=settings.stream_replicas)
        tasks: list[asyncio.Task[None]] = []
        try:
            await app.state.revocations.start(app.state.js)  # before serving: a revoked token never passes
            if on_startup is not None:
                await on_startup(app)
            if settings.run_workers:
                relay = OutboxRelay(engine, app.state.js, service=settings.service_name)
                app.state.relay = relay
                tasks.append(asyncio.create_task(relay.run(), name="outbox-relay"))
                for spec in consumers(app) if consumers else ():
                    runner = ConsumerRunner(engine, nc, spec)
                    tasks.append(asyncio.create_task(runner.run(), name=spec.name))
            log.info("%s ready", settings.service_name)
            yield
        finally:
            await stop_tasks(tasks)
            await app.state.revocations.stop()
            if on_shutdown is not None:
                await on_shutdown(app)
            with contextlib.suppress(Exception):
                await nc.drain()
            engine.dispose()

    app = FastAPI(
        # A placeholder, not the class itself: FastAPI then serializes response models straight to JSON
        # bytes in pydantic's core (no dict, no json.dumps); the telemetry middleware adds the charset.
        default_response_class=Default(JSONResponseUTF8),
        title=title,
        lifespan=lifespan,
        docs_url="/docs" if not settings.is_production else None,
        redoc_url=None,
        # instrument_app makes the one server span per request; FastAPI's own would double it.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.migrations = migrations
    app.state.consumer_factory = consumers
    app.state.revocations = RevocationList()
    app.state.token_verifier = AccessTokenVerifier(
        JwksCache(settings.jwks_url),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        revocations=app.state.revocations,
    )
    install_error_handlers(app)
    instrument_app(app, service=settings.service_name)
    app.include_router(health_router(ready_checks))
    for router in routers:
        app.include_router(router)
    return app
