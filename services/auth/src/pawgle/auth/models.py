"""Tables of the auth service: users, refresh-token families, magic links and external identities."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Column, Integer, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from pawgle.common.db import NEVER_REUSE_IDS, BigId, PreciseDateTime, utcnow

__all__ = ["Identity", "MagicLink", "RefreshToken", "User", "utcnow"]


class User(SQLModel, table=True):
    """An account. A deleted account stays as a tombstone without personal data, so its id is never reused."""

    __tablename__ = "auth_users"
    __table_args__ = NEVER_REUSE_IDS

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    username: str = Field(sa_column=Column(String(150), nullable=False))
    username_key: str = Field(sa_column=Column(String(150), nullable=False, unique=True))
    email: str | None = Field(default=None, sa_column=Column(String(254), nullable=True))
    email_key: str | None = Field(default=None, sa_column=Column(String(254), nullable=True, unique=True))
    display_name: str = Field(sa_column=Column(String(150), nullable=False))
    password_hash: str | None = Field(default=None, sa_column=Column(String(255), nullable=True))
    email_verified: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    is_active: bool = Field(default=True, sa_column=Column(Boolean, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(PreciseDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(PreciseDateTime, nullable=False))
    password_changed_at: datetime | None = Field(default=None, sa_column=Column(PreciseDateTime, nullable=True))
    deleted_at: datetime | None = Field(default=None, sa_column=Column(PreciseDateTime, nullable=True))
    # Wrong passwords since the last successful sign-in, kept even though the login fails (an operator's
    # view of guessing against one account; the throttles are what stop it).
    failed_logins: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    last_failed_login_at: datetime | None = Field(default=None, sa_column=Column(PreciseDateTime, nullable=True))

    @property
    def can_sign_in(self) -> bool:
        return self.is_active and self.deleted_at is None


class RefreshToken(SQLModel, table=True):
    """One refresh token (only its SHA-256 is kept); tokens rotated from one sign-in share a family."""

    __tablename__ = "auth_refresh_tokens"

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    token_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    family_id: str = Field(sa_column=Column(String(32), nullable=False, index=True))
    user_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(PreciseDateTime, nullable=False))
    expires_at: datetime = Field(sa_column=Column(PreciseDateTime, nullable=False))
    family_expires_at: datetime = Field(sa_column=Column(PreciseDateTime, nullable=False))
    rotated_at: datetime | None = Field(default=None, sa_column=Column(PreciseDateTime, nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(PreciseDateTime, nullable=True))
    revoked_reason: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))


class MagicLink(SQLModel, table=True):
    """A one-time link (sign-in, e-mail verification or password reset); only its SHA-256 is kept."""

    __tablename__ = "auth_magic_links"

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    token_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    user_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    purpose: str = Field(sa_column=Column(String(20), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(PreciseDateTime, nullable=False))
    expires_at: datetime = Field(sa_column=Column(PreciseDateTime, nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(PreciseDateTime, nullable=True))
    invalidated_at: datetime | None = Field(default=None, sa_column=Column(PreciseDateTime, nullable=True))


class Identity(SQLModel, table=True):
    """An external sign-in (Google's `sub`) linked to a user."""

    __tablename__ = "auth_identities"
    __table_args__ = (UniqueConstraint("provider", "subject", name="uq_auth_identities_provider_subject"),)

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    provider: str = Field(sa_column=Column(String(20), nullable=False))
    subject: str = Field(sa_column=Column(String(255), nullable=False))
    user_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(PreciseDateTime, nullable=False))
