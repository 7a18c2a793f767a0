"""Pets as their owners and finders see them (P1-P4, P6, P7, S1, S3, feature status); no HTTP here."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlmodel import Session

from pawgle.common.blobs import BlobStore
from pawgle.common.bus.outbox import add_event
from pawgle.common.db import save, utcnow
from pawgle.common.errors import BadRequest, NotFound
from pawgle.common.events.pets import PetCreated, PetDeleted, PetUpdated
from pawgle.common.photos import StoredPhoto, owned_photo_keys
from pawgle.common.schemas import format_timestamp
from pawgle.pets import repository
from pawgle.pets.config import Settings
from pawgle.pets.models import Pet, PetPhoto
from pawgle.pets.qrtag import is_animal_id, new_animal_id
from pawgle.pets.schemas import FoundPet, OwnerRead, PetRead, PublicPet, additional_info

PHOTO_PREFIX = "pets"
PET_NOT_FOUND = "Pet not found or not owned by this user."
UrlOf = Callable[[str], str]


class PetNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__(PET_NOT_FOUND)


class PhotoInUse(BadRequest):
    code = "existing_photo_in_use"

    def __init__(self) -> None:
        super().__init__(
            "existing_images holds a photo of one of your other pets; edit that pet instead, "
            "or upload the photo again.",
            code=self.code,
        )


@dataclass
class PetWrite:
    """What a write did: the pet, its photo keys in order, and whether it was a restore (D6)."""

    pet: Pet
    keys: list[str]
    restored: bool = False


# --- reading ---------------------------------------------------------------------------------------


def pet_object(pet: Any, keys: Sequence[str], url: UrlOf) -> dict[str, Any]:
    """The contract's Pet object (shape of PetRead) of a row (ORM object or plain row) and its photo keys.

    A plain dict: the profile lists every pet of its owner on each page load, and a validated model per
    pet would cost more CPU than the queries (every value comes from our own row).
    """
    return {
        "id": pet.id,
        "name": pet.name,
        "type": pet.type,
        "category": pet.category,
        "breed": pet.breed,
        "isPublic": pet.is_public,
        "additionalInfo": additional_info(pet.additional_info),
        "animal_id": pet.animal_id,
        "registered_at": format_timestamp(pet.registered_at),
        "images": [url(key) for key in keys],
        "feature_status": pet.feature_status,
        "owner": pet.owner_id,
        "features": [],
    }


def pet_read(pet: Any, keys: Sequence[str], url: UrlOf) -> PetRead:
    """The Pet object as a response model (single-pet answers)."""
    return PetRead.model_validate(pet_object(pet, keys, url))


def owner_of(*, session: Session, user_id: int) -> OwnerRead | None:
    """What the projection knows of the user, or None before their user.* event arrived."""
    row = repository.owner_row(session, user_id)
    if row is None or row.deleted:
        return None
    return OwnerRead(id=user_id, username=row.username, email=row.email)


def owner_pets(*, session: Session, owner_id: int, url: UrlOf) -> list[dict[str, Any]]:
    """The owner's pets, newest first, as Pet objects (P1)."""
    pets = repository.owner_pets(session, owner_id)
    keys = repository.owner_photo_keys(session, owner_id, [pet.id for pet in pets])
    return [pet_object(pet, keys[pet.id], url) for pet in pets]


def get_pet(*, session: Session, owner_id: int, pet_id: int) -> Pet:
    """One of the caller's live pets; anyone else's (or none) is the same 404."""
    pet = repository.live_pet(session, owner_id=owner_id, pet_id=pet_id)
    if pet is None:
        raise PetNotFound()
    return pet


def read_pet(*, session: Session, owner_id: int, pet_id: int, url: UrlOf) -> PetRead:
    pet = get_pet(session=session, owner_id=owner_id, pet_id=pet_id)
    assert pet.id is not None
    return pet_read(pet, [p.key for p in repository.photos_of(session, pet.id)], url)


def found_pet(*, session: Session, animal_id: str, url: UrlOf) -> FoundPet:
    """The public found page of a tag (P7): one photo, no owner data, no location; unknown tags are 404."""
    pet = repository.pet_by_animal_id(session, animal_id) if is_animal_id(animal_id) else None
    if pet is None or pet.id is None:
        raise NotFound("Not found")
    keys = repository.photo_keys_of(session, [pet.id])[pet.id]
    return FoundPet(
        animal_id=pet.animal_id,
        name=pet.name,
        type=pet.type,
        breed=pet.breed,
        category=pet.category,
        images=[url(keys[0])] if keys else [],
        has_owner=True,
    )


