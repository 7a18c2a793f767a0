from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from pawgle.auth.config import Settings
from pawgle.auth.main import create_app
from pawgle.common.bus.tables import OutboxEvent
from pawgle.common.clientaddress import CLIENT_IP_HEADER, EDGE_PROOF_HEADER
from pawgle.common.throttle import CONTRACT_RATES

from .google_idp import FakeGoogle

GOOGLE_CLIENT_ID = "pawgle-test.apps.googleusercontent.com"
FRONTEND = "http://localhost:3000"
# Generous rates for every test but the throttle tests, which set their own.
RELAXED_RATES = dict.fromkeys(CONTRACT_RATES, "10000/min")
# The secret the gateway proves itself with; requests carrying it may name their client's address.
EDGE_SECRET = "auth-tests-edge-secret-0123456789"


@pytest.fixture(scope="session")
def google_idp() -> Iterator[FakeGoogle]:
    with FakeGoogle.running() as idp:
        yield idp


def make_settings(database_url: str, nats_url: str, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "nats_url": nats_url,
        "data_dir": data_dir,
        "environment": "test",
        "frontend_origin": FRONTEND,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
        "argon2_parallelism": 1,
        "throttle_bucket": f"t{secrets.token_hex(6)}",
        "throttle_rates": RELAXED_RATES,
        "edge_secret": EDGE_SECRET,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(database_url: str, nats_url: str, data_dir: Path, google_idp: FakeGoogle) -> Settings:
    return make_settings(
        database_url, nats_url, data_dir, google_client_id=GOOGLE_CLIENT_ID, google_jwks_url=google_idp.jwks_url
    )


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://localhost") as test_client:
        yield test_client


def outbox(app: FastAPI, subject: str) -> list[dict[str, Any]]:
    """The data of every event of `subject` the service has written, oldest first."""
    with Session(app.state.engine) as session:
        rows = session.exec(select(OutboxEvent).where(OutboxEvent.subject == subject).order_by(OutboxEvent.seq)).all()
        return [json.loads(row.payload)["data"] for row in rows]


def last_link_token(app: FastAPI, email: str, purpose: str | None = None) -> str:
    """The token of the newest link e-mailed to `email` (as the notifier would receive it)."""
    events = [
        e
        for e in outbox(app, "auth.magic_link_requested")
        if e["email"].lower() == email.lower() and (purpose is None or e["purpose"] == purpose)
    ]
    assert events, f"no link was sent to {email}"
    link: str = events[-1]["link"]
    return link.split("token=", 1)[1].split("&", 1)[0]


PASSWORD = "Correct-Horse-42"


def hold_cookie(client: TestClient, value: str, name: str = "pawgle_refresh") -> None:
    """Make `value` the one refresh cookie the client sends (as a browser tab holding it would)."""
    # Setting it beside the server's own cookie would send two cookies of one name, and which one the
    # server reads then depends on the HTTP client library's jar order.
    # Every jar entry of that name goes (the server's has its own domain and path, which `delete(name)`
    # alone does not match in every client library), then the one value is set.
    for cookie in [c for c in client.cookies.jar if c.name == name]:
        client.cookies.jar.clear(cookie.domain, cookie.path, cookie.name)
    client.cookies.set(name, value)


def from_address(ip: str) -> dict[str, str]:
    """Headers that make a request count as coming from client `ip`, as the gateway sends it."""
    return {CLIENT_IP_HEADER: ip, EDGE_PROOF_HEADER: EDGE_SECRET}


def signup(
    client: TestClient, username: str = "alice", email: str = "alice@example.com", password: str = PASSWORD
) -> dict[str, Any]:
    response = client.post(
        "/api/auth/signup/",
        json={"username": username, "email": email, "password": password, "confirm_password": password},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def verified_user(
    client: TestClient, username: str = "alice", email: str = "alice@example.com", password: str = PASSWORD
) -> dict[str, Any]:
    """Sign up and follow the verification link; the client then holds a refresh cookie."""
    user = signup(client, username, email, password)["user"]
    token = last_link_token(client.app, email, "verify_email")  # type: ignore[arg-type]
    response = client.post("/api/auth/magic/consume/", json={"token": token})
    assert response.status_code == 200, response.text
    return {**user, "access": response.json()["access"]}


def login(client: TestClient, email: str = "alice@example.com", password: str = PASSWORD) -> str:
    response = client.post("/api/auth/login/", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    access: str = response.json()["access"]
    return access
