"""Helpers for the bus tests: run background loops and read back what the stream holds."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from pawgle.common.app import stop_tasks


async def stream_event_ids(nc: Client, subject: str = "mesh.pinged", stream: str = "MESH") -> list[str]:
    """Every event id the stream holds for `subject`, in stream order."""
    js = nc.jetstream()
    sub = await js.pull_subscribe(
        subject,
        stream=stream,
        config=ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL, mem_storage=True),
    )
    ids: list[str] = []
    try:
        while True:
            try:
                msgs = await sub.fetch(500, timeout=0.5)
            except TimeoutError:  # nats-py raises its own subclass or a bare asyncio.TimeoutError
                return ids
            ids.extend(json.loads(m.data)["id"] for m in msgs)
    finally:
        await sub.unsubscribe()


async def wait_until(condition: Callable[[], bool], *, timeout_s: float = 30.0, interval_s: float = 0.05) -> None:
    """Poll a condition (run in a thread: it may touch the database) until it holds or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await asyncio.to_thread(condition):
            return
        await asyncio.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s} s")


async def stop(*tasks: asyncio.Task[None]) -> None:
    await stop_tasks(tasks)
