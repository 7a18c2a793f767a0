"""What the consumed events do: record the pet or report, queue its photos, delete or re-flag its vectors.

Consumers only write rows (and tell the vector store about deletions and status changes, both idempotent):
the model never runs inside their transaction. The embedding worker (worker.py) picks the jobs up. A handler
runs once per event, so it reads and writes the subject's row as plain statements (repository.py), not ORM
objects.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from pawgle.common.events.pets import PetDeleted, PetSnapshot
from pawgle.common.events.reports import ReportSnapshot
from pawgle.common.workqueue import wake_after_commit
from pawgle.embeddings import repository
from pawgle.embeddings.index import VectorIndex

JOBS_TOPIC = "embedding-jobs"


def _queue(session: Session, state: dict[str, Any], *, exists: bool) -> None:
    state["feature_status"] = "pending"
    repository.write_subject_state(session, state, exists=exists)
    repository.queue_job(session, state["kind"], state["subject_id"], state["image_keys"])
    wake_after_commit(session, JOBS_TOPIC)


def _save_and_reflag(session: Session, index: VectorIndex, state: dict[str, Any], *, exists: bool) -> None:
    """Record what changed; a subject with vectors gets its new status, visibility and position on them."""
    repository.write_subject_state(session, state, exists=exists)
    if state["vector_count"]:
        index.reflag(repository.subject_from_state(state))


def on_pet_snapshot(session: Session, *, index: VectorIndex, data: PetSnapshot, photos_changed: bool) -> None:
    """A pet was created or updated: keep what search shows, re-embed only when its photos changed."""
    known = repository.subject_state(session, "pet", data.pet_id)
    state = known or repository.new_subject_state("pet", data.pet_id, data.owner_id)
    changed = photos_changed or known is None or list(state["image_keys"]) != list(data.image_keys)
    state.update(owner_id=data.owner_id, name=data.name, type=data.type, breed=data.breed)
    state.update(searchable=data.is_public, image_keys=list(data.image_keys))
    if not data.image_keys:
        # A pet created by a lost report has no photos: nothing to embed, nothing to find by image.
        index.forget_subject("pet", data.pet_id)
        state.update(feature_status="completed", vector_count=0)
        repository.write_subject_state(session, state, exists=known is not None)
        return
    if changed:
        _queue(session, state, exists=known is not None)
        return
    _save_and_reflag(session, index, state, exists=True)


def on_pet_deleted(session: Session, *, index: VectorIndex, data: PetDeleted) -> None:
    """A pet is gone: its vectors, its row and any waiting job go with it."""
    repository.delete_subject(session, "pet", data.pet_id)
    index.forget_subject("pet", data.pet_id)


def on_report_snapshot(session: Session, *, index: VectorIndex, data: ReportSnapshot, embed: bool) -> None:
    """A report was filed or reopened (or changed): record it; embed its photo when asked and it has one."""
    known = repository.subject_state(session, "report", data.report_id)
    state = known or repository.new_subject_state("report", data.report_id, data.reporter_id)
    keys = [data.image_key] if data.image_key else []
    photos_changed = keys != list(state["image_keys"])
    state.update(owner_id=data.reporter_id, name=data.animal_name, type=data.type, breed=data.breed)
    state.update(status=data.status, latitude=data.latitude, longitude=data.longitude, pet_id=data.pet_id)
    state["image_keys"] = keys
    if embed and keys and (known is None or photos_changed or not state["vector_count"]):
        _queue(session, state, exists=known is not None)
        return
    _save_and_reflag(session, index, state, exists=known is not None)


def on_report_status(session: Session, *, index: VectorIndex, report_id: int, status: str) -> None:
    """A report was resolved or expired: its vectors stay but are no longer active."""
    state = repository.subject_state(session, "report", report_id)
    if state is None:
        return
    state["status"] = status
    _save_and_reflag(session, index, state, exists=True)
