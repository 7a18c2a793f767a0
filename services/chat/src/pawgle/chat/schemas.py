"""Request and response bodies of the chat API (contract section 6: Conversation and Message objects)."""

from __future__ import annotations

from pydantic import BaseModel

from pawgle.common.schemas import ResponseModel, Timestamp


class AttachmentRead(ResponseModel):
    id: int
    url: str
    created_at: Timestamp


class MessageRead(ResponseModel):
    id: str
    sender_id: int | None
    sender_name: str
    body: str
    attachments: list[AttachmentRead]
    created_at: Timestamp
    read_at: Timestamp | None
    # Set for the recipient when the message asks for money, gift cards or codes, or to leave the platform.
    warning: str | None = None


class ConversationRead(ResponseModel):
    id: str
    pet_location_id: int
    pet_name: str
    pet_image_url: str | None
    last_message_at: Timestamp | None
    last_message_preview: str | None
    unread_count: int
    created_at: Timestamp
    is_test: bool


class MessagePage(ResponseModel):
    messages: list[MessageRead]
    server_time: Timestamp


class StartConversation(BaseModel):
    pet_location_id: int | str | None = None
