"""The auth service's public keys (JWKS), fetched and cached by `kid`, for every service verifying tokens.

Nothing here blocks an event loop: on a loop, keys are fetched with an async client, one fetch at a time,
and a whole-set refresh runs in the background while requests go on with the keys already known. An
unknown `kid` waits for at most one shared fetch and is then remembered as unknown for a short while, so a
flood of forged kids costs one fetch every few seconds, not one per request.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from typing import Any

import httpx
import jwt

log = logging.getLogger(__name__)


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class JwksCache:
    """Public keys by kid, fetched from a JWKS URL (or given directly) and cached.

    - An unknown kid triggers a fetch (a rotation), at most every `min_refresh_interval_s`; concurrent
      callers share the fetch in flight. A kid still unknown afterwards is answered "unknown" for
      `negative_ttl_s` without asking again.
    - The whole set is refetched in the background once it is older than `refresh_after_s` (by default
      80% of `max_age_s`), so a key the auth service withdrew (after a compromise) stops verifying
      everywhere within minutes, and no request ever waits for that refresh.
    - While the JWKS is unreachable the keys already known stay in use.
    - `url=None` (see `JwksCache.local`) never fetches: the keys come from `set_keys` only. The auth
      service verifies its own tokens this way, from its key ring.
    """

    def __init__(
        self,
        url: str | None,
        *,
        min_refresh_interval_s: float = 5.0,
        max_age_s: float = 300.0,
        refresh_after_s: float | None = None,
        negative_ttl_s: float = 30.0,
        negative_cache_size: int = 4096,
        timeout_s: float = 3.0,
    ) -> None:
        self.url = url
        self.min_refresh_interval_s = min_refresh_interval_s
        self.max_age_s = max_age_s
        self.refresh_after_s = max_age_s * 0.8 if refresh_after_s is None else refresh_after_s
        self.negative_ttl_s = negative_ttl_s
        self.negative_cache_size = negative_cache_size
        self.timeout_s = timeout_s
        self.fetches = 0  # completed fetch attempts, for tests and benchmarks
        self._last_fetch_ok = False  # a failed fetch proves nothing about a kid: it is not remembered unknown
        self._keys: dict[str, Any] = {}
        self._loaded_at = 0.0  # when the current set was loaded
        self._tried_at = -1e9  # when a fetch was last started
        self._unknown: OrderedDict[str, float] = OrderedDict()  # kid -> when it was found unpublished
        self._sync_lock = threading.Lock()  # one blocking fetch at a time, for callers off any loop
        self._inflight: asyncio.Task[None] | None = None  # the async fetch every waiter shares

    @classmethod
    def local(cls, jwks: dict[str, Any]) -> JwksCache:
        """A cache of the given keys that never fetches (the auth service's own key ring)."""
        cache = cls(None)
        cache.set_keys(jwks)
        return cache

    def set_keys(self, jwks: dict[str, Any]) -> None:
        """Load keys from a JWKS document (used by the auth service itself, and by tests)."""
        keys: dict[str, Any] = {}
        for jwk in jwks.get("keys", []):
            kid = jwk.get("kid")
            if kid:
                keys[kid] = jwt.PyJWK.from_dict(jwk)
        self._keys = keys
        self._loaded_at = time.monotonic()
        for kid in keys:
            self._unknown.pop(kid, None)

    def known_key(self, kid: str) -> Any:
        """The cached key for `kid`, or None; never does I/O."""
        return self._keys.get(kid)

    def key_for(self, kid: str) -> Any:
        """The public key (a PyJWK, which knows its algorithm) for `kid`, or None if it is not published.

        Safe to call anywhere: on an event loop it answers from memory and schedules any fetch in the
        background; off a loop (a worker thread) it may fetch, blocking only its own thread.
        """
        if _on_event_loop():
            key = self._keys.get(kid)
            if (key is None and self._may_fetch_for(kid)) or (key is not None and self._refresh_due()):
                self._start_fetch()
            return key
        return self._key_for_blocking(kid)

    async def get_key(self, kid: str) -> Any:
        """Like `key_for`, for async code: an unknown kid waits for the one shared fetch, never blocking."""
        key = self._keys.get(kid)
        if key is not None:
            if self._refresh_due():
                self._start_fetch()  # in the background: this request goes on with the key it has
            return key
        if not self._is_unknown_candidate(kid):
            return None
        if self._inflight_here() is None and self._may_fetch_for(kid):
            self._start_fetch()
        task = self._inflight_here()
        if task is None:
            return None  # fetched moments ago (rate limit): the kid is not published
        # shield: a caller that gives up (client gone) must not cancel the fetch the others share.
        await asyncio.shield(task)
        key = self._keys.get(kid)
        if key is None and self._last_fetch_ok:
            self._remember_unknown(kid)  # a fetch made after this kid was seen does not publish it
        return key

    def _inflight_here(self) -> asyncio.Task[None] | None:
        """The fetch in flight on this loop (a cache shared by apps on other loops cannot await theirs)."""
        task = self._inflight
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            return None
        return task

    def _is_unknown_candidate(self, kid: str) -> bool:
        seen = self._unknown.get(kid)
        return seen is None or time.monotonic() - seen >= self.negative_ttl_s

    def _may_fetch_for(self, kid: str) -> bool:
        if self.url is None or not self._is_unknown_candidate(kid):
            return False
        return time.monotonic() - self._tried_at >= self.min_refresh_interval_s

    def _refresh_due(self) -> bool:
        if self.url is None:
            return False
        now = time.monotonic()
        return now - self._loaded_at >= self.refresh_after_s and now - self._tried_at >= self.min_refresh_interval_s

    def _remember_unknown(self, kid: str) -> None:
        self._unknown[kid] = time.monotonic()
        self._unknown.move_to_end(kid)
        while len(self._unknown) > self.negative_cache_size:
            try:
                self._unknown.popitem(last=False)
            except KeyError:  # emptied meanwhile by another thread
                break

    def _start_fetch(self) -> None:
        """Start the async fetch on the running loop unless one is already in flight (single flight)."""
        if self._inflight_here() is not None:
            return
        self._tried_at = time.monotonic()
        self._inflight = asyncio.get_running_loop().create_task(self._fetch_async(), name="jwks-fetch")

    async def _fetch_async(self) -> None:
        assert self.url is not None
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.get(self.url)
                response.raise_for_status()
                self.set_keys(response.json())
            self._last_fetch_ok = True
        except Exception as exc:  # noqa: BLE001 - a bad answer (even a malformed set) only keeps the old keys
            self._last_fetch_ok = False
            log.warning("cannot refresh the JWKS from %s: %r", self.url, exc)
        finally:
            self.fetches += 1

    def _key_for_blocking(self, kid: str) -> Any:
        key = self._keys.get(kid)
        stale = time.monotonic() - self._loaded_at >= self.max_age_s
        if self.url is None or key is not None and not stale:
            return key
        with self._sync_lock:
            unknown = kid not in self._keys and self._is_unknown_candidate(kid)
            stale = time.monotonic() - self._loaded_at >= self.max_age_s
            if (unknown or stale) and time.monotonic() - self._tried_at >= self.min_refresh_interval_s:
                self._tried_at = time.monotonic()
                self._fetch_blocking()
            key = self._keys.get(kid)
            if key is None and self._last_fetch_ok:
                self._remember_unknown(kid)
            return key

    def _fetch_blocking(self) -> None:
        assert self.url is not None
        try:
            response = httpx.get(self.url, timeout=self.timeout_s)
            response.raise_for_status()
            self.set_keys(response.json())
            self._last_fetch_ok = True
        except Exception as exc:  # noqa: BLE001 - a bad answer (even a malformed set) only keeps the old keys
            self._last_fetch_ok = False
            log.warning("cannot refresh the JWKS from %s: %r", self.url, exc)
        finally:
            self.fetches += 1
