"""Key fetches never stall a service: async and single-flight, unknown kids remembered, refresh in the background."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI

from pawgle.common.app import create_service_app
from pawgle.common.auth import AccessTokenVerifier, CurrentUserId, JwksCache
from pawgle.common.config import ServiceSettings
from pawgle.common.errors import Unauthorized
from pawgle.common.testing.fake_http import FakeRequest, FakeResponse, fake_http_server
from pawgle.common.testing.server import serve
from pawgle.common.testing.tokens import TokenIssuer
from pawgle.common.throttle import ThrottleStore, default_throttle

SLOW_S = 2.5  # under the cache's 3 s fetch timeout, so the key server does answer


@dataclass
class SlowJwks:
    """A JWKS endpoint that takes `delay_s` to answer (an overloaded auth, or auth asking itself)."""

    issuer: TokenIssuer
    delay_s: float = SLOW_S
    hits: int = 0
    answered_at: float | None = None
    extra_keys: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, _request: FakeRequest) -> FakeResponse:
        with self.lock:
            self.hits += 1
        time.sleep(self.delay_s)
        self.answered_at = time.monotonic()
        return FakeResponse(200, {"keys": self.issuer.jwks["keys"] + self.extra_keys})


@pytest.fixture
def issuer() -> TokenIssuer:
    return TokenIssuer()


@pytest.fixture
def slow_jwks(issuer: TokenIssuer) -> Iterator[tuple[SlowJwks, str]]:
    fake = SlowJwks(issuer)
    with fake_http_server(fake.handle) as base:
        yield fake, f"{base}/jwks/"


def forged(issuer: TokenIssuer) -> str:
    """A token signed by the issuer's key but naming a kid nobody publishes."""
    return issuer.token(7, kid=uuid.uuid4().hex)


def test_an_unknown_kid_with_a_slow_jwks_does_not_stall_the_other_requests_of_the_app(
    slow_jwks: tuple[SlowJwks, str], issuer: TokenIssuer, database_url: str, nats_url: str, tmp_path: Path
) -> None:
    fake, jwks_url = slow_jwks
    router = APIRouter()

    @router.get("/throttled/", dependencies=[Depends(default_throttle)])
    async def throttled() -> dict[str, str]:
        """Throttled per caller: reads the caller's token inside the event loop."""
        return {"ok": "yes"}

    @router.get("/me/")
    def me(user_id: CurrentUserId) -> dict[str, int]:
        """Needs a valid access token."""
        return {"user_id": user_id}

    @router.get("/ping/")
    async def ping() -> dict[str, str]:
        """Needs nothing."""
        return {"pong": "yes"}

    async def open_throttles(app: FastAPI) -> None:
        app.state.throttle_store = await ThrottleStore.open(app.state.js, bucket=f"t{secrets.token_hex(6)}")

    settings = ServiceSettings(
        service_name="toy",
        environment="test",
        data_dir=tmp_path,
        database_url=database_url,
        nats_url=nats_url,
        jwks_url=jwks_url,
    )
    app = create_service_app(settings, title="toy", routers=[router], on_startup=open_throttles)
    app.state.token_verifier.jwks.set_keys(issuer.jwks)
    valid = {"Authorization": f"Bearer {issuer.token(5)}"}
    with serve(app) as base, ThreadPoolExecutor(max_workers=16) as pool:
        forgeries = [
            pool.submit(httpx.get, f"{base}{path}", headers={"Authorization": f"Bearer {forged(issuer)}"}, timeout=10)
            for path in ("/throttled/", "/me/") * 4
        ]
        time.sleep(0.3)  # the forged tokens' key fetch is now in flight, for SLOW_S
        started = time.monotonic()
        others = [
            httpx.get(f"{base}/ping/", timeout=10),
            httpx.get(f"{base}/me/", headers=valid, timeout=10),
            httpx.get(f"{base}/throttled/", headers=valid, timeout=10),
        ]
        finished = time.monotonic()
        waited = finished - started
        answers = [f.result() for f in forgeries]
    assert [r.status_code for r in others] == [200, 200, 200]
    assert others[1].json() == {"user_id": 5}
    # Before the fix the loop itself waited for the fetch: every request of the app was answered only after
    # the key server. Ordering, not a time budget, so a loaded machine cannot fail it.
    assert fake.answered_at is not None
    assert finished < fake.answered_at, f"other requests waited {waited:.2f} s, until the key fetch ended"
    assert sorted(r.status_code for r in answers) == [200] * 4 + [401] * 4  # throttled ignores a bad token
    assert fake.hits == 1  # eight forged tokens, one fetch


async def test_a_flood_of_random_kids_costs_one_fetch_and_repeats_are_answered_from_memory(
    slow_jwks: tuple[SlowJwks, str], issuer: TokenIssuer
) -> None:
    fake, jwks_url = slow_jwks
    fake.delay_s = 0.3
    cache = JwksCache(jwks_url, min_refresh_interval_s=0.0)
    verifier = AccessTokenVerifier(cache, issuer=issuer.issuer, audience=issuer.audience)
    tokens = [forged(issuer) for _ in range(200)]
    results = await asyncio.gather(*(verifier.verify_async(t) for t in tokens), return_exceptions=True)
    assert all(isinstance(r, Unauthorized) for r in results)
    assert fake.hits == 1
    started = time.monotonic()
    for token in tokens[:50]:  # the same forged kids again: known unknowns, no fetch and no wait
        with pytest.raises(Unauthorized):
            await verifier.verify_async(token)
    assert time.monotonic() - started < 1.0  # 50 fetches would take 15 s
    assert fake.hits == 1


