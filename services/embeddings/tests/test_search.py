"""Image search (P5) and the matcher's nearest-candidates query, through the running service."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from pawgle.common.bus.rpc import call
from pawgle.common.events.embeddings import NEAREST_CANDIDATES, NearestCandidatesRequest
from pawgle.common.events.reports import ReportFiled
from pawgle.common.testing.service import RunningService, wait_for

from .service_fixtures import PHOTOS, store_photo
from .test_pipeline import feature_status, pet_created

SEARCH = "/api/auth/pets/search/"
DOG = "dog_afhq_flickr_000054.jpg"
CAT = "cat_chelsea.jpg"


def report(report_id: int, key: str, *, status: str = "found", pet_id: int | None = None, lat: float = 48.85):
    return ReportFiled(
        report_id=report_id,
        reporter_id=30 + report_id,
        status=status,
        latitude=lat,
        longitude=2.35,
        animal_name="Found dog",
        type="Dogs",
        breed="Beagle",
        category="Domestic",
        pet_id=pet_id,
        image_key=key,
    )


@pytest.fixture
def stocked(embeddings: RunningService) -> RunningService:
    """A searchable dog, a private dog, a report linked to the first dog, a report-only dog, a resolved one."""
    dog, cat = store_photo(embeddings, DOG), store_photo(embeddings, CAT)
    embeddings.publish(pet_created(1, [dog]))
    embeddings.publish(pet_created(2, [dog], is_public=False))
    embeddings.publish(pet_created(3, [cat]))
    embeddings.publish(report(10, store_photo(embeddings, DOG, key="reports/a.jpg"), status="lost", pet_id=1))
    embeddings.publish(report(11, store_photo(embeddings, DOG, key="reports/b.jpg"), lat=45.76))
    embeddings.publish(report(12, store_photo(embeddings, DOG, key="reports/c.jpg")))
    for kind, subject_id in (("pet", 1), ("pet", 2), ("pet", 3), ("report", 10), ("report", 11), ("report", 12)):
        wait_for(lambda k=kind, i=subject_id: feature_status(embeddings, k, i) == "completed", timeout_s=30)
    index = embeddings.app.state.index
    index.store.set_subject_payload(index.collection, "report", 12, {"status": "resolved"})
    return embeddings


def upload(name: str) -> dict:
    return {"image": (name, (PHOTOS / name).read_bytes(), "image/jpeg")}


def test_search_answers_the_contract_shape_with_report_only_hits_and_no_private_pets(stocked: RunningService) -> None:
    response = stocked.client.post(SEARCH, files=upload(DOG), headers=stocked.headers(99))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    assert set(body["search_info"]) == {
        "total_items_searched",
        "matches_found",
        "similarity_threshold",
        "search_feature_dimensions",
        "pending_features_count",
    }
    assert body["search_info"]["search_feature_dimensions"] == stocked.app.state.index.model.dimension
    assert body["message"] == f"Found {len(body['results'])} similar pets"
    results = body["results"]
    similarities = [r["similarity"] for r in results]
    assert similarities == sorted(similarities, reverse=True)
    assert all(0 <= s <= 1 and round(s, 4) == s for s in similarities)
    pet_ids = [r["pet"]["id"] for r in results]
    assert 1 in pet_ids
    assert 2 not in pet_ids  # its owner did not make it searchable
    first = next(r for r in results if r["pet"]["id"] == 1)
    assert set(first["pet"]) == {"id", "name", "type", "breed", "images"}
    assert first["pet"]["images"][0].startswith("http")
    assert first["pet_location"]["id"] == 10  # its active report, folded in
    assert set(first["pet_location"]) == {"id", "status", "latitude", "longitude", "image_url"}
    report_only = [r for r in results if r["pet"]["id"] is None]
    assert [r["pet_location"]["id"] for r in report_only] == [11]  # 10 is with its pet, 12 is resolved
    assert report_only[0]["pet"]["images"] == []
    assert report_only[0]["pet"]["name"] == "Found dog"
    assert all(set(r) == {"pet", "similarity", "pet_location"} for r in results)  # no owner, no embeddings


def test_search_filters_by_species_and_distance(stocked: RunningService) -> None:
    cats = stocked.client.post(SEARCH, files=upload(DOG), data={"species": "cat"}, headers=stocked.headers(99))
    assert [r["pet"]["id"] for r in cats.json()["results"]] in ([3], [])
    near = {"latitude": "48.85", "longitude": "2.35", "radius_km": "20"}
    nearby = stocked.client.post(SEARCH, files=upload(DOG), data=near, headers=stocked.headers(99)).json()
    # Pets have no position, so a distance filter keeps only reports inside the circle (10 in Paris).
    assert [(r["pet"]["id"], r["pet_location"]["id"]) for r in nearby["results"]] == [(None, 10)]


@pytest.mark.parametrize(
    ("files", "data", "fragment"),
    [
        (None, {}, "No image provided"),
        ({"image": ("x.jpg", b"not a photo", "image/jpeg")}, {}, "Failed to extract features from search image"),
        ("dog", {"species": "lizard"}, "species"),
        ("dog", {"latitude": "48.8"}, "go together"),
        ("dog", {"latitude": "91", "longitude": "2", "radius_km": "5"}, "latitude"),
    ],
)
def test_bad_search_requests_are_400s_saying_what_to_fix(
    embeddings: RunningService, files: object, data: dict, fragment: str
) -> None:
    sent = upload(DOG) if files == "dog" else files
    response = embeddings.client.post(SEARCH, files=sent, data=data, headers=embeddings.headers(99))
    assert response.status_code == 400
    assert fragment in response.json()["error"]


def test_search_needs_a_token(embeddings: RunningService) -> None:
    assert embeddings.client.post(SEARCH, files=upload(DOG)).status_code == 401


def test_a_png_query_photo_works_too(stocked: RunningService) -> None:
    out = io.BytesIO()
    Image.open(PHOTOS / DOG).save(out, format="PNG")
    files = {"image": ("dog.png", out.getvalue(), "image/png")}
    response = stocked.client.post(SEARCH, files=files, headers=stocked.headers(99))
    assert response.status_code == 200
    assert response.json()["results"]


def test_nearest_candidates_answer_the_matchers_query_over_the_bus(stocked: RunningService) -> None:
    request = NearestCandidatesRequest(
        subject_kind="report", subject_id=11, kinds=["pet", "report"], report_statuses=["lost"], min_similarity=0.3
    )
    answer = stocked.portal.call(call, stocked.app.state.nc, NEAREST_CANDIDATES, request)
    assert answer.embedded is True
    found = {(c.kind, c.id) for c in answer.candidates}
    assert ("report", 11) not in found  # never itself
    assert ("pet", 1) in found
    assert ("pet", 2) in found  # the matcher sees private pets too
    assert ("report", 12) not in found  # resolved
    near = request.model_copy(update={"radius_km": 50.0})
    nearby = stocked.portal.call(call, stocked.app.state.nc, NEAREST_CANDIDATES, near)
    assert ("report", 10) not in {(c.kind, c.id) for c in nearby.candidates}  # 10 is in Paris, 11 in Lyon
    unknown = NearestCandidatesRequest(subject_kind="pet", subject_id=404)
    assert stocked.portal.call(call, stocked.app.state.nc, NEAREST_CANDIDATES, unknown).embedded is False
