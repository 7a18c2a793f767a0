"""What the pets service does with the events it consumes (user.*, pet.embedded, embedding.failed, report.filed)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session

from pawgle.common.db import save
from pawgle.common.events.auth import UserDeleted, UserRegistered, UserUpdated
from pawgle.common.events.embeddings import EmbeddingFailed, PetEmbedded
from pawgle.common.events.reports import ReportFiled
from pawgle.common.photos import thumbnail_key_for
from pawgle.pets import repository, service
from pawgle.pets.models import Owner, Pet


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo is not None else moment


def on_user_changed(session: Session, *, data: UserRegistered | UserUpdated, occurred_at: datetime) -> None:
    """Keep the owner's username and e-mail for the profile; older events and deleted users change nothing."""
    at = _naive_utc(occurred_at)
    owner = repository.get_owner(session, data.user_id)
    if owner is not None and (owner.deleted or owner.updated_at > at):
        return
    owner = owner or Owner(user_id=data.user_id)
    owner.username, owner.email, owner.updated_at = data.display_name[:150], data.email[:320], at
    save(session, owner)


def on_user_deleted(session: Session, *, data: UserDeleted) -> None:
    """Erase the user's pets (pet.deleted for each), photos, edited images and projection; keep a tombstone."""
    for pet in repository.all_pets_of(session, data.user_id):
        service.erase_pet(session, pet)
    edits = repository.edited_images_of(session, data.user_id)
    repository.queue_blob_deletions(session, [k for e in edits for k in (e.image_key, thumbnail_key_for(e.image_key))])
    for edit in edits:
        repository.delete_row(session, edit)
    owner = repository.get_owner(session, data.user_id) or Owner(user_id=data.user_id)
    owner.username, owner.email, owner.deleted = "", "", True
    save(session, owner)


def _current_pet(session: Session, pet_id: int, occurred_at: datetime) -> Pet | None:
    """The pet, unless the verdict is about photos it no longer has (they changed after it was given)."""
    pet = session.get(Pet, pet_id)
    if pet is None or pet.photos_changed_at > _naive_utc(occurred_at):
        return None
    return pet


def on_pet_embedded(session: Session, *, data: PetEmbedded, occurred_at: datetime) -> None:
    """The pet's photos are in the vector store: feature_status completed."""
    pet = _current_pet(session, data.pet_id, occurred_at)
    if pet is not None:
        pet.feature_status = "completed"
        save(session, pet)


def on_embedding_failed(session: Session, *, data: EmbeddingFailed, occurred_at: datetime) -> None:
    """The image model gave up on the pet's photos: feature_status failed (the owner may retry)."""
    if data.subject_kind != "pet":
        return
    pet = _current_pet(session, data.subject_id, occurred_at)
    if pet is not None:
        pet.feature_status = "failed"
        save(session, pet)


def on_report_filed(session: Session, *, data: ReportFiled) -> None:
    """A lost report (or register_pet) naming a pet the reporter has not registered: register it, once.

    A second delivery finds the pet the first one created (same owner, name, type and breed), so a
    redelivery or a replay never makes a second pet; the pets service being down only delays this.
    """
    if not data.wants_pet or data.pet_id is not None:
        return
    if repository.live_pet_named(
        session, owner_id=data.reporter_id, name=data.animal_name, type_=data.type, breed=data.breed
    ):
        return  # the reports service links it from its pet.* projection
    service.create_pet_for_report(
        session=session,
        owner_id=data.reporter_id,
        name=data.animal_name,
        type_=data.type,
        breed=data.breed,
        category=data.category,
    )
