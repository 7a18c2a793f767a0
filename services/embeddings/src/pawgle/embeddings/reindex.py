"""Fill one model's collection from what the service knows of every pet and report, with progress.

Switching model is a replay of the pet and report events into the new model's own collection
(`pawgle-<model name>-<version>`): the service's `subjects` table is its projection of those events (the
latest photos, status, visibility and position of each pet and report), so replaying it gives the collection
exactly what a replay of the streams would, without needing the streams to keep every event since the
start. Vectors of the two models never meet: each has its own collection and `model` / `model_version` in
every payload.

`reindex` (run by `pawgle-ops embeddings reindex --model ...`) works while the service keeps serving from
its current collection: a fill pass over every subject, then catch-up passes over the subjects changed (or
deleted) meanwhile, until a pass finds nothing to do. A subject whose current photos are already in the
collection is skipped, so an interrupted reindex resumes where it stopped. Then the switch: the service is
rolled to the new model setting; its pods find their collection full and serve from it at once, and their
catch-up job (catchup.py) embeds whatever the old pods took in during the roll-out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from pawgle.common.blobs import BlobStore
from pawgle.common.bus.tables import utcnow
from pawgle.embeddings.catchup import holding_current_photos
from pawgle.embeddings.index import VectorIndex, subject_flags
from pawgle.embeddings.model.port import ImageEmbedder, ImageEmbedding, ModelError
from pawgle.embeddings.models import Subject
from pawgle.embeddings.vectors.port import Kind, VectorPoint

PAGE = 32
MAX_CATCH_UP_PASSES = 5
Progress = Callable[[str, int, int], None]


@dataclass
class ReindexReport:
    """What a reindex did: subjects embedded, already there, failed (by subject), and gone ones removed."""

    collection: str
    embedded: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: list[tuple[str, int, str]] = field(default_factory=list)
    passes: int = 0
    seconds: float = 0.0


def _kind(subject: Subject) -> Kind:
    return "pet" if subject.kind == "pet" else "report"


def _subjects(engine: Engine, since: datetime | None) -> list[Subject]:
    with Session(engine, expire_on_commit=False) as session:
        query = select(Subject).order_by(col(Subject.kind), col(Subject.subject_id))
        if since is not None:
            query = query.where(Subject.updated_at >= since)
        rows = list(session.exec(query).all())
        for row in rows:
            session.expunge(row)
        return rows


def _known(engine: Engine) -> set[tuple[str, int]]:
    with Session(engine) as session:
        return {(k, i) for k, i in session.exec(select(Subject.kind, Subject.subject_id)).all()}


def _embed_page(
    subjects: Sequence[Subject], *, embedder: ImageEmbedder, blobs: BlobStore, report: ReindexReport
) -> list[tuple[Subject, list[ImageEmbedding]]]:
    """Every photo of the page in one model call; a subject whose photo fails is retried alone, then counted."""
    try:
        photos = [[blobs.get(key) for key in s.image_keys] for s in subjects]
        flat = embedder.embed([photo for group in photos for photo in group])
    except (ModelError, OSError, KeyError):
        if len(subjects) == 1:
            raise
        done = []
        for subject in subjects:
            try:
                done.extend(_embed_page([subject], embedder=embedder, blobs=blobs, report=report))
            except (ModelError, OSError, KeyError) as exc:
                report.failed.append((subject.kind, subject.subject_id, str(exc)[:200]))
        return done
    results, start = [], 0
    for subject, group in zip(subjects, photos, strict=True):
        results.append((subject, flat[start : start + len(group)]))
        start += len(group)
    return results


def _replay(
    subjects: Sequence[Subject],
    *,
    embedder: ImageEmbedder,
    index: VectorIndex,
    blobs: BlobStore,
    report: ReindexReport,
    progress: Progress,
    label: str,
) -> int:
    """Embed the subjects whose current photos the collection lacks; copy flags onto the others."""
    changed = 0
    for start in range(0, len(subjects), PAGE):
        page = [s for s in subjects[start : start + PAGE] if s.image_keys and s.feature_status != "failed"]
        here = holding_current_photos(index, page)
        for subject in page:
            if (subject.kind, subject.subject_id) in here:
                report.unchanged += 1
                index.store.set_subject_payload(
                    index.collection, _kind(subject), subject.subject_id, subject_flags(subject)
                )
        todo = [s for s in page if (s.kind, s.subject_id) not in here]
        try:
            embedded = _embed_page(todo, embedder=embedder, blobs=blobs, report=report) if todo else []
        except (ModelError, OSError, KeyError) as exc:
            report.failed.append((todo[0].kind, todo[0].subject_id, str(exc)[:200]))
            embedded = []
        points: list[VectorPoint] = []
        for subject, embeddings in embedded:
            index.delete_subject(_kind(subject), subject.subject_id)  # fewer photos than before: no leftovers
            points.extend(index.points_for(subject, embeddings))
        index.store.upsert(index.collection, points)
        report.embedded += len(embedded)
        changed += len(embedded)
        progress(label, min(start + PAGE, len(subjects)), len(subjects))
    return changed


def reindex(
    engine: Engine,
    *,
    embedder: ImageEmbedder,
    index: VectorIndex,
    blobs: BlobStore,
    progress: Progress = lambda label, done, total: None,
) -> ReindexReport:
    """Fill `index`'s collection with every subject's photos, then catch up until nothing changed meanwhile."""
    began = time.perf_counter()
    report = ReindexReport(index.collection)
    index.ensure()
    since: datetime | None = None
    known_before = _known(engine)
    for number in range(1 + MAX_CATCH_UP_PASSES):
        pass_start = utcnow()
        subjects = _subjects(engine, since)
        label = "fill" if since is None else f"catch-up {number}"
        changed = _replay(
            subjects, embedder=embedder, index=index, blobs=blobs, report=report, progress=progress, label=label
        )
        known_now = _known(engine)
        for kind, subject_id in sorted(known_before - known_now):  # deleted meanwhile
            index.store.delete_subject(index.collection, "pet" if kind == "pet" else "report", subject_id)
            report.removed += 1
        known_before, since = known_now, pass_start
        report.passes = number + 1
        if number > 0 and not changed:
            break  # a catch-up pass with no new photos: the collection is current
    index.store.optimize()
    report.seconds = time.perf_counter() - began
    return report