async def test_fetches_for_new_kids_are_rate_limited(slow_jwks: tuple[SlowJwks, str], issuer: TokenIssuer) -> None:
    fake, jwks_url = slow_jwks
    fake.delay_s = 0.0
    verifier = AccessTokenVerifier(
        JwksCache(jwks_url, min_refresh_interval_s=60), issuer=issuer.issuer, audience=issuer.audience
    )
    for _ in range(20):  # one forged kid after another, each waiting for nothing
        with pytest.raises(Unauthorized):
            await verifier.verify_async(forged(issuer))
    assert fake.hits == 1


async def test_a_rotated_key_is_fetched_once_and_then_verifies(
    slow_jwks: tuple[SlowJwks, str], issuer: TokenIssuer
) -> None:
    fake, jwks_url = slow_jwks
    fake.delay_s = 0.1
    verifier = AccessTokenVerifier(JwksCache(jwks_url), issuer=issuer.issuer, audience=issuer.audience)
    tokens = [issuer.token(user_id) for user_id in range(1, 21)]
    claims = await asyncio.gather(*(verifier.verify_async(t) for t in tokens))
    assert [c.user_id for c in claims] == list(range(1, 21))
    assert fake.hits == 1


async def test_the_whole_set_is_refreshed_in_the_background_while_requests_go_on(
    slow_jwks: tuple[SlowJwks, str], issuer: TokenIssuer
) -> None:
    fake, jwks_url = slow_jwks
    fake.delay_s = 2.0
    cache = JwksCache(jwks_url, min_refresh_interval_s=0.0, max_age_s=10.0, refresh_after_s=0.1)
    cache.set_keys(issuer.jwks)
    verifier = AccessTokenVerifier(cache, issuer=issuer.issuer, audience=issuer.audience)
    rotated = TokenIssuer()
    fake.extra_keys = rotated.jwks["keys"]
    await asyncio.sleep(0.15)  # the set is now due for its refresh
    started = time.monotonic()
    for user_id in range(10):
        assert (await verifier.verify_async(issuer.token(user_id))).user_id == user_id
    assert time.monotonic() - started < 1.0, "a request waited for the refresh"
    deadline = time.monotonic() + 10
    while cache.known_key(rotated.kid) is None and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert cache.known_key(rotated.kid) is not None  # the refreshed set is in place
    assert fake.hits == 1  # started in the background, once for the ten requests


def test_the_sync_check_inside_an_event_loop_answers_from_memory(
    slow_jwks: tuple[SlowJwks, str], issuer: TokenIssuer
) -> None:
    fake, jwks_url = slow_jwks
    verifier = AccessTokenVerifier(JwksCache(jwks_url), issuer=issuer.issuer, audience=issuer.audience)

    async def check() -> float:
        started = time.monotonic()
        with pytest.raises(Unauthorized):
            verifier.verify(forged(issuer))  # sync code in a coroutine, e.g. a throttle's caller lookup
        return time.monotonic() - started

    assert asyncio.run(check()) < SLOW_S / 2


def test_a_local_cache_never_fetches(issuer: TokenIssuer) -> None:
    cache = JwksCache.local(issuer.jwks)
    verifier = AccessTokenVerifier(cache, issuer=issuer.issuer, audience=issuer.audience)
    assert verifier.verify(issuer.token(3)).user_id == 3
    with pytest.raises(Unauthorized):
        verifier.verify(forged(issuer))
    with pytest.raises(Unauthorized):
        asyncio.run(verifier.verify_async(forged(issuer)))
    assert cache.fetches == 0


@pytest.mark.parametrize("answer", [FakeResponse(200, ["not", "a", "set"]), FakeResponse(200, b"{"), FakeResponse(503)])
async def test_a_broken_jwks_answer_keeps_the_known_keys_and_refuses_unknown_kids(
    issuer: TokenIssuer, answer: FakeResponse
) -> None:
    with fake_http_server(lambda _request: answer) as base:
        cache = JwksCache(f"{base}/jwks/", min_refresh_interval_s=0.0)
        cache.set_keys(issuer.jwks)
        verifier = AccessTokenVerifier(cache, issuer=issuer.issuer, audience=issuer.audience)
        with pytest.raises(Unauthorized):
            await verifier.verify_async(forged(issuer))
        assert (await verifier.verify_async(issuer.token(9))).user_id == 9
        assert cache.fetches == 1


async def test_a_failed_fetch_does_not_mark_the_kid_unknown(issuer: TokenIssuer) -> None:
    """An overloaded auth (a 503, a timeout) at a worker's first request must not refuse that kid for 30 s."""
    answers = [FakeResponse(503, {"detail": "busy"}), FakeResponse(200, issuer.jwks)]
    with fake_http_server(lambda _request: answers.pop(0) if len(answers) > 1 else answers[0]) as base:
        cache = JwksCache(f"{base}/jwks/", min_refresh_interval_s=0.0)
        verifier = AccessTokenVerifier(cache, issuer=issuer.issuer, audience=issuer.audience)
        token = issuer.token(5)
        with pytest.raises(Unauthorized):
            await verifier.verify_async(token)  # the JWKS answered 503: refused this time
        assert (await verifier.verify_async(token)).user_id == 5  # asked again, not "unknown for 30 s"
        assert cache.fetches == 2
