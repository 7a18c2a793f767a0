"""The matches API's logic: list the caller's matches with cards, confirm and dismiss (either side)."""

from __future__ import annotations

from sqlmodel import Session

from pawgle.common.bus.outbox import add_event
from pawgle.common.db import utcnow
from pawgle.common.errors import BadRequest, Conflict, NotFound
from pawgle.common.events.matcher import MatchConfirmed, MatchDismissed
from pawgle.common.geo import cell_centre
from pawgle.matcher import metrics, repository
from pawgle.matcher.config import Settings
from pawgle.matcher.models import KnownPet, KnownReport, Match
from pawgle.matcher.schemas import MatchRead, PetCard, ReportCard, Sighting, TrailRead

STATUSES = ("pending", "confirmed", "dismissed")


def _participant_match(session: Session, *, match_id: int, user_id: int) -> Match:
    match = repository.get_match(session, match_id)
    # Someone else's match is as unknown as a missing one: ids are not an oracle.
    if match is None or user_id not in (match.lost_user_id, match.found_reporter_id):
        raise NotFound("Match not found.")
    return match


def list_matches(session: Session, *, settings: Settings, user_id: int, status: str | None) -> list[MatchRead]:
    """The caller's matches (pending and confirmed, or the one status asked for), best first."""
    if status is not None and status not in STATUSES:
        raise BadRequest(f"status must be one of {', '.join(STATUSES)} ({status[:20]!r} given).")
    rows = repository.matches_of_user(session, user_id, include_dismissed=status == "dismissed")
    rows = [m for m in rows if m.status == status] if status else rows
    return _read_many(session, settings=settings, user_id=user_id, rows=rows)


def get_match(session: Session, *, settings: Settings, user_id: int, match_id: int) -> MatchRead:
    match = _participant_match(session, match_id=match_id, user_id=user_id)
    return _read_many(session, settings=settings, user_id=user_id, rows=[match])[0]


def confirm_match(session: Session, *, settings: Settings, user_id: int, match_id: int, pet_home: bool) -> MatchRead:
    """Confirm as finder or owner; with pet_home the owner also says the pet is back (once per side)."""
    match = _participant_match(session, match_id=match_id, user_id=user_id)
    is_owner = user_id == match.lost_user_id
    if pet_home and not is_owner:
        raise BadRequest("Only the lost pet's owner can say the pet is home.")
    if match.status == "dismissed":
        raise Conflict("This match was dismissed; it cannot be confirmed.")
    already = match.confirmed_by_owner if is_owner else match.confirmed_by_finder
    newly_home = pet_home and not match.pet_home
    if not already or newly_home:
        if is_owner:
            match.confirmed_by_owner = True
        else:
            match.confirmed_by_finder = True
        match.pet_home = match.pet_home or pet_home
        match.status, match.updated_at = "confirmed", utcnow()
        session.add(match)
        add_event(
            session,
            MatchConfirmed(
                match_id=match.id or 0,
                by_user_id=user_id,
                found_report_id=match.found_report_id,
                pet_id=match.pet_id,
                lost_report_id=_lost_report_to_resolve(session, match),
                pet_home=pet_home,
            ),
        )
        metrics.MATCHES_CONFIRMED.labels(side="owner" if is_owner else "finder").inc()
    session.flush()
    return _read_many(session, settings=settings, user_id=user_id, rows=[match])[0]


def dismiss_match(session: Session, *, settings: Settings, user_id: int, match_id: int) -> MatchRead:
    """Dismiss as either side: the pair is never shown or matched again."""
    match = _participant_match(session, match_id=match_id, user_id=user_id)
    if match.status == "confirmed":
        raise Conflict("This match was confirmed; it cannot be dismissed.")
    if match.status != "dismissed":
        match.status, match.dismissed_by, match.updated_at = "dismissed", user_id, utcnow()
        session.add(match)
        add_event(session, MatchDismissed(match_id=match.id or 0, by_user_id=user_id))
        side = "owner" if user_id == match.lost_user_id else "finder"
        metrics.MATCHES_DISMISSED.labels(side=side).inc()
    session.flush()
    return _read_many(session, settings=settings, user_id=user_id, rows=[match])[0]


def _lost_report_to_resolve(session: Session, match: Match) -> int | None:
    """The matched lost report, else the pet's active lost report (what pet_home resolves)."""
    if match.lost_report_id is not None:
        return match.lost_report_id
    if match.pet_id is not None:
        report = repository.active_lost_report_of_pet(session, match.pet_id)
        return report.report_id if report is not None else None
    return None


# --- cards -----------------------------------------------------------------------------------------


def _report_card(report: KnownReport | None, *, user_id: int, settings: Settings) -> ReportCard | None:
    if report is None:
        return None
    mine = user_id in (report.reporter_id, report.pet_owner_id)
    lat, lon = (report.latitude, report.longitude)
    if not mine:
        lat, lon = cell_centre(lat, lon, cell_m=settings.privacy_cell_m)
    return ReportCard(
        id=report.report_id,
        status=report.status,
        animal_name=report.animal_name,
        type=report.type,
        breed=report.breed,
        latitude=lat,
        longitude=lon,
        reported_at=report.reported_at,
        is_mine=mine,
    )


def _pet_card(pet: KnownPet | None) -> PetCard | None:
    return None if pet is None else PetCard(id=pet.pet_id, name=pet.name, type=pet.type, breed=pet.breed)


def _trail(session: Session, match: Match, *, settings: Settings, matched_reports: set[int]) -> TrailRead | None:
    if match.trail_id is None:
        return None
    sightings = []
    for member in repository.trail_members(session, match.trail_id):
        if member.status != "found":
            continue
        lat, lon = cell_centre(member.latitude, member.longitude, cell_m=settings.privacy_cell_m)
        sightings.append(
            Sighting(
                report_id=member.report_id,
                latitude=lat,
                longitude=lon,
                reported_at=member.reported_at,
                matched=member.report_id in matched_reports,
            )
        )
    return TrailRead(id=match.trail_id, sightings=sightings)


def _read_many(session: Session, *, settings: Settings, user_id: int, rows: list[Match]) -> list[MatchRead]:
    report_ids = [m.found_report_id for m in rows] + [m.lost_report_id for m in rows if m.lost_report_id]
    reports = repository.reports_by_id(session, report_ids)
    pets = repository.pets_by_id(session, [m.pet_id for m in rows if m.pet_id is not None])
    matched_reports = {m.found_report_id for m in rows if m.status != "dismissed"}
    result = []
    for match in rows:
        assert match.id is not None
        is_owner = user_id == match.lost_user_id
        lost_report = reports.get(match.lost_report_id) if match.lost_report_id else None
        result.append(
            MatchRead(
                id=match.id,
                status=match.status,
                role="owner" if is_owner else "finder",
                score=match.score,
                distance_km=None if match.distance_km is None else round(match.distance_km, 1),
                via=match.via,
                created_at=match.created_at,
                confirmed_by_me=match.confirmed_by_owner if is_owner else match.confirmed_by_finder,
                confirmed_by_other=match.confirmed_by_finder if is_owner else match.confirmed_by_owner,
                pet_home=match.pet_home,
                found_report=_report_card(reports.get(match.found_report_id), user_id=user_id, settings=settings),
                lost_report=_report_card(lost_report, user_id=user_id, settings=settings),
                pet=_pet_card(pets.get(match.pet_id)) if match.pet_id is not None else None,
                trail=_trail(session, match, settings=settings, matched_reports=matched_reports) if is_owner else None,
            )
        )
    return result
