"""Metrics (Prometheus), traces (OpenTelemetry, OTLP when configured) and structured logs with the trace id."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Response
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HTTP_REQUESTS = Counter("pawgle_http_requests_total", "HTTP requests handled", ["service", "method", "route", "status"])
HTTP_LATENCY = Histogram(
    "pawgle_http_request_duration_seconds",
    "HTTP request latency",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# Backlog gauges: every worker process of a service reads the same tables and consumers: one value, the largest.
OUTBOX_BACKLOG = Gauge(
    "pawgle_outbox_backlog", "Outbox events not yet acknowledged by JetStream", ["service"], multiprocess_mode="max"
)
OUTBOX_PUBLISHED = Counter("pawgle_outbox_published_total", "Outbox events published", ["service"])
EVENTS_HANDLED = Counter("pawgle_events_handled_total", "Events handled by consumers", ["consumer", "outcome"])
EVENT_HANDLE_LATENCY = Histogram(
    "pawgle_event_handle_duration_seconds",
    "Time from event occurrence to handled",
    ["consumer"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
CONSUMER_LAG = Gauge(
    "pawgle_consumer_pending",
    "Events waiting for a consumer (JetStream num_pending)",
    ["consumer"],
    multiprocess_mode="max",
)
DEAD_LETTERS = Gauge(
    "pawgle_dead_letters_open",
    "Events parked after max deliveries, not yet retried",
    ["consumer"],
    multiprocess_mode="max",
)
DEAD_LETTERED = Counter("pawgle_dead_lettered_total", "Events parked after max deliveries", ["consumer"])

_configured_service: str | None = None
# Whether spans leave the process (an OTLP endpoint is configured). When they do not, a request that
# carries no trace context gets no server span: making one (ids, attributes, context switch) cost about
# a tenth of a small read's CPU, for a span nobody could see. A request that carries a traceparent always
# gets its span, so a trace passing through stays whole (and in-process exporters, as tests add, see it).
_exporting = False


def tracer() -> trace.Tracer:
    return trace.get_tracer("pawgle")


# A proxy that follows whatever provider setup_telemetry installs later, looked up once, not per request.
_TRACER = trace.get_tracer("pawgle")


def setup_telemetry(*, service: str, otlp_endpoint: str | None, log_format: str, log_level: str) -> None:
    """Configure logging and tracing once per process."""
    global _configured_service, _exporting
    if _configured_service is not None:
        return
    _configured_service = service
    _exporting = bool(otlp_endpoint)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service) if log_format == "json" else TextFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(log_level.upper())
    logging.getLogger("nats").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per outgoing request is noise

    provider = TracerProvider(resource=Resource.create({"service.name": f"pawgle-{service}"}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint, timeout=5)))
    trace.set_tracer_provider(provider)


def _trace_ids() -> tuple[str | None, str | None]:
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None, None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the trace id, for log shippers."""

    _skip = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        trace_id, span_id = _trace_ids()
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if trace_id:
            doc["trace_id"], doc["span_id"] = trace_id, span_id
        doc.update({k: v for k, v in vars(record).items() if k not in self._skip})
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__(f"%(asctime)s %(levelname)-7s [{service}] %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        trace_id, _ = _trace_ids()
        return f"{line} trace={trace_id}" if trace_id else line


def current_trace_headers() -> dict[str, str]:
    """The active trace context as W3C headers, to carry in a message."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_from_headers(headers: Mapping[str, str] | None) -> otel_context.Context:
    return propagate.extract(dict(headers or {}))


def _route_template(scope: Scope) -> str:
    """The matched route's template (set by the router on the scope), so ids never explode label sets."""
    route = scope.get("route")
    return str(getattr(route, "path", None) or "unmatched")


class _ObserveRequests:
    """RED metrics by route template and one server span per request, as a plain ASGI middleware.

    Plain ASGI, not `@app.middleware("http")`: Starlette's BaseHTTPMiddleware runs every request in a
    task group with memory streams between the two halves, which cost more CPU than the route itself.
    """

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method = scope["method"]
        status = 500
        carrier = _trace_carrier(scope)

        async def send_observing(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                _spell_out_json_charset(message)
            await send(message)

        if not carrier and not _exporting:
            try:
                await self.app(scope, receive, send_observing)
            finally:
                counter, latency = self._series(method, _route_template(scope), status)
                counter.inc()
                latency.observe(time.perf_counter() - started)
            return
        ctx = propagate.extract(carrier) if carrier else None
        with _TRACER.start_as_current_span(
            f"{method} {scope['path']}", context=ctx, kind=trace.SpanKind.SERVER, record_exception=False
        ) as span:
            try:
                await self.app(scope, receive, send_observing)
            finally:
                route = _route_template(scope)
                if span.is_recording():
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                    span.set_attribute("http.status_code", status)
                counter, latency = self._series(method, route, status)
                counter.inc()
                latency.observe(time.perf_counter() - started)

    def _series(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        # Route templates, methods and statuses are few, so their metric children are looked up once.
        if method not in _METHODS:
            method = "OTHER"  # any token is a method to the HTTP parser: never a label per made-up one
        key = (method, route, status)
        series = self._children.get(key)
        if series is None:
            series = self._children[key] = (
                HTTP_REQUESTS.labels(self.service, method, route, str(status)),
                HTTP_LATENCY.labels(self.service, method, route),
            )
        return series


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _spell_out_json_charset(start: Message) -> None:
    """`application/json` becomes `application/json; charset=utf-8`, as the contract asks of every answer.

    FastAPI's fastest path (response models serialized by pydantic straight to bytes) labels its answers
    without the charset; this middleware sees every response start anyway.
    """
    headers = start.get("headers") or []
    for index, (name, value) in enumerate(headers):
        if name == b"content-type":
            if value == b"application/json":
                start["headers"] = [*headers[:index], (name, b"application/json; charset=utf-8"), *headers[index + 1 :]]
            return


def _trace_carrier(scope: Scope) -> dict[str, str]:
    """The W3C trace headers of a request, if it carries any (most do not: skip the propagator then)."""
    carrier: dict[str, str] = {}
    for name, value in scope["headers"]:
        if name in (b"traceparent", b"tracestate"):
            carrier[name.decode("latin-1")] = value.decode("latin-1")
    return carrier


def instrument_app(app: FastAPI, *, service: str) -> None:
    """HTTP RED metrics by route template, a server span per request, and GET /metrics."""
    app.add_middleware(_ObserveRequests, service=service)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        """Prometheus metrics of this service: of all its worker processes when it runs several."""
        return Response(generate_latest(_registry()), media_type=CONTENT_TYPE_LATEST)


def _registry() -> CollectorRegistry:
    """The process's registry, or, under several worker processes, all of theirs merged.

    The launcher gives a service with several workers a `PROMETHEUS_MULTIPROC_DIR` (emptied at each start):
    prometheus_client then keeps every process's values in files there, and whichever worker answers
    /metrics reports the sum of counters and histograms over all of them (gauges as their
    `multiprocess_mode` says). A cluster runs one process per pod and never sets it.
    """
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry
