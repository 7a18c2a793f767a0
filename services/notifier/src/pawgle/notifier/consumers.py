"""Event handlers: decode the envelope, call the reaction, nothing else."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from sqlmodel import Session

from pawgle.common.bus.consumer import ConsumerSpec
from pawgle.common.events.envelope import Envelope
from pawgle.notifier import reactions
from pawgle.notifier.config import Settings

Handler = Callable[[Session, Envelope[Any]], None]


def handlers(settings: Settings) -> dict[str, Handler]:
    """Each consumed event type and its handler."""

    def report_filed(session: Session, env: Envelope[Any]) -> None:
        reactions.on_report_filed(session, settings=settings, event_id=env.id, data=env.data)

    def report_expired(session: Session, env: Envelope[Any]) -> None:
        reactions.on_report_expired(session, event_id=env.id, data=env.data)

    def match_found(session: Session, env: Envelope[Any]) -> None:
        reactions.on_match_found(session, settings=settings, event_id=env.id, data=env.data)

    def conversation_opened(session: Session, env: Envelope[Any]) -> None:
        reactions.on_conversation_opened(session, settings=settings, data=env.data)

    def message_sent(session: Session, env: Envelope[Any]) -> None:
        reactions.on_message_sent(
            session, settings=settings, event_id=env.id, occurred_at=env.occurred_at, data=env.data
        )

    def conversation_read(session: Session, env: Envelope[Any]) -> None:
        reactions.on_conversation_read(session, data=env.data)

    def pet_embedded(session: Session, env: Envelope[Any]) -> None:
        reactions.on_pet_embedded(session, event_id=env.id, data=env.data)

    def embedding_failed(session: Session, env: Envelope[Any]) -> None:
        reactions.on_embedding_failed(session, event_id=env.id, data=env.data)

    def magic_link_requested(session: Session, env: Envelope[Any]) -> None:
        reactions.on_magic_link_requested(session, event_id=env.id, data=env.data)

    def user_changed(session: Session, env: Envelope[Any]) -> None:
        reactions.on_user_changed(session, occurred_at=env.occurred_at, data=env.data)

    def user_deleted(session: Session, env: Envelope[Any]) -> None:
        reactions.on_user_deleted(session, data=env.data)

    def pet_changed(session: Session, env: Envelope[Any]) -> None:
        reactions.on_pet_changed(session, data=env.data)

    def pet_deleted(session: Session, env: Envelope[Any]) -> None:
        reactions.on_pet_deleted(session, data=env.data)

    return {
        "report.filed": report_filed,
        "report.expired": report_expired,
        "match.found": match_found,
        "conversation.opened": conversation_opened,
        "message.sent": message_sent,
        "conversation.read": conversation_read,
        "pet.embedded": pet_embedded,
        "embedding.failed": embedding_failed,
        "auth.magic_link_requested": magic_link_requested,
        "user.registered": user_changed,
        "user.updated": user_changed,
        "user.deleted": user_deleted,
        "pet.created": pet_changed,
        "pet.updated": pet_changed,
        "pet.deleted": pet_deleted,
    }


def consumer_specs(settings: Settings) -> list[ConsumerSpec]:
    """One idempotent consumer per event type, named notifier-<event>."""
    return [
        ConsumerSpec(
            service=settings.service_name,
            event_type=event_type,
            handler=handler,
            max_deliveries=settings.consumer_max_deliveries,
        )
        for event_type, handler in handlers(settings).items()
    ]


def consumers(app: FastAPI) -> list[ConsumerSpec]:
    """The consumer factory create_service_app calls at startup."""
    return consumer_specs(app.state.settings)
