"""Events of the chat service (streams CONVERSATIONS and MESSAGES)."""

from __future__ import annotations

from datetime import datetime

from pawgle.common.events.envelope import EventData, event_model


@event_model
class ConversationOpened(EventData):
    """A conversation exists for `match_id` (or a C2/L7 start when None) with these participants.

    A sighting trail keeps one conversation per (trail, lost side): a later match of the same trail
    publishes this event again with the same `conversation_id`, its own `match_id`, every participant,
    and `added_participant_ids` naming the finders who joined (empty when the conversation is new).
    """

    event_type = "conversation.opened"
    conversation_id: str
    report_id: int
    participant_ids: list[int]
    match_id: int | None = None
    trail_id: int | None = None
    added_participant_ids: list[int] = []


@event_model
class MessageSent(EventData):
    """Carries no message body: consumers only need to know who to page."""

    event_type = "message.sent"
    message_id: str
    conversation_id: str
    sender_id: int
    recipient_ids: list[int]
    # Set by contact-owner (L7): the notifier then tells the owner "Someone has information about your <type> <name>".
    via_contact_owner: bool = False
    pet_name: str | None = None
    pet_type: str | None = None


@event_model
class EmailReplyReceived(EventData):
    """A participant answered a chat e-mail (X1, proven by a per-party reply token): chat posts the text as them."""

    event_type = "message.email_reply_received"
    conversation_id: str
    sender_id: int
    body: str


@event_model
class ConversationRead(EventData):
    """A participant has read a conversation up to `read_at` (chat publishes it; paging e-mails resume)."""

    event_type = "conversation.read"
    conversation_id: str
    user_id: int
    read_at: datetime
