"""Mesh-wide revocation of access tokens: a deleted or deactivated account's token stops working at once.

An access token is self-contained and lives up to 15 minutes, so without this every service but auth would
accept a deleted user's token until it expires. Instead each service keeps, in memory, the users whose
account was deleted or deactivated recently, built from the auth service's own events on the USERS stream
(`user.deleted`, and `user.updated` with `is_active: false`). Those events are written in the same
transaction as the deletion (transactional outbox), so nothing extra has to be written, and nothing can be
lost: each service replays the last `REVOCATION_WINDOW_S` of the stream when it starts, then follows it
live (an ordered push consumer, delivered within milliseconds of the relay publishing).

A token is refused when it was issued before (or just after) its account was revoked; tokens
issued later, after a reactivation, work again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from pawgle.common.events.auth import UserDeleted, UserUpdated
from pawgle.common.events.envelope import UnknownEventError, decode_event

log = logging.getLogger(__name__)

# Longer than any access token lives (auth's AUTH_ACCESS_TTL_S is at most 900 s), plus clock leeway:
# a revocation older than this only concerns tokens that have expired anyway.
REVOCATION_WINDOW_S = 20 * 60.0
# Auth writes `iat` to the millisecond; tokens of other issuers (or older ones) may carry whole seconds, which
# a revocation later in that same second must still cover. A token whose `iat` is fractional is compared
# as it is, with a little room for the clocks of two auth replicas.
ISSUED_AT_SLACK_S = 1.0
REPLICA_CLOCK_SLACK_S = 0.05
USERS_STREAM = "USERS"


class RevocationList:
    """Users whose tokens issued up to a moment are refused, kept in memory and fed from the USERS stream."""

    def __init__(self, *, window_s: float = REVOCATION_WINDOW_S) -> None:
        self.window_s = window_s
        self._revoked_at: dict[int, float] = {}  # user id -> unix time of the revocation
        self._sub: JetStreamContext.PushSubscription | None = None
        self._applied = 0

    def revoke(self, user_id: int, *, at: float | None = None) -> None:
        """Refuse `user_id`'s tokens issued up to `at` (default now)."""
        at = time.time() if at is None else at
        if at > self._revoked_at.get(user_id, float("-inf")):
            self._revoked_at[user_id] = at
        self._applied += 1
        if self._applied % 256 == 0:
            self._forget_expired()

    def is_revoked(self, user_id: int, issued_at: float) -> bool:
        """True when a token of `user_id` issued at `issued_at` (unix seconds) must be refused."""
        at = self._revoked_at.get(user_id)
        if at is None:
            return False
        slack = ISSUED_AT_SLACK_S if float(issued_at).is_integer() else REPLICA_CLOCK_SLACK_S
        return issued_at <= at + slack

    def __len__(self) -> int:
        return len(self._revoked_at)

    def _forget_expired(self) -> None:
        horizon = time.time() - self.window_s
        for user_id in [u for u, at in self._revoked_at.items() if at < horizon]:
            del self._revoked_at[user_id]

    def apply(self, raw: bytes) -> None:
        """Take one USERS event into account (other types and undecodable messages are ignored)."""
        try:
            envelope = decode_event(raw)
        except UnknownEventError:
            return
        data = envelope.data
        revoked = isinstance(data, UserDeleted) or (isinstance(data, UserUpdated) and not data.is_active)
        if revoked:
            self.revoke(data.user_id, at=envelope.occurred_at.timestamp())

    async def start(self, js: JetStreamContext, *, catch_up_timeout_s: float = 10.0) -> None:
        """Replay the window from the USERS stream, then follow it; returns once the replay is applied."""

        async def on_message(msg: Msg) -> None:
            self.apply(msg.data)

        since = datetime.now(UTC) - timedelta(seconds=self.window_s)
        self._sub = await js.subscribe(
            "user.>",  # the whole USERS stream: one consumer for both event types
            stream=USERS_STREAM,
            cb=on_message,
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=since),
        )
        deadline = time.monotonic() + catch_up_timeout_s
        while time.monotonic() < deadline:
            info = await self._sub.consumer_info()
            if not info.num_pending and not self._sub.pending_msgs:
                return
            await asyncio.sleep(0.02)
        log.warning("revocation list: the USERS stream replay did not finish in %.0f s", catch_up_timeout_s)

    async def stop(self) -> None:
        """Stop following the stream."""
        if self._sub is not None:
            sub, self._sub = self._sub, None
            try:
                await sub.unsubscribe()
            except Exception:  # noqa: BLE001, S110 - the connection may already be gone
                pass
