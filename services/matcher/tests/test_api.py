"""The matches API: the caller's matches with cards, confirm and dismiss by either side, errors as JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pawgle.common.testing.service import load_test_module
from pawgle.matcher.config import Settings

candidates = load_test_module("pawgle_matcher_test_candidates", Path(__file__).with_name("candidates.py"))
OWNER, FINDER, STRANGER = 11, 22, 99
LOST_AT = (48.85123, 2.35234)


@pytest.fixture
def matched(matcher: Any) -> tuple[Any, int]:
    """A lost pet (with its lost report) matched by a found report 2 km away; returns the match id."""
    photos = candidates.photo_vectors()
    matcher.pet(1, OWNER, candidates.mean_vector(photos["950/950.1.jpg"], photos["950/950.2.jpg"]))
    matcher.report(100, OWNER, "lost", None, pet_id=1, at=LOST_AT)
    matcher.embedded("pet", 1, OWNER)
    matcher.idle()
    matcher.report(200, FINDER, "found", photos["950/950.3.jpg"], at=candidates.NEAR_PARIS, name="Found dog")
    matcher.embedded("report", 200, FINDER)
    matcher.idle()
    [match] = matcher.matches()
    return matcher, match.id


def get(matcher: Any, path: str, user: int) -> Any:
    return matcher.service.client.get(path, headers=matcher.service.headers(user))


def post(matcher: Any, path: str, user: int, **kwargs: Any) -> Any:
    return matcher.service.client.post(path, headers=matcher.service.headers(user), **kwargs)


def test_the_owner_sees_the_match_with_the_finders_card(matched: tuple[Any, int]) -> None:
    matcher, match_id = matched
    body = get(matcher, "/api/auth/matches/", OWNER).json()
    assert body["count"] == 1
    [match] = body["matches"]
    assert (match["id"], match["role"], match["status"]) == (match_id, "owner", "pending")
    assert match["score"] >= Settings.model_fields["automatch_min_similarity"].default
    assert 1.5 < match["distance_km"] < 2.5
    assert match["pet"] == {"id": 1, "name": "Rex", "type": "Dogs", "breed": "Mixed"}
    assert match["lost_report"]["is_mine"] is True
    assert (match["lost_report"]["latitude"], match["lost_report"]["longitude"]) == LOST_AT
    found = match["found_report"]
    assert found["id"] == 200
    assert found["is_mine"] is False
    assert found["animal_name"] == "Found dog"
    assert (found["latitude"], found["longitude"]) != candidates.NEAR_PARIS  # a grid cell's centre
    assert abs(found["latitude"] - candidates.NEAR_PARIS[0]) < 0.005
    assert not {"reporter_id", "contact_email", "contact_phone", "lost_user_id", "found_reporter_id"} & set(match)
    assert not {"reporter_id", "contact_email", "contact_phone"} & set(found)


def test_the_finder_sees_the_lost_report_only_approximately(matched: tuple[Any, int]) -> None:
    matcher, match_id = matched
    [match] = get(matcher, "/api/auth/matches/", FINDER).json()["matches"]
    assert (match["id"], match["role"], match["trail"]) == (match_id, "finder", None)
    lost = match["lost_report"]
    assert (lost["latitude"], lost["longitude"]) != LOST_AT
    assert abs(lost["latitude"] - LOST_AT[0]) < 0.005
    assert match["found_report"]["is_mine"] is True


def test_someone_else_neither_sees_nor_touches_the_match(matched: tuple[Any, int]) -> None:
    matcher, match_id = matched
    assert get(matcher, "/api/auth/matches/", STRANGER).json() == {"matches": [], "count": 0}
    for response in (
        get(matcher, f"/api/auth/matches/{match_id}/", STRANGER),
        post(matcher, f"/api/auth/matches/{match_id}/confirm/", STRANGER),
        post(matcher, f"/api/auth/matches/{match_id}/dismiss/", STRANGER),
    ):
        assert response.status_code == 404
        assert response.json()["detail"] == "Match not found."
    assert matcher.events("match.confirmed") == []
    assert matcher.events("match.dismissed") == []


def test_unknown_and_malformed_ids_are_json_404s(matched: tuple[Any, int]) -> None:
    matcher, _ = matched
    for path in ("/api/auth/matches/999999/", "/api/auth/matches/abc/", "/api/auth/matches/0/confirm/"):
        response = post(matcher, path, OWNER) if path.endswith("confirm/") else get(matcher, path, OWNER)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("application/json")
    assert matcher.service.client.get("/api/auth/matches/").status_code == 401


def test_the_finder_confirms_once(matched: tuple[Any, int]) -> None:
    matcher, match_id = matched
    first = post(matcher, f"/api/auth/matches/{match_id}/confirm/", FINDER)
    assert first.status_code == 200
    assert (first.json()["status"], first.json()["confirmed_by_me"]) == ("confirmed", True)
    assert post(matcher, f"/api/auth/matches/{match_id}/confirm/", FINDER).status_code == 200
    [event] = matcher.events("match.confirmed")
    assert (event["by_user_id"], event["pet_home"], event["found_report_id"]) == (FINDER, False, 200)
    assert get(matcher, f"/api/auth/matches/{match_id}/", OWNER).json()["confirmed_by_other"] is True


def test_the_owner_says_the_pet_is_home(matched: tuple[Any, int]) -> None:
    matcher, match_id = matched
    response = post(matcher, f"/api/auth/matches/{match_id}/confirm/", OWNER, json={"pet_home": True})
    assert response.status_code == 200
    assert response.json()["pet_home"] is True
    [event] = matcher.events("match.confirmed")
    assert (event["by_user_id"], event["pet_home"], event["lost_report_id"], event["pet_id"]) == (OWNER, True, 100, 1)


def test_only_the_owner_may_say_the_pet_is_home(matched: tuple[Any, int]) -> None:
    matcher, match_id = matched
    response = post(matcher, f"/api/auth/matches/{match_id}/confirm/", FINDER, json={"pet_home": True})
    assert response.status_code == 400
    assert "owner" in response.json()["detail"]
    assert matcher.events("match.confirmed") == []


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"pet_home": "yes"}, "pet_home"),
        ({"pet_home": True, "extra": 1}, "extra"),
        ("[1, 2]", "Invalid request"),
        ("{not json", "Invalid request"),
    ],
)
def test_a_bad_confirmation_body_is_a_400_saying_what_is_wrong(matched: tuple[Any, int], body: Any, says: str) -> None:
    matcher, match_id = matched
    path = f"/api/auth/matches/{match_id}/confirm/"
    if isinstance(body, str):
        headers = {**matcher.service.headers(OWNER), "Content-Type": "application/json"}
        response = matcher.service.client.post(path, content=body, headers=headers)
    else:
        response = post(matcher, path, OWNER, json=body)
    assert response.status_code == 400
    assert says in response.json()["detail"]


def test_a_dismissed_match_is_gone_and_cannot_be_confirmed(matched: tuple[Any, int]) -> None:
    matcher, match_id = matched
    response = post(matcher, f"/api/auth/matches/{match_id}/dismiss/", FINDER)
    assert response.status_code == 200
    assert response.json()["status"] == "dismissed"
    assert post(matcher, f"/api/auth/matches/{match_id}/dismiss/", OWNER).status_code == 200
    assert len(matcher.events("match.dismissed")) == 1
    assert get(matcher, "/api/auth/matches/", OWNER).json()["count"] == 0
    assert get(matcher, "/api/auth/matches/?status=dismissed", OWNER).json()["count"] == 1
    refused = post(matcher, f"/api/auth/matches/{match_id}/confirm/", OWNER)
    assert refused.status_code == 409
    assert "dismissed" in refused.json()["detail"]


def test_an_unknown_status_filter_is_a_400(matched: tuple[Any, int]) -> None:
    matcher, _ = matched
    response = get(matcher, "/api/auth/matches/?status=everything", OWNER)
    assert response.status_code == 400
    assert "status" in response.json()["detail"]
    assert "dismissed" in response.json()["detail"]


def test_the_owner_sees_the_whole_trail_approximately(matched: tuple[Any, int]) -> None:
    matcher, match_id = matched
    second = candidates.vector_at(candidates.photo_vectors()["950/950.3.jpg"], 0.7, seed=7)
    matcher.report(210, 33, "found", second, at=(48.8566, 2.393))
    matcher.embedded("report", 210, 33)
    matcher.idle()
    matches = get(matcher, "/api/auth/matches/", OWNER).json()["matches"]
    assert len(matches) == 2
    trail = next(m for m in matches if m["id"] == match_id)["trail"]
    assert sorted(s["report_id"] for s in trail["sightings"]) == [200, 210]
    assert all(s["matched"] for s in trail["sightings"])
    assert all(
        (s["latitude"], s["longitude"]) not in (candidates.NEAR_PARIS, (48.8566, 2.393)) for s in trail["sightings"]
    )
