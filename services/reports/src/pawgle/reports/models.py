"""The reports service's tables: reports, and the projections of pets and conversations it shows them with."""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import BigInteger, Boolean, Column, Date, Double, Index, Integer, String, Text, Time, event
from sqlmodel import Field, SQLModel

from pawgle.common.db import NEVER_REUSE_IDS, BigId, PreciseDateTime, utcnow
from pawgle.reports.grid import cell_of


class Report(SQLModel, table=True):
    """A lost or found report on the map, with the user who filed it (contract D10)."""

    __tablename__ = "reports"
    __table_args__ = (
        # The map lists: not expired, newest first, read in index order (the status is checked on the way:
        # with the status first in the index, SQLite would sort every active report for each page).
        Index("ix_reports_list", "expired_at", "reported_at", "id"),
        # Bounding boxes search the public position (what every viewer may see), never the exact one: by
        # the cells a box touches, answered from this index alone (see grid.py and listcache.py).
        Index(
            "ix_reports_map_cell",
            "map_cell",
            "map_lat",
            "map_lon",
            "status",
            "expired_at",
            "reported_at",
            "id",
            "reporter_id",
            "pet_owner_id",
        ),
        Index("ix_reports_due", "expired_at", "expires_at"),
        # A report's id is in chat links, notifications and other services: never handed out again.
        NEVER_REUSE_IDS,
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    reporter_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    status: str = Field(sa_column=Column(String(8), nullable=False))
    # Double precision: MySQL's FLOAT keeps about 7 digits, metres off at this scale.
    latitude: float = Field(sa_column=Column(Double, nullable=False))
    longitude: float = Field(sa_column=Column(Double, nullable=False))
    # Where the public sees it: the exact point for found reports, the centre of its grid cell for lost ones.
    map_lat: float = Field(sa_column=Column(Double, nullable=False))
    map_lon: float = Field(sa_column=Column(Double, nullable=False))
    # The grid cell of the public position (grid.py), kept in step by the mapper hooks below.
    map_cell: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    animal_name: str = Field(sa_column=Column(String(100), nullable=False))
    type: str = Field(sa_column=Column(String(100), nullable=False))
    breed: str = Field(sa_column=Column(String(100), nullable=False))
    category: str = Field(sa_column=Column(String(16), nullable=False))
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    contact_name: str = Field(default="", sa_column=Column(String(100), nullable=False))
    contact_phone: str = Field(default="", sa_column=Column(String(40), nullable=False))
    contact_email: str = Field(default="", sa_column=Column(String(320), nullable=False))
    last_seen_date: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    last_seen_time: time | None = Field(default=None, sa_column=Column(Time, nullable=True))
    image_key: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    # When the photo last changed (null: as filed); an embedding verdict older than this is about a
    # photo the report no longer has.
    photo_changed_at: datetime | None = Field(default=None, sa_column=Column(PreciseDateTime, nullable=True))
    feature_status: str = Field(default="pending", sa_column=Column(String(16), nullable=False))
    is_test: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    # The linked pet (owned by the pets service) and what its pet.* events say about it.
    pet_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True, index=True))
    pet_owner_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True, index=True))
    pet_name: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    pet_type: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    pet_breed: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    pet_category: str | None = Field(default=None, sa_column=Column(String(16), nullable=True))
    # Waiting for the pets service to link (or create) the reporter's pet of this name, type and breed.
    wants_pet: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    # Set on reports a partner organisation pushed (see partners.py).
    partner_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    reported_at: datetime = Field(default_factory=utcnow, sa_column=Column(PreciseDateTime, nullable=False))
    resolved_at: datetime | None = Field(default=None, sa_column=Column(PreciseDateTime, nullable=True))
    expires_at: datetime = Field(sa_column=Column(PreciseDateTime, nullable=False))
    expiring_sent_at: datetime | None = Field(default=None, sa_column=Column(PreciseDateTime, nullable=True))
    expired_at: datetime | None = Field(default=None, sa_column=Column(PreciseDateTime, nullable=True))


@event.listens_for(Report, "before_insert")
@event.listens_for(Report, "before_update")
def _place_in_cell(_mapper: object, _connection: object, report: Report) -> None:
    report.map_cell = cell_of(report.map_lat, report.map_lon)


class ListVersion(SQLModel, table=True):
    """One row counting committed changes to reports: each process's cached map lists are valid while it
    stays the same (listcache.py bumps it in every transaction that changes a report)."""

    __tablename__ = "reports_list_version"

    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    version: int = Field(sa_column=Column(BigInteger, nullable=False))


class KnownPet(SQLModel, table=True):
    """Projection of pet.* events: the pets a report may link to, and the names shown on linked reports."""

    __tablename__ = "reports_known_pets"
    __table_args__ = (Index("ix_reports_known_pets_match", "owner_id", "name", "type", "breed"),)

    pet_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    owner_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    name: str = Field(sa_column=Column(String(100), nullable=False))
    type: str = Field(sa_column=Column(String(100), nullable=False))
    breed: str = Field(sa_column=Column(String(100), nullable=False))
    category: str = Field(sa_column=Column(String(16), nullable=False))
    deleted: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(PreciseDateTime, nullable=False))


class ReportViewer(SQLModel, table=True):
    """Projection of conversation.opened: a participant of a conversation about a report sees its exact place."""

    __tablename__ = "reports_viewers"

    user_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    report_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False, index=True))


class Partner(SQLModel, table=True):
    """A shelter or rescue group that pushes found animals with an API key an operator issued."""

    __tablename__ = "reports_partners"
    __table_args__ = (NEVER_REUSE_IDS,)

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    name: str = Field(sa_column=Column(String(100), nullable=False))
    # The organisation's PawGle account: the reporter of its reports, who answers chats about them.
    user_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    key_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    # Hosts (host or host:port, comma-separated) its photo URLs may point at; nothing else is fetched.
    photo_hosts: str = Field(default="", sa_column=Column(Text, nullable=False))
    revoked: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(PreciseDateTime, nullable=False))


class PartnerRow(SQLModel, table=True):
    """Which report a partner's row became: re-sending a feed updates it instead of duplicating it."""

    __tablename__ = "reports_partner_rows"

    partner_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    external_id: str = Field(sa_column=Column(String(100), primary_key=True))
    report_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    photo_url: str = Field(default="", sa_column=Column(Text, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(PreciseDateTime, nullable=False))
