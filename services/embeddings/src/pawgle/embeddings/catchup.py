"""After a model switch: make this model's collection hold every subject's current photos.

A reindex (reindex.py) fills a new model's collection while the old model's pods keep serving; flags and
deletions reach every model's collection as they happen (index.py), but new photos are embedded only by the
model of the pod that took the event. `subjects.model_key` says which model last embedded a subject's
current photos. This job, run periodically by every pod, takes subjects embedded by another model and
either finds their current photos already in this model's collection (a reindex put them there: it only
marks them) or queues their photos for this pod's worker. During a rolling switch old pods may keep
embedding for a while; each run picks up what they did, so the collection converges once they are gone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from pawgle.common.workqueue import wake_after_commit
from pawgle.embeddings import repository
from pawgle.embeddings.index import VectorIndex, photos_fingerprint
from pawgle.embeddings.ingest import JOBS_TOPIC
from pawgle.embeddings.models import Subject
from pawgle.embeddings.vectors.port import Kind, point_id

log = logging.getLogger(__name__)
PAGE = 500


def holding_current_photos(index: VectorIndex, subjects: Sequence[Subject]) -> set[tuple[str, int]]:
    """The (kind, id) of those subjects whose mean vector in the collection was made from their current photos."""
    ids = {point_id(_kind(s), s.subject_id, "mean"): s for s in subjects}
    found = index.store.payloads(index.collection, list(ids))
    return {
        (subject.kind, subject.subject_id)
        for pid, subject in ids.items()
        if found.get(pid, {}).get("photos") == photos_fingerprint(subject.image_keys)
    }


def _kind(subject: Subject) -> Kind:
    return "pet" if subject.kind == "pet" else "report"


def catch_up(session: Session, *, index: VectorIndex, limit: int = PAGE) -> tuple[int, int]:
    """One page of subjects embedded by another model: (marked as already here, queued); the caller commits."""
    rows = session.exec(
        select(Subject)
        .where(
            Subject.feature_status == "completed",
            Subject.vector_count > 0,
            Subject.model_key != index.model.key,
        )
        .order_by(Subject.kind, Subject.subject_id)
        .limit(limit)
    ).all()
    here = holding_current_photos(index, rows)
    marked = queued = 0
    for subject in rows:
        if (subject.kind, subject.subject_id) in here:
            subject.model_key = index.model.key
            repository.save_subject(session, subject)
            marked += 1
            continue
        subject.feature_status = "pending"
        repository.save_subject(session, subject)
        repository.queue_job(session, subject.kind, subject.subject_id, subject.image_keys)
        queued += 1
    if queued:
        wake_after_commit(session, JOBS_TOPIC)
    if rows:
        log.info("catch-up of %s: %d already there, %d queued", index.collection, marked, queued)
    return marked, queued


def catch_up_all(engine: Engine, *, index: VectorIndex, page: int = PAGE) -> tuple[int, int]:
    """Pages of `catch_up`, each its own short transaction, until none is left (the periodic job)."""
    marked = queued = 0
    while True:
        with Session(engine) as session, session.begin():
            done = catch_up(session, index=index, limit=page)
        marked, queued = marked + done[0], queued + done[1]
        if sum(done) < page:
            return marked, queued
