"""match.confirmed with pet_home resolves the lost report; embedding verdicts set feature_status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pawgle_reports_test_factories import events, file_report, locations, next_id, pet_created, photo_jpeg, wait_for

from pawgle.common.events.embeddings import EmbeddingFailed, ReportEmbedded
from pawgle.common.events.envelope import new_event
from pawgle.common.events.matcher import MatchConfirmed
from pawgle.common.testing.service import RunningService
from pawgle.reports.models import Report

MINE = "/api/auth/user/pet-locations/"


def _status(reports: RunningService, report_id: int) -> str:
    with reports.session() as session:
        report = session.get(Report, report_id)
        assert report is not None
        return report.status


def _confirmed(**fields: object) -> MatchConfirmed:
    return MatchConfirmed(**{"match_id": next_id(), "pet_home": True, **fields})  # type: ignore[arg-type]


def test_pet_home_resolves_the_matched_lost_report_once_even_when_redelivered(reports: RunningService) -> None:
    owner, finder = next_id(), next_id()
    lost = file_report(reports, owner, status="lost")
    found = file_report(reports, finder, status="found")
    confirmed = _confirmed(by_user_id=owner, found_report_id=found["id"], lost_report_id=lost["id"])
    envelope = new_event(confirmed, producer="matcher")
    reports.publish(confirmed, envelope=envelope)
    wait_for(lambda: _status(reports, lost["id"]) == "resolved")
    (mine,) = locations(reports, owner, MINE)
    assert mine["status"] == "resolved"
    assert mine["resolved_at"] is not None
    assert lost["id"] not in [r["id"] for r in locations(reports, finder)]
    # The same event again, and a second confirmation: still one report.resolved.
    reports.publish(confirmed, envelope=envelope, msg_id="again-1")
    reports.publish(_confirmed(by_user_id=owner, lost_report_id=lost["id"]))
    reports.wait_until_handled("match.confirmed")
    assert [e["report_id"] for e in events(reports, "report.resolved")] == [lost["id"]]
    assert _status(reports, found["id"]) == "found"


def test_pet_home_with_only_the_pet_resolves_that_pet_s_lost_report(reports: RunningService) -> None:
    owner = next_id()
    created = pet_created(owner)
    reports.publish(created)
    reports.wait_until_handled("pet.created")
    lost = file_report(reports, owner, status="lost")
    assert lost["pet"] == created.pet_id
    reports.publish(_confirmed(by_user_id=owner, pet_id=created.pet_id))
    wait_for(lambda: _status(reports, lost["id"]) == "resolved")
    assert [e["report_id"] for e in events(reports, "report.resolved")] == [lost["id"]]


def test_only_the_lost_side_s_owner_and_only_with_pet_home_resolves(reports: RunningService) -> None:
    owner, finder = next_id(), next_id()
    lost = file_report(reports, owner, status="lost")
    found = file_report(reports, finder, status="found")
    # The finder confirming, or the owner confirming without saying the pet is home, resolves nothing;
    # nor does pet_home naming the finder's own found report.
    reports.publish(_confirmed(by_user_id=finder, lost_report_id=lost["id"]))
    reports.publish(_confirmed(by_user_id=owner, lost_report_id=lost["id"], pet_home=False))
    reports.publish(_confirmed(by_user_id=finder, lost_report_id=found["id"]))
    reports.publish(_confirmed(by_user_id=owner, lost_report_id=next_id()))  # no such report
    reports.wait_until_handled("match.confirmed")
    assert _status(reports, lost["id"]) == "lost"
    assert _status(reports, found["id"]) == "found"
    assert events(reports, "report.resolved") == []


def test_embedding_verdicts_set_feature_status_unless_the_photo_changed_since(reports: RunningService) -> None:
    reporter = next_id()
    with_photo = file_report(reports, reporter, status="found", photo=photo_jpeg())
    failing = file_report(reports, reporter, status="found", photo=photo_jpeg())
    no_photo = file_report(reports, reporter, status="found")
    assert (with_photo["feature_status"], no_photo["feature_status"]) == ("pending", "completed")
    reports.publish(ReportEmbedded(report_id=with_photo["id"], reporter_id=reporter, model_version="m1"))
    failed = EmbeddingFailed(subject_kind="report", subject_id=failing["id"], owner_id=reporter, name="Rex", reason="x")
    reports.publish(failed)
    # A pet's failure with the same id is not about a report.
    reports.publish(
        EmbeddingFailed(subject_kind="pet", subject_id=with_photo["id"], owner_id=reporter, name="Rex", reason="x")
    )
    # A verdict from before the photo was taken (an old photo's) changes nothing.
    stale = ReportEmbedded(report_id=failing["id"], reporter_id=reporter, model_version="m1")
    old = new_event(stale, producer="embeddings")
    reports.publish(stale, envelope=old.model_copy(update={"occurred_at": datetime.now(UTC) - timedelta(hours=1)}))
    reports.publish(ReportEmbedded(report_id=no_photo["id"], reporter_id=reporter, model_version="m1"))

    def statuses() -> dict[int, str]:
        return {r["id"]: r["feature_status"] for r in locations(reports, reporter, MINE)}

    wanted = {with_photo["id"]: "completed", failing["id"]: "failed", no_photo["id"]: "completed"}
    wait_for(lambda: statuses() == wanted)
    reports.wait_until_handled("report.embedded")
    reports.wait_until_handled("embedding.failed")
    assert statuses()[failing["id"]] == "failed"
    assert statuses()[with_photo["id"]] == "completed"
