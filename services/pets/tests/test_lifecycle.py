"""A pet's life: edit as delete + re-add keeps its identity (D6), purge after the grace period, events."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import zxingcpp
from pawgle_pets_test_factories import (
    FRONTEND,
    add_pet,
    blob_path,
    images,
    next_id,
    pet_form,
    photo,
    stored_blobs,
    wait_for,
)
from PIL import Image
from pypdf import PdfReader
from sqlmodel import Session, col, select

from pawgle.common.bus.tables import OutboxEvent
from pawgle.pets.cleanup import purge_once
from pawgle.pets.models import Pet
from pawgle.pets.qrtag import found_page_url


def events(pets, subject: str) -> list[dict]:
    with Session(pets.engine) as session:
        rows = session.exec(select(OutboxEvent).where(OutboxEvent.subject == subject).order_by(col(OutboxEvent.seq)))
        return [json.loads(row.payload)["data"] for row in rows]


def profile_pets(pets, owner: int) -> list[dict]:
    return pets.client.get("/api/auth/profile/", headers=pets.headers(owner)).json()["pets"]


def delete(pets, owner: int, pet_id: int):
    return pets.client.delete(f"/api/auth/pets/{pet_id}/delete/", headers=pets.headers(owner))


def age_deletion(pets, pet_id: int, minutes: float) -> None:
    with Session(pets.engine) as session:
        pet = session.get(Pet, pet_id)
        assert pet is not None
        assert pet.deleted_at is not None
        pet.deleted_at -= timedelta(minutes=minutes)
        session.add(pet)
        session.commit()


def test_deleting_hides_the_pet_at_once_and_answers_204_without_a_body(pets) -> None:
    owner = next_id()
    pet = add_pet(pets, owner).json()["pet"]
    response = delete(pets, owner, pet["id"])
    assert response.status_code == 204
    assert response.content == b""
    assert profile_pets(pets, owner) == []
    assert pets.client.get(f"/api/auth/found/{pet['animal_id']}/").status_code == 404
    assert pets.client.get("/api/auth/pets/count/").json() == {"pet_count": 0}
    assert delete(pets, owner, pet["id"]).status_code == 404


def test_edit_as_delete_and_re_add_keeps_id_and_animal_id_and_reembeds_only_new_photos(pets) -> None:
    owner = next_id()
    pet = add_pet(pets, owner, photo(), photo()).json()["pet"]
    kept, dropped = pet["images"]
    assert delete(pets, owner, pet["id"]).status_code == 204
    # The edit page: the remaining photo as existing_images (a presigned URL's query string is ignored).
    form = pet_form(name="Hachi II", existing_images=json.dumps([kept + "?X-Amz-Expires=3600"]))
    readded = pets.client.post("/api/auth/pets/add/", data=form, headers=pets.headers(owner))
    assert readded.status_code == 201, readded.text
    again = readded.json()["pet"]
    assert (again["id"], again["animal_id"]) == (pet["id"], pet["animal_id"])
    assert again["name"] == "Hachi II"
    assert again["images"] == [kept]
    assert [p["id"] for p in profile_pets(pets, owner)] == [pet["id"]]
    (updated,) = events(pets, "pet.updated")
    assert updated["images_changed"] is True
    assert updated["image_keys"] == [pets.app.state.blobs.key_from_url(kept)]
    assert len(events(pets, "pet.created")) == 1
    wait_for(lambda: not blob_path(pets, dropped).exists())  # the dropped photo is removed after commit
    assert blob_path(pets, kept).exists()

    # The same photos again: a restore that changes no photo does not ask for a new embedding.
    delete(pets, owner, pet["id"])
    form = pet_form(name="Hachi III", existing_images=json.dumps([kept]))
    assert (
        pets.client.post("/api/auth/pets/add/", data=form, headers=pets.headers(owner)).json()["pet"]["id"] == pet["id"]
    )
    assert events(pets, "pet.updated")[-1]["images_changed"] is False


def test_a_re_add_with_new_photos_only_restores_the_same_pet_deleted_moments_ago(pets) -> None:
    owner = next_id()
    pet = add_pet(pets, owner).json()["pet"]
    delete(pets, owner, pet["id"])
    again = add_pet(pets, owner).json()["pet"]
    assert (again["id"], again["animal_id"]) == (pet["id"], pet["animal_id"])
    delete(pets, owner, pet["id"])
    other = add_pet(pets, owner, name="Someone else").json()["pet"]
    assert other["id"] != pet["id"]
    assert other["animal_id"] != pet["animal_id"]


def test_a_deleted_pet_is_purged_after_the_grace_period_with_its_photos_and_pet_deleted(pets) -> None:
    owner = next_id()
    pet = add_pet(pets, owner).json()["pet"]
    delete(pets, owner, pet["id"])
    assert purge_once(pets.engine, pets.settings) == 0  # still within the grace period
    age_deletion(pets, pet["id"], pets.settings.delete_grace_s / 60 + 1)
    assert purge_once(pets.engine, pets.settings) == 1
    assert events(pets, "pet.deleted") == [{"pet_id": pet["id"], "owner_id": owner}]
    wait_for(lambda: stored_blobs(pets) == [])
    form = pet_form(existing_images=json.dumps(pet["images"]))
    late = pets.client.post("/api/auth/pets/add/", data=form, headers=pets.headers(owner))
    assert late.status_code == 404  # the photos are gone with the pet


def test_a_put_edit_changes_fields_and_a_new_image_replaces_the_photos(pets) -> None:
    owner = next_id()
    pet = add_pet(pets, owner, photo(), photo()).json()["pet"]
    url = f"/api/auth/pets/{pet['id']}/edit/"
    renamed = pets.client.put(
        url, json={"name": "Kuro", "isPublic": False, "features": [1, 2]}, headers=pets.headers(owner)
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Kuro"
    assert renamed.json()["isPublic"] is False
    assert renamed.json()["features"] == []
    assert renamed.json()["images"] == pet["images"]
    replaced = pets.client.put(
        url, data={"breed": "Beagle"}, files=images(photo(), field="image"), headers=pets.headers(owner)
    )
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert body["breed"] == "Beagle"
    assert len(body["images"]) == 1
    assert body["images"][0] not in pet["images"]
    assert body["feature_status"] == "pending"
    assert body["animal_id"] == pet["animal_id"]
    assert events(pets, "pet.updated")[-1]["images_changed"] is True
    bad = pets.client.put(url, json={"name": "<b>"}, headers=pets.headers(owner))
    assert bad.status_code == 400
    assert "name" in bad.json()


def test_the_qr_tag_decodes_to_the_found_page_of_the_pet(pets) -> None:
    owner = next_id()
    pet = add_pet(pets, owner).json()["pet"]
    response = pets.client.get(f"/api/auth/pets/{pet['id']}/qr/", headers=pets.headers(owner))
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-disposition"] == f'attachment; filename="pawgle-{pet["animal_id"]}.png"'
    assert response.headers["cache-control"] == "private, max-age=3600"
    (code,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(response.content)))
    assert code.text == found_page_url(FRONTEND, pet["animal_id"]) == f"{FRONTEND}/found/{pet['animal_id']}"


def test_the_poster_is_a_one_page_pdf_with_the_pet_and_only_the_contact_details_asked_for(pets) -> None:
    owner = next_id()
    pet = add_pet(pets, owner).json()["pet"]
    url = f"/api/auth/pets/{pet['id']}/poster/"
    plain = pets.client.get(url, params={"note": "Blue collar"}, headers=pets.headers(owner))
    assert plain.status_code == 200
    assert plain.headers["content-type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(plain.content))
    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    assert "Hachi" in text
    assert "Blue collar" in text
    assert pet["animal_id"] in text
    assert "Call" not in text
    letter = pets.client.get(
        url, params={"page_size": "letter", "phone": "+33 6 12 34 56 78"}, headers=pets.headers(owner)
    )
    page = PdfReader(io.BytesIO(letter.content)).pages[0]
    assert round(float(page.mediabox.width)) == 612
    assert "+33 6 12 34 56 78" in page.extract_text()
