"""Reports as their reporters, pet owners and everyone else see them (L1-L6, X2, renewal); no HTTP here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlmodel import Session

from pawgle.common.bus.outbox import add_event
from pawgle.common.db import save, utcnow
from pawgle.common.errors import BadRequest, Forbidden, NotFound
from pawgle.common.events.reports import ReportFiled, ReportReopened, ReportResolved, ReportSnapshot, ReportUpdated
from pawgle.common.photos import StoredPhoto
from pawgle.reports import repository
from pawgle.reports.config import Settings
from pawgle.reports.forms import PetNotFound, ReportForm
from pawgle.reports.metrics import REPORTS_FILED
from pawgle.reports.models import KnownPet, Report
from pawgle.reports.privacy import public_position
from pawgle.reports.repository import MapQuery
from pawgle.reports.views import Viewer

PHOTO_PREFIX = "reports"
STATUSES = ("lost", "found", "resolved")
INVALID_STATUS = "Invalid status value. Must be 'lost', 'found', or 'resolved'"
NO_PERMISSION = "You don't have permission to update this report"
NOT_FOUND = "Pet location not found"


def ttl_for(status: str, settings: Settings) -> timedelta:
    """How long a report of this status stays on the maps unless renewed."""
    return timedelta(days=settings.lost_ttl_days if status == "lost" else settings.found_ttl_days)


def snapshot_fields(report: Report) -> dict[str, Any]:
    """The fields of ReportSnapshot events: the exact position, never contact data."""
    assert report.id is not None
    return {
        "report_id": report.id,
        "reporter_id": report.reporter_id,
        "status": report.status,
        "latitude": report.latitude,
        "longitude": report.longitude,
        "animal_name": report.pet_name or report.animal_name,
        "type": report.pet_type or report.type,
        "breed": report.pet_breed or report.breed,
        "category": report.pet_category or report.category,
        "pet_id": report.pet_id,
        "pet_owner_id": report.pet_owner_id,
        "image_key": report.image_key,
        "reported_at": report.reported_at,
        "wants_pet": report.wants_pet and report.pet_id is None,
        "expires_at": report.expires_at,
        "partner_id": report.partner_id,
    }


def publish(session: Session, event: type[ReportSnapshot], report: Report) -> None:
    """Write a snapshot event of the report to the outbox, in the caller's transaction."""
    add_event(session, event(**snapshot_fields(report)))


def link_pet(report: Report, pet: KnownPet) -> None:
    """Link a report to a pet, showing the pet's current name, type, breed and category."""
    report.pet_id, report.pet_owner_id = pet.pet_id, pet.owner_id
    report.pet_name, report.pet_type, report.pet_breed, report.pet_category = (
        pet.name,
        pet.type,
        pet.breed,
        pet.category,
    )
    report.wants_pet = False


def unlink_pet(report: Report) -> None:
    """The pet is gone: the report survives with pet null and its own name, type and breed."""
    report.pet_id = report.pet_owner_id = None
    report.pet_name = report.pet_type = report.pet_breed = report.pet_category = None


def file_report(
    *,
    session: Session,
    reporter_id: int,
    form: ReportForm,
    photo: StoredPhoto | None,
    settings: Settings,
    partner_id: int | None = None,
) -> Report:
    """Save a new report by its reporter (D10), link the reporter's pet if wanted, and publish report.filed."""
    report = new_report(
        session=session, reporter_id=reporter_id, form=form, photo=photo, settings=settings, partner_id=partner_id
    )
    save(session, report)
    announce_filed(session, report)
    return report


def announce_filed(session: Session, report: Report) -> None:
    """report.filed for a report just saved (it has its id), in the caller's transaction."""
    publish(session, ReportFiled, report)
    REPORTS_FILED.labels(report.status, "partner" if report.partner_id is not None else "app").inc()


