"""Thin routers for conversations and messages (C1-C5) and the contact-owner modal (L7)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from pawgle.chat import live, service
from pawgle.chat.schemas import ConversationRead, MessagePage, MessageRead
from pawgle.common.auth import CurrentUserId
from pawgle.common.blobs import BlobStore
from pawgle.common.db import SessionDep, SessionRoute, WriteSessionDep, utcnow
from pawgle.common.errors import BadRequest
from pawgle.common.photos import PhotoPipeline, PhotoUpload, StoredPhoto, read_upload
from pawgle.common.schemas import format_timestamp

router = APIRouter(prefix="/api/auth/chat", route_class=SessionRoute)

MAX_ATTACHMENTS = 6


def _store(request: Request) -> BlobStore:
    store: BlobStore = request.app.state.blobs
    return store


StoreDep = Annotated[BlobStore, Depends(_store)]


@router.get("/conversations/", response_model=list[ConversationRead])
def list_conversations(session: SessionDep, user_id: CurrentUserId, store: StoreDep) -> list[ConversationRead]:
    """C1: the caller's conversations, latest message first."""
    return service.list_conversations(session, user_id, store)


@router.post("/conversations/start/", response_model=ConversationRead)
async def start_conversation(
    request: Request, session: SessionDep, user_id: CurrentUserId, store: StoreDep
) -> ConversationRead:
    """C2: the caller's conversation about a report (created on first call)."""
    report_id = await _report_id(request)

    def work() -> ConversationRead:
        conversation, created = service.start_conversation(session, report_id, user_id)
        if created:
            participants = service.participant_ids(session, conversation.id)
            live.notify_after_commit(
                session, request.app, participants, "conversation", conversation_id=conversation.id
            )
        return service.conversation_body(session, conversation, user_id, store)

    return await run_in_threadpool(work)


async def _report_id(request: Request) -> int:
    # JSON or form, as the web app sends either; a number or a decimal string.
    raw: Any = None
    if "json" in request.headers.get("content-type", ""):
        try:
            payload = await request.json()
        except ValueError:
            raise BadRequest("pet_location_id is required") from None
        raw = payload.get("pet_location_id") if isinstance(payload, dict) else None
    else:
        raw = (await request.form()).get("pet_location_id")
    if isinstance(raw, bool) or raw is None or raw == "":
        raise BadRequest("pet_location_id is required")
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise BadRequest("pet_location_id must be a positive integer") from None
    if not 0 < value < 2**63:
        raise BadRequest("pet_location_id must be a positive integer")
    return value


@router.get("/conversations/{conversation_id}/", response_model=ConversationRead)
def get_conversation(
    conversation_id: str, session: SessionDep, user_id: CurrentUserId, store: StoreDep
) -> ConversationRead:
    """C3: one conversation the caller takes part in."""
    conversation = service.get_conversation(session, conversation_id, user_id)
    return service.conversation_body(session, conversation, user_id, store)


@router.get("/conversations/{conversation_id}/messages/", response_model=MessagePage)
def read_messages(
    conversation_id: str,
    request: Request,
    session: WriteSessionDep,
    user_id: CurrentUserId,
    store: StoreDep,
    after: str | None = None,
) -> MessagePage:
    """C4: messages (after the cursor, plus unread ones from others); marks others' messages read."""
    cursor = service.parse_after(after)
    conversation = service.get_conversation(session, conversation_id, user_id)
    messages, read_at = service.read_messages(session, conversation, user_id, cursor, store)
    if read_at is not None:
        # A read receipt for the others, once the stamps are committed (when this route returns).
        others = [uid for uid in service.participant_ids(session, conversation.id) if uid != user_id]
        live.notify_after_commit(
            session,
            request.app,
            others,
            "read",
            conversation_id=conversation.id,
            user_id=user_id,
            read_at=format_timestamp(read_at),
        )
    return MessagePage(messages=messages, server_time=utcnow())


@router.post("/conversations/{conversation_id}/messages/", response_model=MessageRead, status_code=201)
async def send_message(
    conversation_id: str,
    request: Request,
    session: SessionDep,
    user_id: CurrentUserId,
    store: StoreDep,
    body: Annotated[str | None, Form()] = None,
    attachments: Annotated[list[UploadFile] | None, File()] = None,
    image: Annotated[UploadFile | None, File()] = None,
) -> MessageRead:
    """C5: send a message with up to 6 photos (verified and re-encoded before any database work)."""
    text = service.clean_body(body)
    files = list(attachments or []) + ([image] if image is not None and not attachments else [])
    stored = await accept_photos(request, files)
    if not text and not stored:
        raise BadRequest("Empty message")

    def work() -> tuple[MessageRead, list[int]]:
        conversation = service.get_conversation(session, conversation_id, user_id)
        posted = service.post(
            session, conversation, sender_id=user_id, body=text, attachment_keys=[p.key for p in stored]
        )
        session.commit()
        return posted.body(store), posted.participants

    try:
        sent, participants = await run_in_threadpool(work)
    except BaseException:
        await request.app.state.photos.discard(stored)
        raise
    # After the commit: a stream's client that polls on this notice finds the message.
    await live.notify(request, participants, "message", conversation_id=conversation_id, message_id=sent.id)
    return sent


async def accept_photos(request: Request, files: list[UploadFile]) -> list[StoredPhoto]:
    """Verify, strip and store chat photos through the shared pipeline (outside any transaction)."""
    if not files:
        return []
    photos: PhotoPipeline = request.app.state.photos
    if len(files) > MAX_ATTACHMENTS:
        # Counted before reading: a seventh file is refused without decoding any of them.
        return await photos.accept([PhotoUpload(b"")] * len(files), prefix="chat", limit=MAX_ATTACHMENTS, per="message")
    uploads = [
        PhotoUpload(await read_upload(f, rules=photos.rules, label=f"attachment {i + 1}"), f.filename)
        for i, f in enumerate(files)
    ]
    return await photos.accept(uploads, prefix="chat", limit=MAX_ATTACHMENTS, per="message", field="attachments")
