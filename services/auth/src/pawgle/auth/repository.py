"""Every query of the auth service. Like the service functions, each takes keyword arguments only."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import delete, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, select

from pawgle.auth.models import Identity, MagicLink, RefreshToken, User
from pawgle.common import db

T = TypeVar("T", bound=SQLModel)


class DuplicateError(Exception):
    """A unique column already holds this value."""


def begin_read(*, session: Session) -> None:
    """Begin the session's transaction as a read, which on SQLite takes no write lock (call it first).

    Used before slow work that needs stored data (verifying a password against its hash): the reads
    happen here, `end_read` closes the transaction, and the writes that follow begin a new, short one.
    """
    if not session.in_transaction():
        session.connection(execution_options={"sqlite_begin": "DEFERRED"})


def end_read(*, session: Session) -> None:
    """End a transaction that only read; the next query begins a new (writing) one."""
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("end_read called with pending writes")
    session.commit()


def save(*, session: Session, row: T) -> T:
    """Insert or update a row and flush (`pawgle.common.db.save`); a unique violation is a DuplicateError."""
    try:
        return db.save(session, row)
    except IntegrityError as exc:
        raise DuplicateError(str(exc.orig)) from exc


def get_user(*, session: Session, user_id: int, lock: bool = False) -> User | None:
    """The user by id; with `lock`, read afresh from the database and locked until commit (on MySQL)."""
    if lock:
        return session.get(User, user_id, populate_existing=True, with_for_update=True)
    return session.get(User, user_id)


def find_user_by_email(*, session: Session, email_key: str) -> User | None:
    return session.exec(select(User).where(User.email_key == email_key)).first()


def find_user_by_username(*, session: Session, username_key: str) -> User | None:
    return session.exec(select(User).where(User.username_key == username_key)).first()


def count_users(*, session: Session) -> int:
    """Accounts that can sign in (verified, active, not deleted)."""
    query = (
        select(func.count())
        .select_from(User)
        .where(
            User.email_verified == True,  # noqa: E712  (SQL comparison)
            User.is_active == True,  # noqa: E712
            User.deleted_at.is_(None),
        )
    )
    return int(session.exec(query).one())


def find_refresh_token(*, session: Session, token_hash: str) -> RefreshToken | None:
    return session.exec(select(RefreshToken).where(RefreshToken.token_hash == token_hash)).first()


def claim_rotation(*, session: Session, token_id: int, now: datetime) -> bool:
    """Mark a token rotated unless someone else already did; True for the one caller that won."""
    result: Any = session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == token_id, RefreshToken.rotated_at.is_(None))
        .values(rotated_at=now)
    )
    return bool(result.rowcount == 1)


def revoke_family(*, session: Session, family_id: str, reason: str, now: datetime) -> int:
    result: Any = session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )
    return int(result.rowcount)


def revoke_user_tokens(*, session: Session, user_id: int, reason: str, now: datetime) -> int:
    result: Any = session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )
    return int(result.rowcount)


def delete_expired_tokens(*, session: Session, now: datetime) -> int:
    result: Any = session.execute(delete(RefreshToken).where(RefreshToken.family_expires_at < now))
    return int(result.rowcount)


def delete_expired_links(*, session: Session, before: datetime) -> int:
    result: Any = session.execute(delete(MagicLink).where(MagicLink.expires_at < before))
    return int(result.rowcount)


def find_magic_link(*, session: Session, token_hash: str) -> MagicLink | None:
    return session.exec(select(MagicLink).where(MagicLink.token_hash == token_hash)).first()


def invalidate_magic_links(
    *, session: Session, user_id: int, now: datetime, purposes: Iterable[str] | None = None
) -> int:
    """Void every unused link of a user (of the given purposes, else all)."""
    query = update(MagicLink).where(
        MagicLink.user_id == user_id,
        MagicLink.used_at.is_(None),
        MagicLink.invalidated_at.is_(None),
    )
    if purposes is not None:
        query = query.where(MagicLink.purpose.in_(list(purposes)))
    result: Any = session.execute(query.values(invalidated_at=now))
    return int(result.rowcount)


def claim_magic_link(*, session: Session, link_id: int, now: datetime) -> bool:
    """Mark a link used unless it already was (or was voided); True for the one caller that won."""
    result: Any = session.execute(
        update(MagicLink)
        .where(
            MagicLink.id == link_id,
            MagicLink.used_at.is_(None),
            MagicLink.invalidated_at.is_(None),
        )
        .values(used_at=now)
    )
    return bool(result.rowcount == 1)


def find_identity(*, session: Session, provider: str, subject: str) -> Identity | None:
    return session.exec(select(Identity).where(Identity.provider == provider, Identity.subject == subject)).first()


def delete_identities(*, session: Session, user_id: int) -> int:
    result: Any = session.execute(delete(Identity).where(Identity.user_id == user_id))
    return int(result.rowcount)
