"""What the matcher keeps from other services' events, and which changes ask for a new matching run.

Re-matching causes: a report or pet embedded (a new photo, a new model), a report reopened, a report
that moved or became active again, a pet reported lost (a lost report linked to it). Each queues a job
(`repository.queue_job`), woken after commit; the worker does the rest outside the consumer's transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from pawgle.common.events.embeddings import PetEmbedded, ReportEmbedded
from pawgle.common.events.pets import PetDeleted, PetSnapshot
from pawgle.common.events.reports import ReportSnapshot
from pawgle.common.workqueue import wake_after_commit
from pawgle.matcher import repository
from pawgle.matcher.models import KnownPet, KnownReport
from pawgle.matcher.rules import ACTIVE, naive, species_of
from pawgle.matcher.worker import JOBS_TOPIC


def _queue(session: Session, kind: str, subject_id: int) -> None:
    repository.queue_job(session, kind, subject_id)
    wake_after_commit(session, JOBS_TOPIC)


def on_report_snapshot(
    session: Session, *, data: ReportSnapshot, occurred_at: datetime, filed: bool, reopened: bool
) -> None:
    """Keep the report as it is now; match again when what matching depends on changed."""
    report = repository.get_report(session, data.report_id)
    before = None if report is None else (report.status, report.latitude, report.longitude, report.pet_id)
    if report is None:
        report = KnownReport(
            report_id=data.report_id,
            reporter_id=data.reporter_id,
            status=data.status,
            latitude=data.latitude,
            longitude=data.longitude,
            reported_at=naive(data.reported_at or occurred_at),
        )
    report.reporter_id, report.status = data.reporter_id, data.status
    report.latitude, report.longitude = data.latitude, data.longitude
    report.animal_name, report.type, report.breed = data.animal_name[:100], data.type[:100], data.breed[:100]
    report.species = species_of(data.type)[:40]
    report.pet_id, report.pet_owner_id = data.pet_id, data.pet_owner_id
    if data.reported_at is not None:
        report.reported_at = naive(data.reported_at)
    if filed and report.filed_at is None:
        report.filed_at = naive(occurred_at)
    session.add(report)
    session.flush()
    changed = before != (report.status, report.latitude, report.longitude, report.pet_id)
    if data.status not in ACTIVE or not (changed or reopened):
        return
    if report.model_version:
        _queue(session, "report", report.report_id)
    if data.status == "lost" and data.pet_id is not None:
        pet = repository.get_pet(session, data.pet_id)
        if pet is not None and pet.model_version:
            _queue(session, "pet", pet.pet_id)  # the pet is reported lost: its photos look for found reports


def on_report_status(session: Session, *, report_id: int, status: str) -> None:
    """Resolved or expired: no longer matched (its stored matches stay as they are)."""
    report = repository.get_report(session, report_id)
    if report is not None:
        report.status = status
        session.add(report)


def on_report_erased(session: Session, *, report_id: int) -> None:
    """Forget the report (its pairs stay stored, so a replay cannot match it again)."""
    report = repository.get_report(session, report_id)
    if report is not None:
        session.delete(report)


def on_report_embedded(session: Session, *, data: ReportEmbedded) -> None:
    report = repository.get_report(session, data.report_id)
    if report is not None:
        report.model_version = data.model_version[:120]
        session.add(report)
    # Queued even before report.filed arrives (another consumer): the worker waits for the projection.
    _queue(session, "report", data.report_id)


def on_pet_snapshot(session: Session, *, data: PetSnapshot) -> None:
    pet = repository.get_pet(session, data.pet_id) or KnownPet(pet_id=data.pet_id, owner_id=data.owner_id)
    pet.owner_id, pet.name, pet.type, pet.breed = data.owner_id, data.name[:100], data.type[:100], data.breed[:100]
    pet.species = species_of(data.type)[:40]
    session.add(pet)


def on_pet_embedded(session: Session, *, data: PetEmbedded) -> None:
    pet = repository.get_pet(session, data.pet_id)
    if pet is not None:
        pet.model_version = data.model_version[:120]
        session.add(pet)
    _queue(session, "pet", data.pet_id)


def on_pet_deleted(session: Session, *, data: PetDeleted) -> None:
    pet = repository.get_pet(session, data.pet_id)
    if pet is not None:
        session.delete(pet)
