"""Tables of the auth service: users, refresh-token families, magic links and external identities."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Integer, String, UniqueConstraint
from sqlalchemy.dialects import mysql
from sqlmodel import Field, SQLModel

_ID = BigInteger().with_variant(Integer(), "sqlite")
# MySQL's DATETIME drops fractions of a second unless told otherwise; rotation grace windows, link expiry
# and the order of sign-ins compare these values, so keep microseconds everywhere (SQLite keeps them anyway).
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")


def utcnow() -> datetime:
    """Naive UTC, as stored in every DATETIME column (MySQL keeps no zone)."""
    return datetime.now(UTC).replace(tzinfo=None)


class User(SQLModel, table=True):
    """An account. A deleted account stays as a tombstone without personal data, so its id is never reused."""

    __tablename__ = "auth_users"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, sa_column=Column(_ID, primary_key=True, autoincrement=True))
    username: str = Field(sa_column=Column(String(150), nullable=False))
    username_key: str = Field(sa_column=Column(String(150), nullable=False, unique=True))
    email: str | None = Field(default=None, sa_column=Column(String(254), nullable=True))
    email_key: str | None = Field(default=None, sa_column=Column(String(254), nullable=True, unique=True))
    display_name: str = Field(sa_column=Column(String(150), nullable=False))
    password_hash: str | None = Field(default=None, sa_column=Column(String(255), nullable=True))
    email_verified: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    is_active: bool = Field(default=True, sa_column=Column(Boolean, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(Timestamp, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(Timestamp, nullable=False))
    password_changed_at: datetime | None = Field(default=None, sa_column=Column(Timestamp, nullable=True))
    deleted_at: datetime | None = Field(default=None, sa_column=Column(Timestamp, nullable=True))
    # Wrong passwords since the last successful sign-in, kept even though the login fails (an operator's
    # view of guessing against one account; the throttles are what stop it).
    failed_logins: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    last_failed_login_at: datetime | None = Field(default=None, sa_column=Column(Timestamp, nullable=True))

    @property
    def can_sign_in(self) -> bool:
        return self.is_active and self.deleted_at is None


class RefreshToken(SQLModel, table=True):
    """One refresh token (only its SHA-256 is kept); tokens rotated from one sign-in share a family."""

    __tablename__ = "auth_refresh_tokens"

    id: int | None = Field(default=None, sa_column=Column(_ID, primary_key=True, autoincrement=True))
    token_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    family_id: str = Field(sa_column=Column(String(32), nullable=False, index=True))
    user_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(Timestamp, nullable=False))
    expires_at: datetime = Field(sa_column=Column(Timestamp, nullable=False))
    family_expires_at: datetime = Field(sa_column=Column(Timestamp, nullable=False))
    rotated_at: datetime | None = Field(default=None, sa_column=Column(Timestamp, nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(Timestamp, nullable=True))
    revoked_reason: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))


class MagicLink(SQLModel, table=True):
    """A one-time link (sign-in, e-mail verification or password reset); only its SHA-256 is kept."""

    __tablename__ = "auth_magic_links"

    id: int | None = Field(default=None, sa_column=Column(_ID, primary_key=True, autoincrement=True))
    token_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    user_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    purpose: str = Field(sa_column=Column(String(20), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(Timestamp, nullable=False))
    expires_at: datetime = Field(sa_column=Column(Timestamp, nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(Timestamp, nullable=True))
    invalidated_at: datetime | None = Field(default=None, sa_column=Column(Timestamp, nullable=True))


class Identity(SQLModel, table=True):
    """An external sign-in (Google's `sub`) linked to a user."""

    __tablename__ = "auth_identities"
    __table_args__ = (UniqueConstraint("provider", "subject", name="uq_auth_identities_provider_subject"),)

    id: int | None = Field(default=None, sa_column=Column(_ID, primary_key=True, autoincrement=True))
    provider: str = Field(sa_column=Column(String(20), nullable=False))
    subject: str = Field(sa_column=Column(String(255), nullable=False))
    user_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(Timestamp, nullable=False))
