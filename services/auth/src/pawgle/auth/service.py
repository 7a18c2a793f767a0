"""Accounts: signup, password and link sign-in, Google, password reset, deactivation and deletion."""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session

from pawgle.auth import links, repository, sessions
from pawgle.auth.google import GoogleIdentity
from pawgle.auth.kit import AuthKit, generated_display_name, normalize_email
from pawgle.auth.models import Identity, User, utcnow
from pawgle.auth.passwords import password_problems
from pawgle.common.bus.outbox import add_event
from pawgle.common.errors import BadRequest
from pawgle.common.events.auth import UserDeleted, UserRegistered, UserUpdated

log = logging.getLogger(__name__)

USERNAME_RE = re.compile(r"^[\w.@+-]+$")


class SignupRejected(Exception):
    """Field errors of a signup, shaped as the contract's `{field: [messages]}`."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        super().__init__("; ".join(m for msgs in fields.values() for m in msgs))
        self.fields = fields


class InvalidCredentials(Exception):
    """Unknown e-mail, wrong password, or an account that cannot sign in: all look the same."""


class EmailNotVerified(Exception):
    def __init__(self, user: User) -> None:
        super().__init__("email not verified")
        self.user = user


class PasswordRejected(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__(" ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class SignedIn:
    user: User
    access: str
    refresh_token: str
    created: bool = False


def _publish_registered(session: Session, user: User) -> None:
    assert user.id is not None
    assert user.email is not None
    add_event(
        session,
        UserRegistered(
            user_id=user.id, display_name=user.display_name, email=user.email, email_verified=user.email_verified
        ),
    )


def _publish_updated(session: Session, user: User) -> None:
    assert user.id is not None
    assert user.email is not None
    add_event(
        session,
        UserUpdated(
            user_id=user.id,
            display_name=user.display_name,
            email=user.email,
            email_verified=user.email_verified,
            is_active=user.is_active,
        ),
    )


def _sign_in(session: Session, *, kit: AuthKit, user: User, created: bool = False) -> SignedIn:
    assert user.id is not None
    refresh_token = sessions.start_session(session, user_id=user.id, policy=kit.sessions)
    return SignedIn(user=user, access=kit.tokens.issue(user.id), refresh_token=refresh_token, created=created)


def signup(session: Session, *, kit: AuthKit, username: str, email: str, password: str, confirm_password: str) -> User:
    """Create an unverified account and send its verification link; raise SignupRejected on bad fields."""
    fields: dict[str, list[str]] = {}
    username = (username or "").strip()
    if not username or len(username) > 150 or not USERNAME_RE.match(username):
        fields["username"] = ["Enter a valid username of at most 150 letters, digits and @/./+/-/_ characters."]
    elif repository.find_user_by_username(session, username.lower()) is not None:
        fields["username"] = ["A user with that username already exists."]
    try:
        email, email_key = normalize_email(email)
    except BadRequest:
        fields["email"] = ["Enter a valid email address."]
        email_key = ""
    else:
        if repository.find_user_by_email(session, email_key) is not None:
            fields["email"] = ["A user with that email already exists."]
    if password != confirm_password:
        fields["non_field_errors"] = ["Passwords don't match."]
    problems = password_problems(password or "", username=username, email=email or "")
    if problems:
        fields["password"] = problems
    if fields:
        raise SignupRejected(fields)
    user = User(
        username=username,
        username_key=username.lower(),
        email=email,
        email_key=email_key,
        display_name=username,
        password_hash=kit.passwords.hash(password),
        email_verified=False,
        password_changed_at=utcnow(),
    )
    try:
        repository.save(session, user)
    except repository.DuplicateError as exc:  # a concurrent signup took the name or address
        raise SignupRejected({"non_field_errors": ["A user with that username or email already exists."]}) from exc
    _publish_registered(session, user)
    links.issue_link(session, kit=kit, user=user, purpose=links.VERIFY_EMAIL)
    return user


def login(session: Session, *, kit: AuthKit, email: str, password: str) -> SignedIn:
    """Password sign-in; every failure costs one Argon2 verification so timing reveals nothing."""
    email_key = (email or "").strip().lower()
    user = repository.find_user_by_email(session, email_key) if email_key else None
    stored = user.password_hash if user is not None else None
    if not kit.passwords.verify(stored, password or "") or user is None or not user.can_sign_in:
        raise InvalidCredentials()
    if not user.email_verified:
        raise EmailNotVerified(user)
    assert stored is not None
    if kit.passwords.needs_rehash(stored):
        user.password_hash = kit.passwords.hash(password)
        repository.save(session, user)
    return _sign_in(session, kit=kit, user=user)


def send_verification(session: Session, *, kit: AuthKit, user: User) -> None:
    links.issue_link(session, kit=kit, user=user, purpose=links.VERIFY_EMAIL)


def request_sign_in_link(session: Session, *, kit: AuthKit, email_key: str) -> None:
    """Queue a sign-in link if the address has an account that can sign in; silent either way."""
    user = repository.find_user_by_email(session, email_key)
    if user is not None and user.can_sign_in:
        links.issue_link(session, kit=kit, user=user, purpose=links.SIGN_IN)


def _take_over_unverified(session: Session, user: User) -> None:
    """D12: whoever pre-registered this address never proved control of it; their password and sessions go."""
    assert user.id is not None
    user.password_hash = None
    user.password_changed_at = utcnow()
    sessions.revoke_all(session, user_id=user.id, reason="email_proven")
    repository.invalidate_magic_links(session, user.id, now=utcnow())


def consume_link(session: Session, *, kit: AuthKit, token: str) -> SignedIn:
    """Sign in with a magic link; the first use verifies (and if need be activates) the account."""
    link, user = links.redeem_link(session, token=token, purposes=links.SIGN_IN_PURPOSES)
    if not user.email_verified:
        if link.purpose == links.SIGN_IN:
            _take_over_unverified(session, user)
        user.email_verified = True
        user.updated_at = utcnow()
        repository.save(session, user)
        _publish_updated(session, user)
    return _sign_in(session, kit=kit, user=user)


def verify_email(session: Session, *, kit: AuthKit, token: str) -> SignedIn:
    """Consume a verification link only (the original's verify-email route); signs in like the magic page."""
    link, user = links.redeem_link(session, token=token, purposes=(links.VERIFY_EMAIL,))
    if not user.email_verified:
        user.email_verified = True
        user.updated_at = utcnow()
        repository.save(session, user)
        _publish_updated(session, user)
    return _sign_in(session, kit=kit, user=user)


def resend_verification(session: Session, *, kit: AuthKit, email_key: str) -> None:
    """A new verification link for an unverified account; nothing (and no hint) otherwise."""
    user = repository.find_user_by_email(session, email_key)
    if user is not None and user.can_sign_in and not user.email_verified:
        links.issue_link(session, kit=kit, user=user, purpose=links.VERIFY_EMAIL)


def _new_username(session: Session) -> str:
    for _ in range(20):
        name = generated_display_name()
        if repository.find_user_by_username(session, name.lower()) is None:
            return name
    return f"Pawgler{secrets.token_hex(6)}"


def google_sign_in(session: Session, *, kit: AuthKit, identity: GoogleIdentity) -> SignedIn:
    """Sign in (or up) with a verified Google identity, linking it to the account with the same address."""
    linked = repository.find_identity(session, "google", identity.subject)
    if linked is not None:
        user = repository.get_user(session, linked.user_id)
        if user is None or not user.can_sign_in:
            raise InvalidCredentials()
        return _sign_in(session, kit=kit, user=user)
    email, email_key = normalize_email(identity.email)
    user = repository.find_user_by_email(session, email_key)
    created = user is None
    if user is None:
        name = _new_username(session)
        user = repository.save(
            session,
            User(
                username=name,
                username_key=name.lower(),
                email=email,
                email_key=email_key,
                display_name=name,
                email_verified=True,
            ),
        )
        _publish_registered(session, user)
    elif not user.can_sign_in:
        raise InvalidCredentials()
    elif not user.email_verified:
        _take_over_unverified(session, user)
        user.email_verified = True
        user.updated_at = utcnow()
        repository.save(session, user)
        _publish_updated(session, user)
    assert user.id is not None
    try:
        repository.save(session, Identity(provider="google", subject=identity.subject, user_id=user.id))
    except repository.DuplicateError as exc:  # two first sign-ins at once: the other one linked it
        raise InvalidCredentials() from exc
    return _sign_in(session, kit=kit, user=user, created=created)


def request_password_reset(session: Session, *, kit: AuthKit, email_key: str) -> None:
    """Queue a reset link if the address has an account that can sign in; silent either way."""
    user = repository.find_user_by_email(session, email_key)
    if user is not None and user.can_sign_in:
        links.issue_link(session, kit=kit, user=user, purpose=links.PASSWORD_RESET)


def reset_password(session: Session, *, kit: AuthKit, token: str, new_password: str) -> User:
    """Set a new password from a reset link; every session and outstanding link of the user ends."""
    link, user = links.redeem_link(session, token=token, purposes=(links.PASSWORD_RESET,))
    problems = password_problems(new_password or "", username=user.username, email=user.email or "")
    if problems:
        raise PasswordRejected(problems)
    change_password(session, kit=kit, user=user, new_password=new_password)
    if not user.email_verified:  # the reset link proved control of the address
        user.email_verified = True
        repository.save(session, user)
        _publish_updated(session, user)
    return user


def change_password(session: Session, *, kit: AuthKit, user: User, new_password: str) -> None:
    """Store a new hash and revoke every refresh token and unused link of the user."""
    assert user.id is not None
    user.password_hash = kit.passwords.hash(new_password)
    user.password_changed_at = user.updated_at = utcnow()
    repository.save(session, user)
    sessions.revoke_all(session, user_id=user.id, reason="password_changed")
    repository.invalidate_magic_links(session, user.id, now=utcnow())


def set_active(session: Session, *, user_id: int, active: bool) -> User | None:
    """Deactivate (revoking every session) or reactivate an account."""
    user = repository.get_user(session, user_id)
    if user is None or user.deleted_at is not None or user.is_active == active:
        return user
    user.is_active = active
    user.updated_at = utcnow()
    repository.save(session, user)
    if not active:
        sessions.revoke_all(session, user_id=user_id, reason="deactivated")
        repository.invalidate_magic_links(session, user_id, now=utcnow())
    _publish_updated(session, user)
    return user


def delete_account(session: Session, *, user_id: int) -> bool:
    """Erase the account's personal data (a tombstone keeps the id unused) and tell every service."""
    user = repository.get_user(session, user_id)
    if user is None or user.deleted_at is not None:
        return False
    now = utcnow()
    user.username = user.username_key = user.display_name = f"deleted-{user_id}"
    user.email = user.email_key = user.password_hash = None
    user.is_active = False
    user.deleted_at = user.updated_at = now
    repository.save(session, user)
    sessions.revoke_all(session, user_id=user_id, reason="deleted")
    repository.invalidate_magic_links(session, user_id, now=now)
    repository.delete_identities(session, user_id)
    add_event(session, UserDeleted(user_id=user_id))
    log.info("account deleted", extra={"user_id": user_id})
    return True


def purge_expired(session: Session) -> int:
    """Delete refresh tokens whose family has ended and links expired more than a day ago."""
    now = utcnow()
    removed = repository.delete_expired_tokens(session, now)
    return removed + repository.delete_expired_links(session, now - timedelta(days=1))


def count_users(session: Session) -> int:
    return repository.count_users(session)
