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
from pawgle.embeddings.model.port import ImageEmbedding, InvalidImageError, ModelError
from pawgle.embeddings.models import EmbeddingJob
from pawgle.embeddings.vectors.port import VectorStoreError

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


class EmbeddingWorker:
    """One step: claim up to `batch_jobs` due jobs and carry each to its vectors or its failure."""

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
    ) -> None:
        self.engine = engine
        self.blobs = blobs
        self.batcher = batcher
        self.index = index
        self.retry = retry or RetryPolicy()
        self.batch_jobs = batch_jobs
        self.lease_s = lease_s
        self.collect_s = collect_s

    def _claim(self, owner: str) -> list[EmbeddingJob]:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            jobs = repository.claim_jobs(session, owner=owner, limit=self.batch_jobs, lease_s=self.lease_s)
            for job in jobs:
                session.expunge(job)
            return jobs

    async def step(self) -> int:
        """Embed what is due; returns how many jobs were handled (0: nothing to do)."""
        owner = new_lease_owner("embed-")
        # Consumers commit events one batch at a time and wake us at each commit: a short wait lets the jobs
        # of the events arriving meanwhile share this step's model batches (one-photo batches waste the CPU).
        await asyncio.sleep(self.collect_s)
        jobs = await asyncio.to_thread(self._claim, owner)
        if not jobs:
            return 0
        try:
            fetched = await asyncio.to_thread(self._fetch_all, jobs)
            outcomes = await asyncio.gather(
                *(self._embed(job, photos) for job, photos in zip(jobs, fetched, strict=True))
            )
            await asyncio.to_thread(self._settle_all, outcomes)
        finally:
            await asyncio.to_thread(self._release, owner)
        return len(jobs)

    def _release(self, owner: str) -> None:
        with Session(self.engine) as session, session.begin():
            release(session, EmbeddingJob, owner=owner)

    async def _embed(self, job: EmbeddingJob, fetched: list[bytes] | _Outcome) -> _Outcome:
        if isinstance(fetched, _Outcome):
            return fetched
        try:
            return _Outcome(job, embeddings=await self.batcher.embed_many(fetched))
        except InvalidImageError as exc:
            return _Outcome(job, error=str(exc), reason="invalid_image", permanent=True)
        except ModelError as exc:
            return _Outcome(job, error=str(exc), reason="model")

    def _fetch_all(self, jobs: Sequence[EmbeddingJob]) -> list[list[bytes] | _Outcome]:
        """Every claimed job's photos, read in one thread hop so they reach the batcher together."""
        fetched: list[list[bytes] | _Outcome] = []
        for job in jobs:
            try:
                fetched.append(self._fetch(job.image_keys))
            except (FileNotFoundError, KeyError) as exc:
                missing = f"photo missing from the blob store: {exc}"
                fetched.append(_Outcome(job, error=missing, reason="photo_missing", permanent=True))
            except Exception as exc:  # noqa: BLE001 - an unreachable blob store is worth another try
                fetched.append(_Outcome(job, error=f"blob store: {exc}", reason="blob_store"))
        return fetched

    def _fetch(self, keys: Sequence[str]) -> list[bytes]:
        return [self.blobs.get(key) for key in keys]

    def _settle_all(self, outcomes: Sequence[_Outcome]) -> None:
        for outcome in outcomes:
            try:
                self._settle(outcome)
            except VectorStoreError as exc:
                log.warning("embedding %s %s: vector store failed: %s", outcome.job.kind, outcome.job.subject_id, exc)
                self._settle(_Outcome(outcome.job, error=str(exc), reason="vector_store"))

    def _settle(self, outcome: _Outcome) -> None:
        job = outcome.job
        assert job.id is not None
        with Session(self.engine) as session, session.begin():
            if not repository.hold_job(session, job.id, job.generation):
                return  # deleted, or replaced by newer photos: that newer job decides
            subject = repository.get_subject(session, job.kind, job.subject_id)
            if subject is None:
                repository.finish_job(session, job.id)
                return
            if outcome.embeddings is not None:
                count = self.index.replace_subject(subject, outcome.embeddings)
                subject.feature_status, subject.vector_count = "completed", count
                subject.model_key = self.index.model.key
                repository.save_subject(session, subject)
                repository.finish_job(session, job.id)
                add_event(session, self._embedded_event(subject.kind, subject.subject_id, subject.owner_id, count))
                metrics.EMBEDDED.labels(kind=job.kind).inc(count)
                return
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
