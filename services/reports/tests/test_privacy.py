"""Location privacy: someone else's lost report is shown at a fixed grid cell, exactly only to those entitled."""

from __future__ import annotations

import math
import random

from pawgle_reports_test_factories import LAT, LON, file_report, locations, next_id, wait_for

from pawgle.common.events.chat import ConversationOpened
from pawgle.common.geo import METRES_PER_DEGREE_LAT, cell_centre
from pawgle.common.testing.service import RunningService

CELL_M = 500.0


def _distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    dlat = (a[0] - b[0]) * METRES_PER_DEGREE_LAT
    dlon = (a[1] - b[1]) * METRES_PER_DEGREE_LAT * math.cos(math.radians(a[0]))
    return math.hypot(dlat, dlon)


def test_every_point_of_a_cell_shows_the_same_centre_and_never_itself() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        lat, lon = rng.uniform(-89.9, 89.9), rng.uniform(-179.9, 179.9)
        shown = cell_centre(lat, lon, cell_m=CELL_M)
        assert shown != (lat, lon)
        assert _distance_m((lat, lon), shown) <= CELL_M * 0.75
        # Another point of the same cell (a metre from its centre) shows the very same centre.
        assert cell_centre(shown[0] + 1e-5, shown[1] + 1e-5, cell_m=CELL_M) == shown


def test_a_point_at_a_cells_centre_is_still_not_shown_exactly() -> None:
    centre = cell_centre(LAT, LON, cell_m=CELL_M)
    assert cell_centre(*centre, cell_m=CELL_M) != centre


def test_someone_elses_lost_report_stays_in_its_cell_over_200_queries(reports: RunningService) -> None:
    reporter, stranger = next_id(), next_id()
    report = file_report(reports, reporter, status="lost")
    seen = set()
    for _ in range(200):
        (row,) = [r for r in locations(reports, stranger, "/api/auth/pets/lost/locations/") if r["id"] == report["id"]]
        seen.add((row["latitude"], row["longitude"]))
        assert row["location_is_approximate"] is True
    assert len(seen) == 1
    (shown,) = seen
    assert shown != (LAT, LON)
    assert 10 < _distance_m((LAT, LON), shown) < CELL_M


def test_the_reporter_sees_the_exact_place_and_a_found_report_is_exact_for_everyone(reports: RunningService) -> None:
    reporter, stranger = next_id(), next_id()
    lost = file_report(reports, reporter, status="lost")
    found = file_report(reports, reporter, status="found", latitude=48.1, longitude=11.5)
    mine = {r["id"]: r for r in locations(reports, reporter)}
    assert (mine[lost["id"]]["latitude"], mine[lost["id"]]["longitude"]) == (LAT, LON)
    theirs = {r["id"]: r for r in locations(reports, stranger)}
    assert (theirs[found["id"]]["latitude"], theirs[found["id"]]["longitude"]) == (48.1, 11.5)


def test_a_participant_of_a_match_conversation_sees_the_exact_place(reports: RunningService) -> None:
    reporter, finder, stranger = next_id(), next_id(), next_id()
    report = file_report(reports, reporter, status="lost")
    reports.publish(
        ConversationOpened(
            conversation_id="c0ffee00-0000-4000-8000-000000000001",
            report_id=report["id"],
            participant_ids=[reporter, finder],
            match_id=next_id(),
        )
    )

    def finders_view() -> dict | None:
        rows = [r for r in locations(reports, finder) if r["id"] == report["id"]]
        return rows[0] if rows and not rows[0]["location_is_approximate"] else None

    row = wait_for(finders_view)
    assert (row["latitude"], row["longitude"]) == (LAT, LON)
    (strangers,) = [r for r in locations(reports, stranger) if r["id"] == report["id"]]
    assert (strangers["latitude"], strangers["longitude"]) != (LAT, LON)


def test_starting_a_conversation_with_a_reporter_does_not_reveal_the_exact_place(reports: RunningService) -> None:
    reporter, curious = next_id(), next_id()
    report = file_report(reports, reporter, status="lost")
    reports.publish(
        ConversationOpened(
            conversation_id="c0ffee00-0000-4000-8000-000000000002",
            report_id=report["id"],
            participant_ids=[reporter, curious],
        )
    )
    reports.wait_until_handled("conversation.opened")
    (row,) = [r for r in locations(reports, curious) if r["id"] == report["id"]]
    assert row["location_is_approximate"]
    assert (row["latitude"], row["longitude"]) != (LAT, LON)


def test_a_bounding_box_searches_the_public_position_not_the_exact_one(reports: RunningService) -> None:
    reporter, stranger = next_id(), next_id()
    report = file_report(reports, reporter, status="lost")
    tiny = f"{LON - 1e-5},{LAT - 1e-5},{LON + 1e-5},{LAT + 1e-5}"
    # A box around the exact point (but not the cell's centre) finds nothing: it cannot be used to home in.
    assert [r for r in locations(reports, stranger, bbox=tiny) if r["id"] == report["id"]] == []
