"""Auth service figures: login latency (Argon2id dominates), refresh throughput, access-token verification cost.

The auth app runs over real HTTP (uvicorn in a thread) on the embedded defaults: a SQLite file, a local
nats-server for the outbox and the shared throttle counters, and the production Argon2id parameters
(whatever AUTH_ARGON2_* says, else the defaults). Requests are sequential on one keep-alive connection
unless stated otherwise.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlmodel import Session, select
from starlette.requests import Request

from bench.stats import percentile, report, summary_ms
from pawgle.auth.config import Settings
from pawgle.auth.main import create_app
from pawgle.common.auth import AccessTokenVerifier, JwksCache, current_claims
from pawgle.common.bus.tables import OutboxEvent
from pawgle.common.testing.natsserver import NatsServer
from pawgle.common.testing.server import serve
from pawgle.common.throttle import CONTRACT_RATES

LOGINS = 40
REFRESHES = 400
CONCURRENT_CLIENTS = 4
CONCURRENT_SECONDS = 3.0
VERIFICATIONS = 20_000
PASSWORD = "Correct-Horse-42"


def _verification_token(app: FastAPI, email: str) -> str:
    with Session(app.state.engine) as session:
        rows = session.exec(select(OutboxEvent).where(OutboxEvent.subject == "auth.magic_link_requested")).all()
    links = [json.loads(r.payload)["data"]["link"] for r in rows if json.loads(r.payload)["data"]["email"] == email]
    return str(links[-1].split("token=", 1)[1].split("&", 1)[0])


def _make_user(http: httpx.Client, app: FastAPI, email: str) -> None:
    name = email.split("@", 1)[0]
    response = http.post(
        "/api/auth/signup/", json={"username": name, "email": email, "password": PASSWORD, "confirm_password": PASSWORD}
    )
    response.raise_for_status()
    http.post("/api/auth/magic/consume/", json={"token": _verification_token(app, email)}).raise_for_status()


def _bench_login(http: httpx.Client, app: FastAPI) -> None:
    passwords = app.state.kit.passwords
    stored = passwords.hash(PASSWORD)
    hash_times = []
    for _ in range(10):
        start = time.perf_counter()
        passwords.verify(stored, PASSWORD)
        hash_times.append(time.perf_counter() - start)
    timings = []
    for _ in range(LOGINS):
        start = time.perf_counter()
        http.post("/api/auth/login/", json={"email": "bench0@example.com", "password": PASSWORD}).raise_for_status()
        timings.append(time.perf_counter() - start)
    report(f"password hashing: {passwords.parameters}")
    report(f"  one Argon2id verification alone: median {statistics.median(hash_times) * 1000:.1f} ms")
    report(f"login (POST /api/auth/login/, correct password): {summary_ms(timings)}")
    report(f"  login p95 {percentile(timings, 95) * 1000:.1f} ms")


def _bench_refresh_sequential(http: httpx.Client) -> None:
    timings = []
    started = time.perf_counter()
    for _ in range(REFRESHES):
        start = time.perf_counter()
        http.post("/api/token/refresh/").raise_for_status()  # rotates: the client keeps the newest cookie
        timings.append(time.perf_counter() - start)
    elapsed = time.perf_counter() - started
    report(f"refresh (rotation, one client, sequential): {REFRESHES / elapsed:.0f} req/s; {summary_ms(timings)}")


def _bench_refresh_concurrent(base_url: str, app: FastAPI) -> None:
    clients = []
    for i in range(CONCURRENT_CLIENTS):
        http = httpx.Client(base_url=base_url)
        _make_user(http, app, f"bench{i + 1}@example.com")
        clients.append(http)
    counts = [0] * CONCURRENT_CLIENTS
    deadline = time.perf_counter() + CONCURRENT_SECONDS

    def loop(index: int) -> None:
        while time.perf_counter() < deadline:
            clients[index].post("/api/token/refresh/").raise_for_status()
            counts[index] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=loop, args=(i,)) for i in range(CONCURRENT_CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    report(f"refresh ({CONCURRENT_CLIENTS} clients in parallel, one sign-in each): {sum(counts) / elapsed:.0f} req/s")
    for http in clients:
        http.close()


def _bench_verification(app: FastAPI, settings: Settings) -> None:
    """The cost another service pays per request: parse the Bearer header and verify the JWT (key cached)."""
    verifier = AccessTokenVerifier(
        JwksCache("http://127.0.0.1:9/unused"),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        cache_size=VERIFICATIONS * 2,
    )
    verifier.jwks.set_keys(app.state.key_ring.jwks())

    class _App:
        state = type("State", (), {"token_verifier": verifier})()

    def request_with(token: str) -> Request:
        return Request({"type": "http", "headers": [(b"authorization", f"Bearer {token}".encode())], "app": _App()})

    # First sight of each token: the full EdDSA signature check.
    fresh = [request_with(app.state.kit.tokens.issue(i)) for i in range(VERIFICATIONS // 4)]
    start = time.perf_counter()
    for request in fresh:
        current_claims(request)
    first_us = (time.perf_counter() - start) / len(fresh) * 1e6
    # A client's later requests carry the same token until it expires.
    again = fresh[0]
    start = time.perf_counter()
    for _ in range(VERIFICATIONS):
        current_claims(again)
    repeat_us = (time.perf_counter() - start) / VERIFICATIONS * 1e6
    report("access-token verification in another service (Bearer parse + EdDSA JWT, key cached; target <= 100 us):")
    report(f"  first request with a token: {first_us:.0f} us; later requests with it: {repeat_us:.1f} us")


def main() -> None:
    """Print the auth figures."""
    with tempfile.TemporaryDirectory(prefix="pawgle-bench-auth-") as tmp:
        root = Path(tmp)
        server = NatsServer(root / "js").start()
        try:
            settings = Settings(
                data_dir=root / "data",
                nats_url=server.url,
                environment="development",
                # The contract's rates would throttle a benchmark; the counters are still kept in the bus.
                throttle_rates=dict.fromkeys(CONTRACT_RATES, "1000000/min"),
            )
            app = create_app(settings)
            with serve(app) as base_url, httpx.Client(base_url=base_url) as http:
                _make_user(http, app, "bench0@example.com")
                _bench_login(http, app)
                _bench_refresh_sequential(http)
                _bench_refresh_concurrent(base_url, app)
            _bench_verification(app, settings)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
