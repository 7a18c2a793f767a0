"""The pet routes over the running service: shapes of the contract, owners only, photos kept safe."""

from __future__ import annotations

import io
import json

from pawgle_pets_test_factories import (
    add_pet,
    blob_path,
    html_page,
    images,
    jpeg_with_gps,
    next_id,
    oversized_jpeg,
    pet_form,
    photo,
    png_bomb,
    stored_blobs,
    truncated_jpeg,
    user_registered,
    wait_for,
)
from PIL import Image

from pawgle.pets.qrtag import is_animal_id

PET_KEYS = {
    "id",
    "name",
    "type",
    "category",
    "breed",
    "isPublic",
    "additionalInfo",
    "animal_id",
    "registered_at",
    "images",
    "feature_status",
    "owner",
    "features",
}


def test_adding_a_pet_answers_201_with_the_contract_pet_object(pets) -> None:
    owner = next_id()
    response = add_pet(pets, owner)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["success"] is True
    assert body["message"] == "Pet added successfully. Features are being extracted in the background."
    pet = body["pet"]
    assert set(pet) == PET_KEYS
    assert pet["owner"] == owner
    assert pet["feature_status"] == "pending"
    assert pet["features"] == []
    assert pet["isPublic"] is True
    assert pet["additionalInfo"] == {"weight": "12", "height": "40", "subNotes": ["shy"]}
    assert is_animal_id(pet["animal_id"])
    assert pet["registered_at"].endswith("Z")
    (url,) = pet["images"]
    assert url.startswith("http://localhost:8000/media/pets/")
    assert blob_path(pets, url).is_file()


def test_the_profile_lists_only_the_callers_pets_newest_first_with_the_projected_user(pets) -> None:
    owner, other = next_id(), next_id()
    pets.publish(user_registered(owner, display_name="brave-otter-12"))
    first = add_pet(pets, owner, name="First").json()["pet"]
    second = add_pet(pets, owner, name="Second").json()["pet"]
    add_pet(pets, other, name="Not mine")
    wait_for(lambda: pets.client.get("/api/auth/profile/", headers=pets.headers(owner)).json()["user"]["email"])
    body = pets.client.get("/api/auth/profile/", headers=pets.headers(owner)).json()
    assert body["user"] == {"id": owner, "username": "brave-otter-12", "email": f"user{owner}@example.org"}
    assert [p["id"] for p in body["pets"]] == [second["id"], first["id"]]


def test_the_profile_before_the_user_event_answers_with_the_id_alone(pets) -> None:
    owner = next_id()
    response = pets.client.get("/api/auth/profile/", headers=pets.headers(owner))
    assert response.status_code == 200
    assert response.json() == {"user": {"id": owner, "username": "", "email": ""}, "pets": []}


def test_the_profile_needs_a_token(pets) -> None:
    response = pets.client.get("/api/auth/profile/", headers={"Authorization": "Bearer null"})
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers


def test_missing_fields_and_no_photo_are_named_in_a_400(pets) -> None:
    owner = next_id()
    missing = pets.client.post(
        "/api/auth/pets/add/", data=pet_form(name=None, breed=None), files=images(photo()), headers=pets.headers(owner)
    )
    assert missing.status_code == 400
    assert missing.json()["error"] == "Missing required fields: name, breed"
    no_photo = pets.client.post("/api/auth/pets/add/", data=pet_form(), headers=pets.headers(owner))
    assert no_photo.status_code == 400
    assert no_photo.json()["error"] == "No image provided"
    assert stored_blobs(pets) == []


def test_the_web_apps_own_breeds_are_accepted_and_markup_is_refused(pets) -> None:
    owner = next_id()
    for breed in ("Dwarf Campbell’s", "European (Wild)"):
        assert add_pet(pets, owner, type="Hamsters", breed=breed).status_code == 201
    for bad in ("<img src=x onerror=alert(1)>", 'Rex"', "Rex`", "Rex\u202e"):
        refused = add_pet(pets, owner, name=bad)
        assert refused.status_code == 400, bad
        assert "name" in refused.json()
    assert add_pet(pets, owner, category="Dragons").status_code == 400


