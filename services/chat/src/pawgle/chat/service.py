"""The chat's rules: who may see a conversation, starting one, reading and sending messages."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from pawgle.chat.aftercommit import on_commit
from pawgle.chat.metrics import CONVERSATIONS_OPENED, MESSAGES_SENT
from pawgle.chat.models import (
    Attachment,
    ContactOffer,
    Conversation,
    Message,
    Participant,
    PetCard,
    ReportCard,
    UserName,
)
from pawgle.chat.scam import scam_warning
from pawgle.chat.schemas import AttachmentRead, MessageRead
from pawgle.chat.schemas import ConversationRead as ConversationBody
from pawgle.common.blobs import BlobStore
from pawgle.common.bus.outbox import add_event
from pawgle.common.db import utcnow
from pawgle.common.errors import BadRequest, Forbidden, NotFound
from pawgle.common.events.chat import ConversationOpened, ConversationRead, MessageSent

MAX_BODY = 4000
PAGE = 200
PREVIEW = 120
SYSTEM_NAME = "PawGle"
DELETED_NAME = "Deleted user"
_ONE_US = timedelta(microseconds=1)

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def get_conversation(session: Session, conversation_id: str, user_id: int) -> Conversation:
    """The conversation if `user_id` takes part in it (or owns the report's pet): 404 unknown, 403 others."""
    if not _UUID.fullmatch(conversation_id):
        raise NotFound("Not found")
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound("Not found")
    if user_id not in participant_ids(session, conversation_id) and user_id != _pet_owner(session, conversation):
        raise Forbidden("Forbidden")
    return conversation


def participant_ids(session: Session, conversation_id: str) -> list[int]:
    """Every participant of a conversation, sorted."""
    query = select(Participant.user_id).where(Participant.conversation_id == conversation_id)
    return sorted(session.exec(query).all())


def _pet_owner(session: Session, conversation: Conversation) -> int | None:
    report = session.get(ReportCard, conversation.report_id)
    return report.pet_owner_id if report else None


def list_conversations(session: Session, user_id: int, store: BlobStore) -> list[ConversationBody]:
    """C1: the caller's conversations, latest message first (never-written ones last, newest first)."""
    query = (
        select(Conversation)
        .join(Participant, col(Participant.conversation_id) == col(Conversation.id))
        .where(Participant.user_id == user_id)
        .order_by(col(Conversation.last_message_at).is_(None), col(Conversation.last_message_at).desc())
        .order_by(col(Conversation.created_at).desc())
    )
    return [conversation_body(session, c, user_id, store) for c in session.exec(query).all()]


def conversation_body(session: Session, conversation: Conversation, user_id: int, store: BlobStore) -> ConversationBody:
    """The contract's Conversation object as `user_id` sees it."""
    report = session.get(ReportCard, conversation.report_id)
    pet = session.get(PetCard, report.pet_id) if report and report.pet_id else None
    name = (pet.name if pet else None) or (report.animal_name if report else None) or "Unknown"
    image_key = (pet.image_key if pet else None) or (report.image_key if report else None)
    unread = session.exec(
        select(func.count())
        .select_from(Message)
        .where(Message.conversation_id == conversation.id, col(Message.read_at).is_(None))
        .where(or_(col(Message.sender_id).is_(None), col(Message.sender_id) != user_id))
    ).one()
    return ConversationBody(
        id=conversation.id,
        pet_location_id=conversation.report_id,
        pet_name=name,
        pet_image_url=store.url(image_key) if image_key else None,
        last_message_at=conversation.last_message_at,
        last_message_preview=conversation.last_message_preview,
        unread_count=unread,
        created_at=conversation.created_at,
        is_test=conversation.is_test,
    )


def start_conversation(
    session: Session, report_id: int, user_id: int, *, via: str = "start"
) -> tuple[Conversation, bool]:
    """C2: the caller's conversation about a report, created with its reporter and pet owner if missing
    (True when this call created it)."""
    report = session.get(ReportCard, report_id)
    if report is None:
        raise NotFound("Not found")
    existing = session.exec(
        select(Conversation).where(Conversation.report_id == report_id, Conversation.starter_id == user_id)
    ).first()
    if existing is not None:
        return existing, False
    others = [uid for uid in (report.reporter_id, report.pet_owner_id) if uid is not None and uid != user_id]
    try:
        with session.begin_nested():
            users = [user_id, *others]
            return open_conversation(session, report_id=report_id, user_ids=users, starter_id=user_id, via=via), True
    except IntegrityError:
        # A concurrent start by the same caller won the unique (report, starter) row: answer with theirs.
        return session.exec(
            select(Conversation).where(Conversation.report_id == report_id, Conversation.starter_id == user_id)
        ).one(), False


def open_conversation(
    session: Session,
    *,
    report_id: int,
    user_ids: Sequence[int],
    starter_id: int | None = None,
    match_id: int | None = None,
    trail_id: int | None = None,
    via: str = "start",
) -> Conversation:
    """Create a conversation with its participants and publish conversation.opened (in one transaction)."""
    conversation = Conversation(id=str(uuid.uuid4()), report_id=report_id, starter_id=starter_id, match_id=match_id)
    session.add(conversation)
    for uid in sorted(set(user_ids)):
        session.add(Participant(conversation_id=conversation.id, user_id=uid))
    session.flush()
    add_event(
        session,
        ConversationOpened(
            conversation_id=conversation.id,
            report_id=report_id,
            participant_ids=sorted(set(user_ids)),
            match_id=match_id,
            trail_id=trail_id,
        ),
    )
    on_commit(session, CONVERSATIONS_OPENED.labels(via).inc)
    return conversation


def parse_after(raw: str | None) -> datetime | None:
    """The C4 cursor: ISO-8601 with Z or an offset and microseconds, as naive UTC; 400 when unreadable."""
    if raw is None or raw == "":
        return None
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise BadRequest("Invalid 'after' timestamp.") from None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def read_messages(
    session: Session, conversation: Conversation, user_id: int, after: datetime | None, store: BlobStore
) -> tuple[list[MessageRead], datetime | None]:
    """C4: the latest 200 (or those after the cursor, plus unread ones from others); stamps others' read
    (the stamp's time is returned when this call marked any message read, else None)."""
    base = select(Message).where(Message.conversation_id == conversation.id)
    if after is None:
        rows = list(session.exec(base.order_by(col(Message.created_at).desc()).limit(PAGE)).all())[::-1]
    else:
        from_others_unread = col(Message.read_at).is_(None) & or_(
            col(Message.sender_id).is_(None), col(Message.sender_id) != user_id
        )
        query = base.where(or_(col(Message.created_at) > after, from_others_unread))
        rows = list(session.exec(query.order_by(col(Message.created_at)).limit(PAGE)).all())
    now = utcnow()
    stamped = False
    for message in rows:
        if message.sender_id != user_id and message.read_at is None:
            message.read_at = now
            session.add(message)
            stamped = True
    if stamped:
        add_event(session, ConversationRead(conversation_id=conversation.id, user_id=user_id, read_at=now))
    return message_bodies(session, rows, user_id, store), (now if stamped else None)


def message_bodies(session: Session, rows: Sequence[Message], user_id: int, store: BlobStore) -> list[MessageRead]:
    """Messages as the contract shapes them, with their attachments and the recipient's scam warning."""
    ids = [m.id for m in rows]
    attachments: dict[str, list[AttachmentRead]] = {}
    if ids:
        for a in session.exec(
            select(Attachment).where(col(Attachment.message_id).in_(ids)).order_by(col(Attachment.id))
        ):
            attachments.setdefault(a.message_id, []).append(
                AttachmentRead(id=a.id or 0, url=store.url(a.key), created_at=a.created_at)
            )
    return [
        MessageRead(
            id=m.id,
            sender_id=m.sender_id,
            sender_name=m.sender_name,
            body=m.body,
            attachments=attachments.get(m.id, []),
            created_at=m.created_at,
            read_at=m.read_at,
            warning=scam_warning(m.body) if m.sender_id is not None and m.sender_id != user_id else None,
        )
        for m in rows
    ]


def clean_body(raw: str | None) -> str:
    """The C5 body, trimmed; 400 past 4000 characters."""
    body = (raw or "").strip()
    if len(body) > MAX_BODY:
        raise BadRequest("Message too long")
    return body


def display_name(session: Session, user_id: int) -> str:
    """A user's display name from the user.* projection; never an e-mail address (contract D3d)."""
    row = session.get(UserName, user_id)
    if row is None or not row.display_name or "@" in row.display_name:
        return f"User {user_id}"
    return row.display_name


@dataclass
class Posted:
    """A message just stored, with its attachments and the conversation's participants after it."""

    message: Message
    attachments: list[Attachment]
    participants: list[int]

    def body(self, store: BlobStore) -> MessageRead:
        """The Message object as its sender sees it (no warning), built without another query."""
        m = self.message
        return MessageRead(
            id=m.id,
            sender_id=m.sender_id,
            sender_name=m.sender_name,
            body=m.body,
            attachments=[
                AttachmentRead(id=a.id or 0, url=store.url(a.key), created_at=a.created_at) for a in self.attachments
            ],
            created_at=m.created_at,
            read_at=m.read_at,
        )


def post_message(
    session: Session,
    conversation: Conversation,
    *,
    sender_id: int | None,
    body: str,
    attachment_keys: Sequence[str] = (),
    via_contact_owner: bool = False,
    via: str = "app",
) -> Message:
    """Store a message (system when sender_id is None), update the conversation and publish message.sent."""
    return post(
        session,
        conversation,
        sender_id=sender_id,
        body=body,
        attachment_keys=attachment_keys,
        via_contact_owner=via_contact_owner,
        via=via,
    ).message


def post(
    session: Session,
    conversation: Conversation,
    *,
    sender_id: int | None,
    body: str,
    attachment_keys: Sequence[str] = (),
    via_contact_owner: bool = False,
    via: str = "app",
) -> Posted:
    """post_message, returning what a route answers with (SQLite holds its write lock for the whole
    transaction, so every statement saved here is throughput: no re-reads, no second transaction)."""
    now = utcnow()
    last = conversation.last_message_at  # every message goes through here and moves it
    if last is not None and now <= last:
        # Cursors compare timestamps strictly: two messages never share one (same-microsecond sends).
        now = last + _ONE_US
    message = Message(
        id=str(uuid.uuid4()),
        conversation_id=conversation.id,
        sender_id=sender_id,
        sender_name=SYSTEM_NAME if sender_id is None else display_name(session, sender_id),
        body=body,
        created_at=now,
    )
    session.add(message)
    attachments = [Attachment(message_id=message.id, key=key, created_at=now) for key in attachment_keys]
    session.add_all(attachments)
    members = participant_ids(session, conversation.id)
    if sender_id is not None and sender_id not in members:
        session.add(Participant(conversation_id=conversation.id, user_id=sender_id))
        members = sorted([*members, sender_id])
    conversation.last_message_at = now
    conversation.last_message_preview = (body[:PREVIEW] if body else "[photo]") or None
    session.add(conversation)
    report = session.get(ReportCard, conversation.report_id) if via_contact_owner else None
    add_event(
        session,
        MessageSent(
            message_id=message.id,
            conversation_id=conversation.id,
            sender_id=sender_id or 0,
            recipient_ids=[uid for uid in members if uid != sender_id],
            via_contact_owner=via_contact_owner,
            pet_name=report.animal_name if report else None,
            pet_type=report.type if report else None,
        ),
    )
    session.flush()
    origin = "system" if sender_id is None else ("contact_owner" if via_contact_owner else via)
    on_commit(session, MESSAGES_SENT.labels(origin).inc)
    return Posted(message=message, attachments=attachments, participants=members)


def anonymise_user(session: Session, user_id: int) -> list[str]:
    """user.deleted: the user's messages show "Deleted user" with no body; returns attachment keys to delete."""
    keys: list[str] = []
    for message in session.exec(select(Message).where(Message.sender_id == user_id)).all():
        for attachment in session.exec(select(Attachment).where(Attachment.message_id == message.id)).all():
            keys.append(attachment.key)
            session.delete(attachment)
        message.sender_id = None
        message.sender_name = DELETED_NAME
        message.body = ""
        session.add(message)
    # Their offered contact details go too: nobody sees them any more.
    for offer in session.exec(select(ContactOffer).where(ContactOffer.user_id == user_id)).all():
        session.delete(offer)
    name = session.get(UserName, user_id)
    if name is not None:
        name.display_name = DELETED_NAME
        name.deleted = True
        session.add(name)
    return keys
