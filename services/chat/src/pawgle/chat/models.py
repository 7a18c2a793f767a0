"""The chat's tables: conversations, participants, messages, attachments and projections of other services."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Column, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from pawgle.common.db import NEVER_REUSE_IDS, BigId, PreciseDateTime, utcnow


class ReportCard(SQLModel, table=True):
    """Projection of report.* events: who filed a report and which pet it links (for C2 and L7)."""

    __tablename__ = "chat_reports"

    report_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    reporter_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    status: str = Field(sa_column=Column(String(16), nullable=False))
    animal_name: str = Field(default="", sa_column=Column(String(200), nullable=False))
    type: str = Field(default="", sa_column=Column(String(64), nullable=False))
    pet_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    pet_owner_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    image_key: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))


class PetCard(SQLModel, table=True):
    """Projection of pet.* events: a pet's owner, name and first photo."""

    __tablename__ = "chat_pets"

    pet_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    owner_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    name: str = Field(default="", sa_column=Column(String(200), nullable=False))
    image_key: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))


class UserName(SQLModel, table=True):
    """Projection of user.* events: the display name shown beside a user's messages (never an e-mail)."""

    __tablename__ = "chat_users"

    user_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    display_name: str = Field(sa_column=Column(String(200), nullable=False))
    deleted: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))


class Conversation(SQLModel, table=True):
    """A private conversation about one report; `starter_id` makes C2 idempotent, `match_id` match.found."""

    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("report_id", "starter_id", name="uq_conversations_report_starter"),
        UniqueConstraint("match_id", name="uq_conversations_match"),
        Index("ix_conversations_last_message", "last_message_at"),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    report_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    starter_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    match_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    is_test: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(PreciseDateTime, nullable=False))
    last_message_at: datetime | None = Field(default=None, sa_column=Column(PreciseDateTime, nullable=True))
    last_message_preview: str | None = Field(default=None, sa_column=Column(String(120), nullable=True))


class Participant(SQLModel, table=True):
    """A user who may read and write a conversation."""

    __tablename__ = "conversation_participants"

    conversation_id: str = Field(sa_column=Column(String(36), primary_key=True))
    user_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False, index=True))


class Message(SQLModel, table=True):
    """One message; `sender_id` is null for system messages and after the sender's account was deleted."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_conversation_created", "conversation_id", "created_at"),)

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    conversation_id: str = Field(sa_column=Column(String(36), nullable=False))
    sender_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True, index=True))
    sender_name: str = Field(default="", sa_column=Column(String(200), nullable=False))
    body: str = Field(default="", sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(PreciseDateTime, nullable=False))
    read_at: datetime | None = Field(default=None, sa_column=Column(PreciseDateTime, nullable=True))


class Attachment(SQLModel, table=True):
    """A photo attached to a message, stored by the shared photo pipeline under `key`."""

    __tablename__ = "message_attachments"
    __table_args__ = (NEVER_REUSE_IDS,)

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    message_id: str = Field(sa_column=Column(String(36), nullable=False, index=True))
    key: str = Field(sa_column=Column(String(200), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(PreciseDateTime, nullable=False))


class ContactOffer(SQLModel, table=True):
    """One participant's own consent to share their contact text in one conversation (never set by others)."""

    __tablename__ = "conversation_contact_offers"

    conversation_id: str = Field(sa_column=Column(String(36), primary_key=True))
    user_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    contact: str = Field(sa_column=Column(String(200), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(PreciseDateTime, nullable=False))


class ConversationMatch(SQLModel, table=True):
    """A match.found already handled, and the conversation it opened or joined (redelivery creates nothing)."""

    __tablename__ = "conversation_matches"

    match_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    conversation_id: str = Field(sa_column=Column(String(36), nullable=False, index=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(PreciseDateTime, nullable=False))


class TrailConversation(SQLModel, table=True):
    """The one conversation of a sighting trail with one lost side (`pet:<id>`, `report:<id>` or `user:<id>`)."""

    __tablename__ = "trail_conversations"

    trail_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    lost_side: str = Field(sa_column=Column(String(40), primary_key=True))
    conversation_id: str = Field(sa_column=Column(String(36), nullable=False))
