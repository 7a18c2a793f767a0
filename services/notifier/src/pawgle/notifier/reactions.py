"""What the notifier does when an event arrives: notifications (6.2, 6.4), e-mails (6.3) and projections.

Every effect carries a key derived from the event id, so a replay under any inbox creates nothing twice.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from pawgle.common.bus.gauges import record_dropped
from pawgle.common.events.auth import MagicLinkRequested, UserDeleted, UserRegistered, UserUpdated
from pawgle.common.events.chat import ConversationOpened, ConversationRead, MessageSent
from pawgle.common.events.embeddings import EmbeddingFailed, PetEmbedded
from pawgle.common.events.matcher import MatchFound
from pawgle.common.events.pets import PetDeleted, PetSnapshot
from pawgle.common.events.reports import ReportExpired, ReportExpiring, ReportFiled
from pawgle.notifier import geo, repository
from pawgle.notifier.config import Settings
from pawgle.notifier.mail import compose, log_repository
from pawgle.notifier.models import AlertArea, ChatEmailPaging, Contact, MatchMail, PetName, ReplyToken, utcnow

log = logging.getLogger(__name__)

# A deleted user's contact row keeps only the id and this time, so a late user.updated cannot revive it.
_TOMBSTONE_AT = datetime(9999, 1, 1)


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def display_name(name: str | None, fallback: str = "your pet") -> str:
    """A pet's name for a sentence; a placeholder like N/A becomes the fallback."""
    name = (name or "").strip()
    return name if name and name.upper() != "N/A" else fallback


@dataclass(frozen=True)
class NewNotification:
    """A notification to create for one user."""

    user_id: int
    verb: str
    description: str
    target_id: int | None = None
    target_name: str | None = None


def notify_all(session: Session, *, event_id: str, drafts: Sequence[NewNotification]) -> int:
    """Create an event's notifications in one statement, skipping any a replay already created."""
    by_key = {f"{event_id}:{d.verb[:40]}:{d.user_id}": d for d in drafts}
    existing = repository.existing_notification_keys(session, list(by_key))
    now = utcnow()
    rows = [
        {
            "user_id": d.user_id,
            "verb": d.verb[:200],
            "description": d.description,
            "target_id": d.target_id,
            "target_name": d.target_name[:200] if d.target_name else None,
            "is_read": False,
            "created_at": now,
            "dedupe_key": key,
        }
        for key, d in by_key.items()
        if key not in existing
    ]
    repository.insert_notifications(session, rows)
    return len(rows)


def notify(session: Session, *, event_id: str, **draft: Any) -> bool:
    """Create one notification for this event and user, unless a replay already did."""
    return notify_all(session, event_id=event_id, drafts=[NewNotification(**draft)]) == 1


def reachable(contact: Contact | None) -> bool:
    """Only verified, active addresses get mail."""
    return contact is not None and contact.is_active and contact.email_verified and bool(contact.email)


def email_users(session: Session, *, key_source: str, user_ids: Sequence[int], composed: compose.ComposedEmail) -> int:
    """Queue the same e-mail to several users in one statement; users we cannot write to are skipped."""
    contacts = repository.contacts_by_user(session, user_ids)
    mails = [
        log_repository.QueuedEmail(
            key=log_repository.email_key(key_source, f"user:{user_id}", composed.kind),
            composed=composed,
            to_address=contacts[user_id].email,
            user_id=user_id,
        )
        for user_id in user_ids
        if reachable(contacts.get(user_id))
    ]
    return log_repository.queue_emails(session, mails)


def email_user(
    session: Session, *, key_source: str, user_id: int, composed: compose.ComposedEmail, reply_to: str | None = None
) -> bool:
    """Queue an e-mail to one user's verified, active address."""
    contact = repository.get_contact(session, user_id)
    if contact is None or not reachable(contact):
        return False
    key = log_repository.email_key(key_source, f"user:{user_id}", composed.kind)
    return log_repository.queue_email(
        session, key=key, composed=composed, to_address=contact.email, user_id=user_id, reply_to=reply_to
    )


