"""The auth endpoints as the frontend calls them (contract section 3)."""

from __future__ import annotations

import jwt
from fastapi.testclient import TestClient

from .conftest import FRONTEND, PASSWORD, hold_cookie, last_link_token, login, outbox, signup, verified_user


def test_signup_creates_an_unverified_account_and_sends_a_verification_link(client: TestClient) -> None:
    body = signup(client)
    assert body["message"] == "Account created. Please check your email to verify your account."
    assert body["user"]["username"] == "alice"
    assert body["user"]["email"] == "alice@example.com"
    assert isinstance(body["user"]["id"], int)
    assert "access" not in body
    assert "pawgle_refresh" not in client.cookies
    [link] = [e for e in outbox(client.app, "auth.magic_link_requested") if e["purpose"] == "verify_email"]
    assert link["link"].startswith(f"{FRONTEND}/auth/magic?token=")
    assert link["link"].endswith("&next=%2Fuser")
    [registered] = outbox(client.app, "user.registered")
    assert registered == {
        "user_id": body["user"]["id"],
        "display_name": "alice",
        "email": "alice@example.com",
        "email_verified": False,
    }


def test_signup_rejects_weak_passwords_with_a_readable_detail(client: TestClient) -> None:
    for password, expected in (
        ("short1", "too short"),
        ("12345678901", "entirely numeric"),
        ("password123", "too common"),
        ("alicealice1", "too similar"),
    ):
        response = client.post(
            "/api/auth/signup/",
            json={"username": "alice", "email": "a@example.com", "password": password, "confirm_password": password},
        )
        assert response.status_code == 400
        assert expected in response.json()["detail"]
        assert response.json()["password"]


def test_signup_rejects_mismatched_passwords_and_duplicate_email_case_insensitively(client: TestClient) -> None:
    response = client.post(
        "/api/auth/signup/",
        json={"username": "bob", "email": "bob@example.com", "password": PASSWORD, "confirm_password": PASSWORD + "x"},
    )
    assert response.status_code == 400
    assert response.json()["non_field_errors"] == ["Passwords don't match."]
    signup(client, "bob", "Bob@Example.com")
    response = client.post(
        "/api/auth/signup/",
        json={"username": "bobby", "email": "BOB@example.COM", "password": PASSWORD, "confirm_password": PASSWORD},
    )
    assert response.status_code == 400
    assert "email" in response.json()
    response = client.post(
        "/api/auth/signup/",
        json={"username": "BOB", "email": "other@example.com", "password": PASSWORD, "confirm_password": PASSWORD},
    )
    assert response.json()["username"] == ["A user with that username already exists."]


def test_unverified_login_is_refused_and_resends_the_link(client: TestClient) -> None:
    signup(client)
    before = len(outbox(client.app, "auth.magic_link_requested"))
    response = client.post("/api/auth/login/", json={"email": "alice@example.com", "password": PASSWORD})
    assert response.status_code == 403
    assert response.json()["detail"] == "Please verify your email — we sent you a new link."
    assert len(outbox(client.app, "auth.magic_link_requested")) == before + 1


def test_verification_link_signs_in_and_login_then_works_case_insensitively(client: TestClient) -> None:
    user = verified_user(client)
    assert client.cookies.get("pawgle_refresh")
    claims = jwt.decode(user["access"], options={"verify_signature": False})
    assert claims["user_id"] == user["id"]
    assert claims["token_type"] == "access"
    assert claims["exp"] - claims["iat"] <= 900
    assert {"jti", "iss", "aud"} <= claims.keys()
    response = client.post("/api/auth/login/", json={"email": "ALICE@example.com", "password": PASSWORD})
    assert response.status_code == 200
    assert set(response.json()) == {"access"}
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("pawgle_refresh=")
    assert "HttpOnly" in cookie
    assert "Path=/" in cookie
    assert "SameSite=lax" in cookie
    assert "Max-Age=86400" in cookie
    [updated] = outbox(client.app, "user.updated")
    assert updated["email_verified"] is True


