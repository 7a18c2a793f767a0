"""The built services running together over real HTTP, for tests and fuzzing through the whole stack.

Each service runs in this process (uvicorn in a thread, its full lifespan: database, bus, relay,
consumers) on a free loopback port, on one nats-server; the others verify tokens against auth's JWKS
over HTTP, as in `make run`. `sign_up` makes a verified account through auth's public API and returns its
access token.
"""

from __future__ import annotations

import importlib
import json
import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlmodel import Session, select

from pawgle.common.bus.tables import OutboxEvent
from pawgle.common.natsserver import free_port
from pawgle.common.testing.server import serve
from pawgle.common.throttle import CONTRACT_RATES

# Services that serve a public API (every one of the mesh now).
BUILT_SERVICES = ("auth", "notifier", "pets", "reports", "chat", "embeddings", "matcher")

# Test-speed settings per service: cheap password hashing, throttles far above what a test sends.
FAST_SETTINGS: dict[str, dict[str, Any]] = {
    "auth": {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "argon2_parallelism": 1},
    "notifier": {"mail_poll_interval_s": 0.05},
}


@dataclass
class Stack:
    """The running services: their base URLs and their apps (for a look at their databases)."""

    urls: dict[str, str]
    apps: dict[str, FastAPI]

    def url(self, service: str, path: str = "") -> str:
        return self.urls[service] + path


def _relaxed_throttles() -> dict[str, Any]:
    """A bucket of its own and rates no test reaches (throttle tests set their own)."""
    return {
        "throttle_bucket": f"t{secrets.token_hex(6)}",
        "throttle_rates": dict.fromkeys(CONTRACT_RATES, "100000/min"),
    }


@contextmanager
def running_stack(
    *,
    nats_url: str,
    data_dir: Path,
    services: Sequence[str] = BUILT_SERVICES,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Iterator[Stack]:
    """Start `services` (auth first: the others fetch its keys) and stop them afterwards."""
    ports = {name: free_port() for name in services}
    jwks_url = f"http://127.0.0.1:{ports['auth']}/api/auth/jwks/" if "auth" in ports else None
    order = sorted(services, key=lambda name: name != "auth")
    urls: dict[str, str] = {}
    apps: dict[str, FastAPI] = {}
    with ExitStack() as running:
        for name in order:
            settings_class = importlib.import_module(f"pawgle.{name}.config").Settings
            values: dict[str, Any] = {"environment": "test", "data_dir": data_dir, "nats_url": nats_url}
            if jwks_url:
                values["jwks_url"] = jwks_url
            if "throttle_bucket" in settings_class.model_fields:
                values.update(_relaxed_throttles())
            values.update(FAST_SETTINGS.get(name, {}))
            values.update((overrides or {}).get(name, {}))
            app = importlib.import_module(f"pawgle.{name}.main").create_app(settings_class(**values))
            urls[name] = running.enter_context(serve(app, port=ports[name]))
            apps[name] = app
        yield Stack(urls=urls, apps=apps)


def _last_link_token(auth: FastAPI, email: str, *, timeout_s: float = 5.0) -> str:
    """The token of the newest verification link auth wrote for `email` (what the notifier would mail)."""
    deadline = time.monotonic() + timeout_s
    while True:
        with Session(auth.state.engine) as session:
            rows = session.exec(
                select(OutboxEvent)
                .where(OutboxEvent.subject == "auth.magic_link_requested")
                .order_by(OutboxEvent.seq.desc())
            ).all()
        for row in rows:
            data = json.loads(row.payload)["data"]
            if data["email"].lower() == email.lower():
                link: str = data["link"]
                return link.split("token=", 1)[1].split("&", 1)[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"auth sent no link to {email}")
        time.sleep(0.02)


def sign_up(stack: Stack, *, username: str | None = None, password: str = "Correct-Horse-42") -> str:
    """Create and verify an account through auth's public API; return its access token."""
    username = username or f"user{secrets.token_hex(4)}"
    email = f"{username}@example.org"
    with httpx.Client(base_url=stack.url("auth"), timeout=10) as http:
        body = {"username": username, "email": email, "password": password, "confirm_password": password}
        http.post("/api/auth/signup/", json=body).raise_for_status()
        token = _last_link_token(stack.apps["auth"], email)
        response = http.post("/api/auth/magic/consume/", json={"token": token})
        response.raise_for_status()
        access: str = response.json()["access"]
        return access
