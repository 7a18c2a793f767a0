"""A continuous pull from a durable JetStream consumer: the next batch is delivered while one is handled.

nats-py's `fetch(n)` sends a pull request per batch and then waits for each message with its own
timer (`wait_for` on a queue), so a consumer paid a request round trip between batches and a timer per
event: measured, `fetch` took 0.26 ms of CPU per event against 0.15-0.18 here. As nats.go's `Consume`
does, the feed keeps between one and two batches asked for ahead (its credit) in pull requests that stay
open on the server; messages land in a buffer as they arrive and `next_batch` hands over whatever is
there as soon as there is anything.

The credit is counted exactly: each message takes one, and a request the server ends unfulfilled (408
when it expires, 404) says how many it still owed (Nats-Pending-Messages). Anything the count cannot
trust (a reconnect, a 409, silence past the requests' expiry) resets it to zero, which only means asking
again: a request asked twice costs a little, a request never asked would stall the consumer.
"""

from __future__ import annotations

import asyncio
import time

import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

_HEARTBEAT = "100"
_ENDED_WITH_COUNT = {"404", "408"}  # no messages / request expired; both say what they still owed


class PullFeed:
    """Keep pull requests open on `durable`; `next_batch()` returns what has arrived (at most `batch`)."""

    def __init__(
        self,
        nc: Client,
        *,
        stream: str,
        durable: str,
        batch: int,
        expires_s: float = 5.0,
        api_prefix: str = "$JS.API",
    ) -> None:
        self._nc = nc
        self._next_subject = f"{api_prefix}.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._batch = max(batch, 1)
        self._expires_s = expires_s
        self._inbox = nc.new_inbox()
        self._buffer: list[Msg] = []
        self._arrived = asyncio.Event()
        self._credit = 0
        self._last_heard = time.monotonic()
        self._not_before = 0.0
        self._reconnects = nc.stats.get("reconnects", 0)
        self._sub: Subscription | None = None

    async def start(self) -> None:
        self._sub = await self._nc.subscribe(self._inbox, cb=self._on_message)

    async def close(self, *, nak_buffered: bool = True) -> None:
        """Stop asking; buffered messages no one will handle go back to the stream at once (nak)."""
        if self._sub is not None:
            sub, self._sub = self._sub, None
            await sub.unsubscribe()
        buffered, self._buffer = self._buffer, []
        if nak_buffered:
            for msg in buffered:
                await msg.nak()

    async def _on_message(self, msg: Msg) -> None:
        self._last_heard = time.monotonic()
        if msg.reply:  # a JetStream message always carries its ack subject; a status never does
            self._credit -= 1
            self._buffer.append(msg)
            self._arrived.set()
            return
        headers = msg.headers or {}
        status = headers.get("Status")
        if status == _HEARTBEAT:
            return
        owed = headers.get("Nats-Pending-Messages")
        if status in _ENDED_WITH_COUNT and owed is not None and owed.isdigit():
            self._credit = max(self._credit - int(owed), 0)
        else:
            # 409 (too many waiting requests, consumer deleted, leader change...): ask again, not at once.
            self._credit = 0
            self._not_before = time.monotonic() + 0.25
        self._arrived.set()

    async def _top_up(self) -> None:
        if self._nc.stats.get("reconnects", 0) != self._reconnects:
            # A broker restart forgets open requests: whatever the count says is owed will never come.
            self._reconnects = self._nc.stats.get("reconnects", 0)
            self._credit = 0
        elif self._credit and time.monotonic() - self._last_heard > self._expires_s + 2.0:
            self._credit = 0  # every open request would have ended (and said so) by now
        if self._credit >= self._batch or time.monotonic() < self._not_before or not self._nc.is_connected:
            return
        ask = 2 * self._batch - self._credit
        body = orjson.dumps({"batch": ask, "expires": int(self._expires_s * 1e9)})
        await self._nc.publish(self._next_subject, body, reply=self._inbox)
        self._credit += ask
        self._last_heard = time.monotonic()

    async def next_batch(self, timeout_s: float) -> list[Msg]:
        """Up to `batch` messages: those already here, else the first to arrive within `timeout_s` (or [])."""
        deadline = time.monotonic() + timeout_s
        while not self._buffer:
            await self._top_up()
            if self._buffer:  # arrived while the request went out
                break
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout=min(left, 0.5))
            except TimeoutError:
                pass
        batch, self._buffer = self._buffer[: self._batch], self._buffer[self._batch :]
        await self._top_up()  # the next batch is on its way while this one is handled
        return batch
