"""What the consumed events do: record the pet or report, queue its photos, delete or re-flag its vectors.

Consumers only write rows (and tell the vector store about deletions and status changes, both idempotent):
the model never runs inside their transaction. The embedding worker (worker.py) picks the jobs up.
"""

from __future__ import annotations

from sqlmodel import Session

from pawgle.common.events.pets import PetDeleted, PetSnapshot
from pawgle.common.events.reports import ReportSnapshot
from pawgle.common.workqueue import wake_after_commit
from pawgle.embeddings import repository
from pawgle.embeddings.index import VectorIndex
from pawgle.embeddings.models import Subject

JOBS_TOPIC = "embedding-jobs"


def _queue(session: Session, subject: Subject) -> None:
    subject.feature_status = "pending"
    repository.save_subject(session, subject)
    repository.queue_job(session, subject.kind, subject.subject_id, subject.image_keys)
    wake_after_commit(session, JOBS_TOPIC)


def on_pet_snapshot(session: Session, *, index: VectorIndex, data: PetSnapshot, photos_changed: bool) -> None:
    """A pet was created or updated: keep what search shows, re-embed only when its photos changed."""
    known = repository.get_subject(session, "pet", data.pet_id)
    subject = known or Subject(kind="pet", subject_id=data.pet_id, owner_id=data.owner_id)
    subject.owner_id = data.owner_id
    subject.name, subject.type, subject.breed = data.name, data.type, data.breed
    subject.searchable = data.is_public
    changed = photos_changed or known is None or list(subject.image_keys) != list(data.image_keys)
    subject.image_keys = list(data.image_keys)
    if not subject.image_keys:
        # A pet created by a lost report has no photos: nothing to embed, nothing to find by image.
        index.forget_subject("pet", data.pet_id)
        subject.feature_status, subject.vector_count = "completed", 0
        repository.save_subject(session, subject)
        return
    if changed:
        _queue(session, subject)
        return
    repository.save_subject(session, subject)
    if subject.vector_count:
        index.reflag(subject)


def on_pet_deleted(session: Session, *, index: VectorIndex, data: PetDeleted) -> None:
    """A pet is gone: its vectors, its row and any waiting job go with it."""
    repository.delete_subject(session, "pet", data.pet_id)
    index.forget_subject("pet", data.pet_id)


def on_report_snapshot(session: Session, *, index: VectorIndex, data: ReportSnapshot, embed: bool) -> None:
    """A report was filed or reopened (or changed): record it; embed its photo when asked and it has one."""
    known = repository.get_subject(session, "report", data.report_id)
    subject = known or Subject(kind="report", subject_id=data.report_id, owner_id=data.reporter_id)
    subject.owner_id = data.reporter_id
    subject.name, subject.type, subject.breed = data.animal_name, data.type, data.breed
    subject.status = data.status
    subject.latitude, subject.longitude = data.latitude, data.longitude
    subject.pet_id = data.pet_id
    keys = [data.image_key] if data.image_key else []
    photos_changed = keys != list(subject.image_keys)
    subject.image_keys = keys
    if embed and keys and (known is None or photos_changed or not subject.vector_count):
        _queue(session, subject)
        return
    repository.save_subject(session, subject)
    if subject.vector_count:
        index.reflag(subject)


def on_report_status(session: Session, *, index: VectorIndex, report_id: int, status: str) -> None:
    """A report was resolved or expired: its vectors stay but are no longer active."""
    subject = repository.get_subject(session, "report", report_id)
    if subject is None:
        return
    subject.status = status
    repository.save_subject(session, subject)
    if subject.vector_count:
        index.reflag(subject)
