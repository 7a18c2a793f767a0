"""The matching worker: claims queued pets and reports, asks embeddings for their candidates, stores matches.

A pipeline, not a batch: each step claims the jobs due now (up to `jobs_per_step` in flight), starts their
candidates queries (`rpc.embeddings.nearest_candidates`, outside any transaction) and returns at once, so a
job queued while others wait for their answers is claimed within milliseconds, not after the slowest answer
of the step before. A settler takes every answered job as answers come and settles them together in one
transaction, each in its own savepoint, only at the generation it matched (a newer cause wins and is matched
again): `matching.apply_candidates` (matches, trail, match.found in the outbox), then the job deleted. One
job's failure costs only its own savepoint; it is retried. No answer from embeddings is retried with
backoff; nothing is lost (a job row goes only with the transaction that stores its matches).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from nats.aio.client import Client
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from pawgle.common.bus.rpc import RemoteError, call
from pawgle.common.db import read_only, utcnow
from pawgle.common.events.embeddings import NEAREST_CANDIDATES, NearestCandidates, NearestCandidatesRequest
from pawgle.common.workers import WakeableLoop
from pawgle.common.workqueue import new_lease_owner, release
from pawgle.matcher import metrics, repository
from pawgle.matcher.config import Settings
from pawgle.matcher.matching import apply_candidates
from pawgle.matcher.models import MatchJob

log = logging.getLogger(__name__)

JOBS_TOPIC = "match_jobs"
# A job whose subject the projections do not know yet (its report.filed is still on the way) is retried with
# backoff this many times (with the default backoff, for about a quarter of an hour), then dropped.
MAX_ATTEMPTS_UNKNOWN = 20
# Asked of embeddings beyond K: candidates the filters remove must not crowd out the ones they keep.
OVERFETCH = 4


# The subject is known but has nothing to look for (a pet nobody reported lost, an inactive report).
SKIP = "skip"


@dataclass(frozen=True)
class _Fetched:
    job: MatchJob
    owner: str
    claimed_at: float
    request: list[NearestCandidatesRequest] | str | None
    answer: NearestCandidates | None = None
    error: RemoteError | None = None


class MatchingWorker:
    """Claim due jobs, query their candidates concurrently, settle the answered ones together as they come."""

    def __init__(self, *, engine: Engine, nc: Client, settings: Settings, lease_s: float = 60.0) -> None:
        self.engine = engine
        self.nc = nc
        self.settings = settings
        self.lease_s = lease_s
        self.capacity = settings.jobs_per_step
        self._in_flight = 0  # claimed and not settled yet
        self._queries: set[asyncio.Task[None]] = set()
        self._answered: list[_Fetched] = []
        self._have_answers = asyncio.Event()
        self._room = asyncio.Event()
        self._settler: asyncio.Task[None] | None = None

    async def step(self) -> int:
        """Claim what is due (as much as there is room for) and start its queries; returns how many."""
        if self._settler is None or self._settler.done():
            self._settler = asyncio.create_task(self._settle_answers(), name="match-settler")
        while self._in_flight >= self.capacity:
            self._room.clear()
            await self._room.wait()
        owner = new_lease_owner("match-")
        jobs, requests = await asyncio.to_thread(self._claim, owner, self.capacity - self._in_flight)
        claimed_at = time.perf_counter()
        for job, request in zip(jobs, requests, strict=True):
            self._in_flight += 1
            task = asyncio.create_task(self._fetch(job, owner, claimed_at, request))
            self._queries.add(task)
            task.add_done_callback(self._queries.discard)
        return len(jobs)

    async def drain(self) -> None:
        """Let the queries in flight be answered (or time out) and settled; give back what was not."""
        if self._queries:
            await asyncio.wait(set(self._queries))
        while self._in_flight and self._settler is not None and not self._settler.done():
            self._have_answers.set()
            await asyncio.sleep(0.01)
        if self._settler is not None:
            self._settler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._settler
        leftover, self._answered = self._answered, []
        if leftover:
            await asyncio.to_thread(self._release_all, {item.owner for item in leftover})

    async def _settle_answers(self) -> None:
        while True:
            await self._have_answers.wait()
            self._have_answers.clear()
            batch, self._answered = self._answered, []
            if not batch:
                continue
            try:
                await asyncio.to_thread(self._settle_batch, batch)
            except Exception:  # noqa: BLE001 - the jobs stay; their leases are given back for another try
                log.warning("matching: settling %d jobs failed; they are retried", len(batch), exc_info=True)
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self._release_all, {item.owner for item in batch})
            finally:
                self._in_flight -= len(batch)
                self._room.set()
                now = time.perf_counter()
                for item in batch:
                    metrics.RUN_SECONDS.observe(now - item.claimed_at)

    def _claim(
        self, owner: str, limit: int
    ) -> tuple[list[MatchJob], list[list[NearestCandidatesRequest] | str | None]]:
        """Lease due jobs and say what to ask for each, in one transaction (one thread hop)."""
        # Most wake-ups after a claim find nothing more: asking first in a read (on SQLite, one that never waits
        # for a writer) keeps the write lock, which the consumers and the relay share, for actual work.
        with Session(read_only(self.engine)) as probe:
            if not repository.has_due_jobs(probe):
                return [], []
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            jobs = repository.claim_jobs(session, owner=owner, limit=limit, lease_s=self.lease_s)
            now = utcnow()
            for job in jobs:
                metrics.JOB_WAIT_SECONDS.observe(max(0.0, (now - job.due_at).total_seconds()))
            requests = [self._request_for(session, job) for job in jobs]
            for job in jobs:
                session.expunge(job)
            return jobs, requests

    def _release_all(self, owners: set[str]) -> None:
        with Session(self.engine) as session, session.begin():
            for owner in owners:
                release(session, MatchJob, owner=owner)

    def _request_for(self, session: Session, job: MatchJob) -> list[NearestCandidatesRequest] | str | None:
        """What to ask for this subject; None when its projection is not there (yet), SKIP for nothing."""
        s = self.settings
        limit = min(100, s.max_candidates * OVERFETCH)
        if job.kind == "pet":
            if repository.get_pet(session, job.subject_id) is None:
                return None
            if repository.active_lost_report_of_pet(session, job.subject_id) is None:
                return SKIP  # found reports find registered pets; a pet looks for them once it is lost
            # Pets have no position: the distance to the pet's lost report is checked here, not there.
            return [
                NearestCandidatesRequest(
                    subject_kind="pet",
                    subject_id=job.subject_id,
                    kinds=["report"],
                    report_statuses=["found"],
                    min_similarity=s.automatch_min_similarity,
                    limit=limit,
                )
            ]
        report = repository.get_report(session, job.subject_id)
        if report is None:
            return None
        if report.status not in ("lost", "found"):
            return SKIP
        if report.status == "found":
            # Two queries side by side: lost sides within the automatch radius, and look-alike sightings within
            # the trail radius (asked apart, so many sightings of one animal never crowd the lost sides out).
            lost_sides = NearestCandidatesRequest(
                subject_kind="report",
                subject_id=job.subject_id,
                kinds=["pet", "report"],
                report_statuses=["lost"],
                radius_km=s.automatch_max_distance_km,
                min_similarity=s.automatch_min_similarity,
                limit=limit,
            )
            sightings = NearestCandidatesRequest(
                subject_kind="report",
                subject_id=job.subject_id,
                kinds=["report"],
                report_statuses=["found"],
                radius_km=s.trail_max_distance_km,
                min_similarity=s.automatch_min_similarity,
                limit=limit,
            )
            return [lost_sides, sightings]
        return [
            NearestCandidatesRequest(
                subject_kind="report",
                subject_id=job.subject_id,
                kinds=["report"],
                report_statuses=["found"],
                radius_km=s.automatch_max_distance_km,
                min_similarity=s.automatch_min_similarity,
                limit=limit,
            )
        ]

    async def _fetch(
        self, job: MatchJob, owner: str, claimed_at: float, request: list[NearestCandidatesRequest] | str | None
    ) -> None:
        """Ask for the job's candidates (if it has anything to ask) and hand the answer to the settler."""
        item = _Fetched(job, owner, claimed_at, request)
        if isinstance(request, list):
            try:
                started = time.perf_counter()
                answers = await asyncio.gather(*(call(self.nc, NEAREST_CANDIDATES, r) for r in request))
                metrics.CANDIDATES_SECONDS.observe(time.perf_counter() - started)
                if len({a.model_version for a in answers}) > 1:
                    raise RemoteError(503, "The embeddings service changed model between two queries; asking again.")
                merged = NearestCandidates(
                    model_version=answers[0].model_version,
                    embedded=all(a.embedded for a in answers),
                    candidates=[c for a in answers for c in a.candidates],
                )
                item = _Fetched(job, owner, claimed_at, request, answer=merged)
            except RemoteError as exc:
                metrics.CANDIDATES_FAILED.labels(status=str(exc.status_code)).inc()
                item = _Fetched(job, owner, claimed_at, request, error=exc)
            except Exception as exc:  # noqa: BLE001 - the bus itself failed (closed, reconnecting): retried too
                log.warning("candidates for %s %s: %r", job.kind, job.subject_id, exc)
                metrics.CANDIDATES_FAILED.labels(status="503").inc()
                error = RemoteError(503, f"The candidates query failed: {type(exc).__name__}.")
                item = _Fetched(job, owner, claimed_at, request, error=error)
        # Always handed on, whatever happened above: the settler is what frees this job's place in flight.
        self._answered.append(item)
        self._have_answers.set()

    def _settle_batch(self, batch: Sequence[_Fetched]) -> None:
        """Settle answered jobs in one transaction, a savepoint each; their leases go with the same commit."""
        started = time.perf_counter()
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            for item in batch:
                try:
                    with session.begin_nested():
                        self._settle(session, item)
                except Exception:  # noqa: BLE001 - one job's failure must not cost the others; it is retried
                    log.exception("matching %s %s failed; retrying later", item.job.kind, item.job.subject_id)
                    self._retry(session, item.job, "the matching transaction failed")
            # Jobs still there (retried later, or bumped by a newer cause meanwhile) are claimable again.
            session.execute(
                update(MatchJob)
                .where(
                    col(MatchJob.id).in_([item.job.id for item in batch]),
                    col(MatchJob.lease_owner).in_(sorted({item.owner for item in batch})),
                )
                .values(lease_owner=None, lease_until=None)
            )
        metrics.SETTLE_SECONDS.observe((time.perf_counter() - started) / len(batch))

    def _retry(self, session: Session, job: MatchJob, error: str) -> None:
        assert job.id is not None
        attempts = job.attempts + 1
        delay = min(self.settings.retry_base_s * 2 ** (attempts - 1), self.settings.retry_max_s)
        if repository.hold_job(session, job):
            repository.retry_job_later(session, job.id, attempts=attempts, delay_s=delay, error=error)

    def _finish(self, session: Session, job: MatchJob) -> None:
        assert job.id is not None
        if repository.hold_job(session, job):
            repository.finish_job(session, job.id)

    def _settle(self, session: Session, item: _Fetched) -> None:
        job = item.job
        assert job.id is not None
        if item.request == SKIP:
            self._finish(session, job)
            return
        if item.request is None:
            if job.attempts + 1 >= MAX_ATTEMPTS_UNKNOWN:
                log.info("matching %s %s: still unknown here, dropped", job.kind, job.subject_id)
                self._finish(session, job)
            else:
                self._retry(session, job, "subject not known yet")
            return
        if item.error is not None:
            if item.error.status_code in (400, 404, 422):
                log.warning("candidates for %s %s refused: %s", job.kind, job.subject_id, item.error.detail)
                self._finish(session, job)
            else:
                self._retry(session, job, item.error.detail)
            return
        answer = item.answer
        assert answer is not None
        if not repository.hold_job(session, job):
            return  # a newer cause bumped the job: it is matched again with fresh data
        if answer.embedded:
            outcome = apply_candidates(
                session,
                settings=self.settings,
                kind=job.kind,
                subject_id=job.subject_id,
                model_version=answer.model_version,
                candidates=answer.candidates,
            )
            if outcome.created:
                log.info(
                    "matched %s %s: %d new (rejected %s)",
                    job.kind,
                    job.subject_id,
                    len(outcome.created),
                    outcome.rejected,
                )
        repository.finish_job(session, job.id)


class MatchingLoop(WakeableLoop):
    """The worker's loop: woken by every commit that queues a job; on stop, what is in flight is settled."""

    def __init__(
        self,
        worker: MatchingWorker,
        *,
        poll_interval_s: float,
        on_idle: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__("match-candidates", worker.step, poll_interval_s=poll_interval_s, on_idle=on_idle)
        self.worker = worker

    async def run(self) -> None:
        try:
            await super().run()
        finally:
            await self.worker.drain()
