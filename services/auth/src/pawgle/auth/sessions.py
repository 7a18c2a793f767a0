"""Refresh-token families: opaque tokens stored hashed, rotated on use, with reuse detection and a grace window.

The frontend fires concurrent refreshes with the same cookie (two de-duplicators, several tabs), so a token
that was just rotated keeps working for `grace_s` and hands out the *same* successor (contract D13). The
successor is derived from its predecessor with an HMAC under a server secret, so it can be re-issued
without being stored in clear, and a stolen old token is no help in computing it. A rotated token used
after the grace window means two parties hold the family: the whole family is revoked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from pawgle.auth import repository
from pawgle.auth.models import RefreshToken, utcnow
from pawgle.common.errors import Unauthorized

log = logging.getLogger(__name__)

INVALID_REFRESH = "Invalid or expired refresh token."
NO_COOKIE = "No refresh token cookie."


class InvalidRefreshToken(Unauthorized):
    """The cookie's token is missing, unknown, expired, revoked, reused or its user can no longer sign in (401).

    The refusal may have revoked a family (reuse, a user who can no longer sign in): that decision is
    committed even though the request fails. The route's answer also clears the cookie.
    """

    commit_session = True

    def __init__(self, detail: str = INVALID_REFRESH) -> None:
        super().__init__(detail)


class ReuseDetected(InvalidRefreshToken):
    """A rotated token came back after the grace window: its whole family was revoked."""


@dataclass(frozen=True)
class SessionPolicy:
    secret: bytes
    ttl_s: int
    family_max_s: int
    grace_s: int


@dataclass(frozen=True)
class Refreshed:
    user_id: int
    token: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def successor_of(token: str, secret: bytes) -> str:
    digest = hmac.new(secret, b"pawgle-refresh-successor:" + token.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def start_session(*, session: Session, user_id: int, policy: SessionPolicy) -> str:
    """A new family with its first token; returns the token to put in the cookie."""
    now = utcnow()
    token = secrets.token_urlsafe(32)
    repository.save(
        session=session,
        row=RefreshToken(
            token_hash=hash_token(token),
            family_id=secrets.token_hex(16),
            user_id=user_id,
            created_at=now,
            expires_at=now + timedelta(seconds=policy.ttl_s),
            family_expires_at=now + timedelta(seconds=policy.family_max_s),
        ),
    )
    return token


def rotate(*, session: Session, token: str | None, policy: SessionPolicy, now: datetime | None = None) -> Refreshed:
    """Exchange a refresh token for its successor; raise InvalidRefreshToken when it may not be used."""
    if not token:
        raise InvalidRefreshToken(NO_COOKIE)
    now = now or utcnow()
    row = repository.find_refresh_token(session=session, token_hash=hash_token(token))
    if row is None or row.id is None or row.revoked_at is not None:
        raise InvalidRefreshToken()
    if row.expires_at <= now or row.family_expires_at <= now:
        raise InvalidRefreshToken()
    user = repository.get_user(session=session, user_id=row.user_id)
    if user is None or not user.can_sign_in:
        repository.revoke_family(session=session, family_id=row.family_id, reason="user_inactive", now=now)
        raise InvalidRefreshToken()
    successor = successor_of(token, policy.secret)
    if row.rotated_at is None and repository.claim_rotation(session=session, token_id=row.id, now=now):
        repository.save(
            session=session,
            row=RefreshToken(
                token_hash=hash_token(successor),
                family_id=row.family_id,
                user_id=row.user_id,
                created_at=now,
                expires_at=min(now + timedelta(seconds=policy.ttl_s), row.family_expires_at),
                family_expires_at=row.family_expires_at,
            ),
        )
        return Refreshed(user_id=row.user_id, token=successor)
    session.refresh(row)
    rotated_at = row.rotated_at or now
    if now - rotated_at <= timedelta(seconds=policy.grace_s):
        # A concurrent refresh with the same cookie: same successor, no alarm.
        return Refreshed(user_id=row.user_id, token=successor)
    revoked = repository.revoke_family(session=session, family_id=row.family_id, reason="reuse_detected", now=now)
    log.warning(
        "refresh token reused after rotation; family revoked", extra={"user_id": row.user_id, "revoked_tokens": revoked}
    )
    raise ReuseDetected()


def end_session(*, session: Session, token: str | None) -> None:
    """Logout: revoke the whole family of the cookie's token (a missing or unknown token is ignored)."""
    if not token:
        return
    row = repository.find_refresh_token(session=session, token_hash=hash_token(token))
    if row is not None:
        repository.revoke_family(session=session, family_id=row.family_id, reason="logout", now=utcnow())


def revoke_all(*, session: Session, user_id: int, reason: str) -> int:
    """Revoke every refresh token of a user (password change, deactivation, deletion, D12)."""
    return repository.revoke_user_tokens(session=session, user_id=user_id, reason=reason, now=utcnow())
