"""The gateway process: one origin for the web and mobile apps in front of every service.

No database and no bus: a small FastAPI app for its own routes (/healthz, /readyz, /metrics, /media/),
behind raw ASGI middleware that collapses leading slashes, tags requests, applies CORS and hands every
path of the route table to the proxy.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from pawgle.common.errors import install_error_handlers
from pawgle.common.telemetry import setup_telemetry
from pawgle.gateway import health, media
from pawgle.gateway.config import Settings
from pawgle.gateway.middleware import CollapseLeadingSlashes, Cors, JsonServerError, RequestContext
from pawgle.gateway.proxy import Proxy, ProxyDispatch
from pawgle.gateway.routes import RouteTable
from pawgle.gateway.websocket import WebSocketProxy


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the gateway app."""
    settings = settings or Settings()
    proxy = Proxy(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        setup_telemetry(
            service=settings.service_name,
            otlp_endpoint=settings.otlp_endpoint,
            log_format=settings.log_format,
            log_level=settings.log_level,
        )
        # httpx logs every request at INFO: one line per proxied call, with its URL, is noise and cost here.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        await proxy.start()
        try:
            yield
        finally:
            await proxy.close()

    app = FastAPI(
        title="PawGle gateway",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        redirect_slashes=False,  # contract 0.1: never answer with a redirect
        # RequestContext makes the one server span per request; FastAPI's own would double it.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.proxy = proxy
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(media.router)
    # add_middleware wraps: the last one added is the outermost.
    app.add_middleware(ProxyDispatch, table=RouteTable(), proxy=proxy, websockets=WebSocketProxy(settings))
    app.add_middleware(JsonServerError)
    app.add_middleware(Cors, origins=settings.allowed_origins, max_age_s=settings.cors_max_age_s)
    app.add_middleware(RequestContext, service=settings.service_name)
    app.add_middleware(CollapseLeadingSlashes)
    return app