def public_pets(*, session: Session, url: UrlOf, limit: int) -> list[PublicPet]:
    """Public pets for the dashboard (S1), newest first, with only the six fields it may show."""
    rows = repository.public_pets(session, limit=limit)
    keys = repository.photo_keys_of(session, [row.id for row in rows])
    return [
        PublicPet(
            id=r.id, name=r.name, type=r.type, breed=r.breed, category=r.category, images=[url(k) for k in keys[r.id]]
        )
        for r in rows
    ]


def count_pets(*, session: Session) -> int:
    return repository.count_live_pets(session)


def tag_id_of(*, session: Session, owner_id: int, pet_id: int) -> str:
    """The animal_id of one of the caller's pets (P6, the poster)."""
    return get_pet(session=session, owner_id=owner_id, pet_id=pet_id).animal_id


# --- writing ---------------------------------------------------------------------------------------


def _new_animal_id(session: Session) -> str:
    for _ in range(5):
        candidate = new_animal_id()
        if not repository.animal_id_taken(session, candidate):
            return candidate
    raise RuntimeError("could not mint a unique animal_id")  # 131 random bits: never in practice


def _snapshot(pet: Pet, keys: list[str]) -> dict[str, Any]:
    assert pet.id is not None
    return {
        "pet_id": pet.id,
        "owner_id": pet.owner_id,
        "name": pet.name,
        "type": pet.type,
        "breed": pet.breed,
        "category": pet.category,
        "is_public": pet.is_public,
        "image_keys": keys,
    }


def _set_photos(session: Session, pet: Pet, keys: list[str], new: Sequence[StoredPhoto]) -> tuple[list[str], bool]:
    """Give the pet exactly these photos (reused keys, then new ones); the dropped ones are queued for removal.

    Returns the keys in order and whether the set of photos changed (only then is it embedded again).
    """
    assert pet.id is not None
    current = repository.photos_of(session, pet.id)
    reused = {photo.key: photo for photo in repository.photos_with_keys(session, keys)} if keys else {}
    dropped = [photo for photo in current if photo.key not in reused]
    repository.queue_blob_deletions(session, [k for photo in dropped for k in (photo.key, photo.thumbnail_key)])
    repository.delete_photo_rows(session, dropped)
    ordered = list(keys) + [photo.key for photo in new]
    for position, key in enumerate(keys):
        photo = reused[key]
        photo.pet_id, photo.position = pet.id, position
        session.add(photo)
    for offset, stored in enumerate(new, start=len(keys)):
        session.add(
            PetPhoto(
                pet_id=pet.id,
                owner_id=pet.owner_id,
                key=stored.key,
                thumbnail_key=stored.thumbnail_key,
                position=offset,
            )
        )
    session.flush()
    changed = {photo.key for photo in current} != set(ordered)
    return ordered, changed


def _restorable(
    session: Session, *, owner_id: int, fields: dict[str, Any], keys: list[str], settings: Settings
) -> Pet | None:
    """The soft-deleted pet this add restores (D6), if any."""
    now = utcnow()
    if keys:
        # Every reused photo must belong to one pet this owner deleted within the grace period.
        holders = {photo.pet_id for photo in repository.photos_with_keys(session, keys)}
        if len(holders) != 1:
            return None
        pet = session.get(Pet, holders.pop())
        since = now - timedelta(seconds=settings.delete_grace_s)
        ok = pet is not None and pet.deleted_at is not None and pet.deleted_at >= since
        return pet if ok else None
    if settings.restore_by_fields_s <= 0:
        return None
    return repository.deleted_pet_like(
        session,
        owner_id=owner_id,
        since=now - timedelta(seconds=settings.restore_by_fields_s),
        name=fields["name"],
        type=fields["type"],
        breed=fields["breed"],
        category=fields["category"],
    )


def add_pet(
    *,
    session: Session,
    owner_id: int,
    fields: dict[str, Any],
    existing: Sequence[str],
    new_photos: Sequence[StoredPhoto],
    store: BlobStore,
    settings: Settings,
) -> PetWrite:
    """Register a pet (P2), or restore the one the owner just deleted when this is the edit flow's re-add (D6).

    `new_photos` are already stored (outside any transaction); `existing` are the client's references,
    which must name the caller's own photos (D7).
    """
    owned = repository.photo_keys_owned_by(session, owner_id) if existing else set()
    keys = owned_photo_keys(existing, owned=owned, store=store, prefix=PHOTO_PREFIX)
    pet = _restorable(session, owner_id=owner_id, fields=fields, keys=keys, settings=settings)
    if keys and pet is None:
        holders = [session.get(Pet, photo.pet_id) for photo in repository.photos_with_keys(session, keys)]
        if any(holder is not None and holder.deleted_at is None for holder in holders):
            raise PhotoInUse()
    restored = pet is not None
    if pet is None:
        pet = save(session, Pet(owner_id=owner_id, animal_id=_new_animal_id(session), **_model_fields(fields)))
    else:
        for name, value in _model_fields(fields).items():
            setattr(pet, name, value)
        pet.deleted_at = None
    ordered, changed = _set_photos(session, pet, keys, new_photos)
    if changed or not restored:
        pet.feature_status, pet.photos_changed_at = "pending", utcnow()
    save(session, pet)
    snapshot = _snapshot(pet, ordered)
    add_event(session, PetUpdated(**snapshot, images_changed=changed) if restored else PetCreated(**snapshot))
    return PetWrite(pet=pet, keys=ordered, restored=restored)


