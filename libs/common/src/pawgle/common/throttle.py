"""Request throttles counted in a NATS JetStream key-value bucket, so every replica shares the same counts.

Fixed windows: one counter per (scope, caller, window) key, incremented atomically with compare-and-set on
the key's revision. Keys expire through the bucket's TTL, so nothing needs cleaning up. The caller is the
user id of a valid access token, else the client IP (the one the gateway decided, see clientaddress.py;
X-Forwarded-For is never read here). Callers are hashed before they become keys: no IP or
e-mail address is stored on the bus. While the bus is unreachable requests are let through (and logged):
an outage of the counter store must not take every endpoint down with it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

from fastapi import Request
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError, KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from pawgle.common.auth import bearer_token
from pawgle.common.clientaddress import TrustedProxies, client_ip
from pawgle.common.errors import TooManyRequests, Unauthorized

__all__ = [
    "CONTRACT_RATES",
    "Rate",
    "Throttle",
    "ThrottleStore",
    "TrustedProxies",
    "caller_identity",
    "client_ip",
    "default_throttle",
]

log = logging.getLogger(__name__)

_PERIODS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}
_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*$")

# Contract 0.8: scope names and the original rates; they may be raised per deployment, never lowered.
CONTRACT_RATES: dict[str, str] = {
    "anon": "60/min",
    "user": "300/min",
    "login": "10/min",
    "signup": "5/min",
    "password_reset": "5/hour",
    "email_verification": "5/hour",
    "pet_search": "20/min",
    "pet_write": "30/min",
    "report_pet": "10/min",
    "contact_owner": "10/hour",
}


@dataclass(frozen=True)
class Rate:
    """`limit` requests per `period_s` seconds."""

    limit: int
    period_s: int

    @classmethod
    def parse(cls, text: str | Rate) -> Rate:
        """Parse `10/min`, `5/hour`, `3/10s` (a count, optionally a multiplier, and a unit)."""
        if isinstance(text, Rate):
            return text
        match = _RATE_RE.match(text.lower())
        if not match or match.group(3) not in _PERIODS:
            raise ValueError(f"invalid rate {text!r}: use e.g. '10/min', '5/hour' or '3/10s'")
        limit, multiplier, unit = int(match.group(1)), int(match.group(2) or 1), match.group(3)
        if limit < 1 or multiplier < 1:
            raise ValueError(f"invalid rate {text!r}: the count and period must be positive")
        return cls(limit=limit, period_s=multiplier * _PERIODS[unit])


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    count: int
    limit: int
    retry_after_s: int


class ThrottleStore:
    """Counters of every throttle, in one key-value bucket shared by all services and replicas."""

    def __init__(
        self, kv: KeyValue, *, overrides: Mapping[str, str] | None = None, enabled: bool = True, max_attempts: int = 50
    ) -> None:
        self.kv = kv
        self.overrides = {scope: Rate.parse(rate) for scope, rate in (overrides or {}).items()}
        self.enabled = enabled
        self.max_attempts = max_attempts

    @classmethod
    async def open(
        cls,
        js: JetStreamContext,
        *,
        bucket: str = "throttles",
        max_period_s: int = 86400,
        replicas: int = 1,
        overrides: Mapping[str, str] | None = None,
        enabled: bool = True,
    ) -> ThrottleStore:
        """Bind to the bucket, creating it (keys live as long as the longest window) if it is missing."""
        try:
            kv = await js.key_value(bucket)
        except BucketNotFoundError:
            kv = await js.create_key_value(
                KeyValueConfig(
                    bucket=bucket,
                    history=1,
                    ttl=float(max_period_s),
                    storage=StorageType.FILE,
                    replicas=replicas,
                    description="request throttle counters",
                )
            )
        return cls(kv, overrides=overrides, enabled=enabled)

    def rate_for(self, scope: str, default: str | Rate | None = None) -> Rate:
        """The configured rate of a scope: a deployment override, else the given default, else the contract's."""
        if scope in self.overrides:
            return self.overrides[scope]
        if default is not None:
            return Rate.parse(default)
        return Rate.parse(CONTRACT_RATES[scope])

    async def hit(self, scope: str, caller: str, rate: Rate, *, now: float | None = None) -> Verdict:
        """Count one request of `caller` in `scope`; say whether it is within `rate`."""
        now = time.time() if now is None else now
        window = int(now // rate.period_s)
        retry_after = max(math.ceil((window + 1) * rate.period_s - now), 1)
        if not self.enabled:
            return Verdict(True, 0, rate.limit, 0)
        key = f"{_safe(scope)}.{rate.period_s}.{_digest(caller)}.{window}"
        try:
            count = await self._increment(key)
        except (NatsError, TimeoutError) as exc:
            # The bus is the shared store; while it is unreachable we serve rather than fail every request.
            log.warning("throttle store unavailable, request not counted: %r", exc)
            return Verdict(True, 0, rate.limit, 0)
        return Verdict(count <= rate.limit, count, rate.limit, 0 if count <= rate.limit else retry_after)

    async def check(self, scope: str, caller: str, rate: Rate | None = None) -> None:
        """Count one request and raise TooManyRequests (429 + Retry-After) when it is over the rate."""
        verdict = await self.hit(scope, caller, rate or self.rate_for(scope))
        if not verdict.allowed:
            raise TooManyRequests(verdict.retry_after_s)

    async def _increment(self, key: str) -> int:
        for attempt in range(self.max_attempts):
            try:
                entry = await self.kv.get(key)
            except (KeyNotFoundError, KeyDeletedError):
                try:
                    await self.kv.create(key, b"1")
                    return 1
                except KeyWrongLastSequenceError:
                    continue  # another replica created it first: read it again
            count = int(entry.value or b"0") + 1
            try:
                await self.kv.update(key, str(count).encode(), last=entry.revision)
                return count
            except KeyWrongLastSequenceError:
                # Lost the race to another request: back off a little (jittered) and retry on the new revision.
                await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))
        # Under extreme contention, fail closed for this request rather than not counting it.
        log.warning("throttle counter too contended", extra={"throttle_key": key})
        return 2**31


