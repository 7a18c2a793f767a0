"""Under load: signups hash passwords outside their write transactions and take turns, so nothing stalls."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
from fastapi import FastAPI, Request

from pawgle.auth.main import create_app
from pawgle.common.testing.server import serve

from .conftest import PASSWORD, make_settings

CLIENTS = 10
LOAD_S = 10.0


def test_readiness_stays_200_while_ten_clients_sign_up_for_10_seconds(
    database_url: str, nats_url: str, data_dir: Path
) -> None:
    # The production Argon2id cost: a hash inside a write transaction held SQLite's write lock for it.
    settings = make_settings(
        database_url, nats_url, data_dir, argon2_time_cost=3, argon2_memory_kib=65536, argon2_parallelism=4
    )
    stop = threading.Event()
    signups: list[int] = []
    errors: list[BaseException] = []

    def sign_up_continuously(base_url: str, client_no: int) -> None:
        try:
            with httpx.Client(base_url=base_url, timeout=30) as http:
                n = 0
                while not stop.is_set():
                    n += 1
                    name = f"c{client_no}n{n}"
                    body = {"username": name, "email": f"{name}@example.com"}
                    body |= {"password": PASSWORD, "confirm_password": PASSWORD}
                    signups.append(http.post("/api/auth/signup/", json=body).status_code)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    with serve(create_app(settings)) as base_url, httpx.Client(base_url=base_url, timeout=10) as probe:
        workers = [threading.Thread(target=sign_up_continuously, args=(base_url, i)) for i in range(CLIENTS)]
        for worker in workers:
            worker.start()
        readiness: list[int] = []
        deadline = time.monotonic() + LOAD_S
        try:
            while time.monotonic() < deadline:
                readiness.append(probe.get("/readyz").status_code)
                time.sleep(0.25)
        finally:
            stop.set()
            for worker in workers:
                worker.join(timeout=60)
    assert not errors, errors
    assert len(signups) >= CLIENTS, "the load never ran"
    assert set(signups) == {201}
    assert len(readiness) > 10
    assert all(code == 200 for code in readiness), readiness


def _small_worker_pool(app: FastAPI, threads: int) -> None:
    """Give the app's event loop only `threads` worker threads, so a burst can exhaust them."""

    @app.middleware("http")
    async def limit_threads(request: Request, call_next: Any) -> Any:
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        return await call_next(request)


def test_a_burst_of_signups_larger_than_the_worker_pool_all_succeed(
    database_url: str, nats_url: str, data_dir: Path
) -> None:
    """Before the password slots, threads waiting for the write lock left the lock holder none to commit in."""
    settings = make_settings(
        database_url, nats_url, data_dir, argon2_time_cost=2, argon2_memory_kib=8192, password_hash_concurrency=4
    )
    app = create_app(settings)
    _small_worker_pool(app, threads=6)
    with serve(app) as base_url, httpx.Client(base_url=base_url, timeout=20) as http:
        http.get("/readyz")

        def sign_up(n: int) -> int:
            body = {"username": f"burst{n}", "email": f"burst{n}@example.com"}
            body |= {"password": PASSWORD, "confirm_password": PASSWORD}
            return http.post("/api/auth/signup/", json=body).status_code

        with ThreadPoolExecutor(max_workers=30) as pool:
            codes = list(pool.map(sign_up, range(30)))
    assert codes == [201] * 30