def create_pet_for_report(*, session: Session, owner_id: int, name: str, type_: str, breed: str, category: str) -> Pet:
    """Register the pet a lost report names (no photos yet); its pet.created lets the reports service link it."""
    pet = save(
        session,
        Pet(
            owner_id=owner_id,
            animal_id=_new_animal_id(session),
            **_model_fields(
                {
                    "name": name,
                    "type": type_,
                    "breed": breed,
                    "category": category,
                    "additional_info": additional_info({}),
                }
            ),
        ),
    )
    add_event(session, PetCreated(**_snapshot(pet, [])))
    return pet


def _model_fields(fields: dict[str, Any]) -> dict[str, Any]:
    values = dict(fields)
    if "additional_info" in values:
        values["additional_info"] = json.dumps(values["additional_info"], ensure_ascii=False)
    return values


def edit_pet(
    *, session: Session, owner_id: int, pet_id: int, fields: dict[str, Any], new_photo: StoredPhoto | None
) -> PetWrite:
    """Change some of a pet's fields (P3); a new photo replaces all of them and re-queues the embedding."""
    pet = get_pet(session=session, owner_id=owner_id, pet_id=pet_id)
    assert pet.id is not None
    for name, value in _model_fields(fields).items():
        setattr(pet, name, value)
    if new_photo is not None:
        ordered, changed = _set_photos(session, pet, [], [new_photo])
    else:
        ordered, changed = [p.key for p in repository.photos_of(session, pet.id)], False
    if changed:
        pet.feature_status, pet.photos_changed_at = "pending", utcnow()
    save(session, pet)
    add_event(session, PetUpdated(**_snapshot(pet, ordered), images_changed=changed))
    return PetWrite(pet=pet, keys=ordered)


def delete_pet(*, session: Session, owner_id: int, pet_id: int) -> None:
    """Hide the pet at once; it stays restorable for the grace period, then is purged (P4, D6)."""
    pet = get_pet(session=session, owner_id=owner_id, pet_id=pet_id)
    pet.deleted_at = utcnow()
    save(session, pet)


def erase_pet(session: Session, pet: Pet) -> None:
    """Remove a pet for good: its photos (blobs queued for deletion), its row, and say so (pet.deleted)."""
    assert pet.id is not None
    photos = repository.photos_of(session, pet.id)
    repository.queue_blob_deletions(session, [k for photo in photos for k in (photo.key, photo.thumbnail_key)])
    repository.delete_photo_rows(session, photos)
    add_event(session, PetDeleted(pet_id=pet.id, owner_id=pet.owner_id))
    repository.delete_pet_row(session, pet)


def purge_deleted_pets(*, session: Session, settings: Settings) -> int:
    """Purge pets whose grace period is over; returns how many."""
    due = repository.pets_due_for_purge(session, deleted_before=utcnow() - timedelta(seconds=settings.delete_grace_s))
    for pet in due:
        erase_pet(session, pet)
    return len(due)


def feature_status(*, session: Session, owner_id: int, pet_id: int) -> str:
    return get_pet(session=session, owner_id=owner_id, pet_id=pet_id).feature_status


def retry_features(*, session: Session, owner_id: int, pet_id: int) -> Pet:
    """Queue a failed pet's photos for embedding again (pet.updated with images_changed)."""
    pet = get_pet(session=session, owner_id=owner_id, pet_id=pet_id)
    if pet.feature_status != "failed":
        raise BadRequest(
            f"Feature extraction can be retried only after it failed; it is {pet.feature_status} for this pet."
        )
    assert pet.id is not None
    pet.feature_status, pet.photos_changed_at = "pending", utcnow()
    save(session, pet)
    keys = [p.key for p in repository.photos_of(session, pet.id)]
    add_event(session, PetUpdated(**_snapshot(pet, keys), images_changed=True))
    return pet
