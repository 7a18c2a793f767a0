"""What an attacker would try: forged or stale access tokens, replayed refresh tokens and links, enumeration."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from pawgle.auth.config import Settings
from pawgle.auth.main import create_app
from pawgle.common.auth import AccessTokenVerifier, JwksCache
from pawgle.common.errors import Unauthorized
from pawgle.common.testing.server import serve

from .conftest import PASSWORD, hold_cookie, last_link_token, make_settings, outbox, signup, verified_user


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(user_id: int, settings: Settings, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "token_type": "access",
        "user_id": user_id,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": "j1",
    }
    claims.update(overrides)
    return claims


def _sign(app: FastAPI, claims: dict[str, Any], **headers: Any) -> str:
    key = app.state.key_ring.current
    return jwt.encode(claims, key.private_key, algorithm=key.alg, headers={"kid": key.kid, **headers})


def _raw_token(header: dict[str, Any], claims: dict[str, Any], sign: Any) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(sign(signing_input.encode()))}"


def forged_tokens(app: FastAPI, settings: Settings, user_id: int) -> dict[str, str]:
    """One token per attack; each must be refused."""
    kid = app.state.key_ring.current.kid
    public_pem = app.state.key_ring.current.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    good = _claims(user_id, settings)
    # Someone else's key of the same kind as ours (the default RS256, or EdDSA).
    current = app.state.key_ring.current
    other_key = (
        Ed25519PrivateKey.generate()
        if current.alg == "EdDSA"
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    valid = _sign(app, good)
    head, payload, signature = valid.split(".")
    tampered_payload = _b64(json.dumps({**good, "user_id": user_id + 1}).encode())
    return {
        "alg none": _raw_token({"alg": "none", "typ": "JWT", "kid": kid}, good, lambda _m: b""),
        "HS256 with the public key": _raw_token(
            {"alg": "HS256", "typ": "JWT", "kid": kid}, good, lambda m: hmac.new(public_pem, m, hashlib.sha256).digest()
        ),
        "unknown kid": jwt.encode(good, other_key, algorithm=current.alg, headers={"kid": "not-a-key-of-ours"}),
        "our kid, someone else's key": jwt.encode(good, other_key, algorithm=current.alg, headers={"kid": kid}),
        "expired": _sign(
            app,
            _claims(
                user_id, settings, iat=int(time.time()) - 3600, nbf=int(time.time()) - 3600, exp=int(time.time()) - 60
            ),
        ),
        "not yet valid": _sign(
            app,
            _claims(
                user_id, settings, iat=int(time.time()) + 600, nbf=int(time.time()) + 600, exp=int(time.time()) + 900
            ),
        ),
        "wrong audience": _sign(app, _claims(user_id, settings, aud="someone-else")),
        "wrong issuer": _sign(app, _claims(user_id, settings, iss="https://evil.example")),
        "not an access token": _sign(app, _claims(user_id, settings, token_type="refresh")),
        "tampered payload": f"{head}.{tampered_payload}.{signature}",
        "no signature": f"{head}.{payload}.",
        "garbage": "abc.def.ghi",
        "null": "null",
        "undefined": "undefined",
    }


@pytest.fixture
def alice(client: TestClient) -> dict[str, Any]:
    return verified_user(client)


def test_forged_or_stale_access_tokens_get_401_on_a_protected_route(
    client: TestClient, settings: Settings, alice: dict[str, Any]
) -> None:
    for attack, token in forged_tokens(client.app, settings, alice["id"]).items():  # type: ignore[arg-type]
        response = client.delete("/api/auth/account/", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, attack
        assert response.json()["detail"], attack
        assert response.headers["www-authenticate"].startswith("Bearer"), attack
    response = client.delete("/api/auth/account/")
    assert response.status_code == 401
    assert client.get("/api/auth/users/count/").json() == {"user_count": 1}  # nothing was deleted


def test_another_service_refuses_the_same_forgeries_with_keys_from_the_jwks(app: FastAPI, settings: Settings) -> None:
    with serve(app) as base_url:
        import httpx

        with httpx.Client(base_url=base_url) as http:
            response = http.post(
                "/api/auth/signup/",
                json={
                    "username": "zed",
                    "email": "zed@example.com",
                    "password": PASSWORD,
                    "confirm_password": PASSWORD,
                },
            )
            user_id = response.json()["user"]["id"]
        verifier = AccessTokenVerifier(
            JwksCache(f"{base_url}/api/auth/jwks/"), issuer=settings.jwt_issuer, audience=settings.jwt_audience
        )
        assert verifier.verify(app.state.components.tokens.issue(user_id)).user_id == user_id
        for attack, token in forged_tokens(app, settings, user_id).items():
            try:
                verifier.verify(token)
            except Unauthorized:
                continue
            pytest.fail(f"accepted: {attack}")


def test_rotated_refresh_token_works_within_the_grace_window_with_the_same_successor(
    client: TestClient, alice: dict[str, Any]
) -> None:
    first = client.cookies["pawgle_refresh"]
    one = client.post("/api/token/refresh/")
    successor = one.cookies["pawgle_refresh"]
    assert successor != first
    hold_cookie(client, first)  # a second tab still holds the old cookie
    two = client.post("/api/token/refresh/")
    assert two.status_code == 200
    assert two.cookies["pawgle_refresh"] == successor
    hold_cookie(client, successor)
    assert client.post("/api/token/refresh/").status_code == 200


def _age_rotations(app: FastAPI, seconds: int) -> None:
    with app.state.engine.begin() as conn:
        rows = conn.execute(text("SELECT id, rotated_at FROM auth_refresh_tokens WHERE rotated_at IS NOT NULL")).all()
        for row_id, rotated_at in rows:
            conn.execute(
                text("UPDATE auth_refresh_tokens SET rotated_at = :t WHERE id = :i"),
                {"t": _minus(rotated_at, seconds), "i": row_id},
            )


def _minus(value: Any, seconds: int) -> Any:
    from datetime import datetime, timedelta

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value - timedelta(seconds=seconds)


def test_replayed_refresh_token_after_the_grace_window_revokes_the_whole_family(
    client: TestClient, alice: dict[str, Any]
) -> None:
    stolen = client.cookies["pawgle_refresh"]
    assert client.post("/api/token/refresh/").status_code == 200
    current = client.cookies["pawgle_refresh"]
    _age_rotations(client.app, 61)  # type: ignore[arg-type]
    hold_cookie(client, stolen)
    replay = client.post("/api/token/refresh/")
    assert replay.status_code == 401
    assert replay.json()["detail"] == "Invalid or expired refresh token."
    hold_cookie(client, current)  # the legitimate holder is signed out too
    assert client.post("/api/token/refresh/").status_code == 401


def test_other_sessions_survive_a_family_revocation(client: TestClient, alice: dict[str, Any]) -> None:
    other = client.post("/api/auth/login/", json={"email": "alice@example.com", "password": PASSWORD})
    other_cookie = other.cookies["pawgle_refresh"]
    hold_cookie(client, other_cookie)
    client.post("/api/auth/logout/")
    hold_cookie(client, other_cookie)
    assert client.post("/api/token/refresh/").status_code == 401
    login_again = client.post("/api/auth/login/", json={"email": "alice@example.com", "password": PASSWORD})
    hold_cookie(client, login_again.cookies["pawgle_refresh"])
    assert client.post("/api/token/refresh/").status_code == 200


def test_a_magic_link_works_once(client: TestClient, alice: dict[str, Any]) -> None:
    client.post("/api/auth/magic/request/", json={"email": "alice@example.com"})
    token = last_link_token(client.app, "alice@example.com", "sign_in")  # type: ignore[arg-type]
    first = client.post("/api/auth/magic/consume/", json={"token": token})
    assert first.status_code == 200
    assert first.json()["user"]["id"] == alice["id"]
    second = client.post("/api/auth/magic/consume/", json={"token": token})
    assert second.status_code == 400
    assert second.json()["detail"] == "This link has already been used."


def test_a_magic_link_is_refused_after_15_minutes(client: TestClient, alice: dict[str, Any]) -> None:
    client.post("/api/auth/magic/request/", json={"email": "alice@example.com"})
    token = last_link_token(client.app, "alice@example.com", "sign_in")  # type: ignore[arg-type]
    [expiry] = [
        e["expires_at"]
        for e in outbox(client.app, "auth.magic_link_requested")  # type: ignore[arg-type]
        if e["purpose"] == "sign_in"
    ]
    assert expiry  # the notifier learns when the link dies
    with client.app.state.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(
            text("UPDATE auth_magic_links SET created_at = :t, expires_at = :e WHERE purpose = 'sign_in'"),
            {"t": _minus(_now(), 16 * 60), "e": _minus(_now(), 60)},
        )
    response = client.post("/api/auth/magic/consume/", json={"token": token})
    assert response.status_code == 400
    assert response.json()["detail"] == "This link has expired. Request a new one."


def _now() -> Any:
    from pawgle.auth.models import utcnow

    return utcnow()


def test_a_newer_magic_link_voids_the_older_one(client: TestClient, alice: dict[str, Any]) -> None:
    client.post("/api/auth/magic/request/", json={"email": "alice@example.com"})
    older = last_link_token(client.app, "alice@example.com", "sign_in")  # type: ignore[arg-type]
    client.post("/api/auth/magic/request/", json={"email": "alice@example.com"})
    newer = last_link_token(client.app, "alice@example.com", "sign_in")  # type: ignore[arg-type]
    assert client.post("/api/auth/magic/consume/", json={"token": older}).status_code == 400
    assert client.post("/api/auth/magic/consume/", json={"token": newer}).status_code == 200


def test_links_are_random_and_stored_only_as_hashes(client: TestClient, alice: dict[str, Any]) -> None:
    client.post("/api/auth/magic/request/", json={"email": "alice@example.com"})
    token = last_link_token(client.app, "alice@example.com", "sign_in")  # type: ignore[arg-type]
    assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) * 8 >= 128
    with client.app.state.engine.connect() as conn:  # type: ignore[attr-defined]
        stored = [row[0] for row in conn.execute(text("SELECT token_hash FROM auth_magic_links"))]
        refresh = [row[0] for row in conn.execute(text("SELECT token_hash FROM auth_refresh_tokens"))]
    assert token not in stored
    assert hashlib.sha256(token.encode()).hexdigest() in stored
    assert client.cookies["pawgle_refresh"] not in refresh


@pytest.fixture
def costly_client(database_url: str, nats_url: str, data_dir: Any) -> Iterator[TestClient]:
    """Argon2 costly enough that hashing, not HTTP, dominates a login."""
    settings = make_settings(database_url, nats_url, data_dir, argon2_time_cost=2, argon2_memory_kib=16384)
    with TestClient(create_app(settings), base_url="http://localhost") as test_client:
        yield test_client


def test_wrong_password_and_unknown_email_look_and_take_the_same(costly_client: TestClient) -> None:
    verified_user(costly_client)
    attempts = {
        "wrong password": {"email": "alice@example.com", "password": "Wrong-Horse-42"},
        "unknown email": {"email": "nobody@example.com", "password": "Wrong-Horse-42"},
    }
    bodies, timings = {}, {name: [] for name in attempts}  # type: ignore[var-annotated]
    for _ in range(7):
        for name, body in attempts.items():
            start = time.perf_counter()
            response = costly_client.post("/api/auth/login/", json=body)
            timings[name].append(time.perf_counter() - start)
            bodies[name] = (response.status_code, response.json())
    assert bodies["wrong password"] == bodies["unknown email"]
    assert bodies["unknown email"][0] == 401
    assert bodies["unknown email"][1]["detail"] == "Invalid credentials."
    # The fastest run of each is the least disturbed by whatever else the machine is doing.
    wrong, unknown = (min(timings[n]) for n in attempts)
    assert 0.5 < wrong / unknown < 2.0, timings


def test_a_deleted_users_refresh_token_no_longer_works(client: TestClient, alice: dict[str, Any]) -> None:
    cookie = client.cookies["pawgle_refresh"]
    response = client.delete("/api/auth/account/", headers={"Authorization": f"Bearer {alice['access']}"})
    assert response.status_code == 204
    assert outbox(client.app, "user.deleted") == [{"user_id": alice["id"]}]  # type: ignore[arg-type]
    hold_cookie(client, cookie)
    assert client.post("/api/token/refresh/").status_code == 401
    assert client.post("/api/auth/login/", json={"email": "alice@example.com", "password": PASSWORD}).status_code == 401
    again = client.delete("/api/auth/account/", headers={"Authorization": f"Bearer {alice['access']}"})
    assert again.status_code == 401
    newcomer = signup(client, "alice2", "alice@example.com")  # the address is free again, the id is not reused
    assert newcomer["user"]["id"] != alice["id"]


def test_a_once_verified_token_is_still_refused_after_expiry_or_key_withdrawal(
    app: FastAPI, settings: Settings, client: TestClient
) -> None:
    verifier = AccessTokenVerifier(
        JwksCache("http://127.0.0.1:9/jwks"), issuer=settings.jwt_issuer, audience=settings.jwt_audience, leeway_s=0
    )
    verifier.jwks.set_keys(app.state.key_ring.jwks())
    soon = _sign(app, _claims(7, settings, exp=int(time.time()) + 1))
    assert verifier.verify(soon).user_id == 7
    assert verifier.verify(soon).user_id == 7  # served from the cache of verified tokens
    time.sleep(1.1 + (1 - time.time() % 1))
    with pytest.raises(Unauthorized):
        verifier.verify(soon)
    lasting = app.state.components.tokens.issue(8)
    assert verifier.verify(lasting).user_id == 8
    verifier.jwks.set_keys({"keys": []})  # the key is withdrawn (compromise)
    verifier.jwks.min_refresh_interval_s = 3600
    with pytest.raises(Unauthorized):
        verifier.verify(lasting)


def test_concurrent_refreshes_with_one_cookie_all_succeed_with_one_successor(app: FastAPI) -> None:
    """Several tabs refresh at page load with the same cookie (contract section 1.8): nobody is logged out."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    with serve(app) as base_url, httpx.Client(base_url=base_url) as http:
        http.post(
            "/api/auth/signup/",
            json={
                "username": "tabby",
                "email": "tabby@example.com",
                "password": PASSWORD,
                "confirm_password": PASSWORD,
            },
        )
        token = last_link_token(app, "tabby@example.com", "verify_email")
        cookie = http.post("/api/auth/magic/consume/", json={"token": token}).cookies["pawgle_refresh"]

        def refresh(_: int) -> tuple[int, str | None]:
            response = httpx.post(f"{base_url}/api/token/refresh/", cookies={"pawgle_refresh": cookie})
            return response.status_code, response.cookies.get("pawgle_refresh")

        with ThreadPoolExecutor(max_workers=6) as pool:
            results = list(pool.map(refresh, range(6)))
    assert {status for status, _ in results} == {200}
    assert len({successor for _, successor in results}) == 1
