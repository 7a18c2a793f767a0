"""The map lists' options (bbox, status, species, limit, cursor) without changing the default answers."""

from __future__ import annotations

import pytest
from pawgle_reports_test_factories import file_report, next_id

from pawgle.common.testing.service import RunningService


def _ids(reports: RunningService, user_id: int, **params: str) -> tuple[list[int], str | None]:
    response = reports.client.get("/api/auth/pets/locations/", params=params, headers=reports.headers(user_id))
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()], response.headers.get("x-next-cursor")


def test_filters_narrow_the_list_and_pages_follow_the_cursor(reports: RunningService) -> None:
    user = next_id()
    dog = file_report(reports, next_id(), status="found", latitude=48.0, longitude=11.0)["id"]
    cat = file_report(reports, next_id(), status="found", type="Cats", breed="Persian", latitude=48.2, longitude=11.2)[
        "id"
    ]
    far = file_report(reports, next_id(), status="lost", latitude=-33.9, longitude=151.2)["id"]
    everything, cursor = _ids(reports, user)
    assert everything == [far, cat, dog]
    assert cursor is None
    assert _ids(reports, user, status="lost")[0] == [far]
    assert _ids(reports, user, species="cats")[0] == [cat]
    assert _ids(reports, user, bbox="10.5,47.5,11.5,48.5")[0] == [cat, dog]
    assert _ids(reports, user, bbox="150,-35,152,-33")[0] == [far]
    first, cursor = _ids(reports, user, limit="2")
    assert first == [far, cat]
    assert cursor is not None
    second, last_cursor = _ids(reports, user, limit="2", cursor=cursor)
    assert second == [dog]
    assert last_cursor is None


@pytest.mark.parametrize(
    ("params", "hint"),
    [
        ({"bbox": "1,2,3"}, "bbox"),
        ({"bbox": "nan,0,1,1"}, "bbox"),
        ({"bbox": "0,50,1,40"}, "south <= north"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1000000"}, "limit"),
        ({"status": "resolved"}, "status"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"species": "<b>"}, "species"),
    ],
)
def test_a_bad_option_is_a_400_saying_which(reports: RunningService, params: dict[str, str], hint: str) -> None:
    response = reports.client.get("/api/auth/pets/locations/", params=params, headers=reports.headers(next_id()))
    assert response.status_code == 400
    assert hint in response.json()["detail"]
