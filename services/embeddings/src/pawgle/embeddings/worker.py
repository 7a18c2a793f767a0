"""The embedding worker: claims queued jobs, fetches their photos, embeds them in batches, stores the vectors.

The model runs through the `EmbeddingBatcher` (a worker thread, photos of every claimed job in shared
batches), outside any database transaction. A job is settled in a short transaction that stores its vectors,
writes pet.embedded / report.embedded to the outbox and deletes the job, only if no newer event replaced the
job meanwhile. A failure is retried with backoff; after the last attempt (or at once for a photo the model
cannot read) embedding.failed is published and no vector is stored: never a made-up one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session

from pawgle.common.blobs import BlobStore
from pawgle.common.bus.outbox import add_event
from pawgle.common.events.embeddings import EmbeddingFailed, PetEmbedded, ReportEmbedded
from pawgle.common.workqueue import new_lease_owner, release
from pawgle.embeddings import metrics, repository
from pawgle.embeddings.index import VectorIndex
from pawgle.embeddings.model.batching import EmbeddingBatcher
from pawgle.embeddings.model.port import ImageEmbedding, ImageInput, InvalidImageError, ModelError
from pawgle.embeddings.model.preprocess import decode_image
from pawgle.embeddings.models import EmbeddingJob, Subject
from pawgle.embeddings.vectors.port import VectorPoint, VectorStoreError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failing job is retried (contract: failed after 3 attempts)."""

    max_attempts: int = 3
    base_delay_s: float = 5.0
    max_delay_s: float = 300.0

    def delay_s(self, attempts: int) -> float:
        """Exponential backoff after the `attempts`-th failure."""
        return float(min(self.base_delay_s * 2 ** (attempts - 1), self.max_delay_s))


@dataclass(frozen=True)
class _Outcome:
    job: EmbeddingJob
    embeddings: list[ImageEmbedding] | None = None
    error: str = ""
    reason: str = ""
    permanent: bool = False


@dataclass(frozen=True)
class _Round:
    """Jobs claimed together under one lease owner, with their decoded photos (or why they have none)."""

    owner: str
    jobs: list[EmbeddingJob]
    photos: list[list[ImageInput] | _Outcome]


