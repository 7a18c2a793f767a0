"""Every query of the matcher service."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, update
from sqlmodel import Session, col, select

from pawgle.common.db import utcnow
from pawgle.common.workqueue import claim
from pawgle.matcher.models import KnownPet, KnownReport, Match, MatchJob, Trail

# --- projections -----------------------------------------------------------------------------------


def get_report(session: Session, report_id: int) -> KnownReport | None:
    return session.get(KnownReport, report_id)


def get_pet(session: Session, pet_id: int) -> KnownPet | None:
    return session.get(KnownPet, pet_id)


def reports_by_id(session: Session, ids: Iterable[int]) -> dict[int, KnownReport]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = session.exec(select(KnownReport).where(col(KnownReport.report_id).in_(wanted))).all()
    return {row.report_id: row for row in rows}


def pets_by_id(session: Session, ids: Iterable[int]) -> dict[int, KnownPet]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = session.exec(select(KnownPet).where(col(KnownPet.pet_id).in_(wanted))).all()
    return {row.pet_id: row for row in rows}


def active_lost_report_of_pet(session: Session, pet_id: int) -> KnownReport | None:
    """The pet's newest active lost report: it says where and since when the pet is missing."""
    statement = (
        select(KnownReport)
        .where(KnownReport.pet_id == pet_id, KnownReport.status == "lost")
        .order_by(col(KnownReport.reported_at).desc())
    )
    return session.exec(statement).first()


def trail_members(session: Session, trail_id: int) -> list[KnownReport]:
    statement = select(KnownReport).where(KnownReport.trail_id == trail_id).order_by(col(KnownReport.reported_at))
    return list(session.exec(statement).all())


def new_trail(session: Session) -> Trail:
    trail = Trail()
    session.add(trail)
    session.flush()
    return trail


def move_trail(session: Session, *, from_trail: int, to_trail: int) -> None:
    """Merge two trails: every member and match of one goes to the other."""
    session.execute(update(KnownReport).where(col(KnownReport.trail_id) == from_trail).values(trail_id=to_trail))
    session.execute(update(Match).where(col(Match.trail_id) == from_trail).values(trail_id=to_trail))
    session.execute(delete(Trail).where(col(Trail.id) == from_trail))


def put_matches_on_trail(session: Session, *, found_report_id: int, trail_id: int) -> None:
    """A sighting joined a trail: its matches belong to that trail from now on."""
    session.execute(update(Match).where(col(Match.found_report_id) == found_report_id).values(trail_id=trail_id))


# --- matches ---------------------------------------------------------------------------------------


def get_match(session: Session, match_id: int) -> Match | None:
    return session.get(Match, match_id)


def pairs_of(session: Session, found_report_ids: Sequence[int]) -> set[tuple[int, str]]:
    """Every stored (found report, lost side) pair among these found reports, whatever its status."""
    if not found_report_ids:
        return set()
    rows = session.exec(
        select(Match.found_report_id, Match.lost_key).where(
            col(Match.found_report_id).in_(sorted(set(found_report_ids)))
        )
    ).all()
    return {(int(found), str(lost)) for found, lost in rows}


def pair_exists(session: Session, found_report_id: int, lost_key: str) -> bool:
    statement = select(Match.id).where(Match.found_report_id == found_report_id, Match.lost_key == lost_key)
    return session.exec(statement).first() is not None


def matches_of_trail(session: Session, trail_id: int) -> list[Match]:
    return list(session.exec(select(Match).where(Match.trail_id == trail_id).order_by(col(Match.id))).all())


def matches_of_user(session: Session, user_id: int, *, include_dismissed: bool) -> list[Match]:
    """The user's matches as finder or as the lost side, best first."""
    statement = select(Match).where(or_(Match.lost_user_id == user_id, Match.found_reporter_id == user_id))
    if not include_dismissed:
        statement = statement.where(Match.status != "dismissed")
    statement = statement.order_by(col(Match.score).desc(), col(Match.id).desc()).limit(200)
    return list(session.exec(statement).all())


def count_by_status(session: Session) -> dict[str, int]:
    rows = session.exec(select(Match.status, func.count()).group_by(Match.status)).all()
    return {str(status): int(count) for status, count in rows}


# --- the matching queue ----------------------------------------------------------------------------


def queue_job(session: Session, kind: str, subject_id: int) -> MatchJob:
    """Ask for a pet or report to be matched (again); a waiting job is bumped, so the newest cause counts."""
    job = session.exec(select(MatchJob).where(MatchJob.kind == kind, MatchJob.subject_id == subject_id)).first()
    if job is None:
        job = MatchJob(kind=kind, subject_id=subject_id)
    else:
        job.generation += 1
        job.attempts = 0
        job.due_at = utcnow()
        job.last_error = ""
    session.add(job)
    session.flush()
    return job


def claim_jobs(session: Session, *, owner: str, limit: int, lease_s: float) -> list[MatchJob]:
    now = utcnow()
    return claim(
        session,
        MatchJob,
        key="id",
        due=col(MatchJob.due_at) <= now,
        order_by=[col(MatchJob.due_at), col(MatchJob.id)],
        limit=limit,
        lease_s=lease_s,
        owner=owner,
        now=now,
    )


def has_due_jobs(session: Session) -> bool:
    """Whether any job is due and free of a lease (a read: the claim then takes the write lock only for work)."""
    now = utcnow()
    statement = (
        select(MatchJob.id)
        .where(
            col(MatchJob.due_at) <= now,
            or_(col(MatchJob.lease_until).is_(None), col(MatchJob.lease_until) < now),
        )
        .limit(1)
    )
    return session.exec(statement).first() is not None


def hold_job(session: Session, job: MatchJob) -> bool:
    """Lock the job row at the generation the worker matched; False if it was bumped or deleted meanwhile.

    Matched on its subject too, not its id alone: SQLite hands a deleted row's id to the next insert, so
    the id of a job deleted while its candidates were asked for may by now be another subject's job.
    """
    result = session.execute(
        update(MatchJob)
        .where(
            col(MatchJob.id) == job.id,
            col(MatchJob.kind) == job.kind,
            col(MatchJob.subject_id) == job.subject_id,
            col(MatchJob.generation) == job.generation,
        )
        .values(last_error="")
    )
    return bool(getattr(result, "rowcount", 0))


def finish_job(session: Session, job_id: int) -> None:
    session.execute(delete(MatchJob).where(col(MatchJob.id) == job_id))


def retry_job_later(session: Session, job_id: int, *, attempts: int, delay_s: float, error: str) -> None:
    session.execute(
        update(MatchJob)
        .where(col(MatchJob.id) == job_id)
        .values(attempts=attempts, due_at=utcnow() + timedelta(seconds=delay_s), last_error=error[:500])
    )


def pending_jobs(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(MatchJob)).one())


def oldest_job_at(session: Session) -> datetime | None:
    return session.exec(select(func.min(MatchJob.due_at))).one()
