"""The one way a service process is assembled: settings → engine → migrations → bus → relay, consumers, workers."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.datastructures import Default

from pawgle.common.auth import AccessTokenVerifier, JwksCache
from pawgle.common.bus.connection import connect_bus
from pawgle.common.bus.consumer import ConsumerRunner, ConsumerSpec
from pawgle.common.bus.gauges import BusGauges
from pawgle.common.bus.handlers import EventHandlers
from pawgle.common.bus.outbox import set_producer
from pawgle.common.bus.relay import OutboxRelay
from pawgle.common.bus.rpc import Responders
from pawgle.common.bus.streams import ensure_streams
from pawgle.common.config import ServiceSettings
from pawgle.common.db import make_engine
from pawgle.common.errors import JSONResponseUTF8, install_error_handlers
from pawgle.common.fastpath import install_read_lane
from pawgle.common.health import ReadinessCheck, health_router
from pawgle.common.migrations import upgrade_to_head
from pawgle.common.openapi import install_openapi
from pawgle.common.revocation import RevocationList
from pawgle.common.telemetry import instrument_app, setup_telemetry
from pawgle.common.workers import PeriodicJob, Worker, WorkerSet, stop_tasks

log = logging.getLogger(__name__)

Hook = Callable[[FastAPI], Awaitable[None]]
ConsumerFactory = Callable[[FastAPI], Sequence[ConsumerSpec]]
WorkerFactory = Callable[[FastAPI], Sequence[Worker]]

__all__ = ["create_service_app", "stop_tasks"]  # stop_tasks: kept importable from here for older callers

# How often the bus gauges (outbox backlog, dead letters, consumers' broker counts) are read afresh.
GAUGES_EVERY_S = 15.0
# Allocations between two young-generation collections once a service is serving (CPython's default: 700).
GC_GEN0_THRESHOLD = 10_000
# How long a stopping app waits for workers to finish the step they are in before cancelling them.
WORKER_STOP_TIMEOUT_S = 15.0


def _settle_the_heap() -> None:
    """Move everything built at startup out of the collector's sight, and let it run less often.

    A service starts with a few hundred thousand long-lived objects (FastAPI, SQLAlchemy, pydantic,
    onnxruntime bindings): each full collection walked them all, a pause of tens of milliseconds in the
    middle of some request (a p99 outlier). Frozen, they are never scanned again; a request's garbage is
    short-lived, so a larger first generation (the default collects every 700 allocations) collects it
    with a fraction of the passes.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])


def create_service_app(
    settings: ServiceSettings,
    *,
    title: str,
    routers: Sequence[APIRouter] = (),
    migrations: Path | None = None,
    handlers: EventHandlers | None = None,
    responders: Responders | None = None,
    workers: WorkerFactory | None = None,
    consumers: ConsumerFactory | None = None,
    on_startup: Hook | None = None,
    on_shutdown: Hook | None = None,
    ready_checks: dict[str, ReadinessCheck] | None = None,
) -> FastAPI:
    """A FastAPI app whose lifespan owns the engine, the bus and every long-lived loop.

    `handlers` (an EventHandlers registry) become idempotent consumers, `responders` answer request-reply
    subjects, `workers(app)` returns the service's own loops (WakeableLoop, PeriodicJob...); with the
    outbox relay and the bus gauges they start after `on_startup`, stop cleanly before `on_shutdown`, and
    `/readyz` fails (503, check "workers") while any of them has died. `consumers` is the older factory
    of raw ConsumerSpecs (tests, probes).
    """

    def consumer_specs(app: FastAPI) -> list[ConsumerSpec]:
        specs = list(consumers(app)) if consumers else []
        if handlers is not None:
            specs += handlers.consumer_specs(
                settings=settings, app=app, max_deliveries=settings.consumer_max_deliveries
            )
        return specs

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
        set_producer(engine, settings.service_name)
        if migrations is not None and settings.auto_migrate:
            await asyncio.to_thread(upgrade_to_head, migrations, settings.db_url, engine)
        nc = await connect_bus(settings.nats_url, name=f"pawgle-{settings.service_name}")
        app.state.nc = nc
        app.state.js = nc.jetstream(timeout=5)
        await ensure_streams(app.state.js, replicas=settings.stream_replicas)
        background = WorkerSet()
        app.state.workers = background
        try:
            await app.state.revocations.start(app.state.js)  # before serving: a revoked token never passes
            if on_startup is not None:
                await on_startup(app)
            if settings.run_workers:
                relay = OutboxRelay(engine, app.state.js, service=settings.service_name)
                app.state.relay = relay
                background.start(relay)
                specs = consumer_specs(app)
                for spec in specs:
                    background.start(ConsumerRunner(engine, nc, spec))
                if responders is not None:
                    answering = responders.workers(nc, engine=engine, settings=settings, app=app)
                    for responder in answering:
                        background.start(responder)
                    # Serve only once every subject is answered: a first caller must not see "nobody answers".
                    await asyncio.wait_for(asyncio.gather(*(r.subscribed.wait() for r in answering)), timeout=10)
                gauges = BusGauges(engine, app.state.js, service=settings.service_name, specs=specs)
                background.start(PeriodicJob("bus-gauges", gauges.refresh, every_s=GAUGES_EVERY_S))
                for worker in workers(app) if workers else ():
                    background.start(worker)
            if settings.settle_heap:
                _settle_the_heap()
            log.info("%s ready", settings.service_name)
            yield
        finally:
            await background.stop(timeout_s=WORKER_STOP_TIMEOUT_S)
            await app.state.revocations.stop()
            if on_shutdown is not None:
                await on_shutdown(app)
            with contextlib.suppress(Exception):
                await nc.drain()
            engine.dispose()

    async def check_workers(request: Request) -> None:
        background: WorkerSet | None = getattr(request.app.state, "workers", None)
        dead = background.dead() if background is not None else []
        if dead:
            raise RuntimeError(f"workers not running: {', '.join(dead)}")

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
    app.state.consumer_factory = consumer_specs
    app.state.handlers = handlers
    app.state.revocations = RevocationList()
    app.state.token_verifier = AccessTokenVerifier(
        JwksCache(settings.jwks_url),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        revocations=app.state.revocations,
    )
    install_error_handlers(app)
    app.include_router(health_router({"workers": check_workers, **(ready_checks or {})}))
    for router in routers:
        app.include_router(router)
    install_read_lane(app)  # before the telemetry middleware, which then wraps it
    instrument_app(app, service=settings.service_name)
    install_openapi(app)
    return app
