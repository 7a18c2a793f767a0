"""Accounts: signup, password and link sign-in, Google, password reset, deactivation and deletion; no HTTP here.

Every function takes keyword arguments only and raises the typed AppError family (the status is on the
error's class). Errors that must keep what the request wrote (a failed login records the attempt, a login
refused for an unverified address sends a new link) say so with `commit_session`.

Password hashing costs a few hundred milliseconds of CPU, and on SQLite a writing transaction holds the
database's only write lock: so no hash is computed inside a writing transaction. Functions that need one
read first (`repository.begin_read` / `end_read`), hash with no transaction open, then write in a short
transaction of their own, checking again what they read.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session

from pawgle.auth import links, repository, sessions
from pawgle.auth.components import AuthComponents
from pawgle.auth.display_names import generated_display_name
from pawgle.auth.errors import (
    EmailNotVerified,
    GoogleNotConfigured,
    InvalidCredentials,
    PasswordRejected,
    SignupRejected,
)
from pawgle.auth.google import GoogleTokenError
from pawgle.auth.models import Identity, User, utcnow
from pawgle.auth.passwords import password_problems
from pawgle.common.bus.outbox import add_event
from pawgle.common.email import InvalidEmail, normalize_email
from pawgle.common.errors import BadRequest, Unauthorized
from pawgle.common.events.auth import UserDeleted, UserRegistered, UserUpdated
from pawgle.common.schemas import unsafe_character

log = logging.getLogger(__name__)

__all__ = [  # the refusals raised from here (defined in errors.py); callers may name them through this module
    "EmailNotVerified",
    "GoogleNotConfigured",
    "InvalidCredentials",
    "PasswordRejected",
    "SignupRejected",
]

USERNAME_RE = re.compile(r"^[\w.@+-]+$")

NOT_AN_ADDRESS = "A valid email address is required."


@dataclass(frozen=True)
class SignedIn:
    user: User
    access: str
    refresh_token: str
    created: bool = False


def _publish_registered(*, session: Session, user: User) -> None:
    assert user.id is not None
    assert user.email is not None
    add_event(
        session,
        UserRegistered(
            user_id=user.id, display_name=user.display_name, email=user.email, email_verified=user.email_verified
        ),
    )


def _publish_updated(*, session: Session, user: User) -> None:
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


def _sign_in(*, session: Session, components: AuthComponents, user: User, created: bool = False) -> SignedIn:
    assert user.id is not None
    refresh_token = sessions.start_session(session=session, user_id=user.id, policy=components.sessions)
    access = components.tokens.issue(user.id)
    return SignedIn(user=user, access=access, refresh_token=refresh_token, created=created)


def _email_for_lookup(email: str) -> str:
    """The normal form of an address typed into a form; 400 with the contract's message when it is none."""
    try:
        return normalize_email(email or "")
    except InvalidEmail as exc:
        raise BadRequest(NOT_AN_ADDRESS) from exc


