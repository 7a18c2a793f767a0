"""The background sender: delivers the e-mail log through an adapter, with retries, backoff and a record.

An e-mail is committed to the log together with the event's other effects, so nothing is lost if the
process dies; the sender leases a batch, sends each message outside any transaction and records the
outcome. A crash between sending and recording means one more send with the same key, which the
adapters de-duplicate (Resend's Idempotency-Key; the folder adapter rewrites the same file).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

from prometheus_client import Counter, Gauge
from sqlalchemy.engine import Engine
from sqlmodel import Session

from pawgle.common.db import read_only
from pawgle.common.workers import WakeableLoop
from pawgle.common.workqueue import new_lease_owner, on_commit_wake
from pawgle.notifier.config import Settings
from pawgle.notifier.mail import log_repository
from pawgle.notifier.mail.adapters import LocalFolderMailer, Mailer, MailError, OutgoingMail, ResendMailer

log = logging.getLogger(__name__)

EMAILS = Counter("pawgle_notifier_emails_total", "E-mail delivery attempts by outcome", ["adapter", "outcome"])
EMAIL_BACKLOG = Gauge("pawgle_notifier_email_backlog", "E-mails waiting to be sent")


def build_mailer(settings: Settings) -> Mailer:
    """Resend when an API key is configured, else the local outbox folder."""
    if settings.resend_api_key:
        return ResendMailer(
            api_key=settings.resend_api_key, api_url=settings.resend_api_url, timeout_s=settings.resend_timeout_s
        )
    if settings.is_production:
        log.warning("no NOTIFIER_RESEND_API_KEY: e-mails go to %s, not to people", settings.mail_outbox_dir)
    return LocalFolderMailer(settings.mail_outbox_dir)


def retry_delay_s(attempts: int, *, base_s: float, max_s: float) -> float:
    """Exponential backoff with jitter after `attempts` failed attempts: base, 2*base, 4*base ... max."""
    delay = min(base_s * 2 ** max(attempts - 1, 0), max_s)
    return delay * random.uniform(0.8, 1.0)


class MailSender(WakeableLoop):
    """Delivers due e-mails from the log until stopped; woken by every commit that queues e-mail.

    Each batch is leased briefly (`mail_lease_s`, tens of seconds) and the lease is renewed while the
    batch is being sent, so a sender that dies frees its mail within seconds, never minutes. Asked to
    stop, it finishes the message in hand, records what it sent and releases the rest at once.
    """

    def __init__(self, engine: Engine, mailer: Mailer, settings: Settings) -> None:
        super().__init__(
            "mail-sender", self._deliver_in_thread, poll_interval_s=settings.mail_poll_interval_s, on_idle=self._gauge
        )
        self.engine = engine
        self.mailer = mailer
        self.settings = settings
        self._last_gauge = 0.0

    async def run(self) -> None:
        unsubscribe = on_commit_wake(self.engine, log_repository.MAIL_TOPIC, self.wake)
        try:
            sweep = getattr(self.mailer, "sweep_temporary_files", None)
            if sweep is not None:
                await asyncio.to_thread(sweep)
            await super().run()
        finally:
            unsubscribe()

    async def _deliver_in_thread(self) -> int:
        # The loop awaits the thread to the end: stopping is a flag the thread reads between messages.
        return await asyncio.to_thread(self.deliver_due)

    async def _gauge(self) -> None:
        now = time.monotonic()
        if now - self._last_gauge >= 1.0:
            self._last_gauge = now
            await asyncio.to_thread(self.update_backlog)

    def update_backlog(self) -> None:
        """Set the mail backlog gauge from the log (also after a failed batch: it must stay true in faults)."""
        with Session(read_only(self.engine)) as session:
            EMAIL_BACKLOG.set(log_repository.pending_count(session))

    def deliver_due(self) -> int:
        """Lease one batch of due e-mails and try each once; return how many were attempted."""
        owner = new_lease_owner("mail-")
        lease_s = self.settings.mail_lease_s
        with Session(self.engine) as session:
            batch = log_repository.claim_due(session, limit=self.settings.mail_batch_size, lease_s=lease_s, owner=owner)
            outgoing = [
                (
                    row.id,
                    row.attempts,
                    OutgoingMail(
                        key=row.dedupe_key,
                        sender=self.settings.mail_from,
                        to=row.to_address,
                        subject=row.subject,
                        text=row.text_body,
                        html=row.html_body,
                        reply_to=row.reply_to,
                        created_at=row.created_at,
                    ),
                )
                for row in batch
            ]
            session.commit()
        outcomes: list[tuple[int, int, str | MailError]] = []
        renewed_at = time.monotonic()
        try:
            for row_id, attempts, mail in outgoing:
                assert row_id is not None
                if self.should_stop():
                    break
                if time.monotonic() - renewed_at >= lease_s / 3:
                    self._renew(owner, lease_s)
                    renewed_at = time.monotonic()
                try:
                    outcomes.append((row_id, attempts + 1, self.mailer.send(mail)))
                except MailError as exc:
                    outcomes.append((row_id, attempts + 1, exc))
        finally:
            self._record(outcomes, owner)
        return len(outcomes)

    def _renew(self, owner: str, lease_s: float) -> None:
        with Session(self.engine) as session:
            log_repository.renew_lease(session, owner=owner, lease_s=lease_s)
            session.commit()

    def _record(self, outcomes: list[tuple[int, int, str | MailError]], owner: str) -> None:
        # One transaction records the batch and frees what was not attempted; a crash before it re-sends
        # the batch under the same keys once the (short) lease runs out.
        with Session(self.engine) as session:
            for row_id, attempt, outcome in outcomes:
                if isinstance(outcome, MailError):
                    self._record_failure(session, row_id, attempt, outcome)
                else:
                    log_repository.mark_sent(session, row_id, provider_id=outcome)
                    EMAILS.labels(self.mailer.name, "sent").inc()
                    log.info("email sent", extra={"email_id": row_id, "adapter": self.mailer.name})
            session.flush()
            released = log_repository.release_unsent(session, owner=owner)
            session.commit()
        if released:
            log.info("mail sender stopping: %d e-mails released for the next sender", released)

    def _record_failure(self, session: Session, row_id: int, attempts: int, exc: MailError) -> None:
        give_up = exc.permanent or attempts >= self.settings.mail_max_attempts
        delay = (
            None
            if give_up
            else retry_delay_s(attempts, base_s=self.settings.mail_retry_base_s, max_s=self.settings.mail_retry_max_s)
        )
        log_repository.mark_attempt_failed(session, row_id, error=str(exc), retry_in_s=delay)
        EMAILS.labels(self.mailer.name, "failed" if give_up else "retry").inc()
        log_fn = log.error if give_up else log.warning
        log_fn(
            "email %s after %d attempts: %s",
            "failed for good" if give_up else "will be retried",
            attempts,
            exc,
            extra={"email_id": row_id, "adapter": self.mailer.name},
        )
