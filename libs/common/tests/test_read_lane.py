"""The read lane: marked GET routes answered ahead of FastAPI, with the full stack's answers and checks."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated

import pytest
from fastapi import APIRouter, FastAPI, Header, Query
from fastapi.datastructures import Default
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import text

from pawgle.common.auth import AccessTokenVerifier, CurrentUserId, JwksCache, OptionalUserId
from pawgle.common.db import SessionDep, SessionRoute, make_engine
from pawgle.common.errors import BadRequest, JSONResponseUTF8, install_error_handlers
from pawgle.common.fastpath import fast_read, install_read_lane
from pawgle.common.revocation import RevocationList
from pawgle.common.telemetry import instrument_app
from pawgle.common.testing.tokens import TokenIssuer

SERVICE = "read-lane-test"
NOTES = "/api/notes/"


def make_app(db: Path, issuer: TokenIssuer) -> FastAPI:
    router = APIRouter(prefix="/api", route_class=SessionRoute)

    @router.get("/notes/")
    @fast_read(cached=True)
    def notes(
        session: SessionDep, user_id: CurrentUserId, limit: Annotated[str | None, Query(max_length=3)] = None
    ) -> JSONResponseUTF8:
        """The caller's notes (a bad limit is the endpoint's own 400)."""
        if limit is not None and not limit.isdigit():
            raise BadRequest("limit: a whole number, please.")
        rows = session.connection().execute(
            text("SELECT body FROM notes WHERE owner = :owner ORDER BY id LIMIT :limit"),
            {"owner": user_id, "limit": int(limit or 100)},
        )
        return JSONResponseUTF8([row.body for row in rows])

    @router.get("/public/")
    @fast_read
    def public(session: SessionDep, user_id: OptionalUserId) -> JSONResponseUTF8:
        count = session.connection().execute(text("SELECT count(*) FROM notes")).scalar_one()
        return JSONResponseUTF8({"notes": count, "caller": user_id})

    app = FastAPI(default_response_class=Default(JSONResponseUTF8))
    app.state.settings = SimpleNamespace(service_name=SERVICE)
    app.state.engine = make_engine(f"sqlite:///{db}")
    with app.state.engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, owner INTEGER, body TEXT)"))
    app.state.revocations = RevocationList()
    app.state.token_verifier = AccessTokenVerifier(
        JwksCache.local(issuer.jwks), issuer=issuer.issuer, audience=issuer.audience, revocations=app.state.revocations
    )
    install_error_handlers(app)
    app.include_router(router)
    install_read_lane(app)
    instrument_app(app, service=SERVICE)
    return app


def lane(route: str, outcome: str) -> float:
    labels = {"service": SERVICE, "route": route, "outcome": outcome}
    return REGISTRY.get_sample_value("pawgle_read_lane_total", labels) or 0.0


@pytest.fixture
def issuer() -> TokenIssuer:
    return TokenIssuer()


@pytest.fixture
def client(tmp_path: Path, issuer: TokenIssuer):
    app = make_app(tmp_path / "lane.db", issuer)
    with TestClient(app) as client:
        client.app_db = tmp_path / "lane.db"  # type: ignore[attr-defined]
        yield client
    app.state.engine.dispose()


def add_note(db: Path, owner: int, body: str) -> None:
    """A write from another connection, as another worker process or a consumer would make it."""
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO notes (owner, body) VALUES (?, ?)", (owner, body))


def test_the_lane_answers_what_the_full_stack_answers_and_sees_every_write(client, issuer) -> None:
    add_note(client.app_db, 1, "first")
    headers = issuer.headers(1)
    full_before = lane(NOTES, "full")
    first = client.get(NOTES, headers=headers)  # a token seen for the first time: the full stack checks it
    assert lane(NOTES, "full") == full_before + 1
    ran, kept = lane(NOTES, "ran"), lane(NOTES, "kept")
    again = client.get(NOTES, headers=headers)
    assert (lane(NOTES, "ran"), lane(NOTES, "kept")) == (ran + 1, kept)
    third = client.get(NOTES, headers=headers)
    assert lane(NOTES, "kept") == kept + 1  # nothing changed: the answer kept
    assert first.json() == again.json() == third.json() == ["first"]
    assert first.headers["content-type"] == third.headers["content-type"] == "application/json; charset=utf-8"
    add_note(client.app_db, 1, "second")  # another connection commits: the kept answer is stale
    assert client.get(NOTES, headers=headers).json() == ["first", "second"]
    assert client.get(NOTES, headers=headers).json() == ["first", "second"]


def test_answers_are_kept_per_caller_and_per_query(client, issuer) -> None:
    add_note(client.app_db, 1, "mine")
    add_note(client.app_db, 2, "theirs")
    one, two = issuer.headers(1), issuer.headers(2)
    for _ in range(3):
        assert client.get(NOTES, headers=one).json() == ["mine"]
        assert client.get(NOTES, headers=two).json() == ["theirs"]
        assert client.get(NOTES, params={"limit": "0"}, headers=one).json() == []


def test_a_revoked_account_is_refused_even_with_a_kept_answer(client, issuer) -> None:
    headers = issuer.headers(7)
    assert client.get(NOTES, headers=headers).status_code == 200
    assert client.get(NOTES, headers=headers).status_code == 200
    client.app.state.revocations.revoke(7, at=time.time() + 1)
    refused = client.get(NOTES, headers=headers)
    assert refused.status_code == 401
    assert refused.json()["detail"] == "User is inactive or deleted."


@pytest.mark.parametrize("authorization", [None, "Bearer null", "Bearer not.a.jwt", "Basic abc"])
def test_a_missing_or_bad_token_gets_the_full_stacks_401(client, authorization) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    for _ in range(2):
        response = client.get(NOTES, headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/json; charset=utf-8"


def test_an_expired_token_is_refused_after_it_was_accepted(client, issuer) -> None:
    token = issuer.token(3, expires_in_s=-60)  # already past the verifier's 10 s leeway
    assert client.get(NOTES, headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_bad_parameters_get_the_full_stacks_400s(client, issuer) -> None:
    headers = issuer.headers(1)
    client.get(NOTES, headers=headers)
    too_long = client.get(NOTES, params={"limit": "1234"}, headers=headers)  # FastAPI's validation
    assert too_long.status_code == 400
    endpoint_says = client.get(NOTES, params={"limit": "ab"}, headers=headers)  # the endpoint's own error
    assert endpoint_says.status_code == 400
    assert endpoint_says.json()["detail"] == "limit: a whole number, please."


def test_optional_callers_and_the_metrics_route_label(client, issuer) -> None:
    before = REGISTRY.get_sample_value(
        "pawgle_http_requests_total", {"service": SERVICE, "method": "GET", "route": "/api/public/", "status": "200"}
    )
    assert client.get("/api/public/").json() == {"notes": 0, "caller": None}
    headers = issuer.headers(5)
    assert client.get("/api/public/", headers=headers).json()["caller"] == 5
    assert client.get("/api/public/", headers=headers).json()["caller"] == 5
    after = REGISTRY.get_sample_value(
        "pawgle_http_requests_total", {"service": SERVICE, "method": "GET", "route": "/api/public/", "status": "200"}
    )
    assert after == (before or 0) + 3
    assert lane("/api/public/", "ran") >= 2  # the anonymous call and the second one with a known token


def test_a_route_the_lane_cannot_run_fails_the_build() -> None:
    router = APIRouter()

    @router.get("/items/{item_id}/")
    @fast_read
    def item(item_id: int) -> JSONResponseUTF8:
        return JSONResponseUTF8({"id": item_id})

    @router.get("/headers/")
    @fast_read
    def headers(x_thing: Annotated[str | None, Header()] = None) -> JSONResponseUTF8:
        return JSONResponseUTF8({})

    for route in router.routes:
        app = FastAPI()
        single = APIRouter()
        single.routes.append(route)
        app.include_router(single)
        with pytest.raises(TypeError, match="read lane"):
            install_read_lane(app)