class EmbeddingWorker:
    """Claims due jobs in rounds and carries each to its vectors or its failure, three stages overlapping.

    A round is up to `batch_jobs` jobs. While the model embeds round N (the batcher's worker thread), a
    thread claims round N+1, reads its photos from the blob store and decodes them, and another settles
    round N-1 (vectors stored, one short transaction): the model never waits for the database, the blob
    store or the decoder, and none of them runs on the event loop. One step runs up to `rounds_per_step`
    rounds back to back, so a backlog flows without a pause between steps.
    """

    def __init__(
        self,
        *,
        engine: Engine,
        blobs: BlobStore,
        batcher: EmbeddingBatcher,
        index: VectorIndex,
        retry: RetryPolicy | None = None,
        batch_jobs: int = 16,
        lease_s: float = 120.0,
        collect_s: float = 0.05,
        rounds_per_step: int = 8,
    ) -> None:
        self.engine = engine
        self.blobs = blobs
        self.batcher = batcher
        self.index = index
        self.retry = retry or RetryPolicy()
        self.batch_jobs = batch_jobs
        self.lease_s = lease_s
        self.collect_s = collect_s
        self.rounds_per_step = rounds_per_step

    async def step(self) -> int:
        """Embed what is due; returns how many jobs were handled (0: nothing to do)."""
        # Consumers commit events one batch at a time and wake us at each commit: a short wait lets the jobs
        # of the events arriving meanwhile share this step's model batches (one-photo batches waste the CPU).
        await asyncio.sleep(self.collect_s)
        handled = 0
        settling: asyncio.Task[None] | None = None
        next_round: asyncio.Task[_Round] | None = asyncio.create_task(asyncio.to_thread(self._prepare))
        try:
            for number in range(self.rounds_per_step):
                assert next_round is not None
                current = await next_round
                next_round = None
                if not current.jobs:
                    break
                handled += len(current.jobs)
                if number + 1 < self.rounds_per_step:
                    next_round = asyncio.create_task(asyncio.to_thread(self._prepare))
                try:
                    outcomes = await self._embed_round(current)
                except BaseException:
                    await asyncio.to_thread(self._release, current.owner)
                    raise
                if settling is not None:
                    await settling
                settling = asyncio.create_task(asyncio.to_thread(self._settle_round, current.owner, outcomes))
        finally:
            if settling is not None:
                await settling
            if next_round is not None:  # claimed but not embedded (a failure above): give it back
                leftover = await next_round
                await asyncio.to_thread(self._release, leftover.owner)
        return handled

    def _prepare(self) -> _Round:
        """Claim a round of jobs, read their photos and decode them (a worker thread, off the model's)."""
        owner = new_lease_owner("embed-")
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            # Begin first (on SQLite: wait for the write lock), then read the clock for "due": jobs committed
            # while this claim waited are then due too, instead of being left to the next round.
            session.connection()
            jobs = repository.claim_jobs(session, owner=owner, limit=self.batch_jobs, lease_s=self.lease_s)
            for job in jobs:
                session.expunge(job)
        return _Round(owner, jobs, [self._fetch(job) for job in jobs])

    def _release(self, owner: str) -> None:
        with Session(self.engine) as session, session.begin():
            release(session, EmbeddingJob, owner=owner)

    async def _embed_round(self, current: _Round) -> list[_Outcome]:
        """Every photo of the round in shared model batches; each job's outcome from its own photos."""
        photos = [photo for fetched in current.photos if not isinstance(fetched, _Outcome) for photo in fetched]
        results = iter(await self.batcher.embed_together(photos))
        outcomes = []
        for job, fetched in zip(current.jobs, current.photos, strict=True):
            if isinstance(fetched, _Outcome):
                outcomes.append(fetched)
                continue
            mine = [next(results) for _ in fetched]
            errors = [result for result in mine if isinstance(result, BaseException)]
            if not errors:
                outcomes.append(_Outcome(job, embeddings=[r for r in mine if isinstance(r, ImageEmbedding)]))
            elif isinstance(errors[0], InvalidImageError):
                outcomes.append(_Outcome(job, error=str(errors[0]), reason="invalid_image", permanent=True))
            elif isinstance(errors[0], ModelError):
                outcomes.append(_Outcome(job, error=str(errors[0]), reason="model"))
            else:
                raise errors[0]
        return outcomes

    def _fetch(self, job: EmbeddingJob) -> list[ImageInput] | _Outcome:
        """A job's photos read and decoded once (the model takes the decoded image), or why not."""
        try:
            data = [self.blobs.get(key) for key in job.image_keys]
        except (FileNotFoundError, KeyError) as exc:
            missing = f"photo missing from the blob store: {exc}"
            return _Outcome(job, error=missing, reason="photo_missing", permanent=True)
        except Exception as exc:  # noqa: BLE001 - an unreachable blob store is worth another try
            return _Outcome(job, error=f"blob store: {exc}", reason="blob_store")
        try:
            return [decode_image(photo, index=index) for index, photo in enumerate(data)]
        except InvalidImageError as exc:
            return _Outcome(job, error=str(exc), reason="invalid_image", permanent=True)

    def _settle_round(self, owner: str, outcomes: Sequence[_Outcome]) -> None:
        """Every outcome of a round in one transaction with one vector upsert; one by one if the store fails.

        The same transaction gives back the round's leases (jobs dropped because a newer event replaced them).
        """
        try:
            with Session(self.engine) as session, session.begin():
                points = self._apply_round(session, outcomes)
                if points:
                    self.index.store.upsert(self.index.collection, points)
                release(session, EmbeddingJob, owner=owner)
            return
        except VectorStoreError as exc:
            log.warning("embedding: vector store failed on a round of %d, settling one by one: %s", len(outcomes), exc)
        try:
            for outcome in outcomes:
                try:
                    self._settle(outcome)
                except VectorStoreError as exc:
                    job = outcome.job
                    log.warning("embedding %s %s: vector store failed: %s", job.kind, job.subject_id, exc)
                    self._settle(_Outcome(outcome.job, error=str(exc), reason="vector_store"))
        finally:
            self._release(owner)

    def _settle(self, outcome: _Outcome) -> None:
        with Session(self.engine) as session, session.begin():
            points = self._apply_round(session, [outcome])
            if points:
                self.index.store.upsert(self.index.collection, points)

    def _apply_round(self, session: Session, outcomes: Sequence[_Outcome]) -> list[VectorPoint]:
        """Settle jobs in `session`: the points to store (the caller upserts them before commit).

        A handful of statements per round, not per job: lock the jobs and keep those still at the generation
        embedded, read their subjects, mark the embedded ones completed, delete their jobs; failures take the
        slower path one by one (they are rare).
        """
        asked = {o.job.id: (o.job.kind, o.job.subject_id, o.job.generation) for o in outcomes if o.job.id is not None}
        held = repository.hold_jobs(session, asked)
        mine = [outcome for outcome in outcomes if outcome.job.id in held]
        if not mine:
            return []  # deleted, or replaced by newer photos: those newer jobs decide
        subjects = repository.subjects_by_keys(session, [(o.job.kind, o.job.subject_id) for o in mine])
        points: list[VectorPoint] = []
        embedded: list[tuple[str, int, int]] = []
        finished: list[int] = []
        for outcome in mine:
            job = outcome.job
            assert job.id is not None
            subject = subjects.get((job.kind, job.subject_id))
            if subject is None:
                finished.append(job.id)
            elif outcome.embeddings is None:
                self._apply_failure(session, subject, outcome)
            else:
                points.extend(self.index.points_for(subject, outcome.embeddings))
                if subject.vector_count or job.attempts or job.generation > 1:
                    # Older vectors may outnumber the new photos: clear them (a first embedding has none).
                    self.index.delete_subject("pet" if job.kind == "pet" else "report", job.subject_id)
                count = len(outcome.embeddings)
                embedded.append((job.kind, job.subject_id, count))
                finished.append(job.id)
                add_event(session, self._embedded_event(subject.kind, subject.subject_id, subject.owner_id, count))
                metrics.EMBEDDED.labels(kind=job.kind).inc(count)
        repository.mark_embedded(session, embedded, model_key=self.index.model.key)
        repository.finish_jobs(session, finished)
        return points

    def _apply_failure(self, session: Session, subject: Subject, outcome: _Outcome) -> None:
        """A failed attempt: retried later with backoff, or after the last one embedding.failed and no vector."""
        job = outcome.job
        assert job.id is not None
        attempts = job.attempts + 1
        if outcome.permanent or attempts >= self.retry.max_attempts:
            self.index.delete_subject("pet" if job.kind == "pet" else "report", job.subject_id)
            subject.feature_status, subject.vector_count = "failed", 0
            repository.save_subject(session, subject)
            repository.finish_job(session, job.id)
            failed = EmbeddingFailed(
                subject_kind="pet" if job.kind == "pet" else "report",
                subject_id=job.subject_id,
                owner_id=subject.owner_id,
                name=subject.name,
                reason=outcome.reason or "model",
            )
            add_event(session, failed)
            metrics.FAILED.labels(reason=outcome.reason or "model").inc()
            log.warning("embedding %s %s failed for good: %s", job.kind, job.subject_id, outcome.error)
            return
        subject.feature_status = "processing"
        repository.save_subject(session, subject)
        delay = self.retry.delay_s(attempts)
        repository.retry_job_later(session, job.id, attempts=attempts, delay_s=delay, error=outcome.error)
        metrics.RETRIED.labels(reason=outcome.reason or "model").inc()

    def _embedded_event(self, kind: str, subject_id: int, owner_id: int, count: int) -> PetEmbedded | ReportEmbedded:
        if kind == "pet":
            return PetEmbedded(
                pet_id=subject_id, owner_id=owner_id, model_version=self.index.model.key, vector_count=count
            )
        return ReportEmbedded(report_id=subject_id, reporter_id=owner_id, model_version=self.index.model.key)
