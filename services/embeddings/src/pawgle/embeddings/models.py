"""The embeddings service's tables: what it knows of each pet and report, and the embedding jobs queue."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, Column, Float, Index, Integer, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from pawgle.common.db import BigId, PreciseDateTime, utcnow


class Subject(SQLModel, table=True):
    """A pet or report as search results show it (the vector payloads carry no names), plus its embedding state."""

    __tablename__ = "subjects"

    kind: str = Field(sa_column=Column(String(8), primary_key=True))
    subject_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    owner_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    name: str = Field(default="", sa_column=Column(String(100), nullable=False))
    type: str = Field(default="", sa_column=Column(String(100), nullable=False))
    breed: str = Field(default="", sa_column=Column(String(100), nullable=False))
    # Pets: "active"; reports: lost, found, resolved or expired.
    status: str = Field(default="active", sa_column=Column(String(16), nullable=False))
    searchable: bool = Field(default=True, sa_column=Column(Boolean, nullable=False))
    image_keys: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    latitude: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    longitude: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    # A report's linked pet (search shows the pet, and does not repeat its report).
    pet_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True, index=True))
    # pending, processing, completed or failed (contract: the pet's feature_status).
    feature_status: str = Field(default="pending", sa_column=Column(String(12), nullable=False))
    model_key: str = Field(default="", sa_column=Column(String(120), nullable=False))
    vector_count: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(PreciseDateTime, nullable=False))


class EmbeddingJob(SQLModel, table=True):
    """Photos waiting for the model: written by a consumer, claimed and embedded by the worker, off any transaction.

    One row per pet or report: a newer event replaces the photos and bumps `generation`, so a worker that
    finishes an older generation does not settle the row.
    """

    __tablename__ = "embedding_jobs"
    __table_args__ = (
        UniqueConstraint("kind", "subject_id", name="uq_embedding_jobs_subject"),
        Index("ix_embedding_jobs_due", "due_at"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    kind: str = Field(sa_column=Column(String(8), nullable=False))
    subject_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    image_keys: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    generation: int = Field(default=1, sa_column=Column(Integer, nullable=False))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    due_at: datetime = Field(default_factory=utcnow, sa_column=Column(PreciseDateTime, nullable=False))
    last_error: str = Field(default="", sa_column=Column(String(500), nullable=False))
    lease_owner: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    lease_until: datetime | None = Field(default=None, sa_column=Column(PreciseDateTime, nullable=True))
