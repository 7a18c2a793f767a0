"""The service functions called directly (no HTTP): e-mail normal form, failed logins, short transactions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from pawgle.auth import links, service
from pawgle.auth.components import AuthComponents
from pawgle.auth.config import Settings
from pawgle.auth.models import User
from pawgle.auth.passwords import Passwords
from pawgle.common.errors import AppError, BadRequest

from .factories import PASSWORD, create_user, issue_link, mailed_links, make_components, migrated_engine

KELVIN_K = "\u212a"  # KELVIN SIGN, which NFKC turns into the Latin capital K


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = migrated_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def components(settings: Settings) -> AuthComponents:
    return make_components(settings)


def _committed(engine: Engine, work: Any) -> Any:
    """Run `work(session)` as a request would: commit on success, or when the error's class says so."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            result = work(session)
        except AppError as exc:
            session.commit() if exc.commit_session else session.rollback()
            raise
        session.commit()
        return result


def _signup(session: Session, components: AuthComponents, username: str, email: str) -> User:
    return service.signup(
        session=session,
        components=components,
        username=username,
        email=email,
        password=PASSWORD,
        confirm_password=PASSWORD,
    )


def test_a_kelvin_sign_address_is_the_ascii_address_and_cannot_squat_it(
    engine: Engine, components: AuthComponents
) -> None:
    squatter = _committed(engine, lambda s: _signup(s, components, "squatter", f"{KELVIN_K}x@example.org"))
    assert squatter.email == squatter.email_key == "kx@example.org"
    with pytest.raises(service.SignupRejected) as refused:
        _committed(engine, lambda s: _signup(s, components, "owner", "Kx@example.org"))
    assert refused.value.fields["email"] == ["A user with that email already exists."]
    # The verification link and a sign-in link asked for the ASCII address both go to the ASCII address,
    # never to the look-alike; following the sign-in link takes the unverified pre-registration over (D12).
    _committed(engine, lambda s: service.request_sign_in_link(session=s, components=components, email="kx@example.org"))
    assert [m["email"] for m in mailed_links(engine)] == ["kx@example.org", "kx@example.org"]
    token = mailed_links(engine)[-1]["link"].split("token=", 1)[1].split("&", 1)[0]
    signed_in = _committed(engine, lambda s: service.consume_link(session=s, components=components, token=token))
    assert signed_in.user.id == squatter.id
    assert signed_in.user.password_hash is None  # the squatter's password is void


@pytest.mark.parametrize(
    "address", ["a\x00b@example.org", "alice@example.org\r\nBcc: x@evil.test", "ali ce@example.org", "a\u202e@x.org"]
)
def test_control_characters_and_whitespace_in_an_address_are_a_400(
    engine: Engine, components: AuthComponents, address: str
) -> None:
    with pytest.raises(service.SignupRejected) as refused:
        _committed(engine, lambda s: _signup(s, components, "alice", address))
    assert refused.value.status_code == 400
    assert refused.value.fields["email"] == ["Enter a valid email address."]
    for request_link in (service.request_sign_in_link, service.request_password_reset, service.resend_verification):
        with pytest.raises(BadRequest):
            _committed(engine, lambda s, f=request_link: f(session=s, components=components, email=address))
    with pytest.raises(BadRequest):
        _committed(engine, lambda s: service.login(session=s, components=components, email=address, password="x"))
    assert mailed_links(engine) == []


def test_a_wrong_password_is_recorded_although_the_login_fails(engine: Engine, components: AuthComponents) -> None:
    user = _committed(engine, lambda s: create_user(s, components))
    for _ in range(2):
        with pytest.raises(service.InvalidCredentials) as refused:
            _committed(
                engine, lambda s: service.login(session=s, components=components, email=user.email, password="wrong")
            )
        assert refused.value.status_code == 401
    with Session(engine) as session:
        stored = session.get(User, user.id)
        assert stored is not None
        assert stored.failed_logins == 2
        assert stored.last_failed_login_at is not None
    _committed(
        engine, lambda s: service.login(session=s, components=components, email="ALICE@example.com", password=PASSWORD)
    )
    with Session(engine) as session:
        stored = session.get(User, user.id)
        assert stored is not None
        assert stored.failed_logins == 0


def test_an_unverified_login_is_refused_but_its_new_link_is_kept(engine: Engine, components: AuthComponents) -> None:
    user = _committed(engine, lambda s: create_user(s, components, email_verified=False))
    with pytest.raises(service.EmailNotVerified) as refused:
        _committed(
            engine, lambda s: service.login(session=s, components=components, email=user.email, password=PASSWORD)
        )
    assert refused.value.status_code == 403
    assert [m["purpose"] for m in mailed_links(engine)] == [links.VERIFY_EMAIL]


