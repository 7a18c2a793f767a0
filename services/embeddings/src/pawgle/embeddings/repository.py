"""Every query of the embeddings service: subjects and the embedding jobs queue."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, inspect, update
from sqlmodel import Session, select

from pawgle.common.bus.tables import utcnow
from pawgle.common.workqueue import claim
from pawgle.embeddings.models import EmbeddingJob, Subject


def get_subject(session: Session, kind: str, subject_id: int) -> Subject | None:
    """One pet or report, or None."""
    return session.get(Subject, (kind, subject_id))


def subjects_by_keys(session: Session, keys: list[tuple[str, int]]) -> dict[tuple[str, int], Subject]:
    """Subjects for (kind, id) pairs, in one query per kind."""
    found: dict[tuple[str, int], Subject] = {}
    for kind in {kind for kind, _ in keys}:
        ids = [subject_id for k, subject_id in keys if k == kind]
        rows = session.exec(select(Subject).where(Subject.kind == kind, Subject.subject_id.in_(ids)))
        found.update({(row.kind, row.subject_id): row for row in rows})
    return found


def active_reports_of_pets(session: Session, pet_ids: list[int]) -> dict[int, Subject]:
    """Each pet's most recent active (lost or found) report."""
    if not pet_ids:
        return {}
    rows = session.exec(
        select(Subject)
        .where(Subject.kind == "report", Subject.pet_id.in_(pet_ids), Subject.status.in_(("lost", "found")))
        .order_by(Subject.subject_id)
    )
    return {row.pet_id: row for row in rows if row.pet_id is not None}


def pending_count(session: Session) -> int:
    """Pets and reports whose photos wait for the model (the /search `pending_features_count`)."""
    return int(session.exec(select(func.count()).select_from(EmbeddingJob)).one())


def save_subject(session: Session, subject: Subject) -> Subject:
    """Insert or update a subject."""
    subject.updated_at = utcnow()
    if subject in session or inspect(subject).transient:
        # Loaded by this session, or new (its caller found no row): no merge, which would look it up again.
        session.add(subject)
        session.flush()
        return subject
    merged = session.merge(subject)
    session.flush()
    return merged


def delete_subject(session: Session, kind: str, subject_id: int) -> None:
    """Forget a pet or report and any job waiting for it."""
    session.execute(delete(EmbeddingJob).where(EmbeddingJob.kind == kind, EmbeddingJob.subject_id == subject_id))
    session.execute(delete(Subject).where(Subject.kind == kind, Subject.subject_id == subject_id))


def queue_job(session: Session, kind: str, subject_id: int, image_keys: list[str]) -> EmbeddingJob:
    """Ask for a pet's or report's photos to be embedded; a job already waiting takes the new photos."""
    job = session.exec(
        select(EmbeddingJob).where(EmbeddingJob.kind == kind, EmbeddingJob.subject_id == subject_id)
    ).first()
    if job is None:
        job = EmbeddingJob(kind=kind, subject_id=subject_id, image_keys=list(image_keys))
    else:
        job.image_keys = list(image_keys)
        job.generation += 1
        job.attempts = 0
        job.due_at = utcnow()
        job.last_error = ""
    session.add(job)
    session.flush()
    return job


def claim_jobs(session: Session, *, owner: str, limit: int, lease_s: float) -> list[EmbeddingJob]:
    """Lease up to `limit` due jobs, oldest first."""
    now = utcnow()
    return claim(
        session,
        EmbeddingJob,
        key="id",
        due=EmbeddingJob.due_at <= now,
        order_by=[EmbeddingJob.due_at, EmbeddingJob.id],
        limit=limit,
        lease_s=lease_s,
        owner=owner,
        now=now,
    )


def hold_job(session: Session, job_id: int, generation: int) -> bool:
    """Lock the job row if it still asks for this generation (a newer event or a deletion wins otherwise)."""
    result = session.execute(
        update(EmbeddingJob)
        .where(EmbeddingJob.id == job_id, EmbeddingJob.generation == generation)
        .values(lease_owner=EmbeddingJob.lease_owner)
    )
    return bool(getattr(result, "rowcount", 0))


def finish_job(session: Session, job_id: int) -> None:
    """The job is done (embedded, or failed for good)."""
    session.execute(delete(EmbeddingJob).where(EmbeddingJob.id == job_id))


def retry_job_later(session: Session, job_id: int, *, attempts: int, delay_s: float, error: str) -> None:
    """Give the job back, due again after `delay_s`."""
    due: datetime = utcnow() + timedelta(seconds=delay_s)
    session.execute(
        update(EmbeddingJob)
        .where(EmbeddingJob.id == job_id)
        .values(attempts=attempts, due_at=due, last_error=error[:500], lease_owner=None, lease_until=None)
    )
