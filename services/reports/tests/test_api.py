"""The map routes as the web app uses them: filing (L5), the lists (L1-L4), status (L6) and X2."""

from __future__ import annotations

import pytest
from pawgle_reports_test_factories import LAT, LON, events, file_report, locations, next_id, photo_jpeg, report_form

from pawgle.common.testing.service import RunningService
from pawgle.reports.models import Report

ALWAYS_PRESENT = ("latitude", "longitude", "status", "animal_name", "type", "breed", "category", "image_url", "is_test")
CONTACT = ("contact_name", "contact_phone", "contact_email", "owner_name", "animal_id")


def test_the_web_apps_exact_form_files_a_report_and_records_its_reporter(reports: RunningService) -> None:
    reporter = next_id()
    body = file_report(reports, reporter, status="found", last_seen_date="")
    assert body["status"] == "found"
    assert body["animal_name"] == body["pet_name"] == "Rex"
    assert body["last_seen_date"] is None
    assert body["image_url"] is None
    assert (body["latitude"], body["longitude"]) == (LAT, LON)
    with reports.session() as session:
        report = session.get(Report, body["id"])
        assert report is not None
        assert report.reporter_id == reporter
        assert report.contact_email == "jane@example.org"
    (filed,) = events(reports, "report.filed")
    assert filed["report_id"] == body["id"]
    assert filed["reporter_id"] == reporter
    assert "contact_email" not in filed


def test_a_report_with_a_photo_stores_it_and_says_so_in_report_filed(reports: RunningService) -> None:
    body = file_report(reports, next_id(), photo=photo_jpeg(), status="found")
    assert body["image_url"].startswith("http://localhost:8000/")
    assert body["image"] == body["image_url"]
    assert body["feature_status"] == "pending"
    (filed,) = events(reports, "report.filed")
    assert filed["image_key"].startswith("reports/")


def test_a_second_photo_is_refused(reports: RunningService) -> None:
    files = [("image", ("a.jpg", photo_jpeg(), "image/jpeg")), ("image", ("b.jpg", photo_jpeg(), "image/jpeg"))]
    response = reports.client.post(
        "/api/auth/pets/report/", data=report_form(), files=files, headers=reports.headers(next_id())
    )
    assert response.status_code == 400
    assert "1" in response.json()["detail"]


def test_a_file_that_is_not_an_image_is_refused(reports: RunningService) -> None:
    files = {"image": ("evil.jpg", b"<html>not an image</html>", "image/jpeg")}
    response = reports.client.post(
        "/api/auth/pets/report/", data=report_form(), files=files, headers=reports.headers(next_id())
    )
    assert response.status_code == 400
    assert response.json()["detail"]