# --- reports -------------------------------------------------------------------------------------


def areas_containing(session: Session, *, lat: float, lon: float, status: str, exclude: set[int]) -> list[AlertArea]:
    """Active areas around the point whose filter accepts `status`, one per user (the nearest centre)."""
    best: dict[int, tuple[float, AlertArea]] = {}
    for area in repository.alert_candidates(
        session, cell=geo.cell_of(lat, lon), status=status, exclude_user_ids=exclude
    ):
        distance = geo.haversine_km(lat, lon, area.center_lat, area.center_lon)
        if distance <= area.radius_km and (area.user_id not in best or distance < best[area.user_id][0]):
            best[area.user_id] = (distance, area)
    return [area for _, area in sorted(best.values(), key=lambda pair: pair[1].user_id)]


def on_report_filed(session: Session, *, settings: Settings, event_id: str, data: ReportFiled) -> int:
    """Alert the watchers of areas around a new report (never its reporter or the pet's owner)."""
    if data.status not in ("lost", "found"):
        return 0
    name = display_name(data.animal_name, "Unknown")
    if data.status == "lost" and data.pet_id is not None:
        notify(
            session,
            event_id=event_id,
            user_id=data.reporter_id,
            verb="Pet marked as lost",
            description=f"You've reported {name} as lost.",
            target_id=data.pet_id,
            target_name=name,
        )
    exclude = {data.reporter_id} | ({data.pet_owner_id} if data.pet_owner_id is not None else set())
    areas = areas_containing(session, lat=data.latitude, lon=data.longitude, status=data.status, exclude=exclude)
    drafts = [
        NewNotification(
            user_id=area.user_id,
            verb="nearby_alert",
            description=(
                f"A {data.status} pet ({name}) was reported within {area.radius_km:g} km "
                f"of your '{area.label or 'saved area'}'."
            ),
            target_id=data.report_id,
            target_name=name,
        )
        for area in areas
    ]
    notify_all(session, event_id=event_id, drafts=drafts)
    mail = compose.nearby_alert_email(frontend=settings.frontend_origin, status=data.status)
    email_users(session, key_source=event_id, user_ids=[area.user_id for area in areas], composed=mail)
    return len(areas)


def on_report_expiring(session: Session, *, settings: Settings, event_id: str, data: ReportExpiring) -> None:
    """Warn the reporter a few days before their report leaves the map: a notification and a link-only e-mail."""
    name = display_name(data.animal_name, "your pet")
    notify(
        session,
        event_id=event_id,
        user_id=data.reporter_id,
        verb="report_expiring",
        description=(
            f"Your report for {name} leaves the map on {data.expires_at:%Y-%m-%d}. "
            "Renew it from your reports on the map if it is still current."
        ),
        target_id=data.report_id,
        target_name=name,
    )
    mail = compose.report_expiring_email(frontend=settings.frontend_origin, name=name)
    email_user(session, key_source=event_id, user_id=data.reporter_id, composed=mail)


def on_report_expired(session: Session, *, event_id: str, data: ReportExpired) -> None:
    """Tell the reporter their report left the map."""
    name = display_name(data.animal_name, "your pet")
    notify(
        session,
        event_id=event_id,
        user_id=data.reporter_id,
        verb="report_expired",
        description=f"Your report for {name} expired and left the map. File it again if it is still current.",
        target_id=data.report_id,
        target_name=name,
    )


# --- embeddings and matches ----------------------------------------------------------------------


def on_pet_embedded(session: Session, *, event_id: str, data: PetEmbedded) -> None:
    """Tell the owner their pet's photos are ready for matching."""
    pet = repository.get_pet_name(session, data.pet_id)
    name = display_name(pet.name if pet else None)
    notify(
        session,
        event_id=event_id,
        user_id=data.owner_id,
        verb="feature_extraction_complete",
        description=f"Feature extraction complete for {name}: it can now be matched with found pets.",
        target_id=data.pet_id,
        target_name=pet.name if pet else None,
    )


