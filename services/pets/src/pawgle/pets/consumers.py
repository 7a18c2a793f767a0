"""The events the pets service consumes, each handed to its reaction with typed data."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from pawgle.common.bus.handlers import EventHandlers
from pawgle.common.events.auth import UserDeleted, UserRegistered, UserUpdated
from pawgle.common.events.embeddings import EmbeddingFailed, PetEmbedded
from pawgle.common.events.reports import ReportFiled
from pawgle.pets import reactions

handlers = EventHandlers("pets")


@handlers.on(UserRegistered, UserUpdated)
def user_changed(session: Session, data: UserRegistered | UserUpdated, occurred_at: datetime) -> None:
    reactions.on_user_changed(session, data=data, occurred_at=occurred_at)


@handlers.on(UserDeleted)
def user_deleted(session: Session, data: UserDeleted) -> None:
    reactions.on_user_deleted(session, data=data)


@handlers.on(PetEmbedded)
def pet_embedded(session: Session, data: PetEmbedded, occurred_at: datetime) -> None:
    reactions.on_pet_embedded(session, data=data, occurred_at=occurred_at)


@handlers.on(EmbeddingFailed)
def embedding_failed(session: Session, data: EmbeddingFailed, occurred_at: datetime) -> None:
    reactions.on_embedding_failed(session, data=data, occurred_at=occurred_at)


@handlers.on(ReportFiled)
def report_filed(session: Session, data: ReportFiled) -> None:
    reactions.on_report_filed(session, data=data)
