"""Turn the embeddings service's nearest candidates into matches and sighting trails, in one transaction.

`apply_candidates` runs in the worker's settle transaction: it reads the projections, filters every
candidate (`rules.judge`), keeps the best `max_candidates`, groups a found report with its look-alike
sightings into a trail, extends the trail's existing matches to a newly joined sighting, and stores each
new (found report, lost side) pair with its match.found in the outbox. A pair already stored, whatever
its status, is never stored or announced again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlmodel import Session

from pawgle.common.bus.outbox import add_event
from pawgle.common.db import utcnow
from pawgle.common.events.embeddings import Candidate
from pawgle.common.events.matcher import MatchFound
from pawgle.matcher import metrics, repository
from pawgle.matcher.config import Settings
from pawgle.matcher.models import KnownReport, Match
from pawgle.matcher.rules import LostSide, judge, lost_side, same_trail

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What one matching run did (for tests, logs and metrics)."""

    created: list[Match] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)
    trail_id: int | None = None

    def reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1


@dataclass(frozen=True)
class Pairing:
    found: KnownReport
    lost: LostSide
    score: float
    distance_km: float | None
    via: str = "similar"


def side_of_report(session: Session, report: KnownReport) -> LostSide | None:
    """A lost report's side: its pet when it is linked to one, else the report alone."""
    pet = repository.get_pet(session, report.pet_id) if report.pet_id is not None else None
    return lost_side(pet=pet, report=report)


def side_of_match(session: Session, match: Match) -> LostSide | None:
    """The lost side of a stored match, as the projections know it now."""
    if match.pet_id is not None:
        pet = repository.get_pet(session, match.pet_id)
        report = repository.active_lost_report_of_pet(session, match.pet_id)
        return lost_side(pet=pet, report=report) if pet is not None else None
    report = repository.get_report(session, match.lost_report_id) if match.lost_report_id is not None else None
    return side_of_report(session, report) if report is not None else None


def apply_candidates(
    session: Session,
    *,
    settings: Settings,
    kind: str,
    subject_id: int,
    model_version: str,
    candidates: Sequence[Candidate],
) -> Outcome:
    """Match one embedded pet or report against its candidates (the subject's projection must exist)."""
    outcome = Outcome()
    joined: list[KnownReport] = []
    if kind == "pet":
        pairings = _pairings_of_pet(session, settings, subject_id, model_version, candidates, outcome)
    else:
        report = repository.get_report(session, subject_id)
        if report is None:
            return outcome
        if report.status == "found":
            # The trail first, so the found report's matches carry it.
            outcome.trail_id, joined = _join_trail(session, settings, report, model_version, candidates)
            pairings = _pairings_of_found(session, settings, report, model_version, candidates, outcome)
        elif report.status == "lost":
            pairings = _pairings_of_lost(session, settings, report, model_version, candidates, outcome)
        else:
            return outcome
    for pairing in pairings:
        _store(session, settings, pairing, model_version, outcome)
    if outcome.trail_id is not None and joined:
        _extend_trail(session, settings, outcome.trail_id, joined, model_version, outcome)
    _announce(session, outcome.created)
    return outcome


# --- candidates into pairings ----------------------------------------------------------------------


def _best(pairings: Iterable[Pairing], limit: int) -> list[Pairing]:
    """One pairing per pair (its best score), best first, at most `limit`."""
    best: dict[tuple[int, str], Pairing] = {}
    for pairing in pairings:
        key = (pairing.found.report_id, pairing.lost.key)
        if key not in best or best[key].score < pairing.score:
            best[key] = pairing
    return sorted(best.values(), key=lambda p: (-p.score, p.found.report_id, p.lost.key))[:limit]


def _judged(
    found: KnownReport, side: LostSide, score: float, settings: Settings, model_version: str, outcome: Outcome
) -> Pairing | None:
    if score < settings.automatch_min_similarity:
        outcome.reject("score")
        return None
    verdict = judge(found, side, model_version=model_version, max_distance_km=settings.automatch_max_distance_km)
    if not verdict.ok:
        outcome.reject(verdict.reason)
        return None
    return Pairing(found=found, lost=side, score=score, distance_km=verdict.distance_km)