def signup(
    *, session: Session, components: AuthComponents, username: str, email: str, password: str, confirm_password: str
) -> User:
    """Create an unverified account and send its verification link; raise SignupRejected on bad fields."""
    fields: dict[str, list[str]] = {}
    username = (username or "").strip()
    # The username is also the display name: it keeps to the mesh's text rule as well as to its own.
    if not username or len(username) > 150 or not USERNAME_RE.match(username) or unsafe_character(username):
        fields["username"] = ["Enter a valid username of at most 150 letters, digits and @/./+/-/_ characters."]
    try:
        email = normalize_email(email or "")
    except InvalidEmail:
        fields["email"] = ["Enter a valid email address."]
    if password != confirm_password:
        fields["non_field_errors"] = ["Passwords don't match."]
    problems = password_problems(password or "", username=username, email=email or "")
    if problems:
        fields["password"] = problems
    if not fields:
        repository.begin_read(session=session)
        if repository.find_user_by_username(session=session, username_key=username.lower()) is not None:
            fields["username"] = ["A user with that username already exists."]
        if repository.find_user_by_email(session=session, email_key=email) is not None:
            fields["email"] = ["A user with that email already exists."]
        repository.end_read(session=session)
    if fields:
        raise SignupRejected(fields)
    password_hash = components.passwords.hash(password)  # no transaction is open here
    user = User(
        username=username,
        username_key=username.lower(),
        email=email,
        email_key=email,
        display_name=username,
        password_hash=password_hash,
        email_verified=False,
        password_changed_at=utcnow(),
    )
    try:
        repository.save(session=session, row=user)
    except repository.DuplicateError as exc:  # a concurrent signup took the name or address
        raise SignupRejected({"non_field_errors": ["A user with that username or email already exists."]}) from exc
    _publish_registered(session=session, user=user)
    links.issue_link(session=session, components=components, user=user, purpose=links.VERIFY_EMAIL, new_user=True)
    return user


def login(*, session: Session, components: AuthComponents, email: str, password: str) -> SignedIn:
    """Password sign-in; every failure costs one Argon2 verification so timing reveals nothing."""
    email_key = _email_for_lookup(email)
    passwords = components.passwords
    repository.begin_read(session=session)
    found = repository.find_user_by_email(session=session, email_key=email_key)
    user_id, stored = (found.id, found.password_hash) if found is not None else (None, None)
    repository.end_read(session=session)
    unverified = found is not None and not found.email_verified
    matches = passwords.verify(stored, password or "")
    rehashed = passwords.hash(password) if matches and stored and passwords.needs_rehash(stored) else None
    if user_id is None:
        raise InvalidCredentials()
    # Counted on the bus before the write transaction begins, so no lock is held across the round trip.
    send_link = matches and unverified and components.mail_limits.allow(scope="email_verification", email=email_key)
    user = repository.get_user(session=session, user_id=user_id, lock=True)
    if user is None or not user.can_sign_in or user.password_hash != stored:
        raise InvalidCredentials()  # gone, deactivated or its password changed since we read it
    if not matches:
        user.failed_logins += 1
        user.last_failed_login_at = utcnow()
        repository.save(session=session, row=user)
        raise InvalidCredentials()
    if not user.email_verified:
        if send_link:
            links.issue_link(session=session, components=components, user=user, purpose=links.VERIFY_EMAIL)
        raise EmailNotVerified()
    if rehashed is not None:
        user.password_hash = rehashed
    user.failed_logins = 0
    repository.save(session=session, row=user)
    return _sign_in(session=session, components=components, user=user)


def request_sign_in_link(*, session: Session, components: AuthComponents, email: str) -> None:
    """Queue a sign-in link if the address has an account that can sign in; silent either way (and when limited)."""
    email_key = _email_for_lookup(email)
    if not components.mail_limits.allow(scope="password_reset", email=email_key):
        return
    user = repository.find_user_by_email(session=session, email_key=email_key)
    if user is not None and user.can_sign_in:
        links.issue_link(session=session, components=components, user=user, purpose=links.SIGN_IN)


def _take_over_unverified(*, session: Session, user: User) -> None:
    """D12: whoever pre-registered this address never proved control of it; their password and sessions go."""
    assert user.id is not None
    user.password_hash = None
    user.password_changed_at = utcnow()
    sessions.revoke_all(session=session, user_id=user.id, reason="email_proven")
    repository.invalidate_magic_links(session=session, user_id=user.id, now=utcnow())


def _mark_verified(*, session: Session, user: User) -> None:
    user.email_verified = True
    user.updated_at = utcnow()
    repository.save(session=session, row=user)
    _publish_updated(session=session, user=user)


