"""Reports expire unless renewed: told a few days before, then off the maps; exactly once with several replicas."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from pawgle_reports_test_factories import events, file_report, locations, next_id

from pawgle.common.db import utcnow
from pawgle.common.testing.service import RunningService
from pawgle.reports.config import Settings
from pawgle.reports.expiry import expire_once
from pawgle.reports.models import Report


def _expires_in(reports: RunningService, report_id: int, delta: timedelta) -> None:
    with reports.session() as session:
        report = session.get(Report, report_id)
        assert report is not None
        report.expires_at = utcnow() + delta
        session.add(report)
        session.commit()


def _run_replicas(reports: RunningService, count: int = 4) -> None:
    settings = reports.settings
    assert isinstance(settings, Settings)
    with ThreadPoolExecutor(count) as pool:
        for future in [pool.submit(expire_once, reports.engine, settings) for _ in range(count)]:
            future.result()


def test_a_lost_report_lives_90_days_and_a_found_one_30(reports: RunningService) -> None:
    lost = file_report(reports, next_id(), status="lost")
    found = file_report(reports, next_id(), status="found")
    with reports.session() as session:
        for body, days in ((lost, 90), (found, 30)):
            report = session.get(Report, body["id"])
            assert report is not None
            assert abs((report.expires_at - report.reported_at) - timedelta(days=days)) < timedelta(seconds=1)


def test_an_expired_report_leaves_the_lists_once_even_with_several_replicas(reports: RunningService) -> None:
    reporter, viewer = next_id(), next_id()
    due = [file_report(reports, reporter, status=s)["id"] for s in ("lost", "found", "lost")]
    current = file_report(reports, reporter, status="found")["id"]
    for report_id in due:
        _expires_in(reports, report_id, timedelta(seconds=-1))
    _run_replicas(reports)
    _run_replicas(reports)
    assert sorted(e["report_id"] for e in events(reports, "report.expired")) == sorted(due)
    assert [row["id"] for row in locations(reports, viewer)] == [current]
    # The reporter still finds them under "Mine", marked expired, and may renew them.
    mine = {row["id"]: row for row in locations(reports, reporter, "/api/auth/user/pet-locations/")}
    assert all(mine[report_id]["is_expired"] for report_id in due)


def test_the_reporter_is_told_once_a_few_days_before(reports: RunningService) -> None:
    report_id = file_report(reports, next_id(), status="found")["id"]
    far = file_report(reports, next_id(), status="found")["id"]
    _expires_in(reports, report_id, timedelta(days=2))
    _run_replicas(reports)
    _run_replicas(reports)
    (expiring,) = events(reports, "report.expiring")
    assert expiring["report_id"] == report_id
    assert expiring["status"] == "found"
    assert far != report_id
    assert events(reports, "report.expired") == []


def test_renewing_brings_an_expired_report_back_and_only_the_reporter_may(reports: RunningService) -> None:
    reporter, stranger = next_id(), next_id()
    report_id = file_report(reports, reporter, status="lost")["id"]
    _expires_in(reports, report_id, timedelta(seconds=-1))
    _run_replicas(reports, 1)
    path = f"/api/auth/pets/locations/{report_id}/renew/"
    assert reports.client.post(path, headers=reports.headers(stranger)).status_code == 403
    renewed = reports.client.post(path, headers=reports.headers(reporter))
    assert renewed.status_code == 200
    assert renewed.json()["is_expired"] is False
    assert report_id in {row["id"] for row in locations(reports, stranger)}
    assert [e["report_id"] for e in events(reports, "report.reopened")] == [report_id]
    assert (
        reports.client.post("/api/auth/pets/locations/99999999/renew/", headers=reports.headers(reporter)).status_code
        == 404
    )


def test_the_expiry_job_is_a_declared_worker(reports: RunningService) -> None:
    job = reports.app.state.expiry_job
    assert job.name == "expire-reports"