def _pairings_of_found(
    session: Session,
    settings: Settings,
    found: KnownReport,
    model_version: str,
    candidates: Sequence[Candidate],
    outcome: Outcome,
) -> list[Pairing]:
    """A found report against registered pets and active lost reports."""
    pets = repository.pets_by_id(session, [c.id for c in candidates if c.kind == "pet"])
    reports = repository.reports_by_id(session, [c.id for c in candidates if c.kind == "report"])
    pairings: list[Pairing] = []
    for candidate in candidates:
        side: LostSide | None = None
        if candidate.kind == "pet":
            pet = pets.get(candidate.id)
            if pet is not None:
                side = lost_side(pet=pet, report=repository.active_lost_report_of_pet(session, pet.pet_id))
        else:
            report = reports.get(candidate.id)
            if report is None or report.status != "lost":
                continue  # a found report is a sighting, not a lost side (see the trail)
            side = side_of_report(session, report)
        if side is None:
            outcome.reject("unknown candidate")
            continue
        pairing = _judged(found, side, candidate.similarity, settings, model_version, outcome)
        if pairing is not None:
            pairings.append(pairing)
    return _best(pairings, settings.max_candidates)


def _pairings_against_found(
    session: Session,
    settings: Settings,
    side: LostSide,
    model_version: str,
    candidates: Sequence[Candidate],
    outcome: Outcome,
) -> list[Pairing]:
    reports = repository.reports_by_id(session, [c.id for c in candidates if c.kind == "report"])
    pairings: list[Pairing] = []
    for candidate in candidates:
        found = reports.get(candidate.id) if candidate.kind == "report" else None
        if found is None or found.status != "found":
            continue
        pairing = _judged(found, side, candidate.similarity, settings, model_version, outcome)
        if pairing is not None:
            pairings.append(pairing)
    return _best(pairings, settings.max_candidates)


def _pairings_of_lost(
    session: Session,
    settings: Settings,
    lost: KnownReport,
    model_version: str,
    candidates: Sequence[Candidate],
    outcome: Outcome,
) -> list[Pairing]:
    """A lost report against active found reports."""
    side = side_of_report(session, lost)
    if side is None:
        return []
    return _pairings_against_found(session, settings, side, model_version, candidates, outcome)


def _pairings_of_pet(
    session: Session,
    settings: Settings,
    pet_id: int,
    model_version: str,
    candidates: Sequence[Candidate],
    outcome: Outcome,
) -> list[Pairing]:
    """A pet marked lost (it has an active lost report) against active found reports."""
    pet = repository.get_pet(session, pet_id)
    report = repository.active_lost_report_of_pet(session, pet_id)
    if pet is None or report is None:
        return []  # a pet nobody reported lost is found by found reports, not the other way round
    side = lost_side(pet=pet, report=report)
    assert side is not None
    return _pairings_against_found(session, settings, side, model_version, candidates, outcome)


# --- storing ---------------------------------------------------------------------------------------


def _store(session: Session, settings: Settings, pairing: Pairing, model_version: str, outcome: Outcome) -> None:
    if repository.pair_exists(session, pairing.found.report_id, pairing.lost.key):
        outcome.reject("pair exists")
        return
    distance = None if pairing.distance_km is None else round(pairing.distance_km, 3)
    match = Match(
        found_report_id=pairing.found.report_id,
        lost_key=pairing.lost.key,
        pet_id=pairing.lost.pet_id,
        lost_report_id=pairing.lost.lost_report_id,
        found_reporter_id=pairing.found.reporter_id,
        lost_user_id=pairing.lost.user_id,
        name=pairing.lost.name[:100],
        score=round(float(pairing.score), 4),
        distance_km=distance,
        model_version=model_version,
        via=pairing.via,
        trail_id=pairing.found.trail_id,
    )
    session.add(match)
    session.flush()
    outcome.created.append(match)
    metrics.MATCHES_FOUND.labels(via=pairing.via).inc()
    if pairing.found.filed_at is not None:
        metrics.MATCH_LATENCY.observe(max(0.0, (utcnow() - pairing.found.filed_at).total_seconds()))


