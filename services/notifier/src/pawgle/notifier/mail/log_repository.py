"""The e-mail log's repository: queue idempotently, claim due messages with a lease, record the outcome.

Queueing asks for the sender to be woken once the transaction commits (see pawgle.common.workqueue).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, update
from sqlmodel import Session, col, func, select

from pawgle.common import workqueue
from pawgle.notifier.mail.compose import ComposedEmail
from pawgle.notifier.models import EmailMessage, utcnow

PENDING, SENT, FAILED = "pending", "sent", "failed"
# Sign-in links are secrets: once delivered, the log keeps that a mail went out, not the link.
SCRUB_AFTER_SEND = {"sign_in", "verify_email", "password_reset"}


# The topic a commit that queued e-mail wakes (the sender listens on it, per engine).
MAIL_TOPIC = "notifier-mail"


def email_key(event_id: str, recipient: str, kind: str) -> str:
    """The deterministic key of one e-mail: the same event, recipient and kind never make two."""
    return hashlib.sha256(f"{event_id}|{recipient}|{kind}".encode()).hexdigest()


@dataclass(frozen=True)
class QueuedEmail:
    key: str
    composed: ComposedEmail
    to_address: str
    user_id: int | None
    reply_to: str | None = None


def queue_emails(session: Session, mails: Sequence[QueuedEmail]) -> int:
    """Write e-mails into the log in the caller's transaction, skipping keys already there; returns how many."""
    if not mails:
        return 0
    existing = set(
        session.exec(select(EmailMessage.dedupe_key).where(col(EmailMessage.dedupe_key).in_([m.key for m in mails])))
    )
    now = utcnow()
    rows = [
        {
            "dedupe_key": m.key,
            "kind": m.composed.kind,
            "user_id": m.user_id,
            "to_address": m.to_address,
            "reply_to": m.reply_to,
            "subject": m.composed.subject,
            "text_body": m.composed.text,
            "html_body": m.composed.html,
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for m in {m.key: m for m in mails}.values()
        if m.key not in existing
    ]
    if rows:
        session.exec(insert(EmailMessage), params=rows)
        workqueue.wake_after_commit(session, MAIL_TOPIC)
    return len(rows)


def queue_email(
    session: Session,
    *,
    key: str,
    composed: ComposedEmail,
    to_address: str,
    user_id: int | None,
    reply_to: str | None = None,
) -> bool:
    """Write one e-mail into the log in the caller's transaction; False when that key is already there."""
    mail = QueuedEmail(key=key, composed=composed, to_address=to_address, user_id=user_id, reply_to=reply_to)
    return queue_emails(session, [mail]) == 1


def claim_due(
    session: Session, *, limit: int, lease_s: float, owner: str, now: datetime | None = None
) -> list[EmailMessage]:
    """Lease up to `limit` due e-mails to `owner`, oldest due first (the caller commits)."""
    return workqueue.claim(
        session,
        EmailMessage,
        key="id",
        due=(col(EmailMessage.status) == PENDING) & (col(EmailMessage.next_attempt_at) <= (now or utcnow())),
        order_by=[col(EmailMessage.next_attempt_at), col(EmailMessage.id)],
        limit=limit,
        lease_s=lease_s,
        owner=owner,
        now=now,
    )


def renew_lease(session: Session, *, owner: str, lease_s: float) -> int:
    """Keep `owner`'s claimed e-mails leased while it is still sending them."""
    return workqueue.renew(session, EmailMessage, owner=owner, lease_s=lease_s)


def release_unsent(session: Session, *, owner: str) -> int:
    """Give back the e-mails `owner` claimed but did not attempt (a stopping sender): due again at once."""
    return workqueue.release(session, EmailMessage, owner=owner)


def mark_sent(session: Session, mail_id: int, *, provider_id: str, now: datetime | None = None) -> None:
    """Record a delivery (and forget a sign-in link's body)."""
    row = session.get(EmailMessage, mail_id)
    if row is None:  # erased meanwhile (user.deleted)
        return
    row.status, row.provider_id, row.sent_at = SENT, provider_id[:120], now or utcnow()
    row.attempts += 1
    row.lease_owner = row.lease_until = None
    row.last_error = None
    if row.kind in SCRUB_AFTER_SEND:
        row.text_body = row.html_body = "[delivered; link removed]"
    session.add(row)


def mark_attempt_failed(
    session: Session, mail_id: int, *, error: str, retry_in_s: float | None, now: datetime | None = None
) -> str | None:
    """Record a failed attempt: due again in `retry_in_s`, or FAILED when None. Returns the new status."""
    row = session.get(EmailMessage, mail_id)
    if row is None:
        return None
    now = now or utcnow()
    row.attempts += 1
    row.last_error = error[:2000]
    row.lease_owner = row.lease_until = None
    if retry_in_s is None:
        row.status = FAILED
    else:
        row.next_attempt_at = now + timedelta(seconds=retry_in_s)
    session.add(row)
    return row.status


def requeue_failed(session: Session, *, now: datetime | None = None) -> int:
    """Give every FAILED e-mail a fresh round of attempts (after an operator fixed the cause)."""
    result = session.exec(
        update(EmailMessage)
        .where(col(EmailMessage.status) == FAILED)
        .values(status=PENDING, attempts=0, next_attempt_at=now or utcnow())
    )
    return int(result.rowcount or 0)


def pending_count(session: Session) -> int:
    """How many e-mails wait to be sent (the backlog gauge)."""
    query = select(func.count()).select_from(EmailMessage).where(EmailMessage.status == PENDING)
    return int(session.exec(query).one())


def counts_by_status(session: Session) -> dict[str, int]:
    """E-mails per status, for operators and tests."""
    query = select(EmailMessage.status, func.count()).group_by(EmailMessage.status)
    return {status: int(n) for status, n in session.exec(query).all()}


def emails_for(session: Session, *, to_address: str | None = None) -> Sequence[EmailMessage]:
    """Every e-mail in the log, optionally only those to one address."""
    query = select(EmailMessage).order_by(col(EmailMessage.id))
    if to_address is not None:
        query = query.where(EmailMessage.to_address == to_address)
    return session.exec(query).all()
