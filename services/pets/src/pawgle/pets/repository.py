"""Every query of the pets service."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func
from sqlalchemy.engine import Row
from sqlmodel import Session, SQLModel, col, select

from pawgle.common.db import save
from pawgle.common.workqueue import wake_after_commit
from pawgle.pets.models import BlobDeletion, EditedImage, Owner, Pet, PetPhoto

__all__ = ["save"]


def _columns(model: type[SQLModel]) -> list[Any]:
    return list(model.__table__.c)  # type: ignore[attr-defined]


# --- pets ------------------------------------------------------------------------------------------

# The profile runs these on every page load: built once with bound parameters (building a statement
# costs more CPU than SQLite needs to answer it), read as plain rows.
_OWNER_PETS = (
    select(*_columns(Pet))
    .where(Pet.owner_id == bindparam("owner_id"), col(Pet.deleted_at).is_(None))
    .order_by(col(Pet.registered_at).desc(), col(Pet.id).desc())
)
_PHOTOS_OF_PETS = (
    select(PetPhoto.pet_id, PetPhoto.key)
    .where(col(PetPhoto.pet_id).in_(bindparam("pet_ids", expanding=True)))
    .order_by(col(PetPhoto.pet_id), col(PetPhoto.position), col(PetPhoto.id))
)
# Every photo of an owner by the owner's index: an IN list of the pet ids would be re-expanded into SQL
# on each call (SQLAlchemy renders an expanding parameter per execution), a tenth of a profile's CPU.
_PHOTOS_OF_OWNER = (
    select(PetPhoto.pet_id, PetPhoto.key)
    .where(PetPhoto.owner_id == bindparam("owner_id"))
    .order_by(col(PetPhoto.pet_id), col(PetPhoto.position), col(PetPhoto.id))
)
_OWNER = select(*_columns(Owner)).where(Owner.user_id == bindparam("user_id"))


def owner_pets(session: Session, owner_id: int) -> Sequence[Row[Any]]:
    """The owner's live pets, newest first, as read-only rows."""
    # Core rows straight from the connection: the ORM layer would cost more than the query (hot path).
    return session.connection().execute(_OWNER_PETS, {"owner_id": owner_id}).all()


def photo_keys_of(session: Session, pet_ids: Sequence[int]) -> dict[int, list[str]]:
    """Each pet's photo keys in display order."""
    keys: dict[int, list[str]] = {pet_id: [] for pet_id in pet_ids}
    if pet_ids:
        for row in session.connection().execute(_PHOTOS_OF_PETS, {"pet_ids": list(pet_ids)}).all():
            keys[int(row.pet_id)].append(str(row.key))
    return keys


def owner_photo_keys(session: Session, owner_id: int, pet_ids: Sequence[int]) -> dict[int, list[str]]:
    """Like photo_keys_of for pets of one owner, in one query by the owner's index (the profile's)."""
    keys: dict[int, list[str]] = {pet_id: [] for pet_id in pet_ids}
    if pet_ids:
        for row in session.connection().execute(_PHOTOS_OF_OWNER, {"owner_id": owner_id}).all():
            photos = keys.get(int(row.pet_id))
            if photos is not None:  # a photo of a deleted pet (kept for its grace period) is not shown
                photos.append(str(row.key))
    return keys


def live_pet(session: Session, *, owner_id: int, pet_id: int) -> Pet | None:
    """One of the owner's pets that is not deleted, else None (someone else's pet is None too)."""
    pet = session.get(Pet, pet_id)
    if pet is None or pet.owner_id != owner_id or pet.deleted_at is not None:
        return None
    return pet


def live_pet_named(session: Session, *, owner_id: int, name: str, type_: str, breed: str) -> Pet | None:
    """The owner's oldest live pet with this name, type and breed (how a lost report names its pet)."""
    query = (
        select(Pet)
        .where(Pet.owner_id == owner_id, Pet.name == name, Pet.type == type_, Pet.breed == breed)
        .where(col(Pet.deleted_at).is_(None))
        .order_by(col(Pet.id))
    )
    return session.exec(query).first()


def pet_by_animal_id(session: Session, animal_id: str) -> Pet | None:
    """The live pet wearing this tag, else None."""
    return session.exec(select(Pet).where(Pet.animal_id == animal_id, col(Pet.deleted_at).is_(None))).first()


def animal_id_taken(session: Session, animal_id: str) -> bool:
    return session.exec(select(Pet.id).where(Pet.animal_id == animal_id)).first() is not None


def deleted_pets_with_photos(session: Session, *, owner_id: int, keys: Iterable[str], since: datetime) -> list[Pet]:
    """The owner's pets deleted since `since` that hold any of these photo keys."""
    query = (
        select(Pet)
        .join(PetPhoto, col(PetPhoto.pet_id) == col(Pet.id))
        .where(Pet.owner_id == owner_id, col(Pet.deleted_at) >= since, col(PetPhoto.key).in_(list(keys)))
        .distinct()
    )
    return list(session.exec(query).all())


