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

from prometheus_client import Counter, Gauge
from sqlalchemy.engine import Engine
from sqlmodel import Session

from pawgle.common.db import read_only
from pawgle.notifier.config import Settings
from pawgle.notifier.mail import store
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


class MailSender:
    """Delivers due e-mails from the log until cancelled."""

    def __init__(self, engine: Engine, mailer: Mailer, settings: Settings) -> None:
        self.engine = engine
        self.mailer = mailer
        self.settings = settings
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        """Look for work now instead of at the next poll; callable from any thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        unsubscribe = store.on_mail_committed(self.wake)
        try:
            await self._run()
        finally:
            unsubscribe()

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                sent = await asyncio.to_thread(self.deliver_due)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a database hiccup must not end the sender
                failures += 1
                log.warning("mail sender: batch failed", exc_info=True)
                await asyncio.sleep(min(0.5 * 2**failures, 30.0))
                continue
            if sent:
                continue
            self._wake.clear()
            await asyncio.to_thread(self._update_backlog)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.mail_poll_interval_s)
            except TimeoutError:
                pass

    def _update_backlog(self) -> None:
        try:
            with Session(read_only(self.engine)) as session:
                EMAIL_BACKLOG.set(store.pending_count(session))
        except Exception:  # noqa: BLE001 - a metric is not worth failing the loop
            log.debug("mail backlog gauge not updated", exc_info=True)

    def deliver_due(self) -> int:
        """Lease one batch of due e-mails and try each once; return how many were attempted."""
        with Session(self.engine) as session:
            batch = store.claim_due(session, limit=self.settings.mail_batch_size, lease_s=self.settings.mail_lease_s)
            outgoing = [
                OutgoingMail(
                    key=row.dedupe_key,
                    sender=self.settings.mail_from,
                    to=row.to_address,
                    subject=row.subject,
                    text=row.text_body,
                    html=row.html_body,
                    reply_to=row.reply_to,
                    created_at=row.created_at,
                )
                for row in batch
            ]
            attempts = {row.id: row.attempts for row in batch}
            session.commit()
        outcomes: list[tuple[int, int, str | MailError]] = []
        for row_id, mail in zip(attempts, outgoing, strict=True):
            assert row_id is not None
            try:
                outcomes.append((row_id, attempts[row_id] + 1, self.mailer.send(mail)))
            except MailError as exc:
                outcomes.append((row_id, attempts[row_id] + 1, exc))
        # One transaction records the whole batch; a crash before it re-sends the batch under the same keys.
        with Session(self.engine) as session:
            for row_id, attempt, outcome in outcomes:
                if isinstance(outcome, MailError):
                    self._record_failure(session, row_id, attempt, outcome)
                else:
                    store.mark_sent(session, row_id, provider_id=outcome)
                    EMAILS.labels(self.mailer.name, "sent").inc()
                    log.info("email sent", extra={"email_id": row_id, "adapter": self.mailer.name})
            session.commit()
        return len(outgoing)

    def _record_failure(self, session: Session, row_id: int, attempts: int, exc: MailError) -> None:
        give_up = exc.permanent or attempts >= self.settings.mail_max_attempts
        delay = (
            None
            if give_up
            else retry_delay_s(attempts, base_s=self.settings.mail_retry_base_s, max_s=self.settings.mail_retry_max_s)
        )
        store.mark_attempt_failed(session, row_id, error=str(exc), retry_in_s=delay)
        EMAILS.labels(self.mailer.name, "failed" if give_up else "retry").inc()
        log_fn = log.error if give_up else log.warning
        log_fn(
            "email %s after %d attempts: %s",
            "failed for good" if give_up else "will be retried",
            attempts,
            exc,
            extra={"email_id": row_id, "adapter": self.mailer.name},
        )