class _LockProbingPasswords(Passwords):
    """Argon2 as usual, but each hash or verification first checks that nobody holds the write lock."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(time_cost=1, memory_kib=1024, parallelism=1)
        self.engine = engine
        self.calls = 0

    def _assert_write_lock_free(self) -> None:
        self.calls += 1
        with self.engine.connect() as conn:
            raw: Any = conn.connection.driver_connection
            raw.execute("PRAGMA busy_timeout=0")
            raw.execute("BEGIN IMMEDIATE")  # raises "database is locked" if a writer holds the lock
            raw.execute("ROLLBACK")
            raw.execute("PRAGMA busy_timeout=30000")

    def hash(self, password: str) -> str:
        self._assert_write_lock_free()
        return super().hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        self._assert_write_lock_free()
        return super().verify(stored_hash, password)


def test_no_password_is_hashed_inside_a_write_transaction(engine: Engine, components: AuthComponents) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("the database-wide write lock is SQLite's")
    _committed(engine, lambda s: create_user(s, components))
    probing = _LockProbingPasswords(engine)
    components.passwords = probing
    _committed(engine, lambda s: _signup(s, components, "bob", "bob@example.com"))
    _committed(
        engine, lambda s: service.login(session=s, components=components, email="alice@example.com", password=PASSWORD)
    )
    with pytest.raises(service.InvalidCredentials):
        _committed(
            engine, lambda s: service.login(session=s, components=components, email="alice@example.com", password="no")
        )
    _committed(
        engine,
        lambda s: service.request_password_reset(session=s, components=components, email="alice@example.com"),
    )
    token = mailed_links(engine)[-1]["link"].split("token=", 1)[1]
    _committed(
        engine,
        lambda s: service.reset_password(
            session=s, components=components, token=token, new_password="Battery-Staple-77"
        ),
    )
    assert probing.calls == 4


def test_a_reset_link_used_meanwhile_is_refused_after_the_hash(engine: Engine, components: AuthComponents) -> None:
    user = _committed(engine, lambda s: create_user(s, components))
    token = _committed(engine, lambda s: issue_link(s, components, user, links.PASSWORD_RESET))
    _committed(
        engine,
        lambda s: service.reset_password(
            session=s, components=components, token=token, new_password="Battery-Staple-77"
        ),
    )
    with pytest.raises(links.LinkError, match="already been used"):
        _committed(
            engine,
            lambda s: service.reset_password(
                session=s, components=components, token=token, new_password="Other-Staple-88"
            ),
        )


def test_stored_addresses_are_rewritten_in_the_normal_form_once_per_address(database_url: str) -> None:
    """Migration 0003: look-alike spellings stored before it become one address, held by one account."""
    from alembic import command

    from pawgle.auth.main import MIGRATIONS
    from pawgle.common.db import make_engine
    from pawgle.common.migrations import alembic_config

    engine = make_engine(database_url)
    try:
        command.upgrade(alembic_config(MIGRATIONS, database_url, engine), "0002")
        rows = [
            (1, f"{KELVIN_K}x@Example.org", f"{KELVIN_K.lower()}x@example.org", False),
            (2, "kx@example.org", "kx@example.org.", True),
            (3, "Bob@B\u00fccher.de", "bob@b\u00fccher.de", True),
        ]
        with engine.begin() as conn:
            for user_id, email, key, verified in rows:
                conn.execute(
                    text(
                        "INSERT INTO auth_users (id, username, username_key, email, email_key, display_name,"
                        " email_verified, is_active, created_at, updated_at)"
                        " VALUES (:id, :u, :u, :e, :k, :u, :v, 1, '2026-01-01', '2026-01-01')"
                    ),
                    {"id": user_id, "u": f"user{user_id}", "e": email, "k": key, "v": verified},
                )
        command.upgrade(alembic_config(MIGRATIONS, database_url, engine), "head")
        with engine.connect() as conn:
            stored = {
                r.id: (r.email, r.email_key) for r in conn.execute(text("SELECT id, email, email_key FROM auth_users"))
            }
        assert stored[2] == ("kx@example.org", "kx@example.org")  # the verified account keeps the address
        assert stored[1] == ("kx@example.org", None)
        assert stored[3] == ("bob@xn--bcher-kva.de", "bob@xn--bcher-kva.de")
    finally:
        engine.dispose()


@pytest.mark.parametrize("username", ["ali\u202ece", "bob<script>", "e\x85ve", "zero\u200bwidth"])
def test_a_username_breaking_the_text_rule_is_refused(
    engine: Engine, components: AuthComponents, username: str
) -> None:
    """The username is the display name other services show: it keeps the mesh's text rule."""
    with pytest.raises(service.SignupRejected) as refused:
        _committed(engine, lambda s: _signup(s, components, username, "alice@example.com"))
    assert "username" in refused.value.fields
