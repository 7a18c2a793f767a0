"""Partner feeds: keys from pawgle-ops, JSON and CSV imports idempotent by external id, errors row by row,
photos only from the partner's hosts with size and time limits (against a local HTTP server)."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pawgle_reports_test_factories import events, next_id, photo_jpeg, wait_for
from sqlmodel import col, func, select

from pawgle.common.events.auth import UserDeleted
from pawgle.common.testing.fake_http import FakeRequest, FakeResponse, fake_http_server
from pawgle.common.testing.service import RunningService
from pawgle.reports import ops_commands
from pawgle.reports.config import Settings
from pawgle.reports.models import Report

BIG = b"x" * (11 * 1024 * 1024)


def _serve_photo(request: FakeRequest) -> FakeResponse:
    if request.path.startswith("/slow"):
        time.sleep(3)
    if request.path.startswith("/big"):
        return FakeResponse(200, BIG, {"Content-Type": "image/jpeg"})
    if request.path.startswith("/missing"):
        return FakeResponse(404, {"detail": "no"})
    return FakeResponse(200, photo_jpeg(), {"Content-Type": "image/jpeg"})


@pytest.fixture
def photo_server() -> Iterator[str]:
    with fake_http_server(_serve_photo) as url:
        yield url


def _issue_key(reports: RunningService, capsys: pytest.CaptureFixture[str], *hosts: str) -> tuple[str, int]:
    user_id = next_id()
    settings = reports.settings
    assert isinstance(settings, Settings)
    args = ["partners", "add", "Happy Tails Shelter", "--user-id", str(user_id)]
    for host in hosts:
        args += ["--photo-host", host]
    assert ops_commands.main(args, settings=settings) == 0
    line = capsys.readouterr().out.splitlines()[0]
    return line.rsplit(" ", 1)[1], user_id


def _row(external_id: str, **overrides: Any) -> dict[str, Any]:
    row = {
        "external_id": external_id,
        "species": "Dogs",
        "breed": "Beagle",
        "description": "Found near the station.",
        "photo_url": "",
        "latitude": "52.5",
        "longitude": "13.4",
        "found_date": "2026-11-20",
    }
    row.update(overrides)
    return row


def _csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def _count_reports(reports: RunningService, reporter_id: int) -> int:
    with reports.session() as session:
        return session.exec(select(func.count(col(Report.id))).where(Report.reporter_id == reporter_id)).one()


def test_a_csv_of_1000_rows_imports_the_valid_ones_once_even_sent_twice(
    reports: RunningService, capsys: pytest.CaptureFixture[str]
) -> None:
    key, partner_user = _issue_key(reports, capsys)
    rows = [_row(f"A-{i}") for i in range(1000)]
    bad = {
        10: {"latitude": "91"},
        250: {"species": "<script>"},
        600: {"found_date": "2026-13-01"},
        999: {"external_id": ""},
    }
    for index, change in bad.items():
        rows[index].update(change)
    body = _csv(rows)
    headers = {"X-Partner-Key": key, "Content-Type": "text/csv"}
    first = reports.client.post("/api/partners/found/csv/", content=body, headers=headers)
    assert first.status_code == 200, first.text
    result = first.json()
    assert (result["created"], result["refused"]) == (996, 4)
    # Row numbers are lines of the file (the header is line 1).
    assert [error["row"] for error in result["errors"]] == [index + 2 for index in sorted(bad)]
    assert "between -90 and 90" in result["errors"][0]["detail"]
    assert "species" in result["errors"][1]["detail"]
    assert "found_date" in result["errors"][2]["detail"]
    again = reports.client.post("/api/partners/found/csv/", content=body, headers=headers).json()
    assert (again["created"], again["updated"], again["unchanged"], again["refused"]) == (0, 0, 996, 4)
    assert _count_reports(reports, partner_user) == 996
    filed = events(reports, "report.filed")
    assert len(filed) == 996
    assert {e["status"] for e in filed} == {"found"}


def test_a_resent_row_with_changes_updates_its_report(
    reports: RunningService, capsys: pytest.CaptureFixture[str]
) -> None:
    key, partner_user = _issue_key(reports, capsys)
    headers = {"X-Partner-Key": key}
    assert (
        reports.client.post("/api/partners/found/", json={"rows": [_row("B-1")]}, headers=headers).json()["created"]
        == 1
    )
    changed = reports.client.post(
        "/api/partners/found/", json={"rows": [_row("B-1", description="Now at the shelter.")]}, headers=headers
    ).json()
    assert changed["updated"] == 1
    assert _count_reports(reports, partner_user) == 1
    (updated,) = events(reports, "report.updated")
    assert updated["partner_id"] is not None


def test_photos_come_only_from_the_partners_hosts_within_limits(
    reports: RunningService, capsys: pytest.CaptureFixture[str], photo_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = photo_server.removeprefix("http://")
    key, _ = _issue_key(reports, capsys, host)
    monkeypatch.setattr(reports.settings, "partner_photo_timeout_s", 1.0)
    rows = [
        _row("P-ok", photo_url=f"{photo_server}/dog.jpg"),
        _row("P-elsewhere", photo_url="http://203.0.113.9/dog.jpg"),
        _row("P-big", photo_url=f"{photo_server}/big.jpg"),
        _row("P-slow", photo_url=f"{photo_server}/slow.jpg"),
        _row("P-missing", photo_url=f"{photo_server}/missing.jpg"),
        _row("P-ftp", photo_url="ftp://example.org/dog.jpg"),
    ]
    result = reports.client.post("/api/partners/found/", json={"rows": rows}, headers={"X-Partner-Key": key}).json()
    assert result["created"] == 1
    details = {error["external_id"]: error["detail"] for error in result["errors"]}
    assert "not one of your configured photo hosts" in details["P-elsewhere"]
    assert "larger than 10 MB" in details["P-big"]
    assert "in time" in details["P-slow"]
    assert "HTTP 404" in details["P-missing"]
    assert "http(s)" in details["P-ftp"]
    (filed,) = events(reports, "report.filed")
    assert reports.app.state.blobs.exists(filed["image_key"])


def test_a_wrong_or_revoked_key_is_401(reports: RunningService, capsys: pytest.CaptureFixture[str]) -> None:
    rows = {"rows": [_row("C-1")]}
    assert (
        reports.client.post("/api/partners/found/", json=rows, headers={"X-Partner-Key": "pgp_wrong"}).status_code
        == 401
    )
    assert reports.client.post("/api/partners/found/", json=rows).status_code == 401
    key, _ = _issue_key(reports, capsys)
    settings = reports.settings
    assert isinstance(settings, Settings)
    partner_id = int(ops_commands_list(settings, capsys)[-1].split("\t")[0])
    assert ops_commands.main(["partners", "revoke", str(partner_id)], settings=settings) == 0
    assert reports.client.post("/api/partners/found/", json=rows, headers={"X-Partner-Key": key}).status_code == 401


def ops_commands_list(settings: Settings, capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert ops_commands.main(["partners", "list"], settings=settings) == 0
    return capsys.readouterr().out.splitlines()


@pytest.mark.parametrize(
    ("body", "hint"), [(b"not json", "JSON"), (b'{"rows": 3}', "rows"), (b'{"rows": [1]}', "object")]
)
def test_a_malformed_feed_is_a_clear_400_or_a_refused_row(
    reports: RunningService, capsys: pytest.CaptureFixture[str], body: bytes, hint: str
) -> None:
    key, _ = _issue_key(reports, capsys)
    response = reports.client.post(
        "/api/partners/found/", content=body, headers={"X-Partner-Key": key, "Content-Type": "application/json"}
    )
    text = response.text
    assert response.status_code in (200, 400)
    assert hint in text


def test_a_row_whose_report_was_erased_is_filed_again_when_re_sent(
    reports: RunningService, capsys: pytest.CaptureFixture[str]
) -> None:
    key, partner_user = _issue_key(reports, capsys)
    headers = {"X-Partner-Key": key}
    first = reports.client.post("/api/partners/found/", json={"rows": [_row("E-1")]}, headers=headers)
    assert first.json()["created"] == 1
    # The organisation's account was deleted (its reports erased), then the feed is sent again.
    reports.publish(UserDeleted(user_id=partner_user))
    wait_for(lambda: _count_reports(reports, partner_user) == 0)
    again = reports.client.post("/api/partners/found/", json={"rows": [_row("E-1")]}, headers=headers)
    assert again.status_code == 200, again.text
    assert again.json()["created"] == 1
    assert _count_reports(reports, partner_user) == 1
