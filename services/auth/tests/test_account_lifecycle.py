"""Account lifecycle: password reset, deactivation, rehashing, keys and production refusal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlmodel import Session

from pawgle.auth import service
from pawgle.auth.config import Settings
from pawgle.auth.keys import KeyConfigError, load_key_ring, new_private_pem, rotate_dev_keys
from pawgle.auth.main import create_app
from pawgle.auth.models import User
from pawgle.common.auth import AccessTokenVerifier, JwksCache

from .conftest import PASSWORD, hold_cookie, last_link_token, login, make_settings, outbox, verified_user

NEW_PASSWORD = "Battery-Staple-77"


def test_password_reset_sets_the_password_and_ends_every_session(client: TestClient) -> None:
    verified_user(client)
    old_cookie = client.cookies["pawgle_refresh"]
    response = client.post("/api/auth/forgot-password/", json={"email": "ALICE@example.com"})
    unknown = client.post("/api/auth/forgot-password/", json={"email": "nobody@example.com"})
    assert response.status_code == unknown.status_code == 200
    assert response.json() == unknown.json()
    token = last_link_token(client.app, "alice@example.com", "password_reset")  # type: ignore[arg-type]
    weak = client.post("/api/auth/reset-password/", json={"token": token, "new_password": "12345678"})
    assert weak.status_code == 400
    assert "numeric" in weak.json()["detail"]
    # The failed attempt rolled back: the link still works.
    done = client.post("/api/auth/reset-password/", json={"token": token, "new_password": NEW_PASSWORD})
    assert done.status_code == 200, done.text
    again = client.post("/api/auth/reset-password/", json={"token": token, "new_password": NEW_PASSWORD})
    assert again.json()["detail"] == "This link has already been used."
    hold_cookie(client, old_cookie)
    assert client.post("/api/token/refresh/").status_code == 401
    assert client.post("/api/auth/login/", json={"email": "alice@example.com", "password": PASSWORD}).status_code == 401
    login(client, password=NEW_PASSWORD)


def test_a_reset_link_cannot_be_used_as_a_sign_in_link(client: TestClient) -> None:
    verified_user(client)
    client.post("/api/auth/forgot-password/", json={"email": "alice@example.com"})
    token = last_link_token(client.app, "alice@example.com", "password_reset")  # type: ignore[arg-type]
    response = client.post("/api/auth/magic/consume/", json={"token": token})
    assert response.json()["detail"] == "Invalid or tampered link."


def test_deactivation_revokes_refresh_tokens_and_blocks_sign_in(client: TestClient) -> None:
    user = verified_user(client)
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        service.set_active(session=session, user_id=user["id"], active=False)
        session.commit()
    assert client.post("/api/token/refresh/").status_code == 401
    assert client.post("/api/auth/login/", json={"email": "alice@example.com", "password": PASSWORD}).status_code == 401
    assert outbox(client.app, "user.updated")[-1]["is_active"] is False  # type: ignore[arg-type]


def test_raised_argon2_parameters_rehash_at_the_next_login(database_url: str, nats_url: str, data_dir: Path) -> None:
    with TestClient(create_app(make_settings(database_url, nats_url, data_dir))) as client:
        user = verified_user(client)
    stronger = make_settings(database_url, nats_url, data_dir, argon2_time_cost=2, argon2_memory_kib=2048)
    with TestClient(create_app(stronger)) as client:
        login(client)
        with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
            stored = session.get(User, user["id"])
            assert stored is not None
            assert stored.password_hash is not None
            assert stored.password_hash.startswith("$argon2id$v=19$m=2048,t=2,p=1$")


def test_a_development_key_survives_restarts_and_rotation_logs_nobody_out(
    database_url: str, nats_url: str, data_dir: Path
) -> None:
    settings = make_settings(database_url, nats_url, data_dir)
    with TestClient(create_app(settings)) as client:
        access = verified_user(client)["access"]
        old_kid = jwt.get_unverified_header(access)["kid"]
    with TestClient(create_app(settings)) as client:
        assert client.post("/api/token/refresh/").status_code == 401  # new client, no cookie
        assert client.get("/api/auth/jwks/").json()["keys"][0]["kid"] == old_kid
    rotate_dev_keys(settings.keys_dir)
    with TestClient(create_app(settings)) as client:
        kids = [k["kid"] for k in client.get("/api/auth/jwks/").json()["keys"]]
        assert len(kids) == 2
        assert kids[1] == old_kid
        verifier = AccessTokenVerifier(
            JwksCache("http://unused.invalid"), issuer=settings.jwt_issuer, audience=settings.jwt_audience
        )
        verifier.jwks.set_keys(client.get("/api/auth/jwks/").json())
        assert verifier.verify(access).user_id > 0  # a token of the old key still verifies
        new_access = login(client)
        assert jwt.get_unverified_header(new_access)["kid"] == kids[0]


def test_production_refuses_to_start_without_keys(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="AUTH_SIGNING_KEY"):
        Settings(environment="production", data_dir=tmp_path)
    with pytest.raises(ValidationError, match="AUTH_REFRESH_SECRET"):
        Settings(environment="production", data_dir=tmp_path, signing_key=new_private_pem().decode())
    settings = Settings(
        environment="production", data_dir=tmp_path, signing_key_file=tmp_path / "missing.pem", refresh_secret="x" * 40
    )
    with pytest.raises(KeyConfigError):
        load_key_ring(settings)


def test_production_uses_the_given_key_and_publishes_previous_ones(tmp_path: Path) -> None:
    current, previous = tmp_path / "current.pem", tmp_path / "previous.pem"
    current.write_bytes(new_private_pem())
    previous.write_bytes(new_private_pem())
    settings = Settings(
        environment="production",
        data_dir=tmp_path,
        signing_key_file=current,
        previous_key_files=[previous],
        refresh_secret="x" * 40,
    )
    ring = load_key_ring(settings)
    assert len(ring.jwks()["keys"]) == 2
    assert not (tmp_path / "auth" / "keys").exists()  # nothing generated in production
    assert [k["alg"] for k in ring.jwks()["keys"]] == ["RS256", "RS256"]
    small_rsa_pem = _rsa_pem(1024)
    with pytest.raises(KeyConfigError, match="2048"):
        load_key_ring(
            Settings(environment="production", data_dir=tmp_path, signing_key=small_rsa_pem, refresh_secret="x" * 40)
        )


def _rsa_pem(bits: int) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def test_ended_sessions_and_old_links_are_purged(client: TestClient) -> None:
    from datetime import timedelta

    from sqlalchemy import text

    from pawgle.auth.models import utcnow

    verified_user(client)
    login(client)
    engine = client.app.state.engine  # type: ignore[attr-defined]
    long_ago = utcnow() - timedelta(days=40)
    with engine.begin() as conn:
        conn.execute(text("UPDATE auth_refresh_tokens SET family_expires_at = :t, expires_at = :t"), {"t": long_ago})
        conn.execute(text("UPDATE auth_magic_links SET expires_at = :t"), {"t": long_ago})
    with Session(engine) as session:
        removed = service.purge_expired(session=session)
        session.commit()
    assert removed == 3  # two sign-ins, one verification link
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM auth_refresh_tokens")).scalar() == 0
        assert conn.execute(text("SELECT COUNT(*) FROM auth_magic_links")).scalar() == 0
