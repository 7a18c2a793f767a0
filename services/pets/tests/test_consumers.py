"""Events on a real NATS JetStream reach the running pets service: the owner projection, erasure, features."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from pawgle_pets_test_factories import add_pet, next_id, stored_blobs, user_registered, wait_for
from sqlmodel import Session, col, func, select

from pawgle.common.bus.tables import OutboxEvent
from pawgle.common.events.auth import UserDeleted, UserUpdated
from pawgle.common.events.embeddings import EmbeddingFailed, PetEmbedded
from pawgle.common.events.envelope import new_event
from pawgle.common.events.reports import ReportFiled
from pawgle.pets.models import EditedImage, Owner, Pet, PetPhoto


def count(pets, model, **where) -> int:
    with Session(pets.engine) as session:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return int(session.exec(query).one())


def owner_row(pets, user_id: int) -> Owner | None:
    with Session(pets.engine) as session:
        return session.get(Owner, user_id)


def status(pets, owner: int, pet_id: int) -> str:
    response = pets.client.get(f"/api/auth/pets/{pet_id}/feature-status/", headers=pets.headers(owner))
    return str(response.json()["feature_status"])


def test_user_deleted_erases_pets_photos_edits_and_projection_once_even_when_redelivered(pets) -> None:
    owner, neighbour = next_id(), next_id()
    pets.publish(user_registered(owner))
    wait_for(lambda: owner_row(pets, owner))
    first = add_pet(pets, owner).json()["pet"]
    second = add_pet(pets, owner, name="Second").json()["pet"]
    pets.client.delete(f"/api/auth/pets/{second['id']}/delete/", headers=pets.headers(owner))  # soft-deleted too
    kept = add_pet(pets, neighbour).json()["pet"]
    edit = pets.client.post(
        "/api/auth/edited-pet-images/",
        files={"edited_image": ("edit.png", open(__file__.replace("test_consumers.py", "data/dog2.4.jpg"), "rb"))},
        data={"edit_metadata": "{}"},
        headers=pets.headers(owner),
    )
    assert edit.status_code == 201
    envelope = pets.publish(UserDeleted(user_id=owner))
    pets.publish(UserDeleted(user_id=owner), envelope=envelope, msg_id=f"{envelope.id}-again")  # past dedupe
    pets.wait_until_handled("user.deleted")
    assert count(pets, Pet, owner_id=owner) == 0
    assert count(pets, PetPhoto, owner_id=owner) == 0
    assert count(pets, EditedImage, owner_id=owner) == 0
    row = owner_row(pets, owner)
    assert row is not None
    assert (row.deleted, row.username, row.email) == (True, "", "")
    with Session(pets.engine) as session:
        deleted = session.exec(
            select(OutboxEvent).where(OutboxEvent.subject == "pet.deleted").order_by(col(OutboxEvent.seq))
        )
        assert sorted(json.loads(r.payload)["data"]["pet_id"] for r in deleted) == sorted([first["id"], second["id"]])
    # Only the neighbour's photo and its thumbnail are left once the remover ran.
    wait_for(lambda: len(stored_blobs(pets)) == 2)
    assert count(pets, Pet, owner_id=neighbour) == 1
    assert pets.client.get(f"/api/auth/found/{kept['animal_id']}/").status_code == 200
    # A late user.updated does not bring the erased owner back.
    pets.publish(UserUpdated(user_id=owner, display_name="back", email="back@example.org", email_verified=True))
    pets.wait_until_handled("user.updated")
    assert owner_row(pets, owner).email == ""  # type: ignore[union-attr]


def test_an_older_user_event_arriving_late_does_not_overwrite_a_newer_one(pets) -> None:
    user = next_id()
    now = datetime.now(UTC)
    newer = new_event(
        UserUpdated(user_id=user, display_name="new", email="new@example.org", email_verified=True), producer="auth"
    )
    older = new_event(user_registered(user, display_name="old"), producer="auth")
    newer = newer.model_copy(update={"occurred_at": now})
    older = older.model_copy(update={"occurred_at": now - timedelta(minutes=5)})
    pets.publish(newer.data, envelope=newer)
    pets.wait_until_handled("user.updated")
    pets.publish(older.data, envelope=older)
    pets.wait_until_handled("user.registered")
    body = pets.client.get("/api/auth/profile/", headers=pets.headers(user)).json()
    assert body["user"] == {"id": user, "username": "new", "email": "new@example.org"}


def test_embedding_verdicts_set_the_feature_status_and_a_failure_can_be_retried(pets) -> None:
    owner = next_id()
    pet = add_pet(pets, owner).json()["pet"]
    assert status(pets, owner, pet["id"]) == "pending"
    retry = f"/api/auth/pets/{pet['id']}/retry-features/"
    assert pets.client.post(retry, headers=pets.headers(owner)).status_code == 400  # nothing failed
    pets.publish(
        EmbeddingFailed(subject_kind="pet", subject_id=pet["id"], owner_id=owner, name="Hachi", reason="model")
    )
    wait_for(lambda: status(pets, owner, pet["id"]) == "failed")
    retried = pets.client.post(retry, headers=pets.headers(owner))
    assert retried.status_code == 200
    assert retried.json()["feature_status"] == "pending"
    pets.publish(PetEmbedded(pet_id=pet["id"], owner_id=owner, model_version="v1", vector_count=1))
    wait_for(lambda: status(pets, owner, pet["id"]) == "completed")
    profile = pets.client.get("/api/auth/profile/", headers=pets.headers(owner)).json()
    assert profile["pets"][0]["feature_status"] == "completed"
    assert profile["pets"][0]["features"] == []


def test_a_verdict_about_photos_the_pet_no_longer_has_is_ignored(pets) -> None:
    owner = next_id()
    pet = add_pet(pets, owner).json()["pet"]
    stale = new_event(
        PetEmbedded(pet_id=pet["id"], owner_id=owner, model_version="v1", vector_count=1), producer="embeddings"
    )
    stale = stale.model_copy(update={"occurred_at": datetime.now(UTC) - timedelta(minutes=1)})
    pets.publish(stale.data, envelope=stale)
    pets.wait_until_handled("pet.embedded")
    assert status(pets, owner, pet["id"]) == "pending"


def lost_report(
    owner: int, *, report_id: int, name: str = "Biscuit", breed: str = "Beagle", pet_id: int | None = None
) -> ReportFiled:
    return ReportFiled(
        report_id=report_id,
        reporter_id=owner,
        status="lost",
        latitude=52.52,
        longitude=13.405,
        animal_name=name,
        type="Dogs",
        breed=breed,
        category="Domestic",
        pet_id=pet_id,
        wants_pet=True,
    )


def test_a_lost_report_naming_an_unregistered_pet_registers_it_once_even_when_redelivered(pets) -> None:
    owner = next_id()
    envelope = pets.publish(lost_report(owner, report_id=next_id()))
    pets.publish(envelope.data, envelope=envelope, msg_id=f"{envelope.id}-again")  # past dedupe
    pets.publish(lost_report(owner, report_id=next_id()))  # a second report of the same pet
    pets.wait_until_handled("report.filed")
    assert count(pets, Pet, owner_id=owner, name="Biscuit") == 1
    profile = pets.client.get("/api/auth/profile/", headers=pets.headers(owner)).json()
    assert [(p["name"], p["type"], p["breed"]) for p in profile["pets"]] == [("Biscuit", "Dogs", "Beagle")]
    with Session(pets.engine) as session:
        created = session.exec(select(func.count()).where(col(OutboxEvent.subject) == "pet.created")).one()
    assert created >= 1


def test_a_lost_report_of_a_registered_pet_creates_nothing(pets) -> None:
    owner = next_id()
    pet = add_pet(pets, owner, name="Biscuit").json()["pet"]
    pets.publish(lost_report(owner, report_id=next_id(), name=pet["name"], breed=pet["breed"]))
    pets.publish(lost_report(owner, report_id=next_id(), name="Linked", pet_id=pet["id"]))
    pets.wait_until_handled("report.filed")
    assert count(pets, Pet, owner_id=owner) == 1
