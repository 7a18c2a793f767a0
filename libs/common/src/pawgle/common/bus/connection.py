"""Connecting to NATS with explicit reconnect settings."""

from __future__ import annotations

import asyncio
import logging

import nats
from nats.aio.client import Client

log = logging.getLogger(__name__)


async def _on_error(exc: Exception) -> None:
    log.warning("nats error: %r", exc)


async def _on_disconnected() -> None:
    log.warning("nats disconnected")


async def _on_reconnected() -> None:
    log.info("nats reconnected")


async def connect_bus(url: str, *, name: str, first_connect_attempts: int = 30) -> Client:
    """Connect to NATS (retrying the first connection with backoff); once up, reconnect every 0.5 s."""
    for attempt in range(1, first_connect_attempts + 1):
        try:
            return await nats.connect(
                servers=[url],
                name=name,
                connect_timeout=2,
                allow_reconnect=True,
                reconnect_time_wait=0.5,
                # A service outlives any broker restart; /readyz reports the gap meanwhile.
                max_reconnect_attempts=-1,
                ping_interval=10,
                max_outstanding_pings=3,
                pending_size=8 * 1024 * 1024,
                drain_timeout=10,
                error_cb=_on_error,
                disconnected_cb=_on_disconnected,
                reconnected_cb=_on_reconnected,
            )
        except Exception:
            if attempt == first_connect_attempts:
                raise
            await asyncio.sleep(min(0.2 * 2**attempt, 2.0))
    raise AssertionError("unreachable")
