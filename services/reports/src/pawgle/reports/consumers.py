"""The events the reports service consumes, each handed to its reaction with typed data."""

from __future__ import annotations

from datetime import datetime

from fastapi import FastAPI
from sqlmodel import Session

from pawgle.common.bus.handlers import EventHandlers
from pawgle.common.events.auth import UserDeleted
from pawgle.common.events.chat import ConversationOpened
from pawgle.common.events.embeddings import EmbeddingFailed, ReportEmbedded
from pawgle.common.events.matcher import MatchConfirmed
from pawgle.common.events.pets import PetCreated, PetDeleted, PetSnapshot, PetUpdated
from pawgle.reports import reactions
from pawgle.reports.config import Settings

handlers = EventHandlers("reports")


@handlers.on(PetCreated, PetUpdated)
def pet_changed(session: Session, data: PetSnapshot, occurred_at: datetime) -> None:
    reactions.on_pet_changed(session, data=data, occurred_at=occurred_at)


@handlers.on(PetDeleted)
def pet_deleted(session: Session, data: PetDeleted) -> None:
    reactions.on_pet_deleted(session, data=data)


@handlers.on(ConversationOpened)
def conversation_opened(session: Session, data: ConversationOpened) -> None:
    reactions.on_conversation_opened(session, data=data)


@handlers.on(UserDeleted)
def user_deleted(session: Session, data: UserDeleted, app: FastAPI) -> None:
    reactions.on_user_deleted(session, data=data, blobs=getattr(app.state, "blobs", None))


@handlers.on(MatchConfirmed)
def match_confirmed(session: Session, data: MatchConfirmed, settings: Settings) -> None:
    reactions.on_match_confirmed(session, data=data, settings=settings)


@handlers.on(ReportEmbedded)
def report_embedded(session: Session, data: ReportEmbedded, occurred_at: datetime) -> None:
    reactions.on_report_embedded(session, data=data, occurred_at=occurred_at)


@handlers.on(EmbeddingFailed)
def embedding_failed(session: Session, data: EmbeddingFailed, occurred_at: datetime) -> None:
    reactions.on_embedding_failed(session, data=data, occurred_at=occurred_at)
