"""The public routes: the QR landing page (P7), the dashboard (S1), the count (S3), and the fun page (E1, E2)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pawgle_pets_test_factories import add_pet, next_id, photo, user_registered, wait_for

from pawgle.common.testing.service import RunningService, running_service
from pawgle.pets.main import create_app
from pawgle.pets.qrtag import new_animal_id


def test_the_found_page_shows_the_pet_and_nothing_about_its_owner(pets) -> None:
    owner = next_id()
    pets.publish(user_registered(owner))
    pet = add_pet(pets, owner, photo(), photo()).json()["pet"]
    response = pets.client.get(f"/api/auth/found/{pet['animal_id']}/", headers={"Authorization": "Bearer junk"})
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "animal_id": pet["animal_id"],
        "name": "Hachi",
        "type": "Dogs",
        "breed": "Labrador Retriever",
        "category": "Domestic",
        "images": pet["images"][:1],
        "has_owner": True,
    }
    assert str(owner) not in response.text
    assert "example.org" not in response.text


@pytest.mark.parametrize("animal_id", ["ANI123456", "nope", "x" * 200, "ANI" + "A" * 22])
def test_unknown_and_malformed_tags_get_one_uniform_404(pets, animal_id: str) -> None:
    response = pets.client.get(f"/api/auth/found/{animal_id}/")
    assert response.status_code == 404
    assert response.json()["detail"] == "Not found"


def test_a_new_tag_is_unguessable() -> None:
    tags = {new_animal_id() for _ in range(1000)}
    assert len(tags) == 1000


@pytest.fixture
def strict_found_page(settings_factory) -> Iterator[RunningService]:
    settings = settings_factory(throttle_rates={"found_page": "3/min"})
    with running_service(create_app(settings), settings) as running:
        yield running


def test_the_found_page_is_throttled_per_client(strict_found_page) -> None:
    answers = [strict_found_page.client.get(f"/api/auth/found/{new_animal_id()}/").status_code for _ in range(4)]
    assert answers == [404, 404, 404, 429]


def test_the_dashboard_lists_public_pets_with_six_fields_and_the_count_counts_live_pets(pets) -> None:
    owner = next_id()
    public = add_pet(pets, owner, name="Shown").json()["pet"]
    add_pet(pets, owner, name="Hidden", isPublic="false")
    gone = add_pet(pets, owner, name="Gone").json()["pet"]
    pets.client.delete(f"/api/auth/pets/{gone['id']}/delete/", headers=pets.headers(owner))
    dashboard = pets.client.get("/api/auth/dashboard/pets/")
    assert dashboard.status_code == 200
    assert dashboard.json() == [
        {
            "id": public["id"],
            "name": "Shown",
            "type": "Dogs",
            "breed": "Labrador Retriever",
            "category": "Domestic",
            "images": public["images"],
        }
    ]
    assert pets.client.get("/api/auth/pets/count/").json() == {"pet_count": 2}


def test_edited_images_are_saved_listed_and_kept_private(pets) -> None:
    owner, other = next_id(), next_id()
    pets.publish(user_registered(owner, display_name="calm-heron-7"))
    wait_for(lambda: pets.client.get("/api/auth/profile/", headers=pets.headers(owner)).json()["user"]["username"])
    metadata = {"objects": {"background": "beach", "objects": ["hat"]}, "filters": {"sepia": 1}}
    created = pets.client.post(
        "/api/auth/edited-pet-images/",
        files={"edited_image": ("edit.png", photo(), "image/png")},
        data={"edit_metadata": json.dumps(metadata)},
        headers=pets.headers(owner),
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["edit_metadata"] == metadata
    assert body["owner"] == "calm-heron-7"
    assert body["edited_image_url"].startswith("http://localhost:8000/media/edits/")
    assert body["created_at"].endswith("Z")
    listed = pets.client.get("/api/auth/edited-pet-images/", headers=pets.headers(owner)).json()
    assert [e["id"] for e in listed] == [body["id"]]
    assert pets.client.get("/api/auth/edited-pet-images/", headers=pets.headers(other)).json() == []
    detail = f"/api/auth/edited-pet-images/{body['id']}/"
    assert pets.client.get(detail, headers=pets.headers(other)).status_code == 404
    assert pets.client.delete(detail, headers=pets.headers(other)).status_code == 404
    patched = pets.client.patch(detail, data={"edit_metadata": '{"filters": {}}'}, headers=pets.headers(owner))
    assert patched.json()["edit_metadata"] == {"filters": {}}
    assert pets.client.delete(detail, headers=pets.headers(owner)).status_code == 204
    missing = pets.client.post(
        "/api/auth/edited-pet-images/", data={"edit_metadata": "{}"}, headers=pets.headers(owner)
    )
    assert missing.status_code == 400
    assert missing.json()["edited_image"] == ["This field is required."]
