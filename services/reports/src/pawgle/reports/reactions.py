"""What the reports service does with the events it consumes (pet.*, conversation.opened, user.deleted)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlmodel import Session

from pawgle.common.blobs import BlobStore
from pawgle.common.bus.outbox import add_event
from pawgle.common.db import save
from pawgle.common.events.auth import UserDeleted
from pawgle.common.events.chat import ConversationOpened
from pawgle.common.events.embeddings import EmbeddingFailed, ReportEmbedded
from pawgle.common.events.matcher import MatchConfirmed
from pawgle.common.events.pets import PetDeleted, PetSnapshot
from pawgle.common.events.reports import ReportErased, ReportUpdated
from pawgle.common.photos import thumbnail_key_for
from pawgle.reports import repository, service
from pawgle.reports.config import Settings
from pawgle.reports.models import KnownPet, Report

log = logging.getLogger(__name__)


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo is not None else moment


def on_pet_changed(session: Session, *, data: PetSnapshot, occurred_at: datetime) -> None:
    """Keep the pet's names; show them on its linked reports; link the owner's reports waiting for it."""
    at = _naive_utc(occurred_at)
    pet = repository.known_pet(session, data.pet_id)
    if pet is not None and (pet.deleted or pet.updated_at > at):
        return  # deleted for good, or this event is older than what we know
    pet = pet or KnownPet(pet_id=data.pet_id, owner_id=data.owner_id, name="", type="", breed="", category="")
    pet.owner_id, pet.name, pet.type, pet.breed = data.owner_id, data.name[:100], data.type[:100], data.breed[:100]
    pet.category, pet.updated_at = data.category[:16], at
    save(session, pet)
    for report in repository.reports_linked_to(session, data.pet_id):
        service.link_pet(report, pet)
        save(session, report)
    for report in repository.reports_waiting_for(session, pet):
        service.link_pet(report, pet)
        save(session, report)
        service.publish(session, ReportUpdated, report)


def on_pet_deleted(session: Session, *, data: PetDeleted) -> None:
    """Linked reports survive with pet null; the pet is remembered as deleted so a late pet.updated is ignored."""
    pet = repository.known_pet(session, data.pet_id) or KnownPet(
        pet_id=data.pet_id, owner_id=data.owner_id, name="", type="", breed="", category=""
    )
    pet.deleted, pet.name, pet.type, pet.breed = True, "", "", ""
    save(session, pet)
    for report in repository.reports_linked_to(session, data.pet_id):
        service.unlink_pet(report)
        save(session, report)
        service.publish(session, ReportUpdated, report)


def on_conversation_opened(session: Session, *, data: ConversationOpened) -> None:
    """The participants of a conversation the matcher opened about a report see its exact place.

    Only a match's conversation counts: anyone signed in may start a conversation with a reporter (to say
    they have seen the pet), and that alone must not reveal where the reporter lives.
    """
    if data.match_id is None:
        return
    repository.add_viewers(session, data.report_id, data.participant_ids)


def on_user_deleted(session: Session, *, data: UserDeleted, blobs: BlobStore | None) -> None:
    """Erase the user's reports (position, contact fields, photo) and forget them as a viewer.

    A report is the reporter's personal data (often their home, their phone): nothing of it is kept.
    Reports others filed about the user's pets stay; pet.deleted unlinks them.
    """
    reports = repository.user_reports(session, data.user_id)
    keys = [r.image_key for r in reports if r.image_key]
    ids = [r.id for r in reports if r.id is not None]
    for report in reports:
        assert report.id is not None
        add_event(session, ReportErased(report_id=report.id, reporter_id=report.reporter_id))
        session.delete(report)
    repository.forget_viewers(session, user_id=data.user_id, report_ids=ids)
    session.flush()
    if blobs is not None:
        for key in keys:
            for each in (key, thumbnail_key_for(key)):
                try:
                    blobs.delete(each)
                except Exception:  # noqa: BLE001 - an orphan blob is found by the next sweep; the rows are gone
                    log.warning("could not delete report photo %s", each, exc_info=True)


def on_match_confirmed(session: Session, *, data: MatchConfirmed, settings: Settings) -> None:
    """The lost side's owner says the pet is home: its lost report is resolved (report.resolved).

    `lost_report_id` when the match names one, else every active lost report of `pet_id`. Only the
    report's reporter or the linked pet's owner may resolve it, as through L6; anything else (a found
    report, one already resolved, someone else's) is left alone, so a redelivery changes nothing.
    """
    if not data.pet_home:
        return
    if data.lost_report_id is not None:
        report_ids = [data.lost_report_id]
    elif data.pet_id is not None:
        report_ids = repository.lost_reports_of_pet(session, data.pet_id)
    else:
        return
    by = data.by_user_id
    for report_id in report_ids:
        if not service.resolve_pet_home(session=session, user_id=by, report_id=report_id, settings=settings):
            log.info("match %s: report %s left as is (not a lost report of user %s)", data.match_id, report_id, by)


def _photo_report(session: Session, report_id: int, occurred_at: datetime) -> Report | None:
    """The report, unless the verdict is about a photo it no longer has (or never had)."""
    report = session.get(Report, report_id)
    if report is None or report.image_key is None:
        return None
    if (report.photo_changed_at or report.reported_at) > _naive_utc(occurred_at):
        return None
    return report


def on_report_embedded(session: Session, *, data: ReportEmbedded, occurred_at: datetime) -> None:
    """The report's photo is in the vector store: feature_status completed."""
    report = _photo_report(session, data.report_id, occurred_at)
    if report is not None and report.feature_status != "completed":
        report.feature_status = "completed"
        save(session, report)


def on_embedding_failed(session: Session, *, data: EmbeddingFailed, occurred_at: datetime) -> None:
    """The image model gave up on the report's photo: feature_status failed."""
    if data.subject_kind != "report":
        return
    report = _photo_report(session, data.subject_id, occurred_at)
    if report is not None and report.feature_status != "failed":
        report.feature_status = "failed"
        save(session, report)