def on_embedding_failed(session: Session, *, event_id: str, data: EmbeddingFailed) -> None:
    """Tell the owner the image model gave up on their pet's or report's photos."""
    name = display_name(data.name)
    if data.subject_kind == "pet":
        description = f"Feature extraction failed for {name}. You can retry from your profile."
    else:
        description = f"We could not read the photo of your report for {name}. The report stays on the map."
    notify(
        session,
        event_id=event_id,
        user_id=data.owner_id,
        verb="feature_extraction_failed",
        description=description,
        target_id=data.subject_id,
        target_name=data.name or None,
    )


def on_match_found(session: Session, *, settings: Settings, event_id: str, data: MatchFound) -> None:
    """Tell the lost side; the e-mail waits for chat's conversation.opened, which carries the link."""
    name = display_name(data.name)
    notify(
        session,
        event_id=event_id,
        user_id=data.lost_user_id,
        verb="auto_match",
        description=f"We found a possible match for {name}. Open the chat to view the report.",
        target_id=data.pet_id,
        target_name=name,
    )
    row = repository.get_match_mail(session, data.match_id) or MatchMail(match_id=data.match_id)
    row.lost_user_id, row.name, row.found_event_id = data.lost_user_id, name, event_id
    _send_match_mail_when_complete(session, settings, row)


def on_conversation_opened(session: Session, *, settings: Settings, data: ConversationOpened) -> None:
    """Remember the chat opened for a match; send the match e-mail if it was waiting."""
    if data.match_id is None:
        return
    row = repository.get_match_mail(session, data.match_id) or MatchMail(match_id=data.match_id)
    row.conversation_id = data.conversation_id
    _send_match_mail_when_complete(session, settings, row)


def _send_match_mail_when_complete(session: Session, settings: Settings, row: MatchMail) -> None:
    if not row.mailed and row.lost_user_id is not None and row.conversation_id and row.name:
        mail = compose.match_email(
            frontend=settings.frontend_origin, name=row.name, conversation_id=row.conversation_id
        )
        email_user(session, key_source=f"match:{row.match_id}", user_id=row.lost_user_id, composed=mail)
        row.mailed = True
    repository.save(session, row)


# --- chat ----------------------------------------------------------------------------------------


def issue_reply_address(session: Session, *, settings: Settings, conversation_id: str, user_id: int) -> str | None:
    """A reply address that proves, when an answer comes back (X1), which party of which chat wrote it."""
    if not settings.reply_domain:
        return None
    token = secrets.token_urlsafe(24)
    now = utcnow()
    repository.delete_expired_reply_tokens(session, user_id=user_id, now=now)
    expires = now + timedelta(days=settings.reply_token_ttl_days)
    repository.save(
        session,
        ReplyToken(
            token_hash=hash_reply_token(token), conversation_id=conversation_id, user_id=user_id, expires_at=expires
        ),
    )
    return f"reply+{token}@{settings.reply_domain}"


def hash_reply_token(token: str) -> str:
    """Reply tokens are stored hashed, like passwords: a database leak reveals none."""
    return hashlib.sha256(token.encode()).hexdigest()


