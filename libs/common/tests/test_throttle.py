"""Throttles counted in a JetStream key-value bucket on a real nats-server."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator

import nats
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from nats.aio.client import Client

from pawgle.common.errors import install_error_handlers
from pawgle.common.throttle import Rate, Throttle, ThrottleStore


@pytest.fixture
async def connections(nats_url: str) -> AsyncIterator[list[Client]]:
    """Two connections: two replicas of a service sharing one bucket."""
    clients = [await nats.connect(nats_url) for _ in range(2)]
    yield clients
    for client in clients:
        await client.drain()


@pytest.fixture
def bucket() -> str:
    return f"t{secrets.token_hex(6)}"


def test_rates_parse_the_contract_notation() -> None:
    assert Rate.parse("10/min") == Rate(10, 60)
    assert Rate.parse("5/hour") == Rate(5, 3600)
    assert Rate.parse("3/10s") == Rate(3, 10)
    for bad in ("ten/min", "5/fortnight", "0/min", ""):
        with pytest.raises(ValueError, match="invalid rate"):
            Rate.parse(bad)


async def test_a_throttle_trips_at_its_rate_and_resets_in_the_next_window(
    connections: list[Client], bucket: str
) -> None:
    store = await ThrottleStore.open(connections[0].jetstream(), bucket=bucket)
    rate = Rate(3, 60)
    window_start = (time.time() // 60) * 60
    at = window_start + 15.2  # a fixed clock, so the test never straddles a window edge
    verdicts = [await store.hit("login", "ip:10.0.0.1", rate, now=at) for _ in range(4)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert verdicts[-1].retry_after_s == 45
    assert (await store.hit("login", "ip:10.0.0.2", rate, now=at)).allowed  # counted per caller
    assert not (await store.hit("login", "ip:10.0.0.1", rate, now=window_start + 59.9)).allowed
    assert (await store.hit("login", "ip:10.0.0.1", rate, now=window_start + 60.0)).allowed


async def test_counters_expire_with_the_bucket_ttl(nats_url: str, connections: list[Client], bucket: str) -> None:
    store = await ThrottleStore.open(connections[0].jetstream(), bucket=bucket, max_period_s=1)
    rate = Rate(1, 3600)
    at = time.time()
    assert (await store.hit("login", "ip:10.0.0.3", rate, now=at)).allowed
    assert not (await store.hit("login", "ip:10.0.0.3", rate, now=at)).allowed
    await asyncio.sleep(2.0)
    assert (await store.hit("login", "ip:10.0.0.3", rate, now=at)).allowed  # the key is gone


async def test_replicas_share_counts_and_concurrent_hits_are_each_counted_once(
    connections: list[Client], bucket: str
) -> None:
    stores = [await ThrottleStore.open(c.jetstream(), bucket=bucket) for c in connections]
    rate = Rate(1000, 3600)
    verdicts = await asyncio.gather(*(stores[i % 2].hit("signup", "ip:10.0.0.9", rate) for i in range(40)))
    assert sorted(v.count for v in verdicts) == list(range(1, 41))


async def test_overrides_replace_the_contract_rate(connections: list[Client], bucket: str) -> None:
    store = await ThrottleStore.open(connections[0].jetstream(), bucket=bucket, overrides={"login": "20/min"})
    assert store.rate_for("login") == Rate(20, 60)
    assert store.rate_for("signup") == Rate(5, 60)


def test_a_throttled_route_answers_429_with_retry_after(nats_url: str, bucket: str) -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nc = await nats.connect(nats_url)
        app.state.throttle_store = await ThrottleStore.open(nc.jetstream(), bucket=bucket)
        yield
        await nc.drain()

    app = FastAPI(lifespan=lifespan)
    install_error_handlers(app)

    @app.get("/limited/", dependencies=[Depends(Throttle("login", "2/min"))])
    async def limited() -> dict[str, bool]:
        return {"ok": True}

    with TestClient(app) as client:
        assert [client.get("/limited/").status_code for _ in range(2)] == [200, 200]
        response = client.get("/limited/")
        assert response.status_code == 429
        retry_after = int(response.headers["retry-after"])
        assert 1 <= retry_after <= 60
        assert response.json()["detail"] == f"Request was throttled. Expected available in {retry_after} seconds."


async def test_an_unreachable_store_lets_requests_through(nats_url: str, bucket: str) -> None:
    nc = await nats.connect(nats_url)
    store = await ThrottleStore.open(nc.jetstream(), bucket=bucket)
    await nc.close()
    verdict = await store.hit("login", "ip:10.0.0.1", Rate(1, 60))
    assert verdict.allowed
    assert verdict.count == 0


def test_the_default_throttle_counts_signed_in_callers_as_users_and_others_as_anon(nats_url: str, bucket: str) -> None:
    from pawgle.common.auth import AccessClaims
    from pawgle.common.throttle import default_throttle

    class Verifier:
        def verify(self, token: str) -> AccessClaims:
            if token != "good":
                from pawgle.common.errors import Unauthorized

                raise Unauthorized()
            return AccessClaims(user_id=5, jti="j", expires_at=int(time.time()) + 60)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nc = await nats.connect(nats_url)
        app.state.token_verifier = Verifier()
        app.state.throttle_store = await ThrottleStore.open(
            nc.jetstream(), bucket=bucket, overrides={"anon": "2/min", "user": "3/min"}
        )
        yield
        await nc.drain()

    app = FastAPI(lifespan=lifespan)
    install_error_handlers(app)

    @app.get("/any/", dependencies=[Depends(default_throttle)])
    async def anything() -> dict[str, bool]:
        return {"ok": True}

    if time.time() % 60 > 55:  # fixed windows: keep clear of a minute's edge
        time.sleep(60 - time.time() % 60 + 0.1)
    with TestClient(app) as client:
        anonymous = [client.get("/any/", headers={"Authorization": "Bearer null"}).status_code for _ in range(3)]
        signed_in = [client.get("/any/", headers={"Authorization": "Bearer good"}).status_code for _ in range(4)]
    assert anonymous == [200, 200, 429]
    assert signed_in == [200, 200, 200, 429]
