"""The notifier's tables: alert areas and their grid cells, notifications, projections and the e-mail log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Column, Float, Index, Integer, String, Text
from sqlmodel import Field, SQLModel

from pawgle.common.db import NEVER_REUSE_IDS, BigId, PreciseDateTime, utcnow


class AlertArea(SQLModel, table=True):
    """A circle on the map a user watches for new lost or found reports."""

    __tablename__ = "alert_areas"
    # A deleted area's id is never given to a new one: notifications and links point at ids.
    __table_args__ = (NEVER_REUSE_IDS,)

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    user_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    label: str = Field(default="", sa_column=Column(String(64), nullable=False))
    center_lat: float = Field(sa_column=Column(Float, nullable=False))
    center_lon: float = Field(sa_column=Column(Float, nullable=False))
    radius_km: float = Field(sa_column=Column(Float, nullable=False))
    status_filter: str = Field(default="", sa_column=Column(String(8), nullable=False))
    is_active: bool = Field(default=True, sa_column=Column(Boolean, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(PreciseDateTime, nullable=False))


class AlertAreaCell(SQLModel, table=True):
    """One grid cell an alert area's bounding box touches: the spatial index (see geo.py)."""

    __tablename__ = "alert_area_cells"

    cell: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    alert_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False, index=True))


class Notification(SQLModel, table=True):
    """An in-app notification; `dedupe_key` makes a replayed event create no second one."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_read", "user_id", "is_read"), NEVER_REUSE_IDS)

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    user_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    verb: str = Field(sa_column=Column(String(200), nullable=False))
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    target_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    target_name: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    is_read: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(PreciseDateTime, nullable=False))
    dedupe_key: str = Field(sa_column=Column(String(100), nullable=False, unique=True))


class Contact(SQLModel, table=True):
    """Projection of user.* events: the address the notifier writes to."""

    __tablename__ = "notifier_contacts"

    user_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    email: str = Field(sa_column=Column(String(320), nullable=False))
    display_name: str = Field(default="", sa_column=Column(String(150), nullable=False))
    email_verified: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    is_active: bool = Field(default=True, sa_column=Column(Boolean, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(PreciseDateTime, nullable=False))


class PetName(SQLModel, table=True):
    """Projection of pet.* events: the name shown in embedding notifications."""

    __tablename__ = "notifier_pet_names"

    pet_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    owner_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    name: str = Field(sa_column=Column(String(200), nullable=False))


class MatchMail(SQLModel, table=True):
    """Joins match.found (who, which pet) with conversation.opened (the chat link) for the match e-mail."""

    __tablename__ = "notifier_match_mail"

    match_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    lost_user_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True, index=True))
    name: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    found_event_id: str | None = Field(default=None, sa_column=Column(String(26), nullable=True))
    conversation_id: str | None = Field(default=None, sa_column=Column(String(36), nullable=True))
    mailed: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))


class ChatEmailPaging(SQLModel, table=True):
    """When a recipient was last paged by e-mail about a conversation, and last read it.

    One e-mail per 15 minutes while messages stay unread: a recipient who read the conversation after the
    last page is paged again by the next message.
    """

    __tablename__ = "notifier_chat_pages"

    conversation_id: str = Field(sa_column=Column(String(36), primary_key=True))
    user_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False, index=True))
    last_paged_at: datetime | None = Field(default=None, sa_column=Column(PreciseDateTime, nullable=True))
    last_read_at: datetime | None = Field(default=None, sa_column=Column(PreciseDateTime, nullable=True))


class ReplyToken(SQLModel, table=True):
    """A per-party reply address token (stored hashed): who may post into which conversation by e-mail."""

    __tablename__ = "notifier_reply_tokens"

    token_hash: str = Field(sa_column=Column(String(64), primary_key=True))
    conversation_id: str = Field(sa_column=Column(String(36), nullable=False))
    user_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    expires_at: datetime = Field(sa_column=Column(PreciseDateTime, nullable=False))


class EmailMessage(SQLModel, table=True):
    """The e-mail outbox and log: written in the handler's transaction, delivered by the background sender."""

    __tablename__ = "email_log"
    __table_args__ = (Index("ix_email_log_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    dedupe_key: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    kind: str = Field(sa_column=Column(String(32), nullable=False))
    user_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True, index=True))
    to_address: str = Field(sa_column=Column(String(320), nullable=False))
    reply_to: str | None = Field(default=None, sa_column=Column(String(320), nullable=True))
    subject: str = Field(sa_column=Column(String(200), nullable=False))
    text_body: str = Field(sa_column=Column(Text, nullable=False))
    html_body: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending", sa_column=Column(String(16), nullable=False))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_column=Column(PreciseDateTime, nullable=False))
    lease_owner: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    lease_until: datetime | None = Field(default=None, sa_column=Column(PreciseDateTime, nullable=True))
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    provider_id: str | None = Field(default=None, sa_column=Column(String(120), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(PreciseDateTime, nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=Column(PreciseDateTime, nullable=True))
