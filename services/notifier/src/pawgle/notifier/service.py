"""Alert areas, notifications and e-mailed chat replies as users see them (R1-R4, N1-N3, X1); no HTTP here."""

from __future__ import annotations

import hmac
import html
import re
from collections.abc import Sequence
from email.utils import parseaddr
from typing import Any

from sqlalchemy.engine import Row
from sqlmodel import Session

from pawgle.common.bus.outbox import add_event
from pawgle.common.db import save, utcnow
from pawgle.common.errors import BadRequest, NotFound, Unauthorized
from pawgle.common.events.chat import EmailReplyReceived
from pawgle.notifier import reactions, repository
from pawgle.notifier.config import Settings
from pawgle.notifier.models import AlertArea
from pawgle.notifier.schemas import AlertCreate, AlertUpdate, InboundReply

MAX_ALERTS_PER_USER = 10
NOTIFICATION_PAGE = 50


def list_alerts(*, session: Session, user_id: int) -> Sequence[Row[Any]]:
    """The caller's alert areas, newest first (read-only rows with the fields of AlertArea)."""
    return repository.list_alerts(session, user_id)


def create_alert(*, session: Session, user_id: int, data: AlertCreate) -> AlertArea:
    """Save a new alert area and index it, refusing an 11th."""
    if repository.lock_user_alerts(session, user_id) >= MAX_ALERTS_PER_USER:
        raise BadRequest(f"You can have at most {MAX_ALERTS_PER_USER} alert subscriptions.")
    area = AlertArea(user_id=user_id, **data.model_dump())
    return repository.save_alert(session, area, reindex=True)


def get_alert(*, session: Session, user_id: int, alert_id: int) -> AlertArea:
    """One of the caller's own areas; anyone else's is 404."""
    area = repository.get_alert(session, user_id=user_id, alert_id=alert_id)
    if area is None:
        raise NotFound("Not found.")
    return area


def update_alert(*, session: Session, user_id: int, alert_id: int, data: AlertUpdate) -> AlertArea:
    """Apply the fields sent; a moved or resized area is re-indexed."""
    area = get_alert(session=session, user_id=user_id, alert_id=alert_id)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    reindex = any(
        field in changes and changes[field] != getattr(area, field)
        for field in ("center_lat", "center_lon", "radius_km")
    )
    for field, value in changes.items():
        setattr(area, field, value)
    return repository.save_alert(session, area, reindex=reindex)


def delete_alert(*, session: Session, user_id: int, alert_id: int) -> None:
    """Remove one of the caller's areas and its index entries."""
    repository.delete_alert(session, get_alert(session=session, user_id=user_id, alert_id=alert_id))


def list_notifications(*, session: Session, user_id: int) -> tuple[Sequence[Row[Any]], int]:
    """The newest 50 notifications (read-only rows with the fields of Notification) and the unread count."""
    return (
        repository.latest_notifications(session, user_id, limit=NOTIFICATION_PAGE),
        repository.count_unread(session, user_id),
    )


def mark_read(*, session: Session, user_id: int, notification_id: int) -> None:
    """Mark one of the caller's notifications read; anyone else's is 404."""
    row = repository.get_notification(session, user_id=user_id, notification_id=notification_id)
    if row is None:
        raise NotFound("Notification not found")
    if not row.is_read:
        row.is_read = True
        save(session, row)


def mark_all_read(*, session: Session, user_id: int) -> None:
    """Mark every notification of the caller read."""
    repository.mark_all_read(session, user_id)


# --- X1: replies to chat e-mails ------------------------------------------------------------------

_REPLY_ADDRESS = re.compile(r"reply\+([A-Za-z0-9_-]{16,64})@", re.IGNORECASE)
_QUOTE_START = re.compile(r"^(On .{0,300} wrote:|-+ ?Original Message ?-+|_{10,}|From: .+)$", re.IGNORECASE)
_TAGS = re.compile(r"<[^>]+>")
MAX_REPLY_CHARS = 4000


def check_forward_secret(*, settings: Settings, secret: str | None) -> None:
    """The frontend's inbound route proves itself with the shared secret; none configured means no access."""
    expected = settings.forward_secret.encode()
    if not expected or not secret or not hmac.compare_digest(secret.encode(), expected):
        raise Unauthorized("Unauthorized", success=False)


def reply_text(payload: InboundReply) -> str:
    """The new part of a reply: the text before the quoted original, capped like a chat message."""
    raw = payload.text or html.unescape(_TAGS.sub("\n", payload.html or ""))
    kept: list[str] = []
    for line in raw.replace("\r\n", "\n").split("\n"):
        if line.lstrip().startswith(">") or _QUOTE_START.match(line.strip()):
            break
        kept.append(line.rstrip())
    return "\n".join(kept).strip()[:MAX_REPLY_CHARS]


def accept_email_reply(*, session: Session, settings: Settings, payload: InboundReply) -> None:
    """Post an e-mailed reply into the chat as the party its reply token belongs to.

    The token alone picks the conversation and the sender; the From address must also be that party's
    address, so neither a leaked token nor a spoofed From is enough on its own.
    """
    hashes = [
        reactions.hash_reply_token(match.group(1))
        for match in map(_REPLY_ADDRESS.search, payload.recipients())
        if match is not None
    ]
    # One query for every address (the list is capped in the schema); the first valid one in `to` counts.
    tokens = repository.find_reply_tokens(session, hashes, now=utcnow())
    token_row = next((tokens[h] for h in hashes if h in tokens), None)
    if token_row is None:
        raise BadRequest("No valid reply address.", success=False)
    contact = repository.get_contact(session, token_row.user_id)
    sender = parseaddr(payload.from_)[1].strip().lower()
    if contact is None or not contact.is_active or not sender or sender != contact.email.strip().lower():
        raise BadRequest("Sender does not match the reply address.", success=False)
    body = reply_text(payload)
    if not body:
        raise BadRequest("Empty reply.", success=False)
    add_event(
        session,
        EmailReplyReceived(conversation_id=token_row.conversation_id, sender_id=token_row.user_id, body=body),
    )
