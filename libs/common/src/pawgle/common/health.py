"""/healthz (the process is alive) and /readyz (its database and bus answer) for every service."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from fastapi import APIRouter, Request

from pawgle.common.db import ping
from pawgle.common.errors import JSONResponseUTF8

ReadinessCheck = Callable[[Request], Awaitable[None]]

# The database ping has a thread of its own: behind the shared worker threads (busy with, say, ten
# concurrent password hashes) it would wait its turn and time out, and a busy service is not an unready one.
_PING_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="readyz-ping")


async def check_database(request: Request) -> None:
    loop = asyncio.get_running_loop()
    await asyncio.wait_for(loop.run_in_executor(_PING_THREAD, ping, request.app.state.engine), timeout=2.0)


async def check_bus(request: Request) -> None:
    nc = getattr(request.app.state, "nc", None)
    if nc is None or not nc.is_connected:
        raise RuntimeError("not connected to NATS")
    await nc.flush(timeout=2)


def health_router(extra_checks: dict[str, ReadinessCheck] | None = None) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    checks: dict[str, ReadinessCheck] = {"database": check_database, "bus": check_bus, **(extra_checks or {})}

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz(request: Request) -> JSONResponseUTF8:
        """Readiness: every dependency answers; 503 names the ones that do not."""
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                await check(request)
                results[name] = "ok"
            except Exception as exc:  # noqa: BLE001 - any failure means not ready
                results[name] = f"failed: {type(exc).__name__}"
        ready = all(v == "ok" for v in results.values())
        return JSONResponseUTF8(
            {"status": "ok" if ready else "unavailable", "checks": results}, status_code=200 if ready else 503
        )

    return router