def new_report(
    *,
    session: Session,
    reporter_id: int,
    form: ReportForm,
    photo: StoredPhoto | None,
    settings: Settings,
    partner_id: int | None = None,
) -> Report:
    """A new report by its reporter (D10), linked to the reporter's pet if wanted; not saved yet."""
    now = utcnow()
    map_lat, map_lon = public_position(form.status, form.latitude, form.longitude, cell_m=settings.privacy_cell_m)
    report = Report(
        reporter_id=reporter_id,
        status=form.status,
        latitude=form.latitude,
        longitude=form.longitude,
        map_lat=map_lat,
        map_lon=map_lon,
        animal_name=form.animal_name,
        type=form.type,
        breed=form.breed,
        category=form.category,
        description=form.description,
        contact_name=form.contact_name,
        contact_phone=form.contact_phone,
        contact_email=form.contact_email,
        last_seen_date=form.last_seen_date,
        last_seen_time=form.last_seen_time,
        image_key=photo.key if photo else None,
        # Without a photo there is nothing to extract features from.
        feature_status="pending" if photo else "completed",
        reported_at=now,
        expires_at=now + ttl_for(form.status, settings),
        partner_id=partner_id,
    )
    if form.pet_id is not None:
        pet = repository.known_pet(session, form.pet_id)
        if pet is None or pet.deleted or pet.owner_id != reporter_id:
            raise PetNotFound()
        link_pet(report, pet)
    elif form.status == "lost" or form.register_pet:
        pet = repository.matching_pet(
            session, owner_id=reporter_id, name=form.animal_name, type_=form.type, breed=form.breed
        )
        if pet is not None:
            link_pet(report, pet)
        else:
            # The pets service links or creates it from report.filed; its pet.created links this report.
            report.wants_pet = True
    return report


def viewer_of(*, session: Session, user_id: int | None) -> Viewer:
    """The caller with the reports they discuss in a conversation (they see those exactly)."""
    if user_id is None:
        return Viewer(None)
    return Viewer(user_id, repository.conversation_reports(session, user_id))


def map_reports(*, session: Session, query: MapQuery) -> Sequence[Any]:
    """Active, unexpired reports for the map lists (L1-L3), newest first."""
    return repository.active_reports(session, query)


def my_reports(*, session: Session, user_id: int, settings: Settings) -> Sequence[Any]:
    """L4: every report the caller filed or that is linked to their pets, resolved and expired included."""
    return repository.reports_of(session, user_id, limit=settings.list_cap)


def _own_report(session: Session, *, report_id: int, user_id: int, reporter_only: bool = False) -> Report:
    report = repository.lock_report(session, report_id)
    if report is None:
        raise NotFound(NOT_FOUND)
    allowed = report.reporter_id == user_id or (not reporter_only and report.pet_owner_id == user_id)
    if not allowed:
        raise Forbidden(NO_PERMISSION)
    return report


def change_status(*, session: Session, user_id: int, report_id: int, status: object, settings: Settings) -> Report:
    """L6: the reporter or the linked pet's owner sets lost, found or resolved."""
    if not isinstance(status, str) or status not in STATUSES:
        raise BadRequest(INVALID_STATUS)
    report = _own_report(session, report_id=report_id, user_id=user_id)
    if status == report.status:
        return report
    was = report.status
    now = utcnow()
    report.status = status
    if status == "resolved":
        report.resolved_at = now
        save(session, report)
        assert report.id is not None
        add_event(session, ReportResolved(report_id=report.id, reporter_id=report.reporter_id))
        return report
    report.resolved_at = None
    report.map_lat, report.map_lon = public_position(
        status, report.latitude, report.longitude, cell_m=settings.privacy_cell_m
    )
    if was == "resolved" or report.expired_at is not None:
        # Back on the map: a fresh lifetime, as if filed now.
        _restart_lifetime(report, settings)
        save(session, report)
        publish(session, ReportReopened, report)
    else:
        save(session, report)
        publish(session, ReportUpdated, report)
    return report


def resolve_pet_home(*, session: Session, user_id: int, report_id: int, settings: Settings) -> bool:
    """match.confirmed with pet_home: resolve a lost report if `user_id` may (its reporter or pet owner)."""
    report = repository.lock_report(session, report_id)
    if report is None or report.status != "lost" or user_id not in (report.reporter_id, report.pet_owner_id):
        return False
    change_status(session=session, user_id=user_id, report_id=report_id, status="resolved", settings=settings)
    return True


def _restart_lifetime(report: Report, settings: Settings) -> None:
    report.expires_at = utcnow() + ttl_for(report.status, settings)
    report.expiring_sent_at = None
    report.expired_at = None


def renew(*, session: Session, user_id: int, report_id: int, settings: Settings) -> Report:
    """The reporter keeps the report on the maps for another full lifetime (an expired one comes back)."""
    report = _own_report(session, report_id=report_id, user_id=user_id, reporter_only=True)
    if report.status == "resolved":
        raise BadRequest("A resolved report is not on the map; set it to lost or found to show it again.")
    was_expired = report.expired_at is not None
    _restart_lifetime(report, settings)
    save(session, report)
    publish(session, ReportReopened if was_expired else ReportUpdated, report)
    return report
