"""Raw ASGI middleware (no BaseHTTPMiddleware: it costs latency and buffers nothing we need).

Order, outermost first: collapse leading slashes, request id and telemetry, CORS, last-resort JSON 500,
then the proxy dispatch in front of the gateway's own routes.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pawgle.common.telemetry import HTTP_LATENCY, HTTP_REQUESTS, context_from_headers, tracer
from pawgle.gateway.asgi import header_value, send_json_error

log = logging.getLogger(__name__)

_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{8,128}")
_TRACE_HEADERS = (b"traceparent", b"tracestate", b"baggage")


class CollapseLeadingSlashes:
    """Serve `//api/...` as `/api/...` (contract 0.1): rewritten before routing, never redirected."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and scope["path"].startswith("//"):
            scope = dict(scope)
            scope["path"] = "/" + scope["path"].lstrip("/")
            raw_path = scope.get("raw_path")
            if raw_path:
                scope["raw_path"] = b"/" + raw_path.lstrip(b"/")
        await self.app(scope, receive, send)


def route_label(scope: Scope) -> str:
    """The route template for metrics: the proxy's table row or the gateway's own route."""
    state = scope.get("state") or {}
    if "route_template" in state:
        return str(state["route_template"])
    route = scope.get("route")
    return str(getattr(route, "path", "unmatched"))


class RequestContext:
    """A request id on every request and response, a server span, and the HTTP RED metrics."""

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = header_value(scope, b"x-request-id")
        request_id = (
            incoming.decode() if incoming and _SANE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        ).encode()
        scope.setdefault("state", {})["request_id"] = request_id.decode()
        status = 500

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id))
                message = {**message, "headers": headers}
            await send(message)

        started = time.perf_counter()
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in _TRACE_HEADERS}
        with tracer().start_as_current_span(
            scope["method"], context=context_from_headers(carrier), kind=trace.SpanKind.SERVER
        ) as span:
            try:
                await self.app(scope, receive, send_with_request_id)
            finally:
                route = route_label(scope)
                span.update_name(f"{scope['method']} {route}")
                span.set_attribute("http.status_code", status)
                span.set_attribute("http.request_id", request_id.decode())
                HTTP_REQUESTS.labels(self.service, scope["method"], route, str(status)).inc()
                HTTP_LATENCY.labels(self.service, scope["method"], route).observe(time.perf_counter() - started)


class Cors:
    """Credentialed CORS for the configured origins on every response; preflights answered here.

    Upstream services do not do CORS: whatever Access-Control-* they send is replaced, so the policy
    lives in one place. `Vary: Origin` goes on every response, errors and 429s included (contract 0.5).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        origins: frozenset[str],
        methods: str = "GET, POST, PUT, PATCH, DELETE, OPTIONS",
        headers: str = "authorization, content-type, sentry-trace, baggage, x-request-id",
        expose: str = "x-request-id, retry-after, content-disposition",
        max_age_s: int = 600,
    ) -> None:
        self.app = app
        self.origins = frozenset(origin.encode("latin-1") for origin in origins)
        self.preflight_headers = [
            (b"access-control-allow-methods", methods.encode()),
            (b"access-control-allow-headers", headers.encode()),
            (b"access-control-max-age", str(max_age_s).encode()),
            (b"allow", methods.encode()),
        ]
        self.expose = expose.encode()

    def _cors_headers(self, origin: bytes | None) -> list[tuple[bytes, bytes]]:
        if origin is None or origin not in self.origins:
            return []
        return [(b"access-control-allow-origin", origin), (b"access-control-allow-credentials", b"true")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cors = self._cors_headers(header_value(scope, b"origin"))
        if scope["method"] == "OPTIONS":
            scope.setdefault("state", {})["route_template"] = "preflight"
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": [*cors, *self.preflight_headers, (b"vary", b"Origin")],
                }
            )
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        if cors:
            cors.append((b"access-control-expose-headers", self.expose))

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                vary: list[bytes] = []
                headers: list[tuple[bytes, bytes]] = []
                for key, value in message.get("headers", ()):
                    lower = key.lower()
                    if lower == b"vary":
                        vary.extend(part.strip() for part in value.split(b",") if part.strip())
                    elif not lower.startswith(b"access-control-"):
                        headers.append((key, value))
                if not any(part.lower() == b"origin" for part in vary):
                    vary.append(b"Origin")
                headers.append((b"vary", b", ".join(vary)))
                headers.extend(cors)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_cors)


class JsonServerError:
    """Whatever goes wrong inside still answers JSON, inside the CORS layer so browsers can read it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if started:
                raise  # mid-body: only closing the connection tells the client the body is incomplete
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            await send_json_error(send, 500, "An unexpected error occurred.")
