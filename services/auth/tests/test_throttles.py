"""The contract's throttle scopes on the auth routes, counted in the shared bus store."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from pawgle.auth.main import create_app
from pawgle.common.testing.server import serve

from .conftest import RELAXED_RATES, from_address, make_settings, outbox, verified_user


def _clear_of_the_minute_edge() -> None:
    """Fixed windows: start a per-minute test where it cannot straddle a window boundary."""
    if time.time() % 60 > 55:
        time.sleep(60 - time.time() % 60 + 0.1)


def _app(database_url: str, nats_url: str, data_dir: Path, **rates: str):  # type: ignore[no-untyped-def]
    return create_app(make_settings(database_url, nats_url, data_dir, throttle_rates={**RELAXED_RATES, **rates}))


def test_login_trips_at_its_rate_with_retry_after_and_the_contract_body(
    database_url: str, nats_url: str, data_dir: Path
) -> None:
    with TestClient(_app(database_url, nats_url, data_dir, login="3/min")) as client:
        _clear_of_the_minute_edge()
        codes = [
            client.post("/api/auth/login/", json={"email": "x@example.com", "password": "nope"}).status_code
            for _ in range(3)
        ]
        assert codes == [401, 401, 401]
        response = client.post("/api/auth/login/", json={"email": "x@example.com", "password": "nope"})
        assert response.status_code == 429
        retry_after = int(response.headers["retry-after"])
        assert 1 <= retry_after <= 60
        assert response.json()["detail"] == f"Request was throttled. Expected available in {retry_after} seconds."
        # Other scopes keep their own budget.
        assert client.post("/api/auth/magic/request/", json={"email": "x@example.com"}).status_code == 200


def test_signup_uses_the_contract_rate_by_default(database_url: str, nats_url: str, data_dir: Path) -> None:
    settings = make_settings(database_url, nats_url, data_dir, throttle_rates={})
    with TestClient(create_app(settings)) as client:
        _clear_of_the_minute_edge()
        codes = [client.post("/api/auth/signup/", json={}).status_code for _ in range(6)]
    assert codes == [400] * 5 + [429]  # signup: 5/min


def test_callers_behind_the_gateway_are_counted_by_their_own_address(
    database_url: str, nats_url: str, data_dir: Path
) -> None:
    app = _app(database_url, nats_url, data_dir, login="2/min")
    with serve(app) as base_url, httpx.Client(base_url=base_url) as http:

        def attempt(ip: str, email: str) -> int:
            return http.post(
                "/api/auth/login/", json={"email": email, "password": "nope"}, headers=from_address(ip)
            ).status_code

        # Three different target accounts, so only the address's budget runs out.
        assert [attempt("203.0.113.1", f"x{i}@example.com") for i in range(3)] == [401, 401, 429]
        assert attempt("203.0.113.2", "x3@example.com") == 401


def test_sign_in_links_to_one_address_are_limited_silently(database_url: str, nats_url: str, data_dir: Path) -> None:
    app = _app(database_url, nats_url, data_dir, password_reset="2/hour")
    with serve(app) as base_url, httpx.Client(base_url=base_url) as http:
        _clear_of_the_minute_edge()  # an hour's edge is also a minute's
        http.post(
            "/api/auth/signup/",
            json={
                "username": "alice",
                "email": "alice@example.com",
                "password": "Correct-Horse-42",
                "confirm_password": "Correct-Horse-42",
            },
        )
        answers = [
            http.post(
                "/api/auth/magic/request/",
                json={"email": "alice@example.com"},
                headers=from_address(f"203.0.113.{i}"),
            )
            for i in range(4)
        ]
        assert {a.status_code for a in answers} == {200}
        assert len({a.text for a in answers}) == 1
        sign_in_links = [e for e in outbox(app, "auth.magic_link_requested") if e["purpose"] == "sign_in"]
        assert len(sign_in_links) == 2


def test_magic_link_events_reach_the_bus(client: TestClient, nats_url: str) -> None:
    """The notifier's input: auth.magic_link_requested on the AUTH stream, which keeps it 15 minutes at most."""
    import asyncio
    from datetime import UTC, datetime, timedelta

    import nats
    from nats.js.api import ConsumerConfig, DeliverPolicy

    # From just before this test's sign-up: the session's AUTH stream holds every other test's links too.
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    verified_user(client, "carol", "carol@example.com")

    async def read() -> tuple[float, list[str]]:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        info = await js.stream_info("AUTH")
        since_config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=since)
        sub = await js.pull_subscribe("auth.magic_link_requested", stream="AUTH", config=since_config)
        seen: list[str] = []
        for _ in range(50):
            try:
                for msg in await sub.fetch(10, timeout=0.2):
                    seen.append(msg.data.decode())
                    await msg.ack()
            except TimeoutError:
                pass
            if any("carol@example.com" in s for s in seen):
                break
        await nc.drain()
        return info.config.max_age or 0.0, seen

    max_age, seen = asyncio.run(read())
    assert max_age <= 15 * 60
    assert any("carol@example.com" in s and "verify_email" in s for s in seen)


def test_guesses_at_one_account_are_limited_whatever_token_or_address_they_come_with(
    database_url: str, nats_url: str, data_dir: Path
) -> None:
    """Each attacker's own access token (or address) used to buy a fresh login budget against the victim."""
    app = _app(database_url, nats_url, data_dir, login="3/min")
    with serve(app) as base_url, httpx.Client(base_url=base_url) as http:
        _clear_of_the_minute_edge()
        attackers = [app.state.components.tokens.issue(100 + i) for i in range(4)]

        def guess(i: int, email: str = "Victim@Example.com") -> int:
            return http.post(
                "/api/auth/login/",
                json={"email": email, "password": f"guess-{i}"},
                headers={"Authorization": f"Bearer {attackers[i]}", **from_address(f"198.51.100.{i}")},
            ).status_code

        assert [guess(i) for i in range(3)] == [401, 401, 401]
        assert guess(3) == 429
        assert guess(3, " VICTIM@example.com ") == 429  # the same account, spelled otherwise
        assert guess(3, "someone-else@example.com") == 401
