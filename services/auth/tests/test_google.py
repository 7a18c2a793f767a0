"""Google sign-in against a local identity provider that publishes its JWKS over real HTTP."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from pawgle.auth.main import create_app

from .conftest import GOOGLE_CLIENT_ID, PASSWORD, make_settings, outbox, signup
from .google_idp import FakeGoogle


def _google(client: TestClient, credential: str) -> tuple[int, dict]:
    response = client.post("/api/auth/google/", json={"credential": credential})
    return response.status_code, response.json()


def test_google_sign_in_creates_a_verified_account_with_a_non_identifying_name(
    client: TestClient, google_idp: FakeGoogle
) -> None:
    status, body = _google(
        client, google_idp.id_token(audience=GOOGLE_CLIENT_ID, email="gina.smith@example.com", sub="g-1")
    )
    assert status == 200, body
    assert body["created"] is True
    assert body["user"]["email"] == "gina.smith@example.com"
    assert "gina" not in body["user"]["username"].lower()
    assert body["access"]
    assert client.cookies.get("pawgle_refresh")
    [registered] = outbox(client.app, "user.registered")  # type: ignore[arg-type]
    assert registered["email_verified"] is True
    assert "gina" not in registered["display_name"].lower()
    status, again = _google(
        client, google_idp.id_token(audience=GOOGLE_CLIENT_ID, email="gina.smith@example.com", sub="g-1")
    )
    assert status == 200
    assert again["created"] is False
    assert again["user"]["id"] == body["user"]["id"]


def test_the_id_token_alias_is_accepted(client: TestClient, google_idp: FakeGoogle) -> None:
    response = client.post("/api/auth/google/", json={"id_token": google_idp.id_token(audience=GOOGLE_CLIENT_ID)})
    assert response.status_code == 200


def test_bad_google_tokens_are_refused(client: TestClient, google_idp: FakeGoogle) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cases = {
        "wrong audience": google_idp.id_token(audience="someone-elses-app"),
        "wrong issuer": google_idp.id_token(audience=GOOGLE_CLIENT_ID, issuer="https://accounts.evil.example"),
        "expired": google_idp.id_token(audience=GOOGLE_CLIENT_ID, expires_in=-3600),
        "signed by someone else": google_idp.id_token(audience=GOOGLE_CLIENT_ID, key=stranger),
        "unknown kid": google_idp.id_token(audience=GOOGLE_CLIENT_ID, key=stranger, kid="nope"),
        "garbage": "not-a-jwt",
    }
    for case, credential in cases.items():
        status, body = _google(client, credential)
        assert status == 401, case
        assert body["error"] == "Invalid Google token.", case
    status, body = _google(client, google_idp.id_token(audience=GOOGLE_CLIENT_ID, verified=False))
    assert status == 401
    assert body["error"] == "Google account email is not verified."
    status, body = _google(client, "")
    assert status == 400
    assert body["error"] == "Missing Google credential."


def test_google_sign_in_into_an_unverified_preregistration_takes_it_over(
    client: TestClient, google_idp: FakeGoogle
) -> None:
    """D12: an attacker pre-registers the victim's address; the victim's Google sign-in voids the attacker."""
    squatter = signup(client, "squatter", "victim@example.com")
    status, body = _google(
        client, google_idp.id_token(audience=GOOGLE_CLIENT_ID, email="Victim@Example.com", sub="v-1")
    )
    assert status == 200
    assert body["created"] is False
    assert body["user"]["id"] == squatter["user"]["id"]
    response = client.post("/api/auth/login/", json={"email": "victim@example.com", "password": PASSWORD})
    assert response.status_code == 401


def test_magic_sign_in_into_an_unverified_preregistration_voids_its_password(client: TestClient) -> None:
    signup(client, "squatter", "victim@example.com")
    client.post("/api/auth/magic/request/", json={"email": "victim@example.com"})
    from .conftest import last_link_token

    token = last_link_token(client.app, "victim@example.com", "sign_in")  # type: ignore[arg-type]
    assert client.post("/api/auth/magic/consume/", json={"token": token}).status_code == 200
    response = client.post("/api/auth/login/", json={"email": "victim@example.com", "password": PASSWORD})
    assert response.status_code == 401


def test_google_without_a_client_id_says_it_is_not_configured(
    database_url: str, nats_url: str, data_dir: Path, google_idp: FakeGoogle
) -> None:
    with TestClient(create_app(make_settings(database_url, nats_url, data_dir))) as client:
        status, body = _google(client, google_idp.id_token(audience=GOOGLE_CLIENT_ID))
    assert status == 500
    assert body["error"] == "Google OAuth not configured on server."
