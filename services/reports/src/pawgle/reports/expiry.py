"""Reports leave the maps when their lifetime ends: report.expiring a few days before, then report.expired.

Runs as a declared worker in every replica. Each report is claimed by a conditional update in its own
transaction (`... WHERE expired_at IS NULL`), and the event is written in that same transaction: whichever
replica's update changes the row publishes, every other one changes nothing. Exactly once per report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from pawgle.common.bus.outbox import add_event
from pawgle.common.db import read_only, run_with_retries, utcnow
from pawgle.common.events.reports import ReportExpired, ReportExpiring
from pawgle.reports import repository
from pawgle.reports.config import Settings
from pawgle.reports.metrics import REPORTS_EXPIRED


@dataclass
class ExpiryRun:
    """What one pass did."""

    expiring_sent: int = 0
    expired: int = 0


def _notice(engine: Engine, report_id: int, settings: Settings) -> bool:
    def work() -> bool:
        with Session(engine, expire_on_commit=False) as session:
            now = utcnow()
            notice_until = now + timedelta(days=settings.expiring_notice_days)
            if not repository.claim_expiring_notice(session, report_id, now=now, notice_until=notice_until):
                return False
            report = repository.get_report(session, report_id)
            assert report is not None
            add_event(
                session,
                ReportExpiring(
                    report_id=report_id,
                    reporter_id=report.reporter_id,
                    animal_name=report.pet_name or report.animal_name,
                    status=report.status,
                    expires_at=report.expires_at,
                ),
            )
            session.commit()
            return True

    return run_with_retries(work)


def _expire(engine: Engine, report_id: int) -> bool:
    def work() -> bool:
        with Session(engine, expire_on_commit=False) as session:
            if not repository.claim_expiry(session, report_id, now=utcnow()):
                return False
            report = repository.get_report(session, report_id)
            assert report is not None
            add_event(
                session,
                ReportExpired(
                    report_id=report_id,
                    reporter_id=report.reporter_id,
                    animal_name=report.pet_name or report.animal_name,
                ),
            )
            session.commit()
            return True

    return run_with_retries(work)


def expire_once(engine: Engine, settings: Settings) -> ExpiryRun:
    """One pass: tell reporters whose reports expire soon, then expire the due ones (each exactly once)."""
    run = ExpiryRun()
    now = utcnow()
    with Session(read_only(engine)) as session:
        expiring = repository.expiring_ids(
            session,
            now=now,
            notice_until=now + timedelta(days=settings.expiring_notice_days),
            limit=settings.expiry_batch_size,
        )
        due = repository.due_ids(session, now=now, limit=settings.expiry_batch_size)
    run.expiring_sent = sum(_notice(engine, report_id, settings) for report_id in expiring)
    run.expired = sum(_expire(engine, report_id) for report_id in due)
    REPORTS_EXPIRED.inc(run.expired)
    return run