def _announce(session: Session, created: Sequence[Match]) -> None:
    """One match.found per new pair, with the trail as it stands after this run."""
    for match in created:
        assert match.id is not None
        members = repository.trail_members(session, match.trail_id) if match.trail_id is not None else []
        reporters = sorted({m.reporter_id for m in members} - {match.lost_user_id})
        add_event(
            session,
            MatchFound(
                match_id=match.id,
                found_report_id=match.found_report_id,
                found_reporter_id=match.found_reporter_id,
                lost_user_id=match.lost_user_id,
                pet_id=match.pet_id,
                lost_report_id=match.lost_report_id,
                name=match.name or "your pet",
                score=match.score,
                distance_km=match.distance_km,
                trail_id=match.trail_id,
                trail_report_ids=[m.report_id for m in members],
                trail_reporter_ids=reporters,
            ),
        )


# --- sighting trails -------------------------------------------------------------------------------


def _join_trail(
    session: Session, settings: Settings, found: KnownReport, model_version: str, candidates: Sequence[Candidate]
) -> tuple[int | None, list[KnownReport]]:
    """Group the found report with the look-alike sightings close in space and time.

    Returns its trail and the sightings that joined it now (two trails the report bridges become one).
    """
    reports = repository.reports_by_id(session, [c.id for c in candidates if c.kind == "report"])
    neighbours = [
        reports[c.id]
        for c in candidates
        if c.kind == "report"
        and c.id in reports
        and c.similarity >= settings.automatch_min_similarity
        and (not reports[c.id].model_version or reports[c.id].model_version == model_version)
        and same_trail(found, reports[c.id], max_km=settings.trail_max_distance_km, max_days=settings.trail_max_days)
    ]
    if not neighbours:
        return found.trail_id, []
    trails = sorted({r.trail_id for r in [found, *neighbours] if r.trail_id is not None})
    if trails:
        target = trails[0]
        for other in trails[1:]:
            repository.move_trail(session, from_trail=other, to_trail=target)
    else:
        trail = repository.new_trail(session)
        assert trail.id is not None
        target = trail.id
    joined: list[KnownReport] = []
    for report in [found, *neighbours]:
        session.refresh(report)
        if report.trail_id != target:
            report.trail_id = target
            session.add(report)
            repository.put_matches_on_trail(session, found_report_id=report.report_id, trail_id=target)
            joined.append(report)
    session.flush()
    return target, joined


def _extend_trail(
    session: Session,
    settings: Settings,
    trail_id: int,
    joined: Sequence[KnownReport],
    model_version: str,
    outcome: Outcome,
) -> None:
    """Each lost side matched to a sighting of the trail gets a match to the sightings that joined it now."""
    members = list(joined)
    matches = repository.matches_of_trail(session, trail_id)
    refused = {m.lost_key for m in matches if m.status == "dismissed" and m.dismissed_by == m.lost_user_id}
    sides: dict[str, tuple[LostSide, float]] = {}
    for match in matches:
        if match.lost_key in refused or match.lost_key in sides:
            continue
        side = side_of_match(session, match)
        if side is not None:
            sides[match.lost_key] = (side, match.score)
    if not sides:
        return
    stored = repository.pairs_of(session, [m.report_id for m in members])
    for member in members:
        for key, (side, score) in sides.items():
            if (member.report_id, key) in stored:
                continue
            verdict = judge(
                member, side, model_version=model_version, max_distance_km=settings.automatch_max_distance_km
            )
            if not verdict.ok:
                outcome.reject(f"trail: {verdict.reason}")
                continue
            pairing = Pairing(found=member, lost=side, score=score, distance_km=verdict.distance_km, via="trail")
            _store(session, settings, pairing, model_version, outcome)
            stored.add((member.report_id, key))
