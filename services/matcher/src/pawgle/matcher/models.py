"""The matcher's tables: projections of reports and pets, sighting trails, matches, and the matching queue."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Column, Double, Float, Index, Integer, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from pawgle.common.db import NEVER_REUSE_IDS, BigId, PreciseDateTime, utcnow


class KnownReport(SQLModel, table=True):
    """A lost or found report as the matcher needs it (from report.* events): never contact data."""

    __tablename__ = "matcher_reports"

    report_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    reporter_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    # lost, found, resolved or expired
    status: str = Field(sa_column=Column(String(16), nullable=False))
    species: str = Field(default="", sa_column=Column(String(40), nullable=False))
    animal_name: str = Field(default="", sa_column=Column(String(100), nullable=False))
    type: str = Field(default="", sa_column=Column(String(100), nullable=False))
    breed: str = Field(default="", sa_column=Column(String(100), nullable=False))
    # Double precision: MySQL's FLOAT keeps about 7 digits, metres off at this scale.
    latitude: float = Field(sa_column=Column(Double, nullable=False))
    longitude: float = Field(sa_column=Column(Double, nullable=False))
    # When the animal was reported lost or found (the loss time of a lost report).
    reported_at: datetime = Field(sa_column=Column(PreciseDateTime, nullable=False))
    # When report.filed was written (match latency is measured from it).
    filed_at: datetime | None = Field(default=None, sa_column=Column(PreciseDateTime, nullable=True))
    pet_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True, index=True))
    pet_owner_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    # The model whose vector the embeddings service holds for it (report.embedded), empty before.
    model_version: str = Field(default="", sa_column=Column(String(120), nullable=False))
    trail_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True, index=True))


class KnownPet(SQLModel, table=True):
    """A registered pet (from pet.* events): owner, species, the model of its vectors."""

    __tablename__ = "matcher_pets"

    pet_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    owner_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    name: str = Field(default="", sa_column=Column(String(100), nullable=False))
    type: str = Field(default="", sa_column=Column(String(100), nullable=False))
    breed: str = Field(default="", sa_column=Column(String(100), nullable=False))
    species: str = Field(default="", sa_column=Column(String(40), nullable=False))
    model_version: str = Field(default="", sa_column=Column(String(120), nullable=False))


class Trail(SQLModel, table=True):
    """Sightings of one unknown animal: found reports alike and close in space and time (members point here)."""

    __tablename__ = "trails"
    __table_args__ = (NEVER_REUSE_IDS,)

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(PreciseDateTime, nullable=False))


class Match(SQLModel, table=True):
    """One (found report, lost side) pair, stored once forever: its status decides whether it is shown.

    The lost side is a pet (`lost_key` "pet:<id>", with its lost report when it has one) or a lost report
    of no registered pet ("report:<id>"). The unique key keeps redelivery, replays and re-matching from
    making a second row, and keeps a dismissed pair dismissed.
    """

    __tablename__ = "matches"
    __table_args__ = (
        UniqueConstraint("found_report_id", "lost_key", name="uq_matches_pair"),
        Index("ix_matches_lost_user", "lost_user_id", "status"),
        Index("ix_matches_found_reporter", "found_reporter_id", "status"),
        NEVER_REUSE_IDS,
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    found_report_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    lost_key: str = Field(sa_column=Column(String(32), nullable=False))
    pet_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True, index=True))
    lost_report_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True, index=True))
    found_reporter_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    lost_user_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    name: str = Field(default="", sa_column=Column(String(100), nullable=False))
    score: float = Field(sa_column=Column(Float, nullable=False))
    distance_km: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    model_version: str = Field(default="", sa_column=Column(String(120), nullable=False))
    # "similar" (the vectors met the threshold) or "trail" (a sighting of a trail already matched).
    via: str = Field(default="similar", sa_column=Column(String(8), nullable=False))
    trail_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True, index=True))
    # pending, confirmed or dismissed
    status: str = Field(default="pending", sa_column=Column(String(12), nullable=False))
    confirmed_by_finder: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    confirmed_by_owner: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    pet_home: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    dismissed_by: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(PreciseDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(PreciseDateTime, nullable=False))


class MatchJob(SQLModel, table=True):
    """A pet or report to match again (it was embedded, reopened, or marked lost): claimed by the worker.

    One row per subject; a newer cause bumps `generation`, so a worker that finishes an older one does
    not delete the row and the newer cause is matched too.
    """

    __tablename__ = "match_jobs"
    __table_args__ = (
        UniqueConstraint("kind", "subject_id", name="uq_match_jobs_subject"),
        Index("ix_match_jobs_due", "due_at"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    kind: str = Field(sa_column=Column(String(8), nullable=False))
    subject_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    generation: int = Field(default=1, sa_column=Column(Integer, nullable=False))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    due_at: datetime = Field(default_factory=utcnow, sa_column=Column(PreciseDateTime, nullable=False))
    last_error: str = Field(default="", sa_column=Column(String(500), nullable=False))
    lease_owner: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    lease_until: datetime | None = Field(default=None, sa_column=Column(PreciseDateTime, nullable=True))
