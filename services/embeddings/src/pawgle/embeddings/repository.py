"""Every query of the embeddings service: subjects and the embedding jobs queue.

The consumers and the worker's settle step run once per event, so their queries are plain statements built
once (no ORM object, no unit-of-work flush): the ORM's per-object bookkeeping and SQLModel's validation were
most of the path's CPU per photo besides the model. The rest (search, catch-up, reindex) uses the ORM.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BindParameter, bindparam, delete, func, insert, inspect, update
from sqlmodel import Session, select

from pawgle.common.bus.tables import utcnow
from pawgle.common.workqueue import claim
from pawgle.embeddings.models import EmbeddingJob, Subject

_SUBJECTS = Subject.__table__
_JOBS = EmbeddingJob.__table__
_SUBJECT_KEY = (_SUBJECTS.c.kind == bindparam("key_kind")) & (_SUBJECTS.c.subject_id == bindparam("key_id"))
_SELECT_SUBJECT = select(_SUBJECTS).where(_SUBJECT_KEY)
_INSERT_SUBJECT = insert(_SUBJECTS)
_UPDATE_SUBJECT = update(_SUBJECTS).where(_SUBJECT_KEY)  # SET: the columns the parameters name
_SUBJECT_COLUMNS = tuple(column.name for column in _SUBJECTS.columns)
_JOB_KEY = (_JOBS.c.kind == bindparam("key_kind")) & (_JOBS.c.subject_id == bindparam("key_id"))
_SELECT_JOB_ID = select(_JOBS.c.id).where(_JOB_KEY)
_INSERT_JOB = insert(_JOBS)
_REQUEUE_JOB = (
    update(_JOBS)
    .where(_JOBS.c.id == bindparam("job_id"))
    .values(
        image_keys=bindparam("image_keys"),
        generation=_JOBS.c.generation + 1,
        attempts=0,
        due_at=bindparam("due_at"),
        last_error="",
    )
)
_JOB_IDS: BindParameter[list[int]] = bindparam("job_ids", expanding=True)
# A no-op write that takes each job row's lock (MySQL) for the rest of the settle transaction.
_LOCK_JOBS = update(_JOBS).where(_JOBS.c.id.in_(_JOB_IDS)).values(lease_owner=_JOBS.c.lease_owner)
_JOB_GENERATIONS = select(_JOBS.c.id, _JOBS.c.kind, _JOBS.c.subject_id, _JOBS.c.generation).where(
    _JOBS.c.id.in_(_JOB_IDS)
)
_DELETE_JOBS = delete(_JOBS).where(_JOBS.c.id.in_(_JOB_IDS))
_MARK_EMBEDDED = (
    update(_SUBJECTS)
    .where(_SUBJECT_KEY)
    .values(
        feature_status="completed",
        vector_count=bindparam("vector_count"),
        model_key=bindparam("model_key"),
        updated_at=bindparam("updated_at"),
    )
)


def new_subject_state(kind: str, subject_id: int, owner_id: int) -> dict[str, Any]:
    """Every column of a subject not seen before, at its defaults (what `Subject(...)` would hold)."""
    return {
        "kind": kind,
        "subject_id": subject_id,
        "owner_id": owner_id,
        "name": "",
        "type": "",
        "breed": "",
        "status": "active",
        "searchable": True,
        "image_keys": [],
        "latitude": None,
        "longitude": None,
        "pet_id": None,
        "feature_status": "pending",
        "model_key": "",
        "vector_count": 0,
        "updated_at": utcnow(),
    }


def subject_state(session: Session, kind: str, subject_id: int) -> dict[str, Any] | None:
    """A subject's row as a dict of its columns, or None (one statement, no ORM object)."""
    connection = session.connection()
    row = connection.execute(_SELECT_SUBJECT, {"key_kind": kind, "key_id": subject_id}).mappings().first()
    return dict(row) if row is not None else None


def write_subject_state(session: Session, state: Mapping[str, Any], *, exists: bool) -> None:
    """Insert (`exists` False) or update a subject from the dict of all its columns."""
    values = {name: state[name] for name in _SUBJECT_COLUMNS}
    values["updated_at"] = utcnow()
    connection = session.connection()
    if not exists:
        connection.execute(_INSERT_SUBJECT, values)
        return
    values["key_kind"], values["key_id"] = values.pop("kind"), values.pop("subject_id")
    connection.execute(_UPDATE_SUBJECT, values)


def subject_from_state(state: Mapping[str, Any]) -> Subject:
    """A detached `Subject` holding `state` (for the vector index's payload code)."""
    return Subject(**{name: state[name] for name in _SUBJECT_COLUMNS})


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


def queue_job(session: Session, kind: str, subject_id: int, image_keys: list[str]) -> None:
    """Ask for a pet's or report's photos to be embedded; a job already waiting takes the new photos.

    A job taken over gets a new generation, so a worker embedding its older photos settles nothing.
    """
    connection = session.connection()
    job_id = connection.execute(_SELECT_JOB_ID, {"key_kind": kind, "key_id": subject_id}).scalar()
    now = utcnow()
    if job_id is not None:
        connection.execute(_REQUEUE_JOB, {"job_id": job_id, "image_keys": list(image_keys), "due_at": now})
        return
    job = {"kind": kind, "subject_id": subject_id, "image_keys": list(image_keys), "generation": 1, "attempts": 0}
    job.update(due_at=now, last_error="", lease_owner=None, lease_until=None)
    connection.execute(_INSERT_JOB, job)


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


def hold_jobs(session: Session, jobs: Mapping[int, tuple[str, int, int]]) -> set[int]:
    """Lock these job rows (id: the kind, subject id and generation embedded); returns the ids still asking
    for what was embedded. The others were deleted or replaced by newer photos: their results are dropped.

    A row is compared on all three, not the id alone: SQLite reuses the id of a deleted job for the next one.
    """
    if not jobs:
        return set()
    connection = session.connection()
    ids = list(jobs)
    connection.execute(_LOCK_JOBS, {"job_ids": ids})
    rows = connection.execute(_JOB_GENERATIONS, {"job_ids": ids})
    return {int(row.id) for row in rows if jobs[int(row.id)] == (row.kind, row.subject_id, row.generation)}


def mark_embedded(session: Session, embedded: Iterable[tuple[str, int, int]], *, model_key: str) -> None:
    """Subjects (kind, id, photo count) whose vectors are stored: completed, by this model (one statement)."""
    now = utcnow()
    rows = [
        {"key_kind": kind, "key_id": subject_id, "vector_count": count, "model_key": model_key, "updated_at": now}
        for kind, subject_id, count in embedded
    ]
    if rows:
        session.connection().execute(_MARK_EMBEDDED, rows)


def finish_jobs(session: Session, job_ids: list[int]) -> None:
    """These jobs are done (one statement)."""
    if job_ids:
        session.connection().execute(_DELETE_JOBS, {"job_ids": job_ids})


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