def _digest(caller: str) -> str:
    return hashlib.sha256(caller.encode()).hexdigest()[:32]


def _safe(scope: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", scope)


def caller_identity(request: Request) -> str:
    """`user:<id>` for a valid access token, else `ip:<address>`."""
    token = bearer_token(request)
    verifier = getattr(request.app.state, "token_verifier", None)
    if token is not None and verifier is not None:
        try:
            return f"user:{verifier.verify(token).user_id}"
        except Unauthorized:
            pass
    return f"ip:{client_ip(request)}"


async def default_throttle(request: Request) -> None:
    """The contract's default: scope `user` for a caller with a valid token, else `anon` per IP.

    Use as `dependencies=[Depends(default_throttle)]` on routes without a scope of their own.
    """
    store: ThrottleStore | None = getattr(request.app.state, "throttle_store", None)
    if store is None:
        return
    caller = caller_identity(request)
    scope = "user" if caller.startswith("user:") else "anon"
    await store.check(scope, caller, store.rate_for(scope))


class Throttle:
    """FastAPI dependency: `dependencies=[Depends(Throttle("login"))]` limits a route per user or IP.

    The store comes from `app.state.throttle_store`; a missing store means throttling is off (tools, tests
    of other concerns). `by="ip"` keys on the client address even for signed-in callers.
    """

    def __init__(self, scope: str, rate: str | Rate | None = None, *, by: str = "user_or_ip") -> None:
        if by not in ("user_or_ip", "ip"):
            raise ValueError("by must be 'user_or_ip' or 'ip'")
        self.scope = scope
        self.default_rate = Rate.parse(rate) if rate is not None else Rate.parse(CONTRACT_RATES[scope])
        self.by = by

    async def __call__(self, request: Request) -> None:
        store: ThrottleStore | None = getattr(request.app.state, "throttle_store", None)
        if store is None:
            return
        caller = f"ip:{client_ip(request)}" if self.by == "ip" else caller_identity(request)
        await store.check(self.scope, caller, store.rate_for(self.scope, self.default_rate))