def consume_link(*, session: Session, components: AuthComponents, token: str) -> SignedIn:
    """Sign in with a magic link; the first use verifies (and if need be activates) the account."""
    link, user = links.redeem_link(session=session, token=token, purposes=links.SIGN_IN_PURPOSES)
    if not user.email_verified:
        if link.purpose == links.SIGN_IN:
            _take_over_unverified(session=session, user=user)
        _mark_verified(session=session, user=user)
    return _sign_in(session=session, components=components, user=user)


def verify_email(*, session: Session, components: AuthComponents, token: str) -> SignedIn:
    """Consume a verification link only (the original's verify-email route); signs in like the magic page."""
    _, user = links.redeem_link(session=session, token=token, purposes=(links.VERIFY_EMAIL,))
    if not user.email_verified:
        _mark_verified(session=session, user=user)
    return _sign_in(session=session, components=components, user=user)


def resend_verification(*, session: Session, components: AuthComponents, email: str) -> None:
    """A new verification link for an unverified account; nothing (and no hint) otherwise."""
    email_key = _email_for_lookup(email)
    if not components.mail_limits.allow(scope="email_verification", email=email_key):
        return
    user = repository.find_user_by_email(session=session, email_key=email_key)
    if user is not None and user.can_sign_in and not user.email_verified:
        links.issue_link(session=session, components=components, user=user, purpose=links.VERIFY_EMAIL)


def _new_username(*, session: Session) -> str:
    for _ in range(20):
        name = generated_display_name()
        if repository.find_user_by_username(session=session, username_key=name.lower()) is None:
            return name
    return f"Pawgler{secrets.token_hex(6)}"


def google_sign_in(
    *, session: Session, components: AuthComponents, credential: str | None, id_token: str | None = None
) -> SignedIn:
    """Sign in (or up) with a Google ID token, linking it to the account with the same address."""
    if components.google is None:
        raise GoogleNotConfigured()
    credential = (credential or id_token or "").strip()
    if not credential:
        raise BadRequest("Missing Google credential.")
    identity = components.google.verify(credential)  # before any query: it may fetch Google's keys
    try:
        email = normalize_email(identity.email)
    except InvalidEmail as exc:
        raise GoogleTokenError("the token's e-mail is not an address we accept") from exc
    linked = repository.find_identity(session=session, provider="google", subject=identity.subject)
    if linked is not None:
        user = repository.get_user(session=session, user_id=linked.user_id)
        if user is None or not user.can_sign_in:
            raise GoogleTokenError("the linked account cannot sign in")
        return _sign_in(session=session, components=components, user=user)
    user = repository.find_user_by_email(session=session, email_key=email)
    created = user is None
    if user is None:
        name = _new_username(session=session)
        user = User(
            username=name,
            username_key=name.lower(),
            email=email,
            email_key=email,
            display_name=name,
            email_verified=True,
        )
        repository.save(session=session, row=user)
        _publish_registered(session=session, user=user)
    elif not user.can_sign_in:
        raise GoogleTokenError("the account cannot sign in")
    elif not user.email_verified:
        _take_over_unverified(session=session, user=user)
        _mark_verified(session=session, user=user)
    assert user.id is not None
    try:
        repository.save(session=session, row=Identity(provider="google", subject=identity.subject, user_id=user.id))
    except repository.DuplicateError as exc:  # two first sign-ins at once: the other one linked it
        raise GoogleTokenError("linked concurrently") from exc
    return _sign_in(session=session, components=components, user=user, created=created)


def request_password_reset(*, session: Session, components: AuthComponents, email: str) -> None:
    """Queue a reset link if the address has an account that can sign in; silent either way (and when limited)."""
    email_key = _email_for_lookup(email)
    if not components.mail_limits.allow(scope="password_reset", email=email_key):
        return
    user = repository.find_user_by_email(session=session, email_key=email_key)
    if user is not None and user.can_sign_in:
        links.issue_link(session=session, components=components, user=user, purpose=links.PASSWORD_RESET)