def deleted_pet_like(
    session: Session, *, owner_id: int, since: datetime, name: str, type: str, breed: str, category: str
) -> Pet | None:
    """The owner's most recently deleted pet (since `since`) with exactly these fields."""
    query = (
        select(Pet)
        .where(Pet.owner_id == owner_id, col(Pet.deleted_at) >= since)
        .where(Pet.name == name, Pet.type == type, Pet.breed == breed, Pet.category == category)
        .order_by(col(Pet.deleted_at).desc())
    )
    return session.exec(query).first()


def pets_due_for_purge(session: Session, *, deleted_before: datetime, limit: int = 100) -> list[Pet]:
    query = select(Pet).where(col(Pet.deleted_at) < deleted_before).order_by(col(Pet.deleted_at)).limit(limit)
    return list(session.exec(query).all())


def all_pets_of(session: Session, owner_id: int) -> list[Pet]:
    """Every pet of the owner, deleted ones included."""
    return list(session.exec(select(Pet).where(Pet.owner_id == owner_id)).all())


def public_pets(session: Session, *, limit: int) -> Sequence[Row[Any]]:
    query = (
        select(*[Pet.__table__.c[name] for name in ("id", "name", "type", "breed", "category")])
        .where(col(Pet.is_public).is_(True), col(Pet.deleted_at).is_(None))
        .order_by(col(Pet.registered_at).desc(), col(Pet.id).desc())
        .limit(limit)
    )
    return session.execute(query).all()


def count_live_pets(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(Pet).where(col(Pet.deleted_at).is_(None))).one())


def delete_pet_row(session: Session, pet: Pet) -> None:
    session.delete(pet)
    session.flush()


# --- photos ----------------------------------------------------------------------------------------


def photos_of(session: Session, pet_id: int) -> list[PetPhoto]:
    query = select(PetPhoto).where(PetPhoto.pet_id == pet_id).order_by(col(PetPhoto.position), col(PetPhoto.id))
    return list(session.exec(query).all())


def photo_keys_owned_by(session: Session, owner_id: int) -> set[str]:
    """Every photo key on any of the owner's pets, soft-deleted ones included (they may be restored)."""
    return set(session.exec(select(PetPhoto.key).where(PetPhoto.owner_id == owner_id)).all())


def photos_with_keys(session: Session, keys: Iterable[str]) -> list[PetPhoto]:
    return list(session.exec(select(PetPhoto).where(col(PetPhoto.key).in_(list(keys)))).all())


def delete_photo_rows(session: Session, photos: Iterable[PetPhoto]) -> None:
    for photo in photos:
        session.delete(photo)
    session.flush()


# --- blobs to remove after commit -------------------------------------------------------------------


BLOB_DELETIONS_TOPIC = "pets-blob-deletions"


def queue_blob_deletions(session: Session, keys: Iterable[str]) -> None:
    """Queue blobs for removal once this transaction commits (the remover is woken then)."""
    wanted = set(keys)
    for key in wanted:
        if session.get(BlobDeletion, key) is None:
            session.add(BlobDeletion(key=key))
    session.flush()
    if wanted:
        wake_after_commit(session, BLOB_DELETIONS_TOPIC)


def blob_deletions(session: Session, *, limit: int = 200) -> list[str]:
    query = select(BlobDeletion.key).order_by(col(BlobDeletion.queued_at)).limit(limit)
    return list(session.exec(query).all())


def forget_blob_deletions(session: Session, keys: Sequence[str]) -> None:
    if keys:
        session.exec(delete(BlobDeletion).where(col(BlobDeletion.key).in_(list(keys))))


# --- the owner projection ---------------------------------------------------------------------------


def owner_row(session: Session, user_id: int) -> Row[Any] | None:
    return session.connection().execute(_OWNER, {"user_id": user_id}).first()


def get_owner(session: Session, user_id: int) -> Owner | None:
    return session.get(Owner, user_id)


# --- edited images ----------------------------------------------------------------------------------


def edited_images_of(session: Session, owner_id: int) -> list[EditedImage]:
    query = (
        select(EditedImage)
        .where(EditedImage.owner_id == owner_id)
        .order_by(col(EditedImage.created_at).desc(), col(EditedImage.id).desc())
    )
    return list(session.exec(query).all())


def edited_image(session: Session, *, owner_id: int, edit_id: int) -> EditedImage | None:
    row = session.get(EditedImage, edit_id)
    return row if row is not None and row.owner_id == owner_id else None


def delete_row(session: Session, row: SQLModel) -> None:
    session.delete(row)
    session.flush()
