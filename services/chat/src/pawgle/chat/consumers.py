"""The events chat consumes: projections of reports, pets and users, matches and e-mail replies."""

from __future__ import annotations

from fastapi import FastAPI
from sqlmodel import Session

from pawgle.chat import live, matches, service
from pawgle.chat.models import Conversation, PetCard, ReportCard, UserName
from pawgle.common.bus.handlers import EventHandlers
from pawgle.common.events.auth import UserDeleted, UserRegistered, UserUpdated
from pawgle.common.events.chat import EmailReplyReceived
from pawgle.common.events.matcher import MatchFound
from pawgle.common.events.pets import PetCreated, PetDeleted, PetSnapshot, PetUpdated
from pawgle.common.events.reports import ReportFiled, ReportReopened, ReportSnapshot, ReportUpdated

handlers = EventHandlers("chat")


@handlers.on(ReportFiled, ReportUpdated, ReportReopened)
def report_changed(session: Session, data: ReportSnapshot) -> None:
    row = session.get(ReportCard, data.report_id) or ReportCard(
        report_id=data.report_id, reporter_id=data.reporter_id, status=data.status
    )
    row.reporter_id = data.reporter_id
    row.status = data.status
    row.animal_name = data.animal_name
    row.type = data.type
    row.pet_id = data.pet_id
    row.pet_owner_id = data.pet_owner_id
    row.image_key = data.image_key
    session.add(row)


@handlers.on(PetCreated, PetUpdated)
def pet_changed(session: Session, data: PetSnapshot) -> None:
    row = session.get(PetCard, data.pet_id) or PetCard(pet_id=data.pet_id, owner_id=data.owner_id)
    row.owner_id = data.owner_id
    row.name = data.name
    row.image_key = data.image_keys[0] if data.image_keys else None
    session.add(row)


@handlers.on(PetDeleted)
def pet_deleted(session: Session, data: PetDeleted) -> None:
    row = session.get(PetCard, data.pet_id)
    if row is not None:
        session.delete(row)


@handlers.on(UserRegistered, UserUpdated)
def user_changed(session: Session, data: UserRegistered | UserUpdated, app: FastAPI) -> None:
    if isinstance(data, UserUpdated) and not data.is_active:
        live.notify_after_commit(session, app, [data.user_id], live.REVOKED)  # their open streams end
    row = session.get(UserName, data.user_id) or UserName(user_id=data.user_id, display_name="")
    if row.deleted:
        return
    row.display_name = data.display_name
    session.add(row)


@handlers.on(UserDeleted)
def user_deleted(session: Session, data: UserDeleted, app: FastAPI) -> None:
    keys = service.anonymise_user(session, data.user_id)
    session.flush()
    live.notify_after_commit(session, app, [data.user_id], live.REVOKED)  # their open streams end
    # Blobs go after the rows: a failed delete leaves an orphan file, never a message pointing at nothing.
    for key in keys:
        app.state.photos.store.delete(key)


@handlers.on(MatchFound)
def match_found(session: Session, data: MatchFound, app: FastAPI) -> None:
    """One conversation per matched pair (or per sighting trail and lost side), opened by a system message."""
    matches.on_match_found(session, data, app)


@handlers.on(EmailReplyReceived)
def email_reply(session: Session, data: EmailReplyReceived, app: FastAPI) -> None:
    """An e-mailed reply, already proven by its reply token, posted as that participant."""
    conversation = session.get(Conversation, data.conversation_id)
    if conversation is None or data.sender_id not in service.participant_ids(session, conversation.id):
        return
    body = data.body.strip()[: service.MAX_BODY]
    if body:
        message = service.post_message(session, conversation, sender_id=data.sender_id, body=body, via="email")
        participants = service.participant_ids(session, conversation.id)
        live.notify_after_commit(
            session, app, participants, "message", conversation_id=conversation.id, message_id=message.id
        )
