"""The contact-owner modal (L7): a signed-in, throttled message that lands in an in-app conversation.

The original e-mailed the sender's name, address and phone to the owner (contract D3b, D9). Here the
`contact_*` fields are accepted for the web app's sake and dropped: nothing of either side crosses over;
the owner gets a link-only paging e-mail from the notifier on message.sent.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from pawgle.chat import live, service
from pawgle.chat.api import StoreDep, accept_photos
from pawgle.chat.models import ReportCard
from pawgle.common.auth import OptionalUserId
from pawgle.common.db import SessionDep, SessionRoute
from pawgle.common.errors import AppError, BadRequest, NotFound, TooManyRequests, Unauthorized
from pawgle.common.throttle import ThrottleStore

router = APIRouter(prefix="/api/auth/pets", route_class=SessionRoute)

SENT = "Your message has been sent. They will contact you through our support team."


@router.post("/contact-owner/")
async def contact_owner(
    request: Request,
    session: SessionDep,
    user_id: OptionalUserId,
    store: StoreDep,
    pet_location_id: Annotated[str | None, Form()] = None,
    message: Annotated[str | None, Form()] = None,
    image: Annotated[UploadFile | None, File()] = None,
) -> dict[str, object]:
    """L7: post the caller's message (and photo) to the report's reporter and the linked pet's owner."""
    if user_id is None:
        raise Unauthorized("Please sign in to contact the owner.", success=False)
    await _throttle(request, user_id)
    text = (message or "").strip()
    report_id = _positive_int(pet_location_id)
    if not text or report_id is None:
        raise BadRequest("Missing required fields", success=False)
    if len(text) > service.MAX_BODY:
        raise BadRequest("Message too long", success=False)
    stored = await accept_photos(request, [image] if image is not None else [])

    def work() -> tuple[str, str, list[int]]:
        if session.get(ReportCard, report_id) is None:
            raise NotFound("Pet location record not found", success=False)
        conversation, created = service.start_conversation(session, report_id, user_id, via="contact_owner")
        if created:
            participants = service.participant_ids(session, conversation.id)
            live.notify_after_commit(
                session, request.app, participants, "conversation", conversation_id=conversation.id
            )
        posted = service.post(
            session,
            conversation,
            sender_id=user_id,
            body=text,
            attachment_keys=[p.key for p in stored],
            via_contact_owner=True,
        )
        session.commit()
        return conversation.id, posted.message.id, posted.participants

    try:
        conversation_id, message_id, participants = await run_in_threadpool(work)
    except BaseException:
        await request.app.state.photos.discard(stored)
        raise
    await live.notify(request, participants, "message", conversation_id=conversation_id, message_id=message_id)
    return {"success": True, "message": SENT, "conversation_id": conversation_id}


async def _throttle(request: Request, user_id: int) -> None:
    throttles: ThrottleStore | None = getattr(request.app.state, "throttle_store", None)
    if throttles is None:
        return
    try:
        await throttles.check("contact_owner", f"user:{user_id}", throttles.rate_for("contact_owner"))
    except TooManyRequests as exc:
        raise AppError(exc.detail, status_code=429, headers=exc.headers, success=False) from None


def _positive_int(raw: str | None) -> int | None:
    try:
        value = int((raw or "").strip())
    except ValueError:
        return None
    return value if 0 < value < 2**63 else None
