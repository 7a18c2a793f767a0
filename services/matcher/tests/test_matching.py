"""Matching end to end inside the matcher: events in, candidates over the real bus, matches and match.found out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY

from pawgle.common.events.reports import ReportReopened, ReportResolved
from pawgle.common.testing.service import load_test_module, wait_for
from pawgle.matcher import repository
from pawgle.matcher.config import Settings

candidates = load_test_module("pawgle_matcher_test_candidates", Path(__file__).with_name("candidates.py"))
Matcher = candidates.Matcher
NEAR_PARIS, PARIS = candidates.NEAR_PARIS, candidates.PARIS
mean_vector, photo_vectors, vector_at = candidates.mean_vector, candidates.photo_vectors, candidates.vector_at

OWNER, FINDER, OTHER_FINDER = 11, 22, 33
THRESHOLD = Settings.model_fields["automatch_min_similarity"].default


def lost_pet(matcher: Matcher, *, pet_id: int = 1, lost_report_id: int = 100, lost_at: datetime | None = None) -> None:
    """A registered pet with two photos of dog 950, reported lost in Paris (the lost report has no photo)."""
    photos = photo_vectors()
    matcher.pet(pet_id, OWNER, mean_vector(photos["950/950.1.jpg"], photos["950/950.2.jpg"]))
    matcher.report(lost_report_id, OWNER, "lost", None, pet_id=pet_id, reported_at=lost_at)
    matcher.embedded("pet", pet_id, OWNER)
    matcher.idle()


def test_a_found_report_of_the_same_dog_matches_the_lost_pet_once(matcher: Matcher) -> None:
    lost_pet(matcher)
    matcher.report(200, FINDER, "found", photo_vectors()["950/950.3.jpg"], at=NEAR_PARIS)
    matcher.embedded("report", 200, FINDER)
    matcher.idle()

    [match] = matcher.matches()
    assert (match.found_report_id, match.pet_id, match.lost_report_id) == (200, 1, 100)
    assert (match.lost_user_id, match.found_reporter_id, match.status) == (OWNER, FINDER, "pending")
    assert match.score >= THRESHOLD
    assert 1.9 < (match.distance_km or 0) < 2.1
    [found] = matcher.events("match.found")
    assert (found["match_id"], found["lost_user_id"], found["found_reporter_id"]) == (match.id, OWNER, FINDER)
    assert (found["name"], found["pet_id"], found["lost_report_id"]) == ("Rex", 1, 100)


def test_redelivery_and_replay_create_no_second_match(matcher: Matcher) -> None:
    lost_pet(matcher)
    matcher.report(200, FINDER, "found", photo_vectors()["950/950.3.jpg"], at=NEAR_PARIS)
    matcher.embedded("report", 200, FINDER)
    matcher.idle()
    from pawgle.common.events.embeddings import ReportEmbedded

    again = ReportEmbedded(report_id=200, reporter_id=FINDER, model_version="efficientnet-lite0-dogid-1")
    envelope = matcher.publish(again)
    matcher.service.publish(again, envelope=envelope, msg_id=envelope.id + "-redelivered")  # same event id again
    matcher.embedded("pet", 1, OWNER)  # and the other side re-matched
    matcher.idle()
    assert len(matcher.matches()) == 1
    assert len(matcher.events("match.found")) == 1


def test_a_found_report_far_away_of_another_species_or_before_the_loss_is_no_match(matcher: Matcher) -> None:
    lost_at = datetime.now(UTC) - timedelta(hours=1)
    lost_pet(matcher, lost_at=lost_at)
    same_dog = photo_vectors()["950/950.3.jpg"]
    matcher.report(201, FINDER, "found", same_dog, at=(50.65, 2.35))  # 200 km north
    matcher.report(202, FINDER, "found", same_dog, at=NEAR_PARIS, type="Cats")
    matcher.report(203, FINDER, "found", same_dog, at=NEAR_PARIS, reported_at=lost_at - timedelta(days=1))
    for report_id in (201, 202, 203):
        matcher.embedded("report", report_id, FINDER)
    matcher.idle()
    assert matcher.matches() == []


def test_another_dog_scores_below_the_threshold(matcher: Matcher) -> None:
    lost_pet(matcher)
    matcher.report(204, FINDER, "found", photo_vectors()["181/181.3.jpg"], at=NEAR_PARIS)
    matcher.embedded("report", 204, FINDER)
    matcher.idle()
    assert matcher.matches() == []


def test_a_pet_reported_lost_later_finds_the_found_report_filed_before(matcher: Matcher) -> None:
    photos = photo_vectors()
    matcher.pet(1, OWNER, mean_vector(photos["950/950.1.jpg"], photos["950/950.2.jpg"]))
    matcher.embedded("pet", 1, OWNER)
    matcher.idle()
    lost_at = datetime.now(UTC)
    matcher.report(
        200, FINDER, "found", photos["950/950.3.jpg"], at=NEAR_PARIS, reported_at=lost_at + timedelta(minutes=1)
    )
    matcher.embedded("report", 200, FINDER)
    matcher.idle()
    # Found reports are matched against every registered pet: the pet is found before anyone reports it lost.
    assert [m.lost_report_id for m in matcher.matches()] == [None]

    matcher.report(100, OWNER, "lost", None, pet_id=1, reported_at=lost_at)
    matcher.idle()
    assert len(matcher.matches()) == 1  # the lost report is the same lost side: no second match


def test_a_lost_report_without_a_pet_matches_found_reports_when_it_is_embedded(matcher: Matcher) -> None:
    photos = photo_vectors()
    matcher.report(200, FINDER, "found", photos["950/950.3.jpg"], at=NEAR_PARIS)
    matcher.embedded("report", 200, FINDER)
    matcher.idle()
    lost = photos["950/950.1.jpg"]
    matcher.report(101, OWNER, "lost", lost, reported_at=datetime.now(UTC) - timedelta(days=1))
    matcher.embedded("report", 101, OWNER)
    matcher.idle()
    similarity = float(lost @ photos["950/950.3.jpg"])
    expected = 1 if similarity >= THRESHOLD else 0
    assert len(matcher.matches()) == expected
    if expected:
        assert matcher.matches()[0].lost_key == "report:101"


def test_a_dismissed_pair_never_comes_back(matcher: Matcher) -> None:
    lost_pet(matcher)
    matcher.report(200, FINDER, "found", photo_vectors()["950/950.3.jpg"], at=NEAR_PARIS)
    matcher.embedded("report", 200, FINDER)
    matcher.idle()
    [match] = matcher.matches()
    response = matcher.service.client.post(
        f"/api/auth/matches/{match.id}/dismiss/", headers=matcher.service.headers(OWNER)
    )
    assert response.status_code == 200
    matcher.publish(ReportResolved(report_id=200, reporter_id=FINDER))
    matcher.idle()
    reopened = ReportReopened(
        report_id=200,
        reporter_id=FINDER,
        status="found",
        latitude=NEAR_PARIS[0],
        longitude=NEAR_PARIS[1],
        animal_name="Rex",
        type="Dogs",
        breed="Mixed",
        category="Domestic",
    )
    matcher.publish(reopened)
    matcher.embedded("report", 200, FINDER)
    matcher.idle()
    assert [(m.id, m.status) for m in matcher.matches()] == [(match.id, "dismissed")]
    assert len(matcher.events("match.found")) == 1
    listed = matcher.service.client.get("/api/auth/matches/", headers=matcher.service.headers(OWNER)).json()
    assert listed["matches"] == []


def test_at_most_k_candidates_per_report_best_first(matcher_factory: Any) -> None:
    matcher = matcher_factory(max_candidates=3)
    found = photo_vectors()["950/950.3.jpg"]
    for n in range(6):
        matcher.report(300 + n, 40 + n, "lost", vector_at(found, 0.70 + 0.04 * n, seed=n), name=f"Dog{n}")
        matcher.embedded("report", 300 + n, 40 + n)
    matcher.idle()
    matcher.report(200, FINDER, "found", found, at=NEAR_PARIS)
    matcher.embedded("report", 200, FINDER)
    matcher.idle()
    assert sorted(m.lost_report_id for m in matcher.matches()) == [303, 304, 305]


def test_the_threshold_is_the_calibrated_one(matcher: Matcher) -> None:
    found = photo_vectors()["950/950.3.jpg"]
    matcher.report(301, 41, "lost", vector_at(found, THRESHOLD + 0.005, seed=1))
    matcher.report(302, 42, "lost", vector_at(found, THRESHOLD - 0.005, seed=2))
    matcher.embedded("report", 301, 41)
    matcher.embedded("report", 302, 42)
    matcher.idle()
    matcher.report(200, FINDER, "found", found, at=PARIS)
    matcher.embedded("report", 200, FINDER)
    matcher.idle()
    assert [m.lost_report_id for m in matcher.matches()] == [301]
    assert matcher.index.requests[-1].min_similarity == THRESHOLD


def test_a_sighting_joining_a_matched_trail_is_announced_with_the_same_trail(matcher: Matcher) -> None:
    lost_pet(matcher)
    photos = photo_vectors()
    matcher.report(200, FINDER, "found", photos["950/950.3.jpg"], at=NEAR_PARIS)
    matcher.embedded("report", 200, FINDER)
    matcher.idle()
    # A second sighting 1 km further, looking like the first (cos 0.7) but not enough like the pet alone.
    second = vector_at(photos["950/950.3.jpg"], 0.7, seed=7)
    pet = mean_vector(photos["950/950.1.jpg"], photos["950/950.2.jpg"])
    assert float(second @ pet) < THRESHOLD
    matcher.report(210, OTHER_FINDER, "found", second, at=(48.8566, 2.393))
    matcher.embedded("report", 210, OTHER_FINDER)
    matcher.idle()

    matches = {m.found_report_id: m for m in matcher.matches()}
    assert set(matches) == {200, 210}
    trail_id = matches[200].trail_id
    assert trail_id is not None
    assert matches[210].trail_id == trail_id
    assert (matches[200].via, matches[210].via) == ("similar", "trail")
    first, latest = matcher.events("match.found")
    assert latest["trail_id"] == trail_id
    assert sorted(latest["trail_report_ids"]) == [200, 210]
    assert sorted(latest["trail_reporter_ids"]) == [FINDER, OTHER_FINDER]
    assert first["found_report_id"] == 200


def test_sightings_far_apart_or_a_week_apart_make_no_trail(matcher: Matcher) -> None:
    found = photo_vectors()["950/950.3.jpg"]
    matcher.report(200, FINDER, "found", found, at=PARIS)
    matcher.report(211, OTHER_FINDER, "found", vector_at(found, 0.9, seed=3), at=(48.95, 2.35))  # 10 km
    old = datetime.now(UTC) - timedelta(days=8)
    matcher.report(212, OTHER_FINDER, "found", vector_at(found, 0.9, seed=4), at=PARIS, reported_at=old)
    for report_id, reporter in ((200, FINDER), (211, OTHER_FINDER), (212, OTHER_FINDER)):
        matcher.embedded("report", report_id, reporter)
    matcher.idle()
    with matcher.service.session() as session:
        assert all(repository.get_report(session, i).trail_id is None for i in (200, 211, 212))  # type: ignore[union-attr]


def test_matching_waits_for_the_embeddings_service_and_loses_nothing(matcher_factory: Any) -> None:
    matcher = matcher_factory(answering=False)
    photos = photo_vectors()
    matcher.pet(1, OWNER, mean_vector(photos["950/950.1.jpg"], photos["950/950.2.jpg"]))
    matcher.report(100, OWNER, "lost", None, pet_id=1)
    matcher.report(200, FINDER, "found", photos["950/950.3.jpg"], at=NEAR_PARIS)
    matcher.embedded("report", 200, FINDER)
    for event_type in matcher.service.app.state.handlers.event_types:
        matcher.service.wait_until_handled(event_type)
    with matcher.service.session() as session:
        assert repository.pending_jobs(session) == 1  # nobody answers: the job waits, with backoff
    assert matcher.matches() == []
    matcher.start_answering()
    matcher.idle()
    assert len(matcher.matches()) == 1


def test_a_report_is_matched_while_another_reports_candidates_are_still_awaited(matcher_factory: Any) -> None:
    matcher = matcher_factory()
    lost_pet(matcher)
    photos = photo_vectors()
    matcher.index.held.add(("report", 200))  # embeddings never answers this one's queries
    timeouts = REGISTRY.get_sample_value("pawgle_matcher_candidate_queries_failed_total", {"status": "504"}) or 0
    matcher.report(200, FINDER, "found", photos["950/950.3.jpg"], at=NEAR_PARIS)
    matcher.embedded("report", 200, FINDER)
    wait_for(lambda: any(r.subject_id == 200 for r in matcher.index.requests), timeout_s=10, message="no query")
    # 20 km away: a match of its own, not a sighting on 200's trail.
    matcher.report(201, OTHER_FINDER, "found", photos["950/950.3.jpg"], at=(48.8566, 2.6250))
    matcher.embedded("report", 201, OTHER_FINDER)

    wait_for(lambda: [m.found_report_id for m in matcher.matches()] == [201], timeout_s=10, message="201 unmatched")
    # 201 did not wait for 200's query to give up (the worker used to finish a step's queries first).
    failed = REGISTRY.get_sample_value("pawgle_matcher_candidate_queries_failed_total", {"status": "504"}) or 0
    assert failed == timeouts
    matcher.index.held.clear()
    matcher.idle()
    assert sorted(m.found_report_id for m in matcher.matches()) == [200, 201]


def test_many_sightings_of_one_dog_do_not_crowd_out_its_owner(matcher_factory: Any) -> None:
    matcher = matcher_factory(max_candidates=2)
    lost_pet(matcher)
    photo = photo_vectors()["950/950.3.jpg"]
    # Ten earlier found reports of the very same photo, 6 km apart (no trail), all closer to it than the pet.
    for n in range(10):
        matcher.report(400 + n, 50 + n, "found", photo, at=(48.8566 + 0.054 * (n + 1), 2.3522))
    matcher.idle()
    matcher.report(200, FINDER, "found", photo, at=NEAR_PARIS)
    matcher.embedded("report", 200, FINDER)
    matcher.idle()
    assert [m.found_report_id for m in matcher.matches()] == [200]


def test_a_job_finished_after_its_id_went_to_another_subject_is_not_that_subjects(matcher_factory: Any) -> None:
    """SQLite gives a deleted job's id to the next job: an old answer must not settle the new job."""
    from pawgle.matcher import repository
    from pawgle.matcher.models import MatchJob

    service = matcher_factory(answering=False, run_workers=False).service
    with service.session() as session:
        old = repository.queue_job(session, "report", 101)
        session.commit()
        stale = MatchJob(**old.model_dump())  # what a worker holds while it asks for candidates
        repository.finish_job(session, stale.id)  # the job went away meanwhile (finished, its subject gone)
        session.commit()
        new = repository.queue_job(session, "report", 202)
        session.commit()
        if new.id == stale.id:  # SQLite reused it (MySQL never does): the case that matters
            assert new.generation == stale.generation
        assert not repository.hold_job(session, stale)
        assert repository.hold_job(session, new)
