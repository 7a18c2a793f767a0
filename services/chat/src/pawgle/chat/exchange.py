"""Safe contact exchange: each participant offers only their own details; a side sees another's only
when both have offered (the original's unauthenticated share links are gone, contract D3c)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field
from sqlmodel import Session, select

from pawgle.chat import service
from pawgle.chat.models import ContactOffer
from pawgle.common.auth import CurrentUserId
from pawgle.common.db import SessionDep, SessionRoute, save
from pawgle.common.schemas import RequestModel, SafeText

router = APIRouter(prefix="/api/auth/chat", route_class=SessionRoute)


class OfferContact(RequestModel):
    contact: SafeText = Field(min_length=1, max_length=200)


def _state(session: Session, conversation_id: str, user_id: int) -> dict[str, object]:
    offers = {
        o.user_id: o for o in session.exec(select(ContactOffer).where(ContactOffer.conversation_id == conversation_id))
    }
    mine = offers.get(user_id)
    shared = [
        {"user_id": uid, "contact": offer.contact}
        for uid, offer in sorted(offers.items())
        if uid != user_id and mine is not None
    ]
    return {"offered": mine is not None, "my_contact": mine.contact if mine else None, "shared": shared}


@router.get("/conversations/{conversation_id}/contact/")
def contact_state(conversation_id: str, session: SessionDep, user_id: CurrentUserId) -> dict[str, object]:
    """Whether the caller offered, and the details of others who offered too (only once the caller did)."""
    service.get_conversation(session, conversation_id, user_id)
    return _state(session, conversation_id, user_id)


@router.post("/conversations/{conversation_id}/contact/")
def offer_contact(
    conversation_id: str, data: OfferContact, session: SessionDep, user_id: CurrentUserId
) -> dict[str, object]:
    """Offer (or change) the caller's own contact details in this conversation."""
    service.get_conversation(session, conversation_id, user_id)
    offer = session.get(ContactOffer, (conversation_id, user_id)) or ContactOffer(
        conversation_id=conversation_id, user_id=user_id, contact=data.contact
    )
    offer.contact = data.contact
    save(session, offer)
    return _state(session, conversation_id, user_id)


@router.delete("/conversations/{conversation_id}/contact/")
def withdraw_contact(conversation_id: str, session: SessionDep, user_id: CurrentUserId) -> dict[str, object]:
    """Withdraw the caller's offer: others no longer see it."""
    service.get_conversation(session, conversation_id, user_id)
    offer = session.get(ContactOffer, (conversation_id, user_id))
    if offer is not None:
        session.delete(offer)
        session.flush()
    return _state(session, conversation_id, user_id)
