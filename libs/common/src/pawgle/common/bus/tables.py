"""The bus's tables, present in every service's database (each service's first migration creates them)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, String, Text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class OutboxEvent(SQLModel, table=True):
    """An event written in the same transaction as the change it announces, until the relay publishes it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "published_at", "lease_until"),)

    seq: int | None = Field(
        default=None, sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    )
    event_id: str = Field(sa_column=Column(String(26), unique=True, nullable=False))
    subject: str = Field(sa_column=Column(String(120), nullable=False))
    payload: str = Field(sa_column=Column(Text, nullable=False))
    headers: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime, nullable=False))
    published_at: datetime | None = Field(default=None, sa_column=Column(DateTime, nullable=True))
    lease_owner: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    lease_until: datetime | None = Field(default=None, sa_column=Column(DateTime, nullable=True))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))


class InboxEntry(SQLModel, table=True):
    """An event a consumer has handled, written in the handler's own transaction."""

    __tablename__ = "inbox"

    consumer: str = Field(sa_column=Column(String(120), primary_key=True))
    event_id: str = Field(sa_column=Column(String(26), primary_key=True))
    handled_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime, nullable=False))


class DeadLetter(SQLModel, table=True):
    """An event a consumer gave up on after its maximum deliveries, parked for an operator."""

    __tablename__ = "dead_letters"
    __table_args__ = (Index("ix_dead_letters_open", "consumer", "resolved_at"),)

    id: int | None = Field(default=None, primary_key=True)
    consumer: str = Field(sa_column=Column(String(120), nullable=False))
    event_id: str | None = Field(default=None, sa_column=Column(String(26), nullable=True))
    subject: str = Field(sa_column=Column(String(120), nullable=False))
    stream_seq: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    payload: str = Field(sa_column=Column(Text, nullable=False))
    error: str = Field(sa_column=Column(Text, nullable=False))
    deliveries: int = Field(default=0)
    parked_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime, nullable=False))
    resolved_at: datetime | None = Field(default=None, sa_column=Column(DateTime, nullable=True))
    resolution: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))