def test_gps_and_every_other_metadata_are_stripped_from_a_stored_photo(pets) -> None:
    owner = next_id()
    response = add_pet(pets, owner, jpeg_with_gps())
    assert response.status_code == 201
    stored = Image.open(io.BytesIO(blob_path(pets, response.json()["pet"]["images"][0]).read_bytes()))
    assert not stored.getexif()
    assert "exif" not in stored.info


def test_hostile_uploads_are_refused_with_a_4xx_and_nothing_is_stored(pets) -> None:
    owner = next_id()
    cases = {
        "bomb": png_bomb(),
        "truncated": truncated_jpeg(),
        "html": html_page(),
        "11 MB": oversized_jpeg(11),
    }
    for name, data in cases.items():
        response = add_pet(pets, owner, data)
        assert 400 <= response.status_code < 500, name
        assert response.json()["detail"], name
    eleven = add_pet(pets, owner, *([photo()] * 11))
    assert eleven.status_code == 400
    assert "at most 10" in eleven.json()["detail"]
    assert stored_blobs(pets) == []
    assert pets.client.get("/api/auth/profile/", headers=pets.headers(owner)).json()["pets"] == []


def test_another_users_pet_is_404_for_every_owner_route(pets) -> None:
    owner, stranger = next_id(), next_id()
    pet = add_pet(pets, owner).json()["pet"]
    as_stranger = pets.headers(stranger)
    base = f"/api/auth/pets/{pet['id']}"
    answers = [
        pets.client.put(f"{base}/edit/", json={"name": "Mine now"}, headers=as_stranger),
        pets.client.delete(f"{base}/delete/", headers=as_stranger),
        pets.client.get(f"{base}/qr/", headers=as_stranger),
        pets.client.get(f"{base}/poster/", headers=as_stranger),
        pets.client.get(f"{base}/feature-status/", headers=as_stranger),
        pets.client.post(f"{base}/retry-features/", headers=as_stranger),
        pets.client.post(
            "/api/auth/pets/add/",
            data=pet_form(existing_images=json.dumps(pet["images"])),
            headers=as_stranger,
        ),
    ]
    assert [a.status_code for a in answers] == [404] * len(answers)
    assert answers[0].json()["detail"] == "Pet not found or not owned by this user."
    mine = pets.client.get("/api/auth/profile/", headers=pets.headers(owner)).json()["pets"]
    assert [p["name"] for p in mine] == ["Hachi"]
    assert pets.client.get("/api/auth/profile/", headers=as_stranger).json()["pets"] == []


def test_the_original_field_names_for_a_photo_are_accepted(pets) -> None:
    owner = next_id()
    for field in ("image", "file", "pet_image"):
        response = pets.client.post(
            "/api/auth/pets/add/", data=pet_form(), files=images(photo(), field=field), headers=pets.headers(owner)
        )
        assert response.status_code == 201, field
        assert len(response.json()["pet"]["images"]) == 1


def test_existing_images_must_be_our_photo_urls_of_a_deleted_pet_of_the_caller(pets) -> None:
    owner = next_id()
    live = add_pet(pets, owner).json()["pet"]
    for sent, status in [
        (["https://tracker.example/pixel.gif"], 400),
        ("not json", 400),
        (live["images"], 400),  # a photo of another live pet of the caller: edit that pet instead
    ]:
        raw = sent if isinstance(sent, str) else json.dumps(sent)
        response = pets.client.post(
            "/api/auth/pets/add/", data=pet_form(name="Other", existing_images=raw), headers=pets.headers(owner)
        )
        assert response.status_code == status, (sent, response.text)
    assert [p["id"] for p in pets.client.get("/api/auth/profile/", headers=pets.headers(owner)).json()["pets"]] == [
        live["id"]
    ]