@pytest.mark.parametrize(
    ("field", "value", "hint"),
    [
        ("latitude", "NaN", "latitude"),
        ("latitude", "91", "between -90 and 90"),
        ("longitude", "-180.5", "between -180 and 180"),
        ("longitude", "inf", "longitude"),
        ("latitude", "", "required"),
        ("description", "x" * 10_000, "At most 2000 characters"),
        ("animal_name", "<script>alert(1)</script>", "must not contain <"),
        ("breed", 'Beagle"', "must not contain"),
        ("category", "", "Choose a category"),
        ("status", "resolved", "'lost' or 'found'"),
        ("last_seen_date", "2025-02-30", "YYYY-MM-DD"),
        ("last_seen_date", "20250401", "YYYY-MM-DD"),
        ("last_seen_time", "25:00", "HH:MM"),
        ("contact_email", "not-an-email", "valid e-mail"),
        ("register_pet", "maybe", '"true" or "false"'),
    ],
)
def test_bad_input_is_a_400_whose_detail_says_what_to_fix(
    reports: RunningService, field: str, value: str, hint: str
) -> None:
    response = reports.client.post(
        "/api/auth/pets/report/", data=report_form(**{field: value}), headers=reports.headers(next_id())
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert field in body
    assert field in body["detail"]
    assert hint in body["detail"]
    assert events(reports, "report.filed") == []


def test_names_with_the_web_apps_own_characters_are_accepted(reports: RunningService) -> None:
    body = file_report(reports, next_id(), animal_name="N/A", type="Hamsters", breed="Dwarf Campbell’s", status="found")
    assert body["breed"] == "Dwarf Campbell’s"
    body = file_report(reports, next_id(), breed="European (Wild)", status="found")
    assert body["breed"] == "European (Wild)"


def test_someone_elses_pet_id_is_the_same_404_as_no_pet(reports: RunningService) -> None:
    for pet_id in ("999999", "abc", "0"):
        response = reports.client.post(
            "/api/auth/pets/report/", data=report_form(pet_id=pet_id), headers=reports.headers(next_id())
        )
        assert response.status_code == 404
        assert response.json()["detail"] == "Pet not found or not owned by this user."


def test_filing_needs_a_token(reports: RunningService) -> None:
    response = reports.client.post(
        "/api/auth/pets/report/", data=report_form(), headers={"Authorization": "Bearer null"}
    )
    assert response.status_code == 401


def test_the_lists_are_bare_arrays_with_every_field_and_no_contact_data_for_others(reports: RunningService) -> None:
    reporter, other = next_id(), next_id()
    lost = file_report(reports, reporter, status="lost")
    found = file_report(reports, reporter, status="found")
    for path, expected in (
        ("/api/auth/pets/locations/", {lost["id"], found["id"]}),
        ("/api/auth/pets/lost/locations/", {lost["id"]}),
        ("/api/auth/pets/found/locations/", {found["id"]}),
    ):
        rows = locations(reports, other, path)
        assert isinstance(rows, list)
        assert {row["id"] for row in rows} == expected
        for row in rows:
            assert all(key in row for key in ALWAYS_PRESENT)
            assert not any(key in row for key in CONTACT)
            assert row["pet"] is None
    newest_first = [row["id"] for row in locations(reports, other)]
    assert newest_first == [found["id"], lost["id"]]


def test_mine_has_every_status_and_the_callers_own_contact_fields(reports: RunningService) -> None:
    reporter, other = next_id(), next_id()
    report = file_report(reports, reporter, status="found")
    file_report(reports, other, status="found")
    response = reports.client.post(
        f"/api/auth/pets/locations/{report['id']}/status/",
        json={"status": "resolved"},
        headers=reports.headers(reporter),
    )
    assert response.status_code == 200
    (mine,) = locations(reports, reporter, "/api/auth/user/pet-locations/")
    assert mine["id"] == report["id"]
    assert mine["status"] == "resolved"
    assert mine["contact_email"] == "jane@example.org"
    assert locations(reports, other, "/api/auth/pets/found/locations/")[0]["id"] != report["id"]


def test_only_the_reporter_changes_the_status_and_resolving_stamps_resolved_at(reports: RunningService) -> None:
    reporter, stranger = next_id(), next_id()
    report = file_report(reports, reporter, status="found")
    path = f"/api/auth/pets/locations/{report['id']}/status/"
    refused = reports.client.post(path, json={"status": "resolved"}, headers=reports.headers(stranger))
    assert refused.status_code == 403
    assert refused.json()["detail"] == "You don't have permission to update this report"
    resolved = reports.client.post(path, json={"status": "resolved"}, headers=reports.headers(reporter))
    assert resolved.status_code == 200
    assert resolved.json()["resolved_at"] is not None
    assert report["id"] not in {row["id"] for row in locations(reports, stranger)}
    reopened = reports.client.put(path, json={"status": "found"}, headers=reports.headers(reporter))
    assert reopened.status_code == 200
    assert reopened.json()["resolved_at"] is None
    assert [e["report_id"] for e in events(reports, "report.resolved")] == [report["id"]]
    assert [e["report_id"] for e in events(reports, "report.reopened")] == [report["id"]]


@pytest.mark.parametrize("body", [{"status": "gone"}, {"status": 3}, {}, None])
def test_an_invalid_status_is_a_400(reports: RunningService, body: object) -> None:
    reporter = next_id()
    report = file_report(reports, reporter, status="found")
    response = reports.client.post(
        f"/api/auth/pets/locations/{report['id']}/status/", json=body, headers=reports.headers(reporter)
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "Invalid status value. Must be 'lost', 'found', or 'resolved'"


def test_an_unknown_report_is_404(reports: RunningService) -> None:
    for report_id in (987654321, 2**70):
        response = reports.client.post(
            f"/api/auth/pets/locations/{report_id}/status/", json={"status": "resolved"}, headers=reports.headers(1)
        )
        assert response.status_code == 404
        assert response.json()["detail"] == "Pet location not found"


def test_x2_is_public_and_shows_lost_reports_only_approximately(reports: RunningService) -> None:
    lost = file_report(reports, next_id(), status="lost", animal_name="Bella")
    file_report(reports, next_id(), status="found")
    response = reports.client.get("/api/lost_pets/")
    assert response.status_code == 200
    (row,) = response.json()
    assert row["id"] == lost["id"]
    assert row["pet"] == {"name": "Bella"}
    assert (row["latitude"], row["longitude"]) != (LAT, LON)
