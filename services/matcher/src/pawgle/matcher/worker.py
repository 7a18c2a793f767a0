"""The matching worker: claims queued pets and reports, asks embeddings for their candidates, stores matches.

The candidates query (`rpc.embeddings.nearest_candidates`) runs outside any transaction; each job is then
settled in one short transaction that locks the job at the generation it matched (a newer cause wins and is
matched again), applies the candidates (`matching.apply_candidates`: matches, trail, match.found in the
outbox) and deletes the job. No answer from embeddings is retried with backoff; nothing is lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from nats.aio.client import Client
from sqlalchemy.engine import Engine
from sqlmodel import Session

from pawgle.common.bus.rpc import RemoteError, call
from pawgle.common.events.embeddings import NEAREST_CANDIDATES, NearestCandidates, NearestCandidatesRequest
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
    request: list[NearestCandidatesRequest] | str | None
    answer: NearestCandidates | None = None
    error: RemoteError | None = None


class MatchingWorker:
    """One step: claim due jobs, query their candidates concurrently, settle each in its own transaction."""

    def __init__(self, *, engine: Engine, nc: Client, settings: Settings, lease_s: float = 60.0) -> None:
        self.engine = engine
        self.nc = nc
        self.settings = settings
        self.lease_s = lease_s

    async def step(self) -> int:
        owner = new_lease_owner("match-")
        started = time.perf_counter()
        jobs, requests = await asyncio.to_thread(self._claim, owner)
        if not jobs:
            return 0
        try:
            fetched = await asyncio.gather(
                *(self._fetch(job, request) for job, request in zip(jobs, requests, strict=True))
            )
            await asyncio.to_thread(self._settle_all, fetched)
        finally:
            await asyncio.to_thread(self._release, owner)
        metrics.RUN_SECONDS.observe((time.perf_counter() - started) / len(jobs))
        return len(jobs)

    def _claim(self, owner: str) -> tuple[list[MatchJob], list[list[NearestCandidatesRequest] | str | None]]:
        """Lease due jobs and say what to ask for each, in one transaction (one thread hop)."""
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            jobs = repository.claim_jobs(session, owner=owner, limit=self.settings.jobs_per_step, lease_s=self.lease_s)
            requests = [self._request_for(session, job) for job in jobs]
            for job in jobs:
                session.expunge(job)
            return jobs, requests

    def _release(self, owner: str) -> None:
        with Session(self.engine) as session, session.begin():
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

    async def _fetch(self, job: MatchJob, request: list[NearestCandidatesRequest] | str | None) -> _Fetched:
        if not isinstance(request, list):
            return _Fetched(job, request)
        try:
            answers = await asyncio.gather(*(call(self.nc, NEAREST_CANDIDATES, r) for r in request))
            if len({a.model_version for a in answers}) > 1:
                raise RemoteError(503, "The embeddings service changed model between two queries; asking again.")
            merged = NearestCandidates(
                model_version=answers[0].model_version,
                embedded=all(a.embedded for a in answers),
                candidates=[c for a in answers for c in a.candidates],
            )
            return _Fetched(job, request, answer=merged)
        except RemoteError as exc:
            metrics.CANDIDATES_FAILED.labels(status=str(exc.status_code)).inc()
            return _Fetched(job, request, error=exc)

    def _settle_all(self, fetched: list[_Fetched]) -> None:
        for item in fetched:
            try:
                self._settle(item)
            except Exception:  # noqa: BLE001 - one job's failure must not cost the others; it is retried
                log.exception("matching %s %s failed; retrying later", item.job.kind, item.job.subject_id)
                self._retry(item.job, "the matching transaction failed")

    def _retry(self, job: MatchJob, error: str) -> None:
        assert job.id is not None
        attempts = job.attempts + 1
        delay = min(self.settings.retry_base_s * 2 ** (attempts - 1), self.settings.retry_max_s)
        with Session(self.engine) as session, session.begin():
            if repository.hold_job(session, job.id, job.generation):
                repository.retry_job_later(session, job.id, attempts=attempts, delay_s=delay, error=error)

    def _settle(self, item: _Fetched) -> None:
        job = item.job
        assert job.id is not None
        if item.request == SKIP:
            self._finish(job)
            return
        if item.request is None:
            if job.attempts + 1 >= MAX_ATTEMPTS_UNKNOWN:
                log.info("matching %s %s: still unknown here, dropped", job.kind, job.subject_id)
                self._finish(job)
            else:
                self._retry(job, "subject not known yet")
            return
        if item.error is not None:
            if item.error.status_code in (400, 404, 422):
                log.warning("candidates for %s %s refused: %s", job.kind, job.subject_id, item.error.detail)
                self._finish(job)
            else:
                self._retry(job, item.error.detail)
            return
        answer = item.answer
        assert answer is not None
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            if not repository.hold_job(session, job.id, job.generation):
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

    def _finish(self, job: MatchJob) -> None:
        assert job.id is not None
        with Session(self.engine) as session, session.begin():
            if repository.hold_job(session, job.id, job.generation):
                repository.finish_job(session, job.id)