def reset_password(*, session: Session, components: AuthComponents, token: str, new_password: str) -> User:
    """Set a new password from a reset link; every session and outstanding link of the user ends."""
    repository.begin_read(session=session)
    _, user = links.find_usable_link(session=session, token=token, purposes=(links.PASSWORD_RESET,))
    problems = password_problems(new_password or "", username=user.username, email=user.email or "")
    repository.end_read(session=session)
    if problems:
        raise PasswordRejected(problems)
    password_hash = components.passwords.hash(new_password)  # no transaction is open here
    _, user = links.redeem_link(session=session, token=token, purposes=(links.PASSWORD_RESET,))
    set_password_hash(session=session, user=user, password_hash=password_hash)
    if not user.email_verified:  # the reset link proved control of the address
        _mark_verified(session=session, user=user)
    return user


def set_password_hash(*, session: Session, user: User, password_hash: str) -> None:
    """Store a new password hash (made beforehand, outside the transaction) and end every session and link."""
    assert user.id is not None
    user.password_hash = password_hash
    user.password_changed_at = user.updated_at = utcnow()
    user.failed_logins = 0
    repository.save(session=session, row=user)
    sessions.revoke_all(session=session, user_id=user.id, reason="password_changed")
    repository.invalidate_magic_links(session=session, user_id=user.id, now=utcnow())


def set_active(*, session: Session, user_id: int, active: bool) -> User | None:
    """Deactivate (revoking every session) or reactivate an account."""
    user = repository.get_user(session=session, user_id=user_id)
    if user is None or user.deleted_at is not None or user.is_active == active:
        return user
    user.is_active = active
    user.updated_at = utcnow()
    repository.save(session=session, row=user)
    if not active:
        sessions.revoke_all(session=session, user_id=user_id, reason="deactivated")
        repository.invalidate_magic_links(session=session, user_id=user_id, now=utcnow())
    _publish_updated(session=session, user=user)
    return user


def delete_account(*, session: Session, user_id: int) -> None:
    """Erase the account's personal data (a tombstone keeps the id unused) and tell every service."""
    user = repository.get_user(session=session, user_id=user_id)
    if user is None or user.deleted_at is not None:
        raise Unauthorized("User not found or no longer active.")
    now = utcnow()
    user.username = user.username_key = user.display_name = f"deleted-{user_id}"
    user.email = user.email_key = user.password_hash = None
    user.is_active = False
    user.deleted_at = user.updated_at = now
    repository.save(session=session, row=user)
    sessions.revoke_all(session=session, user_id=user_id, reason="deleted")
    repository.invalidate_magic_links(session=session, user_id=user_id, now=now)
    repository.delete_identities(session=session, user_id=user_id)
    add_event(session, UserDeleted(user_id=user_id))
    log.info("account deleted", extra={"user_id": user_id})


def refresh(*, session: Session, components: AuthComponents, token: str | None) -> SignedIn:
    """A new access token and the rotated refresh token from the cookie's; InvalidRefreshToken (401) otherwise."""
    refreshed = sessions.rotate(session=session, token=token, policy=components.sessions)
    user = repository.get_user(session=session, user_id=refreshed.user_id)
    assert user is not None  # rotate checked that the user can sign in
    return SignedIn(user=user, access=components.tokens.issue(refreshed.user_id), refresh_token=refreshed.token)


def logout(*, session: Session, token: str | None) -> None:
    """Revoke the refresh-token family of the cookie's token (nothing when there is none)."""
    sessions.end_session(session=session, token=token)


def purge_expired(*, session: Session) -> int:
    """Delete refresh tokens whose family has ended and links expired more than a day ago."""
    now = utcnow()
    removed = repository.delete_expired_tokens(session=session, now=now)
    return removed + repository.delete_expired_links(session=session, before=now - timedelta(days=1))


def count_users(*, session: Session) -> int:
    """How many accounts can sign in."""
    return repository.count_users(session=session)