def on_message_sent(
    session: Session, *, settings: Settings, event_id: str, occurred_at: datetime, data: MessageSent
) -> None:
    """Page each recipient by e-mail, at most once per conversation per window; contact-owner also notifies."""
    sent_at = _naive_utc(occurred_at)
    window = timedelta(seconds=settings.chat_page_interval_s)
    for user_id in sorted(set(data.recipient_ids) - {data.sender_id}):
        if data.via_contact_owner:
            about = f"{data.pet_type or 'pet'} {display_name(data.pet_name, '')}".strip()
            notify(
                session,
                event_id=event_id,
                user_id=user_id,
                verb=f"Someone has information about your {about}",
                description="Someone answered your report. Open the chat to read their message.",
            )
        page = repository.get_chat_page(session, conversation_id=data.conversation_id, user_id=user_id)
        if _paged_recently_and_still_unread(page, sent_at, window) or not reachable(
            repository.get_contact(session, user_id)
        ):
            continue
        reply_to = issue_reply_address(
            session, settings=settings, conversation_id=data.conversation_id, user_id=user_id
        )
        mail = compose.chat_page_email(frontend=settings.frontend_origin, conversation_id=data.conversation_id)
        if email_user(session, key_source=event_id, user_id=user_id, composed=mail, reply_to=reply_to):
            page = page or ChatEmailPaging(conversation_id=data.conversation_id, user_id=user_id)
            page.last_paged_at = sent_at
            repository.save(session, page)


def _paged_recently_and_still_unread(page: ChatEmailPaging | None, sent_at: datetime, window: timedelta) -> bool:
    """Within the window of the last page, with nothing read since it: this message needs no new e-mail."""
    if page is None or page.last_paged_at is None or sent_at - page.last_paged_at >= window:
        return False
    return page.last_read_at is None or page.last_read_at < page.last_paged_at


def on_conversation_read(session: Session, *, data: ConversationRead) -> None:
    """Remember that a participant caught up, so the next message pages them again."""
    read_at = _naive_utc(data.read_at)
    page = repository.get_chat_page(session, conversation_id=data.conversation_id, user_id=data.user_id)
    page = page or ChatEmailPaging(conversation_id=data.conversation_id, user_id=data.user_id)
    if page.last_read_at is None or read_at > page.last_read_at:
        page.last_read_at = read_at
        repository.save(session, page)


# --- accounts and pets ---------------------------------------------------------------------------


def on_magic_link_requested(session: Session, *, event_id: str, data: MagicLinkRequested) -> None:
    """Send the sign-in or verification link, unless it expired while the event waited."""
    if _naive_utc(data.expires_at) <= datetime.now(UTC).replace(tzinfo=None):
        # Sending a dead link helps nobody; the user asks for a new one. Counted, so a slow queue shows.
        record_dropped(data.event_type, "magic link expired before it could be sent", event_id=event_id)
        return
    mail = compose.magic_link_email(purpose=data.purpose, link=data.link)
    key = log_repository.email_key(event_id, data.email.lower(), mail.kind)
    log_repository.queue_email(session, key=key, composed=mail, to_address=data.email, user_id=data.user_id)


def on_user_changed(session: Session, *, occurred_at: datetime, data: UserRegistered | UserUpdated) -> None:
    """Keep the address to write to; an older event never overwrites a newer one."""
    at = _naive_utc(occurred_at)
    contact = repository.get_contact(session, data.user_id)
    if contact is not None and contact.updated_at > at:
        return
    contact = contact or Contact(user_id=data.user_id, email=data.email)
    contact.email, contact.display_name = data.email, data.display_name[:150]
    contact.email_verified = data.email_verified
    contact.is_active = getattr(data, "is_active", True)
    contact.updated_at = at
    repository.save(session, contact)


def on_user_deleted(session: Session, *, data: UserDeleted) -> None:
    """Erase the user's contact, alert areas, notifications and mail; keep only a tombstone of the id."""
    repository.erase_user(session, data.user_id)
    repository.save(
        session,
        Contact(user_id=data.user_id, email="", display_name="", is_active=False, updated_at=_TOMBSTONE_AT),
    )


def on_pet_changed(session: Session, *, data: PetSnapshot) -> None:
    """Keep the pet's name for embedding notifications."""
    row = repository.get_pet_name(session, data.pet_id) or PetName(pet_id=data.pet_id, owner_id=data.owner_id, name="")
    row.owner_id, row.name = data.owner_id, data.name[:200]
    repository.save(session, row)


def on_pet_deleted(session: Session, *, data: PetDeleted) -> None:
    """Forget a deleted pet's name."""
    repository.delete_pet_name(session, data.pet_id)
