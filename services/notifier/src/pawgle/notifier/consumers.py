"""The events the notifier consumes, each handed to its reaction with typed data."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from pawgle.common.bus.handlers import EventHandlers
from pawgle.common.events.auth import MagicLinkRequested, UserDeleted, UserRegistered, UserUpdated
from pawgle.common.events.chat import ConversationOpened, ConversationRead, MessageSent
from pawgle.common.events.embeddings import EmbeddingFailed, PetEmbedded
from pawgle.common.events.matcher import MatchFound
from pawgle.common.events.pets import PetCreated, PetDeleted, PetSnapshot, PetUpdated
from pawgle.common.events.reports import ReportExpired, ReportExpiring, ReportFiled
from pawgle.notifier import reactions
from pawgle.notifier.config import Settings

handlers = EventHandlers("notifier")


@handlers.on(ReportFiled)
def report_filed(session: Session, data: ReportFiled, event_id: str, settings: Settings) -> None:
    reactions.on_report_filed(session, settings=settings, event_id=event_id, data=data)


@handlers.on(ReportExpiring)
def report_expiring(session: Session, data: ReportExpiring, event_id: str, settings: Settings) -> None:
    reactions.on_report_expiring(session, settings=settings, event_id=event_id, data=data)


@handlers.on(ReportExpired)
def report_expired(session: Session, data: ReportExpired, event_id: str) -> None:
    reactions.on_report_expired(session, event_id=event_id, data=data)


@handlers.on(MatchFound)
def match_found(session: Session, data: MatchFound, event_id: str, settings: Settings) -> None:
    reactions.on_match_found(session, settings=settings, event_id=event_id, data=data)


@handlers.on(ConversationOpened)
def conversation_opened(session: Session, data: ConversationOpened, settings: Settings) -> None:
    reactions.on_conversation_opened(session, settings=settings, data=data)


@handlers.on(MessageSent)
def message_sent(session: Session, data: MessageSent, event_id: str, occurred_at: datetime, settings: Settings) -> None:
    reactions.on_message_sent(session, settings=settings, event_id=event_id, occurred_at=occurred_at, data=data)


@handlers.on(ConversationRead)
def conversation_read(session: Session, data: ConversationRead) -> None:
    reactions.on_conversation_read(session, data=data)


@handlers.on(PetEmbedded)
def pet_embedded(session: Session, data: PetEmbedded, event_id: str) -> None:
    reactions.on_pet_embedded(session, event_id=event_id, data=data)


@handlers.on(EmbeddingFailed)
def embedding_failed(session: Session, data: EmbeddingFailed, event_id: str) -> None:
    reactions.on_embedding_failed(session, event_id=event_id, data=data)


@handlers.on(MagicLinkRequested)
def magic_link_requested(session: Session, data: MagicLinkRequested, event_id: str) -> None:
    reactions.on_magic_link_requested(session, event_id=event_id, data=data)


@handlers.on(UserRegistered, UserUpdated)
def user_changed(session: Session, data: UserRegistered | UserUpdated, occurred_at: datetime) -> None:
    reactions.on_user_changed(session, occurred_at=occurred_at, data=data)


@handlers.on(UserDeleted)
def user_deleted(session: Session, data: UserDeleted) -> None:
    reactions.on_user_deleted(session, data=data)


@handlers.on(PetCreated, PetUpdated)
def pet_changed(session: Session, data: PetSnapshot) -> None:
    reactions.on_pet_changed(session, data=data)


@handlers.on(PetDeleted)
def pet_deleted(session: Session, data: PetDeleted) -> None:
    reactions.on_pet_deleted(session, data=data)
