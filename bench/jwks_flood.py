"""A flood of tokens with random `kid`s (one every 100 ms) must not slow anyone else down.

Auth runs over real HTTP with its production password hashing; a flood client sends a forged token
(a random kid, so no key in any cache) every 100 ms, alternating a throttled route that reads the caller's
token and a route that needs one; meanwhile a second client logs in, one request after another. Its
latency is measured without the flood, then with it. The same is done against the notifier, which (like
every service but auth) fetches auth's JWKS over HTTP: a second client lists its alerts while the flood
runs. Before the fix, every unknown kid made a service fetch the JWKS with a blocking call inside its event
loop: auth waited on itself for up to 3 s and a forged token every 5 s kept it unresponsive 60% of the time.
"""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.stats import percentile, report, summary_ms
from pawgle.auth.config import Settings as AuthSettings
from pawgle.common.natsserver import NatsServer
from pawgle.common.testing.stack import Stack, running_stack, sign_up
from pawgle.common.testing.tokens import TokenIssuer

FLOOD_INTERVAL_S = 0.1
ROUNDS = 4
ROUND_MIN_S = 3.0  # each round lasts long enough for ~30 forged tokens
LOGINS_PER_ROUND = 10
LISTINGS_PER_ROUND = 100
PASSWORD = "Correct-Horse-42"
# The production password hashing, whatever the test-speed defaults of the stack say.
PRODUCTION_HASHING = {
    name: AuthSettings.model_fields[name].default
    for name in ("argon2_time_cost", "argon2_memory_kib", "argon2_parallelism")
}


@dataclass
class Flood:
    """What the flood saw: the status and the duration of each forged request."""

    statuses: list[int] = field(default_factory=list)
    durations_s: list[float] = field(default_factory=list)


@contextmanager
def flood(base_url: str, paths: list[str], seen: Flood) -> Iterator[None]:
    """Send a forged token with a fresh random kid every FLOOD_INTERVAL_S, without waiting for answers."""
    forger = TokenIssuer()
    stop = threading.Event()

    def one(http: httpx.Client, path: str) -> None:
        headers = {"Authorization": f"Bearer {forger.token(1, kid=uuid.uuid4().hex)}"}
        method = "DELETE" if path.endswith("/account/") else "GET"
        start = time.perf_counter()
        try:
            status = http.request(method, path, headers=headers).status_code
        except httpx.HTTPError:
            status = 0
        seen.statuses.append(status)
        seen.durations_s.append(time.perf_counter() - start)

    def run() -> None:
        with httpx.Client(base_url=base_url, timeout=30) as http, ThreadPoolExecutor(max_workers=16) as pool:
            sent = 0
            while not stop.is_set():
                pool.submit(one, http, paths[sent % len(paths)])
                sent += 1
                stop.wait(FLOOD_INTERVAL_S)

    thread = threading.Thread(target=run, name="kid-flood", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=60)


def _timed(call: Callable[[], httpx.Response], *, n: int, min_s: float) -> list[float]:
    """Latencies of `call`, at least `n` of them and for at least `min_s` seconds."""
    timings: list[float] = []
    started = time.perf_counter()
    while len(timings) < n or time.perf_counter() - started < min_s:
        start = time.perf_counter()
        call().raise_for_status()
        timings.append(time.perf_counter() - start)
    return timings


def _compare(label: str, base_url: str, paths: list[str], call: Callable[[], httpx.Response], n: int) -> None:
    # Quiet and flooded rounds alternate, so the load other work puts on the machine hits both alike.
    quiet: list[float] = []
    flooded: list[float] = []
    seen = Flood()
    for _ in range(ROUNDS):
        quiet += _timed(call, n=n, min_s=ROUND_MIN_S)
        with flood(base_url, paths, seen):
            flooded += _timed(call, n=n, min_s=ROUND_MIN_S)
    answered = sum(1 for s in seen.statuses if s in (200, 401))  # a throttled public route ignores a bad token
    report(f"{label}, without the flood: {summary_ms(quiet)}")
    report(f"{label}, with the flood:    {summary_ms(flooded)}")
    report(
        f"  p99 {percentile(quiet, 99) * 1000:.1f} ms without, {percentile(flooded, 99) * 1000:.1f} ms with;"
        f" {len(seen.statuses)} forged tokens ({answered} answered 200 public / 401),"
        f" their own p99 {percentile(seen.durations_s, 99) * 1000:.1f} ms"
    )


def _bench(stack: Stack) -> None:
    auth, notifier = stack.url("auth"), stack.url("notifier")
    access = sign_up(stack, username="flooded", password=PASSWORD)
    with httpx.Client(base_url=auth, timeout=30) as http:
        email = "flooded@example.org"
        _compare(
            "auth: login of a second client (POST /api/auth/login/, production Argon2id)",
            auth,
            ["/api/auth/users/count/", "/api/auth/account/"],
            lambda: http.post("/api/auth/login/", json={"email": email, "password": PASSWORD}),
            LOGINS_PER_ROUND,
        )
    with httpx.Client(base_url=notifier, timeout=30, headers={"Authorization": f"Bearer {access}"}) as http:
        _compare(
            "notifier (fetches auth's JWKS over HTTP): GET /api/auth/alerts/ of a second client",
            notifier,
            ["/api/auth/alerts/"],
            lambda: http.get("/api/auth/alerts/"),
            LISTINGS_PER_ROUND,
        )
    jwks = stack.apps["notifier"].state.token_verifier.jwks
    report(f"  notifier JWKS fetches during the whole run (unknown kids share one, at most every 5 s): {jwks.fetches}")


def main() -> None:
    """Print the figures."""
    with tempfile.TemporaryDirectory(prefix="pawgle-bench-flood-") as tmp:
        root = Path(tmp)
        server = NatsServer(root / "js").start()
        try:
            overrides = {"auth": PRODUCTION_HASHING}
            with running_stack(nats_url=server.url, data_dir=root / "data", overrides=overrides) as stack:
                _bench(stack)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
