"""The gateway's own probes: /healthz aggregates every service's readiness, /readyz is this process.

Metrics are not here: they are served on the internal GATEWAY_METRICS_PORT only (edge.py), never publicly.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from pawgle.gateway.asgi import JSON_MEDIA_TYPE

router = APIRouter(include_in_schema=False)


class JsonResponse(JSONResponse):
    """JSON with its charset, like every other answer of the mesh."""

    media_type = JSON_MEDIA_TYPE


async def check_service(client: httpx.AsyncClient, base_url: str, timeout_s: float) -> dict[str, Any]:
    """Ask one service's /readyz; any failure or non-200 answer means unavailable."""
    started = time.perf_counter()
    result: dict[str, Any] = {"status": "unavailable"}
    try:
        response = await client.get(f"{base_url}/readyz", timeout=timeout_s)
        result["http_status"] = response.status_code
        if response.status_code == 200:
            result["status"] = "ok"
        else:
            result["reason"] = f"/readyz answered {response.status_code}"
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("checks"), dict):
            result["checks"] = body["checks"]
    except httpx.TimeoutException:
        result["reason"] = f"no answer within {timeout_s:g} s"
    except httpx.TransportError as exc:
        result["reason"] = f"unreachable ({type(exc).__name__})"
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


@router.get("/healthz")
async def healthz(request: Request) -> JsonResponse:
    """Readiness of every service behind the gateway, keyed by service name; 503 unless all are ok."""
    proxy = request.app.state.proxy
    if proxy.client is None:
        return JsonResponse({"status": "degraded", "services": {}}, status_code=503)
    timeout_s = request.app.state.settings.health_timeout_s
    names = list(proxy.upstreams)
    results = await asyncio.gather(*(check_service(proxy.client, proxy.upstreams[n], timeout_s) for n in names))
    services = dict(zip(names, results, strict=True))
    healthy = all(result["status"] == "ok" for result in results)
    return JsonResponse(
        {"status": "ok" if healthy else "degraded", "services": services}, status_code=200 if healthy else 503
    )


@router.get("/readyz")
async def readyz(request: Request) -> JsonResponse:
    """Readiness of the gateway process itself: its upstream pool is open."""
    ready = request.app.state.proxy.client is not None
    return JsonResponse({"status": "ok" if ready else "unavailable"}, status_code=200 if ready else 503)