def test_refresh_returns_an_access_token_from_the_cookie_with_any_body(client: TestClient) -> None:
    verified_user(client)
    for kwargs in (
        {},
        {"json": {"refresh": None}},
        {"content": b"", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
    ):
        response = client.post("/api/token/refresh/", **kwargs)  # type: ignore[arg-type]
        assert response.status_code == 200, response.text
        assert set(response.json()) == {"access"}


def test_refresh_without_a_cookie_is_401(client: TestClient) -> None:
    response = client.post("/api/token/refresh/")
    assert response.status_code == 401
    assert response.json()["detail"] == "No refresh token cookie."


def test_logout_revokes_the_refresh_token_and_clears_the_cookie(client: TestClient) -> None:
    verified_user(client)
    token = client.cookies["pawgle_refresh"]
    response = client.post("/api/auth/logout/")
    assert response.status_code == 200
    assert response.json()["detail"] == "Logged out."
    assert 'pawgle_refresh=""' in response.headers["set-cookie"] or "Max-Age=0" in response.headers["set-cookie"]
    hold_cookie(client, token)
    response = client.post("/api/token/refresh/")
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid or expired refresh token."
    assert client.post("/api/auth/logout/").status_code == 200  # idempotent


def test_cookie_endpoints_refuse_foreign_origins(client: TestClient) -> None:
    verified_user(client)
    assert client.post("/api/token/refresh/", headers={"Origin": "https://evil.example"}).status_code == 403
    assert client.post("/api/auth/logout/", headers={"Origin": "https://evil.example"}).status_code == 403
    assert client.post("/api/token/refresh/", headers={"Origin": FRONTEND}).status_code == 200


def test_magic_request_answers_the_same_for_known_and_unknown_addresses(client: TestClient) -> None:
    verified_user(client)
    known = client.post("/api/auth/magic/request/", json={"email": "alice@example.com"})
    unknown = client.post("/api/auth/magic/request/", json={"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 200
    assert (
        known.json()
        == unknown.json()
        == {"detail": "If an account with that email exists, a sign-in link is on its way."}
    )
    assert last_link_token(client.app, "alice@example.com", "sign_in")
    bad = client.post("/api/auth/magic/request/", json={"email": "not-an-address"})
    assert bad.status_code == 400
    assert bad.json()["detail"] == "A valid email address is required."


def test_magic_consume_errors_name_the_problem(client: TestClient) -> None:
    assert client.post("/api/auth/magic/consume/", json={}).json()["detail"] == "Missing token."
    response = client.post("/api/auth/magic/consume/", json={"token": "forged"})
    assert response.status_code == 400
    assert response.json()["detail"] == "Invalid or tampered link."


def test_users_count_counts_verified_accounts(client: TestClient) -> None:
    assert client.get("/api/auth/users/count/").json() == {"user_count": 0}
    verified_user(client)
    signup(client, "bob", "bob@example.com")
    assert client.get("/api/auth/users/count/").json() == {"user_count": 1}


def test_jwks_publishes_the_signing_key(client: TestClient) -> None:
    access = login_after_signup(client)
    jwks = client.get("/api/auth/jwks/").json()
    kid = jwt.get_unverified_header(access)["kid"]
    assert [k["kid"] for k in jwks["keys"]] == [kid]
    assert (jwks["keys"][0]["kty"], jwks["keys"][0]["alg"]) == ("RSA", "RS256")  # AUTH_SIGNING_ALGORITHM's default
    assert set(jwks["keys"][0]) == {"kty", "n", "e", "kid", "alg", "use"}  # no private parameter (d, p, q...)


def login_after_signup(client: TestClient) -> str:
    verified_user(client)
    return login(client)


def test_the_original_verify_email_route_consumes_a_verification_link(client: TestClient) -> None:
    signup(client)
    token = last_link_token(client.app, "alice@example.com", "verify_email")
    response = client.get("/api/auth/verify-email/", params={"token": token, "uid": "whatever"})
    assert response.status_code == 200
    assert response.json()["access"]
    assert client.cookies.get("pawgle_refresh")
    again = client.get("/api/auth/verify-email/", params={"token": token})
    assert again.status_code == 400
    assert again.json()["detail"] == "This link has already been used."


def test_resend_verification_answers_alike_for_every_address(client: TestClient) -> None:
    signup(client, "bob", "bob@example.com")
    verified_user(client)
    answers = [
        client.post("/api/auth/resend-verification/", json={"email": e})
        for e in ("bob@example.com", "alice@example.com", "nobody@example.com")
    ]
    assert {a.status_code for a in answers} == {200}
    assert len({a.text for a in answers}) == 1
    sent = [e["email"] for e in outbox(client.app, "auth.magic_link_requested") if e["purpose"] == "verify_email"]
    assert sent.count("bob@example.com") == 2
    assert sent.count("alice@example.com") == 1


def test_every_answer_is_json_with_its_charset(client: TestClient) -> None:
    verified_user(client)
    responses = [
        client.post("/api/auth/login/", json={"email": "alice@example.com", "password": PASSWORD}),
        client.post("/api/token/refresh/"),
        client.post("/api/auth/magic/consume/", json={"token": "x"}),
        client.get("/api/auth/jwks/"),
        client.post("/api/auth/logout/"),
        client.post("/api/token/refresh/"),
    ]
    for response in responses:
        assert response.headers["content-type"] == "application/json; charset=utf-8", response.request.url


def test_a_wrong_password_is_recorded_on_the_account_although_the_answer_is_401(client: TestClient) -> None:
    """The failed login's write survives its error response (InvalidCredentials.commit_session)."""
    from sqlmodel import Session

    from pawgle.auth.models import User

    user = verified_user(client)
    response = client.post("/api/auth/login/", json={"email": "alice@example.com", "password": "not-it-at-all"})
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid credentials."
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        stored = session.get(User, user["id"])
        assert stored is not None
        assert stored.failed_logins == 1


def test_a_kelvin_sign_signup_holds_the_plain_address_and_links_go_to_the_plain_address(client: TestClient) -> None:
    squatter = signup(client, "squatter", "\u212ax@example.org")["user"]
    assert squatter["email"] == "kx@example.org"
    owner = client.post(
        "/api/auth/signup/",
        json={"username": "owner", "email": "Kx@example.org", "password": PASSWORD, "confirm_password": PASSWORD},
    )
    assert owner.status_code == 400
    assert client.post("/api/auth/magic/request/", json={"email": "kx@example.org"}).status_code == 200
    mailed = [e["email"] for e in outbox(client.app, "auth.magic_link_requested")]  # type: ignore[arg-type]
    assert mailed == ["kx@example.org", "kx@example.org"]


def test_a_nul_or_line_break_in_an_address_is_a_400_everywhere(client: TestClient) -> None:
    for address in ("alice\x00@example.com", "alice@example.com\r\nBcc: eve@evil.test", "alice@example.com\n"):
        response = client.post(
            "/api/auth/signup/",
            json={"username": "alice", "email": address, "password": PASSWORD, "confirm_password": PASSWORD},
        )
        assert response.status_code == 400
        assert response.json()["email"] == ["Enter a valid email address."]
        for path in ("/api/auth/magic/request/", "/api/auth/forgot-password/", "/api/auth/resend-verification/"):
            assert client.post(path, json={"email": address}).status_code == 400, path
        login_answer = client.post("/api/auth/login/", json={"email": address, "password": PASSWORD})
        assert login_answer.status_code == 400
    assert outbox(client.app, "auth.magic_link_requested") == []  # type: ignore[arg-type]
