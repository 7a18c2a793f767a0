"""The pets service's tables: pets, their photos, the owner projection, edited images, blobs to delete."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, String, Text
from sqlmodel import Field, SQLModel

from pawgle.common.db import NEVER_REUSE_IDS, BigId, PreciseDateTime, utcnow


class Pet(SQLModel, table=True):
    """A registered pet. `deleted_at` set: soft-deleted, hidden from every read, restorable until purged."""

    __tablename__ = "pets"
    # Reports, notifications and vectors point at pet ids: a purged pet's id is never handed out again.
    __table_args__ = (
        Index("ix_pets_owner_deleted", "owner_id", "deleted_at"),
        Index("ix_pets_public", "is_public", "deleted_at"),
        NEVER_REUSE_IDS,
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    owner_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    # The printed QR tag's id (contract D5): random, unique, kept for the pet's whole life (D6).
    animal_id: str = Field(sa_column=Column(String(32), nullable=False, unique=True))
    name: str = Field(sa_column=Column(String(100), nullable=False))
    type: str = Field(sa_column=Column(String(100), nullable=False))
    breed: str = Field(sa_column=Column(String(100), nullable=False))
    category: str = Field(sa_column=Column(String(16), nullable=False))
    is_public: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    # JSON object; always read back with weight, height and subNotes filled in (schemas.additional_info).
    additional_info: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    feature_status: str = Field(default="pending", sa_column=Column(String(16), nullable=False))
    registered_at: datetime = Field(default_factory=utcnow, sa_column=Column(PreciseDateTime, nullable=False))
    # When the photo set last changed: an embedding verdict older than this is about photos no longer shown.
    photos_changed_at: datetime = Field(default_factory=utcnow, sa_column=Column(PreciseDateTime, nullable=False))
    deleted_at: datetime | None = Field(default=None, sa_column=Column(PreciseDateTime, nullable=True))


class PetPhoto(SQLModel, table=True):
    """One stored photo of a pet, in display order; `owner_id` answers "is this key the caller's" (D7)."""

    __tablename__ = "pet_photos"
    __table_args__ = (Index("ix_pet_photos_pet_position", "pet_id", "position"),)

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    pet_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    owner_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    key: str = Field(sa_column=Column(String(200), nullable=False, unique=True))
    thumbnail_key: str = Field(sa_column=Column(String(200), nullable=False))
    position: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(PreciseDateTime, nullable=False))


class Owner(SQLModel, table=True):
    """Projection of user.* events: what the profile page shows about its owner.

    A deleted user stays as a tombstone (`deleted`), so a late user.updated cannot bring the data back.
    """

    __tablename__ = "pet_owners"

    user_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    username: str = Field(default="", sa_column=Column(String(150), nullable=False))
    email: str = Field(default="", sa_column=Column(String(320), nullable=False))
    deleted: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    # occurred_at of the event the row reflects: an older event arriving late changes nothing.
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(PreciseDateTime, nullable=False))


class EditedImage(SQLModel, table=True):
    """A picture saved from the web app's fun page (E1, E2) with the editor's metadata."""

    __tablename__ = "edited_pet_images"
    __table_args__ = (Index("ix_edited_pet_images_owner", "owner_id", "created_at"), NEVER_REUSE_IDS)

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    owner_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    image_key: str = Field(sa_column=Column(String(200), nullable=False))
    edit_metadata: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(PreciseDateTime, nullable=False))


class BlobDeletion(SQLModel, table=True):
    """A stored photo to remove, queued in the transaction that let go of it and removed after commit.

    So a photo is never deleted by a transaction that then rolls back, and never forgotten by one that
    committed just before a crash.
    """

    __tablename__ = "pet_blob_deletions"

    key: str = Field(sa_column=Column(String(200), primary_key=True))
    queued_at: datetime = Field(default_factory=utcnow, sa_column=Column(PreciseDateTime, nullable=False))
